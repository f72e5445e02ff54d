//! Campaigns against the embedded reference target: with each planted flaw alone, confab finds
//! it under the invariant the flaw is meant to break; the hardened form gives no finding at all;
//! run as a process through its spec, nothing is left behind.

use confab::harness::{self as campaign, Options};
use confab::report::Report;
use confab::spec::Spec;
use confab::target::BuildRouter;
use confab_reference_target::{CATALOGUE, Flaws, served_target};
use std::path::Path;

const HARDENED: &str = include_str!("../../examples/reference/hardened.toml");

fn target(flaws: Flaws) -> BuildRouter {
    served_target(Some(flaws))
}

async fn campaign(flaws: Flaws, cases: u64, seed: u64) -> Report {
    let spec = Spec::parse(HARDENED, "hardened.toml", Path::new(".")).expect("spec");
    let options = Options {
        cases,
        seed,
        concurrency: 4,
        shrink_budget: 2,
        ..Options::default()
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(240),
        campaign::run(spec, options, Some(target(flaws))),
    )
    .await
    .expect("campaign ends in time")
    .expect("campaign runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_planted_flaw_is_found_under_its_invariant() {
    let mut missed = Vec::new();
    for (i, info) in CATALOGUE.iter().enumerate() {
        let flaws = Flaws::only(info.name).expect("catalogue name");
        let report = campaign(flaws, 250, 100 + i as u64).await;
        let primary = info.invariants[0];
        if !report.findings.iter().any(|f| f.invariant == primary) {
            let seen: Vec<String> = report
                .findings
                .iter()
                .map(|f| format!("{}/{}", f.invariant, f.kind))
                .collect();
            missed.push(format!("{} (expected {primary}; saw {seen:?})", info.name));
        }
    }
    assert!(missed.is_empty(), "flaws not found:\n{}", missed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_reference_target_gives_no_finding() {
    let report = campaign(Flaws::none(), 400, 7).await;
    assert!(
        report.findings.is_empty(),
        "hardened form has findings:\n{}",
        report.render_text(true)
    );
    assert!(report.stats.cases >= 400);
    // It forwards the caller's token downstream: cases can run concurrently.
    assert!(!report.stats.one_at_a_time);
}

#[test]
fn scanning_the_spec_runs_the_target_as_a_process_and_stops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.json");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "scan",
            "--spec",
            "examples/reference/vulnerable.toml",
            "--cases",
            "60",
            "--quiet",
            "--format",
            "json",
            "--out",
            out.to_str().expect("utf-8"),
            "--replay-dir",
            dir.path().to_str().expect("utf-8"),
        ])
        .current_dir(crate::common::repo_path("."))
        .output()
        .expect("confab runs");
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    let target = report["target"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("http://")
        .to_owned();
    assert!(
        std::net::TcpStream::connect(&target).is_err(),
        "{target} still answers"
    );

    // A finding's replay file reruns its exchange and still fails.
    let replay = report["findings"]
        .as_array()
        .and_then(|f| {
            f.iter()
                .find(|f| f["invariant"] == "AGENCY" || f["invariant"] == "ECHO")
        })
        .and_then(|f| f["reproduce"]["replay"].as_str())
        .expect("an AGENCY or ECHO finding with a replay file")
        .to_owned();
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "replay",
            &replay,
            "--spec",
            "examples/reference/vulnerable.toml",
        ])
        .current_dir(crate::common::repo_path("."))
        .output()
        .expect("confab replay runs");
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("still fails"));
    let fixed = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "replay",
            &replay,
            "--spec",
            "examples/reference/hardened.toml",
        ])
        .current_dir(crate::common::repo_path("."))
        .output()
        .expect("confab replay runs");
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fixed.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_every_valid_request_stops_the_run() {
    // confab mints with the wrong issuer: the hardened target refuses all of its tokens.
    let text = HARDENED.replacen(
        "issuer = \"https://issuer.test\"",
        "issuer = \"https://some-other-issuer.test\"",
        1,
    );
    let spec = Spec::parse(&text, "wrong-issuer.toml", Path::new(".")).expect("spec");
    let options = Options {
        cases: 50,
        ..Options::default()
    };
    let result = campaign::run(spec, options, Some(target(Flaws::none()))).await;
    let err = match result {
        Ok(report) => panic!(
            "expected the run to stop; got {} findings",
            report.findings.len()
        ),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("refused every valid request"), "{err}");
    assert!(err.contains("401"), "names what the target answered: {err}");
}
