//! The fake model under each official client library: the `openai` (Responses, embeddings),
//! `anthropic` and `ollama` Python SDKs drive it (tests/dialects/client.py), streaming and not;
//! the scripted tool call reaches the client whole, the client's tool result goes back with the
//! call's id, and every call is recorded under the case's nonce.

use crate::common::{Tool, repo_path, require};
use confab::generators::output::{
    Channel, EchoEncoding, OutputContext, OutputFamily, OutputRecipe,
};
use confab::guard::Secret;
use confab::harness::fake_llm::{FakeLlm, Script};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const KEY: &str = "sk-confab-canary-0123456789abcdef";
const NONCE: &str = "nonce-7f3a9c2e51d04b86";

/// A script whose model calls the declared tool with another tenant's id.
fn script() -> Script {
    Script {
        recipe: Some(OutputRecipe {
            family: OutputFamily::OtherTenantIds,
            channel: Channel::ToolCall,
            variant: 0,
            pick: 0,
            encoding: EchoEncoding::Raw,
            extra_calls: 0,
            seed: 7,
        }),
        base: OutputContext {
            own_ids: vec!["doc-a1".into()],
            other_ids: vec!["doc-b1".into()],
            ..OutputContext::default()
        },
        attacker_base_url: "http://127.0.0.1:9/attacker".into(),
        fail: false,
    }
}

/// Runs the client for `dialect` against a fresh fake model; returns its output and the
/// calls recorded for the case.
fn drive(dialect: &str, stream: bool) -> (Value, Vec<confab::observation::LlmCall>) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let llm = rt
        .block_on(FakeLlm::start(
            Secret::new(KEY.as_bytes().to_vec()),
            4,
            vec!["llama3.2:latest".into(), "qwen3:8b".into()],
        ))
        .expect("fake model starts");
    llm.register(NONCE, script());
    let child = Command::new("python3")
        .arg(repo_path("tests/dialects/client.py"))
        .args([dialect, if stream { "1" } else { "0" }])
        .env("CONFAB_NONCE", NONCE)
        .env("OPENAI_BASE_URL", llm.base_url())
        .env("OPENAI_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", llm.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", KEY)
        .env("OLLAMA_HOST", llm.ollama_base_url())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 starts");
    // The server runs on the runtime while the client talks to it; bounded in time.
    let out = rt.block_on(async {
        let wait = tokio::task::spawn_blocking(move || child.wait_with_output());
        tokio::time::timeout(Duration::from_secs(60), wait).await
    });
    let out = out
        .expect("the client finished within 60 s")
        .expect("join")
        .expect("client output");
    assert!(
        out.status.success(),
        "{dialect} (stream {stream}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (calls, _) = llm.take(NONCE);
    assert!(llm.take_unattributed().is_empty());
    assert!(
        llm.unknown_shapes().is_empty(),
        "{:?}",
        llm.unknown_shapes()
    );
    rt.block_on(llm.shutdown());
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).expect("client prints JSON");
    (v, calls)
}

/// The tool call made it to the client whole, and its result came back in the second call.
fn check_round_trip(dialect: &str, stream: bool, quotes_id: bool) {
    let (out, calls) = drive(dialect, stream);
    let call = &out["calls"][0];
    assert_eq!(call["name"], "get_doc", "{dialect}: {out}");
    assert_eq!(call["arguments"]["id"], "doc-b1", "{dialect}: {out}");
    assert!(out["text"].as_str().is_some_and(|t| !t.is_empty()), "{out}");
    let generation: Vec<_> = calls.iter().filter(|c| !c.malformed).collect();
    assert!(generation.len() >= 2, "{dialect}: {} calls", calls.len());
    assert!(
        generation
            .iter()
            .all(|c| c.stream == stream && c.max_tokens.is_some())
    );
    let second = &generation[1].request.body;
    assert!(
        second.contains("document doc-b1: quarterly numbers"),
        "{second}"
    );
    if quotes_id {
        let id = call["id"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && second.contains(id),
            "{dialect}: call id {id} not quoted back"
        );
    }
    // The recorded prompt parses back (the oracle reads the system prompt from it).
    let parsed = confab::wire::parse_call(
        &generation[0].request.uri,
        generation[0].request.body.as_bytes(),
    )
    .expect("recorded call parses");
    assert!(
        parsed.system_prompt.contains("documents assistant"),
        "{dialect}"
    );
    assert!(parsed.user_prompt.contains(NONCE));
}

#[test]
fn responses_api_through_the_openai_sdk() {
    if !require(Tool::ModelSdks) {
        return;
    }
    check_round_trip("responses", false, true);
    check_round_trip("responses", true, true);
}

#[test]
fn anthropic_messages_through_the_anthropic_sdk() {
    if !require(Tool::ModelSdks) {
        return;
    }
    check_round_trip("anthropic", false, true);
    check_round_trip("anthropic", true, true);
}

#[test]
fn ollama_chat_generate_and_tags_through_the_ollama_client() {
    if !require(Tool::ModelSdks) {
        return;
    }
    check_round_trip("ollama", false, false);
    check_round_trip("ollama", true, false);
}

