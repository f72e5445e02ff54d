//! The precision suite (issue 14): real campaigns, as a user runs them, against the three
//! precision targets of examples/precision/ (Flask + PyJWT, FastAPI + PyJWT, Express +
//! jsonwebtoken), each built the way its stack's documentation recommends with its framework's
//! defaults (access logs included). The hardened forms must come out of 2,000-case campaigns
//! at three seeds with nothing above low; each vulnerable form's planted flaws must be found.
//! One test: the three targets run side by side (a thread each), their campaigns in turn.

use crate::common::{Tool, repo_path, require};
use serde_json::Value;
use std::process::Command;

const CASES: u32 = 2000;
const SEEDS: [u32; 3] = [1, 2, 3];

/// Runs a scan; returns the report (the process exits 0 or 1, never 2).
fn scan(spec: &str, seed: u32) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.json");
    let run = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["scan", "--spec", spec, "--cases", &CASES.to_string()])
        .args([
            "--seed",
            &seed.to_string(),
            "--concurrency",
            "4",
            "--format",
            "json",
        ])
        .args(["--quiet", "--out", out.to_str().expect("utf-8")])
        .args([
            "--replay-dir",
            dir.path().join("replays").to_str().expect("utf-8"),
        ])
        .current_dir(repo_path("."))
        .output()
        .expect("confab runs");
    let code = run.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "{spec} seed {seed}: confab exited {code}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("a report");
    serde_json::from_str(&text).expect("report is JSON")
}

fn findings(report: &Value) -> Vec<&Value> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

fn line(f: &Value) -> String {
    format!(
        "{} {} [{}] {} x{}: {}",
        f["severity"].as_str().unwrap_or_default(),
        f["invariant"].as_str().unwrap_or_default(),
        f["endpoint"].as_str().unwrap_or_default(),
        f["kind"].as_str().unwrap_or_default(),
        f["cases"],
        f["observed"].as_str().unwrap_or_default()
    )
}

/// What each vulnerable form must show: (invariant, kind prefix) per planted flaw, from the
/// target's README.
fn planted(target: &str) -> &'static [(&'static str, &'static str)] {
    match target {
        // The IDOR through the model shows as PROVENANCE (its README: or OWNERSHIP, when the
        // model also repeats the document, which a campaign need not script).
        "flask_pyjwt" => &[
            ("PROVENANCE", "model_id_of_another_tenant"),
            ("ECHO", "system_prompt_in_response"),
        ],
        "fastapi_pyjwt" => &[
            ("AGENCY", "token_sent_to_foreign_host"),
            ("OWNERSHIP", "other_tenant_content"),
        ],
        _ => &[
            ("AUTHN", "accepted_expired"),
            ("COST", "m"),
            ("ECHO", "bearer_token_in_target_logs"),
        ],
    }
}

/// Runs one target's campaigns; returns its lines for the summary and its failures.
fn target_campaigns(target: &'static str) -> (Vec<String>, Vec<String>) {
    let (mut summary, mut failures) = (Vec::new(), Vec::new());
    for seed in SEEDS {
        let spec = format!("examples/precision/{target}/hardened.toml");
        let report = scan(&spec, seed);
        let above: Vec<String> = findings(&report)
            .into_iter()
            .filter(|f| f["severity"] != "low")
            .map(line)
            .collect();
        summary.push(format!(
            "{target} hardened seed {seed}: {} finding(s) above low",
            above.len()
        ));
        for l in above {
            failures.push(format!("{target} hardened seed {seed}: {l}"));
        }
    }
    let spec = format!("examples/precision/{target}/vulnerable.toml");
    let report = scan(&spec, 1);
    let all = findings(&report);
    for (inv, kind) in planted(target) {
        let found = all.iter().any(|f| {
            f["invariant"] == *inv
                && f["severity"] != "low"
                && f["kind"].as_str().is_some_and(|k| k.starts_with(kind))
        });
        summary.push(format!(
            "{target} vulnerable seed 1: {inv} {kind}* found: {found}"
        ));
        if !found {
            failures.push(format!(
                "{target} vulnerable: planted flaw {inv} {kind}* not found; found:\n  {}",
                all.iter().map(|f| line(f)).collect::<Vec<_>>().join("\n  ")
            ));
        }
    }
    (summary, failures)
}

#[test]
fn precision_targets_hardened_nothing_above_low_vulnerable_found() {
    if !require(Tool::Precision) {
        return;
    }
    let targets = ["flask_pyjwt", "fastapi_pyjwt", "express_jsonwebtoken"];
    let results: Vec<(Vec<String>, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| s.spawn(move || target_campaigns(t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a target's campaigns"))
            .collect()
    });
    for (summary, _) in &results {
        for l in summary {
            eprintln!("{l}");
        }
    }
    let failures: Vec<&String> = results.iter().flat_map(|(_, f)| f).collect();
    assert!(
        failures.is_empty(),
        "precision suite:\n{}",
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
