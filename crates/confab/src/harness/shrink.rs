//! The harness's half of triage: violations grouped into findings (see [`crate::triage`]),
//! each group's example shrunk by re-running simpler cases, masked, and written out for
//! replay.

use super::exchange::{Exchange, run_case};
use super::plan::Options;
use super::replay::write_replay;
use super::run::{CampaignError, Run};
use crate::generators::case::CaseWorld;
use crate::oracle::Violation;
use crate::triage::{Aggregate, Example, Finding, GroupKey, Report, Reproduce};

/// Groups violations into findings, shrinks each group's example, writes replay files.
pub(super) async fn group(
    run: &Run,
    agg: Aggregate<Exchange>,
    options: &Options,
) -> Result<Report, CampaignError> {
    let Aggregate { stats, mut groups } = agg;
    let mut findings = Vec::new();
    let mut keys: Vec<GroupKey> = groups.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let Some((count, violation, example)) = groups.remove(&key) else {
            continue;
        };
        let (violation, example) = shrink(run, violation, example, options.shrink_budget).await;
        let fingerprint = crate::triage::fingerprint(&key);
        let replay = match &options.replay_dir {
            Some(dir) => Some(write_replay(run, dir, &fingerprint, &example)?),
            None => None,
        };
        findings.push(finding(
            run,
            key,
            count,
            violation,
            &example,
            fingerprint,
            replay,
        ));
    }
    Ok(Report {
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: run.target_label.clone(),
        spec: run.spec.origin.clone(),
        findings,
        stats,
    })
}

/// Tries simpler versions of the example; keeps each that still shows the same violation.
async fn shrink(
    run: &Run,
    violation: Violation,
    example: Exchange,
    budget: u32,
) -> (Violation, Exchange) {
    let (mut violation, mut example) = (violation, example);
    let mut spent = 0;
    'outer: while spent < budget {
        for simpler in example.plan.recipe.simplifications() {
            if spent >= budget {
                break 'outer;
            }
            spent += 1;
            let ex = run_case(run, &simpler, example.plan.id).await;
            if let Some(v) = ex
                .violations
                .iter()
                .find(|v| v.invariant == violation.invariant && v.kind == violation.kind)
            {
                violation = v.clone();
                example = ex;
                continue 'outer;
            }
        }
        break;
    }
    (violation, example)
}

pub(super) fn finding(
    run: &Run,
    key: GroupKey,
    count: u64,
    violation: Violation,
    ex: &Exchange,
    fingerprint: String,
    replay: Option<String>,
) -> Finding {
    let world = CaseWorld {
        endpoints: &run.spec.endpoints,
        principals: &run.spec.principals,
        mint: &run.mint,
        attacker_base_url: run.sink.attacker_url(),
        seed: run.seed,
        now: 0,
    };
    let endpoint = &run.spec.endpoints[ex.plan.endpoint];
    let masker = masker(run);
    // Fails closed: text that cannot be masked is not shown.
    let mask = |text: &str| match &masker {
        Some(m) => m.scrub_str(text).0,
        None => "(not shown: confab could not mask it)".to_owned(),
    };
    // Masked whole, then cut: a cut first could leave half a secret unmasked.
    let excerpt: String = mask(&ex.observation.response_body)
        .chars()
        .take(400)
        .collect();
    let mask_json = |v: &serde_json::Value| {
        let text = mask(&v.to_string());
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    Finding {
        invariant: key.0,
        severity: violation.severity,
        cwe: key.0.cwe().iter().map(|s| s.to_string()).collect(),
        owasp: violation.owasp().iter().map(|s| s.to_string()).collect(),
        endpoint: key.1,
        kind: key.2,
        observed: mask(&violation.observed),
        cases: count,
        fingerprint,
        example: Example {
            case: ex.plan.describe(&world),
            request: format!(
                "{} {}",
                endpoint.method,
                endpoint.render_path(&ex.plan.resource)
            ),
            model_output: ex
                .observation
                .llm_calls
                .iter()
                .map(|c| mask_json(&c.answer))
                .collect(),
            downstream: ex
                .observation
                .sink_requests
                .iter()
                .map(|r| mask(&format!("{} {}", r.request.method, r.request.uri)))
                .collect(),
            response_status: ex.observation.status,
            response_excerpt: excerpt,
        },
        reproduce: Reproduce {
            curl: ex.curl.clone(),
            replay,
        },
    }
}

/// Masks the run's own secrets (the model key, the signing secret) in what a report shows, as
/// the scrubber masks them: reports are shared, and a target that echoes a secret must not make
/// its report carry it. Tokens stay: they are the short-lived test tokens confab minted.
fn masker(run: &Run) -> Option<crate::guard::scrub::Scrubber> {
    use crate::guard::scrub::{ScrubConfig, ScrubberBuilder, SecretKind};
    let mut b = ScrubberBuilder::new().config(ScrubConfig::literals_only());
    b.secret(SecretKind::LlmApiKey, "llm_api_key", &run.llm_key)
        .ok()?;
    if let Some(s) = &run.signing_secret {
        b.secret(SecretKind::SigningKey, "signing_key", s).ok()?;
    }
    b.build().ok()
}
