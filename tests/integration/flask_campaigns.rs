//! Real campaigns (`confab scan`, as a user runs it) against the Flask example target in both
//! forms: every planted flaw is found under its invariant; the hardened form gives nothing
//! above low; nothing is left running afterwards.

use crate::common::{flask_available, repo_path};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
/// Runs a scan; returns (exit code, report JSON).
fn scan(spec: &str, cases: u32, seed: u32) -> (i32, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.json");
    let run = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "scan",
            "--spec",
            spec,
            "--cases",
            &cases.to_string(),
            "--seed",
            &seed.to_string(),
            "--concurrency",
            "4",
            "--format",
            "json",
            "--quiet",
            "--out",
            out.to_str().expect("utf-8"),
            "--replay-dir",
            dir.path().join("replays").to_str().expect("utf-8"),
        ])
        .current_dir(repo_path("."))
        .output()
        .expect("confab runs");
    let code = run.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    let report: Value = serde_json::from_str(&text).expect("report is JSON");
    // Every replay file named in the report exists (they live in the temp dir).
    for f in report["findings"].as_array().into_iter().flatten() {
        if let Some(p) = f["reproduce"]["replay"].as_str() {
            assert!(std::path::Path::new(p).exists(), "{p} missing");
        }
    }
    // The target was stopped: its port no longer answers.
    let target = report["target"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("http://")
        .to_owned();
    assert!(
        std::net::TcpStream::connect(&target).is_err(),
        "the target at {target} is still running after confab exited"
    );
    (code, report)
}

fn kinds(report: &Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["invariant"].as_str().unwrap_or_default().to_owned(),
                f["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn vulnerable_flask_target_shows_every_planted_flaw() {
    if !flask_available() {
        return;
    }
    let (code, report) = scan("examples/flask/vulnerable.toml", 400, 1);
    assert_eq!(code, 1, "findings exit 1");
    let found = kinds(&report);
    let has = |inv: &str, kind_prefix: &str| {
        found
            .iter()
            .any(|(i, k)| i == inv && k.starts_with(kind_prefix))
    };
    let expected = [
        ("AUTHN", "accepted_"),                    // verify_aud/iss/exp off
        ("AUTHZ", "missing_scope_accepted"),       // comma-split scopes
        ("PROVENANCE", "model_"),                  // trusts the model's ids
        ("OWNERSHIP", "other_tenant_content"),     // plain IDOR on /docs
        ("AGENCY", "capability_exceeded_delete"),  // delete_doc on a read endpoint
        ("AGENCY", "token_sent_to_foreign_host"),  // fetch_url forwards the token
        ("ECHO", "bearer_token_sent_upstream"),    // token in the system prompt
        ("ECHO", "bearer_token_in_target_logs"),   // logs the Authorization header
        ("ECHO", "bearer_token_in_response_body"), // token echoed in errors
        ("ROBUST", "server_error"),                // 500 on a bad body
        ("COST", "max_tokens_over_cap"),           // max_tokens 8192
    ];
    let missing: Vec<_> = expected.iter().filter(|(i, k)| !has(i, k)).collect();
    assert!(
        missing.is_empty(),
        "not found: {missing:?}\nfound: {found:?}"
    );
    let stats = &report["stats"];
    assert!(stats["cases"].as_u64().unwrap_or(0) >= 400);
    for f in report["findings"].as_array().into_iter().flatten() {
        for key in ["invariant", "severity", "cwe", "endpoint", "reproduce"] {
            assert!(!f[key].is_null(), "finding without {key}: {f}");
        }
    }
}

#[test]
fn hardened_flask_target_has_no_finding_above_low() {
    if !flask_available() {
        return;
    }
    let (code, report) = scan("examples/flask/hardened.toml", 400, 1);
    let serious: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] != "low")
        .collect();
    assert!(
        serious.is_empty(),
        "hardened form has findings: {serious:#?}"
    );
    assert!(code == 0 || code == 1);
}
