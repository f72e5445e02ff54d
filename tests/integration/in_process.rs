//! In-process campaigns (no socket, no process) against the embedded reference target agree
//! with campaigns over loopback HTTP: the same seed finds the same findings, case for case,
//! with several cases in flight.

use confab::harness::{self as campaign, IN_PROCESS_LABEL, Options};
use confab::report::Report;
use confab::spec::Spec;
use confab::testing::Campaign;
use confab_reference_target::{Flaws, ReferenceConfig, router, served_target};
use std::collections::BTreeMap;
use std::path::Path;

const HARDENED: &str = include_str!("../../examples/reference/hardened.toml");

fn spec() -> Spec {
    Spec::parse(HARDENED, "hardened.toml", Path::new(".")).expect("spec")
}

/// Several cases in flight: each log line goes to the case whose token or nonce it carries,
/// so counts do not depend on which cases ran side by side.
const CONCURRENCY: usize = 4;

fn options(cases: u64, seed: u64) -> Options {
    Options {
        cases,
        seed,
        concurrency: CONCURRENCY,
        shrink_budget: 2,
        ..Options::default()
    }
}

/// fingerprint → cases that hit it.
fn findings(report: &Report) -> BTreeMap<String, u64> {
    report
        .findings
        .iter()
        .map(|f| (f.fingerprint.clone(), f.cases))
        .collect()
}

async fn both(flaws: Flaws, cases: u64, seed: u64) -> (Report, Report) {
    let limit = std::time::Duration::from_secs(240);
    let http = tokio::time::timeout(
        limit,
        campaign::run(
            spec(),
            options(cases, seed),
            Some(served_target(Some(flaws))),
        ),
    )
    .await
    .expect("HTTP campaign ends in time")
    .expect("HTTP campaign runs");
    // In-process through the public testing API, as a user would write it.
    let direct = tokio::time::timeout(
        limit,
        Campaign::new(spec())
            .cases(cases)
            .seed(seed)
            .concurrency(CONCURRENCY)
            .shrink_budget(2)
            .run(move |ctx| {
                let mut cfg = ReferenceConfig::from_context(ctx).expect("the spec's env");
                cfg.flaws = flaws;
                router(cfg)
            }),
    )
    .await
    .expect("in-process campaign ends in time")
    .expect("in-process campaign runs");
    (http, direct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vulnerable_target_same_findings_in_process_and_over_http() {
    let (http, direct) = both(Flaws::all(), 300, 11).await;
    assert!(
        !http.findings.is_empty(),
        "the vulnerable target has findings"
    );
    assert_eq!(direct.target, IN_PROCESS_LABEL);
    assert!(
        !http.stats.one_at_a_time && !direct.stats.one_at_a_time,
        "cases ran side by side"
    );
    assert_eq!(http.stats.cases, direct.stats.cases);
    assert_eq!(http.stats.requests, direct.stats.requests);
    assert_eq!(findings(&http), findings(&direct));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_target_clean_in_process_and_over_http() {
    let (http, direct) = both(Flaws::none(), 200, 5).await;
    assert_eq!(findings(&http), findings(&direct));
    assert!(direct.hardened(), "{}", direct.render_text(true));
    assert_eq!(http.stats.model_calls, direct.stats.model_calls);
    assert_eq!(
        http.stats.downstream_requests,
        direct.stats.downstream_requests
    );
}
