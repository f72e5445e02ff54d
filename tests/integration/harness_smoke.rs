//! The harness end to end against a deliberately naive in-process target: it checks no token,
//! calls the model, and does whatever the model says. Every invariant it breaks must show.

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use confab::harness::{self as campaign, Options};
use confab::oracle::Invariant;
use confab::spec::Spec;
use confab::target::{BuildRouter, TargetContext};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

const SPEC: &str = r#"
[target]
base_url = "http://127.0.0.1:{port}"
ready = "/healthz"
[target.env]
OPENAI_BASE_URL = "{llm_base_url}"
OPENAI_API_KEY = "{llm_api_key}"
DOCS_API_URL = "{downstream_url}"

[auth]
alg = "HS256"
secret = "{jwt_secret}"
issuer = "https://issuer.test"
audience = "docs-api"

[[principal]]
name = "alice"
scope = "docs:read"
owns = ["doc-a1", "doc-a2"]

[[principal]]
name = "bob"
scope = "docs:read docs:write"
owns = ["doc-b1"]

[[endpoint]]
name = "assist"
method = "POST"
path = "/assist"
body = { prompt = "{prompt}", doc_id = "{resource}" }
scope = "docs:read"
llm = true
capabilities = ["GET /docs/{id}"]

[downstream]
resource = "/docs/{id}"
"#;

#[derive(Clone)]
struct Naive {
    llm: String,
    key: String,
    docs: String,
    http: reqwest::Client,
}

async fn assist(State(s): State<Naive>, Json(body): Json<Value>) -> Json<Value> {
    let prompt = body["prompt"].as_str().unwrap_or_default().to_owned();
    let mut messages = vec![
        json!({"role": "system", "content": "You are the docs assistant."}),
        json!({"role": "user", "content": prompt}),
    ];
    let tools = json!([
        {"type": "function", "function": {"name": "get_doc", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "delete_doc", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    ]);
    for _ in 0..8 {
        let answer: Value = match s
            .http
            .post(format!("{}/chat/completions", s.llm))
            .bearer_auth(&s.key)
            .json(&json!({"model": "m", "messages": messages, "tools": tools}))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return Json(json!({"error": "model"})),
        };
        let message = answer["choices"][0]["message"].clone();
        let Some(calls) = message["tool_calls"].as_array().cloned() else {
            return Json(json!({"answer": message["content"]}));
        };
        messages.push(message.clone());
        for call in calls {
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}"))
                    .unwrap_or_default();
            let id = args["id"].as_str().unwrap_or("x");
            let method = if call["function"]["name"] == "delete_doc" {
                reqwest::Method::DELETE
            } else {
                reqwest::Method::GET
            };
            let result = match s
                .http
                .request(method, format!("{}/docs/{}", s.docs, id))
                .send()
                .await
            {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": result}));
        }
    }
    Json(json!({"answer": "gave up"}))
}

fn naive_target() -> BuildRouter {
    Box::new(|ctx: TargetContext| {
        let env = &ctx.env;
        let state = Naive {
            llm: env.get("OPENAI_BASE_URL").cloned().unwrap_or_default(),
            key: env.get("OPENAI_API_KEY").cloned().unwrap_or_default(),
            docs: env.get("DOCS_API_URL").cloned().unwrap_or_default(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| e.to_string())?,
        };
        Ok(axum::Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/assist", post(assist))
            .with_state(state))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_target_breaks_the_invariants_it_should() {
    let spec = Spec::parse(SPEC, "naive.toml", Path::new(".")).expect("spec");
    let options = Options {
        cases: 120,
        seed: 1,
        concurrency: 4,
        shrink_budget: 2,
        ..Options::default()
    };
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        campaign::run(spec, options, Some(naive_target())),
    )
    .await
    .expect("campaign finishes in time")
    .expect("campaign runs");
    let seen: BTreeSet<Invariant> = report.findings.iter().map(|f| f.invariant).collect();
    eprintln!("{}", report.render_text(true));
    for want in [
        Invariant::Authn,
        Invariant::UnauthLlm,
        Invariant::Agency,
        Invariant::Cost,
        Invariant::Provenance,
    ] {
        assert!(seen.contains(&want), "{want} not found; saw {seen:?}");
    }
    assert!(report.stats.cases >= 120);
    // It forwards neither the token nor the nonce downstream: confab must notice and run one
    // case at a time, or its downstream calls would be lost.
    assert!(report.stats.one_at_a_time);
    assert!(report.stats.downstream_requests > 0);
}
