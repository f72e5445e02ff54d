//! `confab verify` end to end: a file of mixed headers minted by `confab tokens`, checked
//! line by line against the labels the generator wrote.

use crate::common::{NOW, repo_path};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const SPEC: &str = "examples/specs/docs-hs256.toml";

fn confab(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .current_dir(repo_path("."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("confab starts");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin).expect("write stdin");
    drop(pipe);
    child.wait_with_output().expect("confab exits")
}

fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn verify_agrees_with_generated_labels_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = dir.path().join("labels.jsonl");
    let now = NOW.to_string();
    let minted = confab(
        &[
            "tokens",
            "--spec",
            SPEC,
            "--scope",
            "docs:read",
            "--count",
            "800",
            "--seed",
            "7",
            "--now",
            &now,
            "--labels",
            labels.to_str().expect("utf-8 path"),
        ],
        b"",
    );
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let verified = confab(
        &[
            "verify",
            "--spec",
            SPEC,
            "--scope",
            "docs:read",
            "--now",
            &now,
        ],
        &minted.stdout,
    );
    assert_eq!(verified.status.code(), Some(1), "some headers are refused");
    let got = json_lines(&verified.stdout);
    let want = json_lines(&std::fs::read(&labels).expect("labels"));
    assert_eq!(got.len(), want.len());
    assert!(got.len() > 700, "only {} lines", got.len());
    let mut accepted = 0;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["accepted"], w["accepted"], "line {}: {w}", i + 1);
        if w["accepted"] == true {
            accepted += 1;
            assert_eq!(g["status"], 200);
            assert_eq!(g["sub"], w["sub"]);
            assert!(
                g["scopes"]
                    .as_array()
                    .is_some_and(|s| s.contains(&"docs:read".into()))
            );
        } else {
            assert_eq!(
                g["reason"],
                w["reason"],
                "line {}: family {}",
                i + 1,
                w["family"]
            );
            let status = g["status"].as_u64().unwrap_or(0);
            assert!([400, 401, 403].contains(&status));
        }
    }
    assert!(accepted > 20, "only {accepted} accepted");
}

#[test]
fn hand_written_lines_follow_the_contract() {
    let token_line = {
        let out = confab(
            &[
                "tokens",
                "--spec",
                SPEC,
                "--scope",
                "docs:read",
                "--count",
                "1",
                "--family",
                "valid",
                "--now",
                &NOW.to_string(),
            ],
            b"",
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let token_line = token_line.trim_end();
    let input = format!(
        "{token_line}\r\n\nBasic dXNlcjpwYXNz\nBearer\nBearer not.a.jwt\n{token_line} trailing\n"
    );
    let out = confab(
        &[
            "verify",
            "--spec",
            SPEC,
            "--scope",
            "docs:write",
            "--now",
            &NOW.to_string(),
        ],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out.stdout);
    let summary: Vec<(bool, u64, Option<&str>, Option<&str>)> = lines
        .iter()
        .map(|l| {
            (
                l["accepted"].as_bool().unwrap_or(true),
                l["status"].as_u64().unwrap_or(0),
                l["error"].as_str(),
                l["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                false,
                403,
                Some("insufficient_scope"),
                Some("insufficient_scope")
            ),
            (false, 401, None, Some("missing_credentials")),
            (false, 401, None, Some("unsupported_scheme")),
            (
                false,
                400,
                Some("invalid_request"),
                Some("malformed_header")
            ),
            (false, 401, Some("invalid_token"), Some("malformed_token")),
            (
                false,
                400,
                Some("invalid_request"),
                Some("malformed_header")
            ),
        ]
    );
    // No line ever repeats the token.
    let signature = token_line.rsplit('.').next().unwrap_or_default();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(signature));

    let ok = confab(
        &[
            "verify",
            "--spec",
            SPEC,
            "--scope",
            "docs:read",
            "--now",
            &NOW.to_string(),
        ],
        format!("{token_line}\n").as_bytes(),
    );
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(json_lines(&ok.stdout)[0]["sub"], "alice");
}

#[test]
fn unusable_spec_exits_2_naming_the_problem() {
    let out = confab(&["verify", "--spec", "no/such/spec.toml"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/spec.toml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "[auth]\nalg = \"HS256\"\nsecret = \"{jwt_secret}\"\n",
    )
    .expect("write");
    let out = confab(&["verify", "--spec", spec.to_str().expect("utf-8")], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":3: auth.secret"), "{err}");
}

#[test]
fn tokens_writes_exactly_count_lines_or_says_why_not() {
    let now = NOW.to_string();
    let minted = confab(
        &["tokens", "--spec", SPEC, "--count", "1000", "--now", &now],
        b"",
    );
    assert!(minted.status.success());
    assert_eq!(minted.stdout.iter().filter(|b| **b == b'\n').count(), 1000);
    assert!(
        minted.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    // Two Authorization headers cannot be one line: nothing to write, and it says so.
    let two = confab(
        &[
            "tokens",
            "--spec",
            SPEC,
            "--count",
            "5",
            "--now",
            &now,
            "--family",
            "duplicate_headers",
        ],
        b"",
    );
    assert!(two.status.success());
    assert!(two.stdout.is_empty());
    let note = String::from_utf8_lossy(&two.stderr);
    assert!(note.contains("wrote 0 of 5 lines"), "{note}");
}