#[test]
fn embeddings_through_the_openai_and_ollama_clients() {
    if !require(Tool::ModelSdks) {
        return;
    }
    let (out, calls) = drive("embeddings", false);
    assert!(
        out["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("vectors"))
    );
    assert_eq!(calls.len(), 3, "every embeddings call recorded");
    assert!(
        calls
            .iter()
            .all(|c| !c.malformed && c.max_tokens == Some(0))
    );
    assert!(calls.iter().all(|c| c.request.body.contains(NONCE)));
}

#[test]
fn unknown_shapes_are_answered_recorded_and_reported() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let llm = FakeLlm::start(
            Secret::new(KEY.as_bytes().to_vec()),
            4,
            vec!["m1".into(), "m2".into()],
        )
        .await
        .expect("fake model starts");
        llm.register(NONCE, script());
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let root = llm.anthropic_base_url();
        let body = format!(r#"{{"model":"m","prompt":"hi {NONCE}"}}"#);
        // OpenAI's legacy completions: not spoken; OpenAI's error shape.
        let r = http
            .post(format!("{}/completions", llm.base_url()))
            .bearer_auth(KEY)
            .body(body.clone())
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 404);
        let v: Value = r.json().await.expect("JSON");
        assert!(v["error"]["message"].is_string(), "{v}");
        // Ollama's pull: Ollama's error shape.
        let r = http
            .post(format!("{root}/api/pull"))
            .body("{}")
            .send()
            .await
            .expect("answered");
        let v: Value = r.json().await.expect("JSON");
        assert!(v["error"].is_string(), "{v}");
        // Anthropic's headers: Anthropic's shapes (the list; an error; a wrong key refused).
        let anthropic = |req: reqwest::RequestBuilder| {
            req.header("anthropic-version", "2023-06-01")
                .header("x-api-key", KEY)
        };
        let v: Value = anthropic(http.get(format!("{root}/v1/models")))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON");
        assert_eq!(v["data"][1]["id"], "m2", "{v}");
        assert_eq!(v["data"][0]["type"], "model");
        let v: Value = anthropic(http.post(format!("{root}/v1/complete")))
            .body("{}")
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON");
        assert_eq!(v["type"], "error", "{v}");
        let r = http
            .post(format!("{root}/v1/messages"))
            .header("x-api-key", "sk-wrong")
            .body("{}")
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 401);
        let tags: Value = http
            .get(format!("{root}/api/tags"))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON");
        assert_eq!(tags["models"][0]["name"], "m1");
        // Without Anthropic's headers, OpenAI's list.
        let v: Value = http
            .get(format!("{}/models", llm.base_url()))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            (v["object"].as_str(), v["data"][0]["id"].as_str()),
            (Some("list"), Some("m1"))
        );
        assert_eq!(
            llm.unknown_shapes(),
            vec![
                "POST /api/pull".to_owned(),
                "POST /v1/complete".to_owned(),
                "POST /v1/completions".to_owned()
            ]
        );
        // The one whose body carries the nonce is the case's, as a malformed call.
        let (calls, _) = llm.take(NONCE);
        assert_eq!(calls.len(), 1);
        assert!(calls[0].malformed && calls[0].request.uri.ends_with("/v1/completions"));
        llm.shutdown().await;
    });
    let report = confab::report::Report {
        confab_version: "0".into(),
        target: "t".into(),
        spec: "s".into(),
        findings: Vec::new(),
        stats: confab::report::Stats {
            unknown_model_shapes: vec!["POST /v1/completions".into()],
            ..Default::default()
        },
    };
    let text = report.render_text(false);
    assert!(
        text.contains(
            "the target called the model in a shape confab does not speak: POST /v1/completions"
        ),
        "{text}"
    );
}

/// Runs a scan of an examples/dialects spec; returns its exit code and JSON report.
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
        ])
        .args(["--format", "json", "--quiet", "--out"])
        .arg(&out)
        .arg("--replay-dir")
        .arg(dir.path().join("replays"))
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
        serde_json::from_str(&text).expect("JSON report"),
    )
}

/// The vulnerable form's flaws that reach the model API show through it (the tool call that
/// exceeds the endpoint, the token in the system prompt, max_tokens over the cap); the
/// hardened form has nothing above low.
fn campaign(dialect: &str) {
    if !require(Tool::Flask) || !require(Tool::ModelSdks) {
        return;
    }
    let (code, report) = scan(&format!("examples/dialects/{dialect}-vulnerable.toml"), 200);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["stats"]["unknown_model_shapes"].is_null(),
        "{}",
        report["stats"]
    );
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["invariant"].as_str().unwrap_or_default().to_owned(),
                f["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (inv, kind) in [
        ("AGENCY", "capability_exceeded_"),
        ("ECHO", "bearer_token_sent_upstream"),
        ("COST", "max_tokens_over_cap"),
    ] {
        assert!(
            found.iter().any(|(i, k)| i == inv && k.starts_with(kind)),
            "{dialect}: {inv} {kind} not found in {found:?}"
        );
    }
    let (_, report) = scan(&format!("examples/dialects/{dialect}-hardened.toml"), 200);
    assert!(report["stats"]["model_calls"].as_u64().unwrap_or(0) > 0);
    let serious: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] != "low")
        .collect();
    assert!(serious.is_empty(), "{dialect} hardened: {serious:#?}");
}

#[test]
fn anthropic_example_target_flaws_found_through_messages_api() {
    campaign("anthropic");
}

#[test]
fn responses_example_target_flaws_found_through_responses_api() {
    campaign("responses");
}
