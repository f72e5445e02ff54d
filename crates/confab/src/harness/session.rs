//! A session: a called target kept running between cases, as a property test drives it.

use super::campaign::baselines;
use super::exchange::{Exchange, judge, run_case};
use super::plan::Options;
use super::run::{CampaignError, Mode, Run, Started, start};
use super::shrink::finding;
use crate::generators::case::CaseRecipe;
use crate::oracle::Violation;
use crate::spec::Spec;
use crate::triage::{Aggregate, Report, Stats};
use confab_target::BuildService;
use std::sync::atomic::{AtomicU64, Ordering};

/// An in-process target kept running to check cases one at a time, as a property test
/// drives it: the fake model, the sink and the service stay up between cases.
pub struct Session {
    run: Run,
    next_id: AtomicU64,
}

impl Session {
    /// Builds the service and checks that it serves valid requests (the baselines).
    pub async fn start(
        spec: Spec,
        seed: u64,
        target: BuildService,
    ) -> Result<Session, CampaignError> {
        let options = Options {
            seed,
            ..Options::default()
        };
        let Started { mut run, .. } = start(spec, &options, Mode::Direct(target)).await?;
        super::setup::prepare(&mut run).await?;
        let endpoints: Vec<usize> = (0..run.spec.endpoints.len()).collect();
        baselines(&run, &endpoints, &mut Aggregate::<Exchange>::default()).await?;
        Ok(Session {
            run,
            next_id: AtomicU64::new(0),
        })
    }

    /// The spec the session runs.
    pub fn spec(&self) -> &Spec {
        &self.run.spec
    }

    /// Runs one case and checks it against every invariant.
    pub async fn run_case(&self, recipe: &CaseRecipe) -> Exchange {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        run_case(&self.run, recipe, id).await
    }

    /// The oracle's verdict on an exchange `run_case` recorded, checked again:
    /// what `benches/oracle.rs` times, and a way to re-judge recorded exchanges after a change
    /// to the oracle.
    pub fn judge(&self, ex: &Exchange) -> Vec<Violation> {
        judge(&self.run, &ex.plan, &ex.verdict, &ex.observation)
    }

    /// One exchange as a report, a finding per violation: what a failing test prints.
    pub fn report(&self, ex: &Exchange) -> Report {
        let endpoint = &self.run.spec.endpoints[ex.plan.endpoint].name;
        let findings = ex
            .violations
            .iter()
            .map(|v| {
                let key = (v.invariant, endpoint.clone(), v.kind.to_string());
                let fingerprint = crate::triage::fingerprint(&key);
                finding(&self.run, key, 1, v.clone(), ex, fingerprint, None)
            })
            .collect();
        let mut report = Report {
            confab_version: env!("CARGO_PKG_VERSION").to_owned(),
            target: self.run.target_label.clone(),
            spec: self.run.spec.origin.clone(),
            findings,
            stats: Stats {
                cases: 1,
                requests: 1,
                model_calls: ex.observation.llm_calls.len() as u64,
                downstream_requests: ex.observation.sink_requests.len() as u64,
                seed: self.run.seed,
                // Run-wide, as in a campaign's report: a model API confab does not speak
                // explains a session whose cases never reach the model.
                unknown_model_shapes: self.run.llm.unknown_shapes(),
                ..Stats::default()
            },
        };
        report.sort();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Endpoint, Principal};
    use confab_target::{TargetContext, TargetService};
    use std::io::Write;
    use std::sync::Arc;
    use std::time::Duration;

    /// One principal and one `POST /ask` endpoint sending `body`.
    fn ask_spec(body: serde_json::Value) -> Spec {
        Spec::builder()
            .principal(Principal::new("alice").scope("a").owns(["n-1"]))
            .endpoint(Endpoint::post("ask", "/ask").scope("a").body(body))
            .downstream("/n/{id}")
            .build()
            .expect("spec")
    }

    /// Logs each request's prompt (which carries the case's nonce) after a delay that differs
    /// per request, so that concurrent cases' lines interleave.
    fn echoing_service(ctx: TargetContext) -> Result<TargetService, String> {
        let log = Arc::new(std::sync::Mutex::new(ctx.log_writer()));
        let router = axum::Router::new().route(
            "/ask",
            axum::routing::post(move |body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let delay = body.iter().map(|b| u64::from(*b)).sum::<u64>() % 9;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let text = String::from_utf8_lossy(&body);
                    let _ = writeln!(crate::harness::lock(&log), "handled {text}");
                    "{}"
                }
            }),
        );
        Ok(TargetService::from(router))
    }

    /// Calls the model in a shape confab does not speak, then answers.
    fn unknown_shape_service(ctx: TargetContext) -> Result<TargetService, String> {
        let outbound = ctx.outbound.clone();
        let url = format!("{}/unknown-shape", ctx.llm_base_url);
        let router = axum::Router::new().route(
            "/ask",
            axum::routing::post(move || {
                let (outbound, url) = (outbound.clone(), url.clone());
                async move {
                    if let Ok(req) = axum::http::Request::post(url.as_str())
                        .body(axum::body::Bytes::from_static(b"{}"))
                    {
                        let _ = outbound.send(req, 1 << 20, Duration::from_secs(2)).await;
                    }
                    "{}"
                }
            }),
        );
        Ok(TargetService::from(router))
    }

    /// A session's report names the model calls confab could not read, as a campaign's does.
    #[tokio::test]
    async fn a_session_report_names_unknown_model_shapes() {
        let spec = ask_spec(serde_json::json!({"prompt": "{prompt}"}));
        let session = Session::start(spec, 1, Box::new(unknown_shape_service))
            .await
            .expect("session");
        let ex = session.run_case(&CaseRecipe::baseline(0, 0)).await;
        let report = session.report(&ex);
        assert_eq!(
            report.stats.unknown_model_shapes,
            vec!["POST /v1/unknown-shape".to_owned()],
            "{:?}",
            report.stats
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_cases_each_get_exactly_their_own_lines() {
        let spec = ask_spec(serde_json::json!({"prompt": "{prompt}", "note": "{resource}"}));
        let options = Options::default();
        let Started { run, .. } = start(spec, &options, Mode::Direct(Box::new(echoing_service)))
            .await
            .expect("started");
        let run = Arc::new(run);
        let cases: Vec<_> = (0..24u64)
            .map(|i| {
                let run = run.clone();
                let recipe = CaseRecipe::baseline(0, 0);
                tokio::spawn(async move { run_case(&run, &recipe, i).await })
            })
            .collect();
        for case in cases {
            let ex = case.await.expect("the case ran");
            let own: Vec<&String> = ex
                .observation
                .logs
                .iter()
                .filter(|l| l.contains(&ex.plan.nonce))
                .collect();
            assert_eq!(
                own.len(),
                1,
                "case {}: {:?}",
                ex.plan.id,
                ex.observation.logs
            );
            assert_eq!(ex.observation.logs.len(), 1, "only its own line");
        }
    }
}
