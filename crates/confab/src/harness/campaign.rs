//! The campaign loop: baselines first, then the planned cases in batches (one at a time while
//! attribution needs it), each batch's late log lines settled while the next one runs, then
//! triage.

use super::exchange::{Exchange, OpenCase, open_case, settle, settle_into, wait_for_quiet_log};
use super::plan::{Options, plan, selected_endpoints};
use super::request::multi_threaded;
use super::run::{CampaignError, Run};
use super::shrink::group;
use crate::generators::case::CaseRecipe;
use crate::guard::ScopeSet;
use crate::triage::{Aggregate, Report};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(super) async fn campaign(
    run: &Arc<Run>,
    options: &Options,
    started: Instant,
) -> Result<Report, CampaignError> {
    let endpoints = selected_endpoints(&run.spec, options);
    let mut agg = Aggregate::<Exchange>::default();
    let baselines_run = baselines(run, &endpoints, &mut agg).await?;
    let mut warnings: Vec<String> = baselines_run
        .silent_llm_endpoints
        .iter()
        .map(|name| {
            no_model_call_warning(&format!(
                "endpoint {name:?} (llm = true) made no model call in its baselines"
            ))
        })
        .collect();
    let mut planned = plan(&run.spec, options);
    let total = planned.len() as u64;
    let found = AtomicU64::new(0);
    // The first cases run one at a time: if the target's calls can then only be tied to a
    // case because it was the only one running (no token, no nonce in them), the whole run
    // stays one at a time; otherwise it runs concurrently, in batches, and falls back the
    // moment a call cannot be attributed.
    const WARM_UP: usize = 24;
    let mut serial = run.serial.load(Ordering::Relaxed);
    let mut next = 0;
    // Each batch settles while the next one runs: a process's lines written just after its
    // last answers (an access log, say) then have a whole batch to arrive, and nobody waits.
    let mut settling: Vec<OpenCase> = Vec::new();
    let mut cases_done = 0u64;
    loop {
        let guessed_before = run.llm.guessed_attributions() + run.sink.guessed_attributions();
        let lost_before =
            !run.llm.take_unattributed().is_empty() | !run.sink.take_unattributed().is_empty();
        serial |= lost_before;
        let concurrency = if serial || next < WARM_UP {
            1
        } else {
            options.concurrency.max(1)
        };
        let batch_len = if concurrency == 1 && next < WARM_UP {
            WARM_UP - next
        } else {
            concurrency * 8
        };
        let batch: Vec<(u64, CaseRecipe)> = planned.by_ref().take(batch_len).collect();
        if batch.is_empty() {
            break;
        }
        next += batch.len();
        let parallel = multi_threaded();
        let alone = concurrency == 1;
        let mut stream = futures_util::stream::iter(batch.into_iter().map(|(i, recipe)| {
            let run = Arc::clone(run);
            async move {
                if !parallel {
                    return open_case(&run, &recipe, i, alone).await;
                }
                // Each case on a task of its own: minting and checking use every core.
                match tokio::spawn(async move { open_case(&run, &recipe, i, alone).await }).await {
                    Ok(ex) => ex,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
        }))
        .buffer_unordered(concurrency);
        let mut done = Vec::new();
        while let Some(case) = stream.next().await {
            let n = case.exchange.violations.len() as u64;
            let f = found.fetch_add(n, Ordering::Relaxed) + n;
            done.push(case);
            cases_done += 1;
            if let Some(progress) = &options.progress {
                progress(cases_done, total, f);
            }
        }
        drop(stream);
        let previous = std::mem::replace(&mut settling, done);
        settle_into(run, &mut agg, &found, previous, Duration::ZERO).await;
        if concurrency == 1
            && run.llm.guessed_attributions() + run.sink.guessed_attributions() > guessed_before
        {
            serial = true;
        }
    }
    // The last batch has no next one to settle behind.
    wait_for_quiet_log(run).await;
    settle_into(run, &mut agg, &found, settling, Duration::ZERO).await;
    run.serial.store(serial, Ordering::Relaxed);

    let mut report = group(run, agg, options).await?;
    report.stats.duration_ms = started.elapsed().as_millis() as u64;
    report.stats.requests = run.requests.load(Ordering::Relaxed);
    report.stats.seed = options.seed;
    report.stats.baselines = baselines_run.ran;
    let llm_endpoints = endpoints.iter().any(|&e| run.spec.endpoints[e].llm);
    if llm_endpoints && report.stats.model_calls == 0 && warnings.is_empty() {
        warnings.push(no_model_call_warning(
            "the scan made no model call although endpoints are marked llm = true",
        ));
    }
    report.stats.warnings = warnings;
    report.stats.one_at_a_time = run.serial.load(Ordering::Relaxed);
    report.stats.unknown_model_shapes = run.llm.unknown_shapes();
    report.sort();
    Ok(report)
}

/// What the baselines showed beyond their findings.
pub(super) struct Baselines {
    /// How many ran.
    pub(super) ran: u64,
    /// `llm = true` endpoints that served their baselines without calling the model: the
    /// target does not reach confab's fake model, so nothing model-driven is tested there.
    pub(super) silent_llm_endpoints: Vec<String>,
}

/// The warning for a target that never called the fake model, with what to check.
pub(crate) fn no_model_call_warning(what: &str) -> String {
    format!(
        "no model call: {what}. Nothing the model does was tested there. Check that the target \
         reads the model's base URL and key from the spec's [target.env] ({{llm_base_url}}, \
         {{llm_api_key}}), that it can list models (GET /v1/models: [llm] models), and that \
         the endpoint's prompt reaches the model; `--allow-no-model` runs anyway"
    )
}

/// Baselines: every principal on every endpoint its scope covers, one at a time; a target that
/// serves none of them is misconfigured (or refuses everything), and the run stops. They also
/// tell whether the target's calls can be attributed to concurrent cases.
pub(super) async fn baselines(
    run: &Run,
    endpoints: &[usize],
    agg: &mut Aggregate<Exchange>,
) -> Result<Baselines, CampaignError> {
    let (mut silent_llm_endpoints, mut called): (Vec<String>, Vec<String>) = Default::default();
    let mut tried = 0;
    let mut served = 0;
    let mut first_refusal = None;
    let mut opened = Vec::new();
    for &e in endpoints {
        let required = ScopeSet::parse(&run.spec.endpoints[e].scope);
        for (p, principal) in run.spec.principals.iter().enumerate() {
            if !ScopeSet::parse(&principal.scope).includes(&required)
                || !run.spec.endpoints[e].allows(&principal.name)
            {
                continue;
            }
            let recipe = CaseRecipe::baseline(e as u32, p as u32);
            let case = open_case(run, &recipe, u64::MAX - tried, true).await;
            let ex = &case.exchange;
            tried += 1;
            let ok = ex
                .observation
                .status
                .is_some_and(|s| (200..300).contains(&s));
            if ok {
                served += 1;
                let endpoint = &run.spec.endpoints[e];
                if endpoint.llm {
                    if ex.observation.llm_calls.is_empty() {
                        if !silent_llm_endpoints.contains(&endpoint.name) {
                            silent_llm_endpoints.push(endpoint.name.clone());
                        }
                    } else {
                        called.push(endpoint.name.clone());
                    }
                }
            } else if first_refusal.is_none() {
                first_refusal = Some(format!(
                    "{} {} as {} → {}",
                    run.spec.endpoints[e].method,
                    run.spec.endpoints[e].name,
                    principal.name,
                    super::setup::answer(run, &ex.observation)
                ));
            }
            opened.push(case);
        }
    }
    wait_for_quiet_log(run).await;
    settle(run, &mut opened, Duration::ZERO).await;
    for case in opened {
        agg.add(
            &run.spec.endpoints[case.exchange.plan.endpoint].name,
            case.exchange,
        );
    }
    if tried > 0 && served == 0 {
        return Err(CampaignError::RefusesValid {
            tried: tried as usize,
            first: first_refusal.unwrap_or_default(),
        });
    }
    // An endpoint counts as silent only if none of its served baselines called the model.
    silent_llm_endpoints.retain(|name| !called.contains(name));
    Ok(Baselines {
        ran: tried,
        silent_llm_endpoints,
    })
}
