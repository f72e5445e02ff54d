//! `confab` in CI, end to end through the binary: several outputs from one scan, `--fail-on`
//! and baselines decide the exit code, `--shard i/n` splits a campaign exactly, and
//! `confab init` / `confab check-spec` give a spec that is ready to scan.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

const VULNERABLE: &str = "examples/reference/vulnerable.toml";

fn confab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .current_dir(crate::common::repo_path("."))
        .env_remove("RUST_LOG")
        .output()
        .expect("confab runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("file written")).expect("json")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A scan of the vulnerable reference target with a JSON report; returns (exit code, report).
fn scan_json(dir: &Path, name: &str, extra: &[&str]) -> (i32, Value) {
    let out_path = dir.join(format!("{name}.json"));
    let replays = dir.join("replays");
    let mut args = vec![
        "scan",
        "--spec",
        VULNERABLE,
        "--cases",
        "60",
        "--seed",
        "9",
        "-q",
        "--format",
        "json",
        "--out",
        s(&out_path),
        "--replay-dir",
        s(&replays),
    ];
    args.extend_from_slice(extra);
    let run = confab(&args);
    assert!(
        matches!(code(&run), 0 | 1),
        "{name}: exit {}: {}",
        code(&run),
        stderr(&run)
    );
    (code(&run), read_json(&out_path))
}

fn fingerprints(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["fingerprint"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn one_scan_writes_every_format_and_a_baseline_that_then_passes_the_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("out/nested");
    let (sarif, junit, json, base) = (
        nested.join("r.sarif"),
        nested.join("r.xml"),
        nested.join("r.json"),
        nested.join("baseline.json"),
    );
    let replays = dir.path().join("replays");
    let run = confab(&[
        "scan",
        "--spec",
        VULNERABLE,
        "--cases",
        "60",
        "--seed",
        "9",
        "--out-sarif",
        s(&sarif),
        "--out-junit",
        s(&junit),
        "--out-json",
        s(&json),
        "--write-baseline",
        s(&base),
        "--replay-dir",
        s(&replays),
    ]);
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    // No --out: the text summary on stdout, the progress on stderr (not a terminal: lines).
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("finding(s):"), "{stdout}");
    assert!(stderr(&run).contains("60/60 cases"), "{}", stderr(&run));

    let report = read_json(&json);
    let found = fingerprints(&report);
    assert!(!found.is_empty());
    assert_eq!(report["gate"]["passed"], false);

    let log = read_json(&sarif);
    assert_eq!(log["version"], "2.1.0");
    let results: BTreeSet<String> = log["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["partialFingerprints"]["confabFingerprint/v1"].as_str())
        .map(str::to_owned)
        .collect();
    assert_eq!(results, found);

    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.starts_with("<?xml"));
    assert_eq!(
        xml.matches("<testcase ").count(),
        2 * confab::oracle::Invariant::ALL.len()
    );
    assert!(xml.contains("<failure "));

    let baseline = read_json(&base);
    let listed: Vec<String> = baseline["fingerprints"]
        .as_array()
        .expect("fingerprints")
        .iter()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), found);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(baseline["note"].as_str().is_some());

    // The same campaign against its own baseline: reported as baselined, exit 0.
    let again = confab(&[
        "scan",
        "--spec",
        VULNERABLE,
        "--cases",
        "60",
        "--seed",
        "9",
        "-q",
        "--baseline",
        s(&base),
        "--replay-dir",
        s(&replays),
    ]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(code(&again), 0, "{text}");
    assert!(text.contains("baselined ("), "{text}");
    assert!(text.contains("The gate passes"), "{text}");
}

