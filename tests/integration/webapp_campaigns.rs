//! Campaigns against examples/webapp, an app that issues its own tokens (claims `id` and
//! `session_stamp`, logins, setup steps, roles, no downstream API): the hardened form gives
//! nothing above low; the vulnerable form shows each planted flaw under its invariant (the IDOR
//! on its own stored chats as OWNERSHIP, the missing role check as AUTHZ, the unchecked
//! session stamp as AUTHN).

use crate::common::repo_path;
use serde_json::Value;
use std::process::Command;

fn webapp_available() -> bool {
    crate::common::require(crate::common::Tool::WebApp)
}

fn scan(spec: &str, cases: u32) -> (i32, Value) {
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
            "1",
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
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    (
        run.status.code().unwrap_or(-1),
        serde_json::from_str(&text).expect("report is JSON"),
    )
}

fn findings(report: &Value) -> Vec<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("invariant"), s("severity"), s("endpoint"), s("kind"))
        })
        .collect()
}

#[test]
fn hardened_webapp_has_nothing_above_low() {
    if !webapp_available() {
        return;
    }
    let (code, report) = scan("examples/webapp/hardened.toml", 300);
    let serious: Vec<_> = findings(&report)
        .into_iter()
        .filter(|(_, sev, _, _)| sev != "low")
        .collect();
    assert!(serious.is_empty(), "exit {code}: {serious:?}");
    assert!(
        report["stats"]["model_calls"].as_u64().unwrap_or(0) > 0,
        "{}",
        report["stats"]
    );
}

#[test]
fn vulnerable_webapp_shows_each_planted_flaw() {
    if !webapp_available() {
        return;
    }
    let (code, report) = scan("examples/webapp/vulnerable.toml", 300);
    assert_eq!(code, 1);
    let found = findings(&report);
    let has = |inv: &str, endpoint: &str, kind: &str| {
        found
            .iter()
            .any(|(i, _, e, k)| i == inv && e == endpoint && k == kind)
    };
    assert!(
        has("OWNERSHIP", "get_chat", "other_tenant_content"),
        "IDOR: {found:?}"
    );
    assert!(
        has("AUTHZ", "list_users", "principal_not_allowed_accepted"),
        "role check: {found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(i, _, _, k)| i == "AUTHN" && k == "accepted_session_mismatch"),
        "session stamp: {found:?}"
    );
}