#[test]
fn fail_on_and_baselines_decide_the_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (all_code, all) = scan_json(dir.path(), "all", &[]);
    assert_eq!(all_code, 1);
    let sev = |f: &Value| f["severity"].as_str().unwrap_or_default().to_owned();
    let findings = all["findings"].as_array().expect("findings").clone();
    assert!(findings.iter().any(|f| sev(f) == "high"));

    // A baseline of the high findings only, with --fail-on high: nothing left fails.
    let highs: Vec<&str> = findings
        .iter()
        .filter(|f| sev(f) == "high")
        .filter_map(|f| f["fingerprint"].as_str())
        .collect();
    let base = dir.path().join("highs.json");
    std::fs::write(
        &base,
        serde_json::json!({ "note": "test", "fingerprints": highs }).to_string(),
    )
    .expect("write");
    let (c, r) = scan_json(
        dir.path(),
        "high",
        &["--fail-on", "high", "--baseline", s(&base)],
    );
    // The gate's own account matches the exit code, whatever this run found.
    assert_eq!(c == 0, r["gate"]["passed"] == true, "{}", r["gate"]);
    for fp in r["gate"]["failing"].as_array().expect("failing") {
        let f = r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| &f["fingerprint"] == fp)
            .expect("a failing finding is a finding");
        assert_eq!(sev(f), "high");
        assert!(!highs.contains(&fp.as_str().unwrap_or_default()));
    }
    assert!(
        !r["gate"]["baselined"]
            .as_array()
            .expect("baselined")
            .is_empty()
    );
    assert!(
        !r["gate"]["below_threshold"]
            .as_array()
            .expect("below")
            .is_empty()
    );
    // Same baseline, any finding fails: the medium and low ones do.
    let (c, r) = scan_json(dir.path(), "low", &["--baseline", s(&base)]);
    assert_eq!(c, 1);
    assert!(
        r["gate"]["failing"]
            .as_array()
            .expect("failing")
            .iter()
            .any(|fp| !highs.contains(&fp.as_str().unwrap_or_default()))
    );

    // A baseline that cannot be read is an error (exit 2) before anything runs.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1]").expect("write");
    let run = confab(&["scan", "--spec", VULNERABLE, "--baseline", s(&bad)]);
    assert_eq!(code(&run), 2);
    assert!(
        stderr(&run).contains("not a confab baseline"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn shards_together_run_the_unsharded_campaign() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, whole) = scan_json(dir.path(), "whole", &[]);
    let cases = |r: &Value| r["stats"]["cases"].as_u64().expect("cases");
    // stats.cases counts the baseline requests each run sends first, then the cases.
    let baselines = cases(&whole) - 60;
    let mut union = BTreeSet::new();
    let mut run_cases = 0;
    for k in 0..3 {
        let shard = format!("{k}/3");
        let (_, r) = scan_json(dir.path(), &format!("shard{k}"), &["--shard", &shard]);
        run_cases += cases(&r) - baselines;
        union.extend(fingerprints(&r));
    }
    assert_eq!(run_cases, 60);
    assert_eq!(union, fingerprints(&whole));

    // The plan: each shard's case ids, disjoint, covering 0..60.
    let mut ids = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let run = confab(&[
            "scan",
            "--spec",
            VULNERABLE,
            "--cases",
            "60",
            "--seed",
            "9",
            "--shard",
            &shard,
            "--dry-run",
        ]);
        assert_eq!(code(&run), 0, "{}", stderr(&run));
        for line in String::from_utf8_lossy(&run.stdout).lines() {
            let v: Value = serde_json::from_str(line).expect("json line");
            let id = v["id"].as_u64().expect("id");
            assert_eq!(id % 3, k);
            ids.push(id);
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..60).collect::<Vec<u64>>());
}

#[test]
fn bad_shards_are_refused_with_a_clear_error() {
    for bad in ["3/3", "0/0", "a/2", "2"] {
        let run = confab(&["scan", "--spec", VULNERABLE, "--shard", bad, "--dry-run"]);
        assert_eq!(code(&run), 2, "{bad}");
        let err = stderr(&run);
        assert!(err.contains("--shard"), "{bad}: {err}");
        assert!(err.contains("0 <= i < n"), "{bad}: {err}");
    }
}

#[test]
fn init_writes_a_spec_that_check_spec_accepts_and_never_overwrites_by_accident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("confab.toml");
    let run = confab(&["init", "--out", s(&spec)]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let text = std::fs::read_to_string(&spec).expect("written");
    assert!(text.contains("[[endpoint]]") && text.contains("[downstream]"));

    let check = confab(&["check-spec", s(&spec)]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(": ok (2 endpoint(s), 2 principal(s))")
    );

    std::fs::write(&spec, "# mine\n").expect("write");
    let again = confab(&["init", "--out", s(&spec)]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&spec).expect("kept"), "# mine\n");
    let forced = confab(&["init", "--out", s(&spec), "--force"]);
    assert_eq!(code(&forced), 0);
    assert_eq!(std::fs::read_to_string(&spec).expect("rewritten"), text);
}

#[test]
fn init_from_openapi_fills_the_endpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("api.toml");
    let run = confab(&[
        "init",
        "--openapi",
        "tests/data/openapi/docs-api.json",
        "--out",
        s(&spec),
    ]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let parsed = confab::spec::Spec::load(&spec).expect("a valid spec");
    let names: Vec<&str> = parsed.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["ask_assistant", "get_document", "share_document"]);
    let ask = &parsed.endpoints[0];
    assert!(ask.llm && ask.takes_prompt() && ask.takes_resource());
    assert_eq!(ask.scope, "docs:read");
    assert_eq!(parsed.endpoints[1].path, "/docs/{resource}");
    let check = confab(&["check-spec", s(&spec)]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));

    let missing = confab(&["init", "--openapi", "no/such.json", "--out", s(&spec)]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn check_spec_names_file_line_and_key_of_each_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("broken.toml");
    std::fs::write(
        &spec,
        "[auth]\nalg = \"RS256\"\npublic_key_file = \"missing.pem\"\n\n[[principal]]\nname = \"alice\"\nscope = \"a\"\n\n[[endpoint]]\nname = \"x\"\nmethod = \"GET\"\npath = \"/x\"\nscope = \"b\"\n",
    )
    .expect("write");
    let run = confab(&["check-spec", s(&spec)]);
    assert_eq!(code(&run), 2);
    let err = stderr(&run);
    let file = spec.display().to_string();
    assert!(
        err.contains(&format!("error: {file}: target: missing")),
        "{err}"
    );
    assert!(
        err.contains(&format!("error: {file}: downstream: missing")),
        "{err}"
    );
    assert!(
        err.contains(&format!("error: {file}:3: auth.public_key_file:")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "warning: {file}:13: endpoint[0].scope: no principal holds"
        )),
        "{err}"
    );
    assert!(err.contains("problem(s)"), "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[auth]\nalg = \"HS256\"\nsecrt = \"x\"\n").expect("write");
    let run = confab(&["check-spec", s(&typo)]);
    assert_eq!(code(&run), 2);
    assert!(stderr(&run).contains(&format!("{}:3:", typo.display())));

    for ok in [VULNERABLE, "examples/reference/hardened.toml"] {
        let run = confab(&["check-spec", ok]);
        assert_eq!(code(&run), 0, "{ok}: {}", stderr(&run));
    }
}

/// An `llm = true` endpoint whose target never calls the model: the scan says so in every
/// report and exits 2, unless `--allow-no-model`.
#[test]
fn an_llm_endpoint_that_never_calls_the_model_is_a_loud_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("silent.toml");
    // The reference target's `read` never calls the model: marked llm = true, it is silent.
    let text =
        std::fs::read_to_string(crate::common::repo_path("examples/reference/hardened.toml"))
            .expect("spec")
            .replacen("llm = false", "llm = true", 1);
    std::fs::write(&spec, text).expect("spec written");
    let json = dir.path().join("r.json");
    let sarif = dir.path().join("r.sarif");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--spec",
            s(&spec),
            "--endpoint",
            "read",
            "--cases",
            "10",
            "--quiet",
            "--replay-dir",
            s(dir.path()),
            "--format",
            "json",
            "--out",
            s(&json),
            "--out-sarif",
            s(&sarif),
        ];
        args.extend_from_slice(extra);
        confab(&args)
    };
    let refused = run(&[]);
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
    assert!(stderr(&refused).contains("\"read\" (llm = true) made no model call"));
    let report = read_json(&json);
    let warnings = report["stats"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let notes = &read_json(&sarif)["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert_eq!(notes.as_array().map(Vec::len), Some(1), "{notes}");
    let allowed = run(&["--allow-no-model"]);
    assert_eq!(code(&allowed), 0, "{}", stderr(&allowed));
}
