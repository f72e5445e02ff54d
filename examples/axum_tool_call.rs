//! A small axum service with an LLM tool call, tested in-process with `confab::testing`.
//!
//! `POST /assist {"prompt", "doc_id"}` checks the caller's bearer token, reads the caller's
//! document from the documents API, asks the model to answer the prompt about it, and lets the
//! model call one tool, `get_doc(id)`. The model's words are untrusted: an id it names is used
//! only if it is the document the caller asked about (provenance), and its answer is scrubbed
//! of the system prompt and the model key before it leaves.
//!
//! `cargo run --example axum_tool_call` runs a campaign against the service as written and
//! against a variant that trusts the model's ids, and prints both reports. `cargo test`
//! runs the tests at the bottom: a campaign, a `proptest!` block, and the flawed variant.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use confab::guard::scrub::{Scrubber, ScrubberBuilder, SecretKind};
use confab::guard::{Authenticated, Guard, ScopeSet, Secret, unix_now};
use confab::spec::{Endpoint, Principal, Spec, encode_path_segment};
use confab::testing::{Campaign, Outbound, TargetContext};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SYSTEM_PROMPT: &str = "You are the documents assistant of Example Corp. Answer only \
    about the document you are given; call get_doc to read it again if you need to.";
const SCOPE: &str = "docs:read";
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY: usize = 1 << 20;

/// What the service needs from the outside world: in production built from its
/// configuration with `Outbound::http()`, in tests handed over by confab.
#[derive(Clone)]
struct App {
    guard: Arc<Guard>,
    outbound: Outbound,
    model_url: String,
    model_key: Secret,
    docs_url: String,
    scrubber: Arc<Scrubber>,
    /// The flaw to demonstrate: use whatever id the model names.
    trust_model_ids: bool,
}

fn app(ctx: &TargetContext, trust_model_ids: bool) -> Router {
    let mut scrub = ScrubberBuilder::new();
    // Both registrations only fail on absurd inputs (a key under 8 bytes); a service would
    // refuse to start then.
    let _ = scrub.secret(SecretKind::LlmApiKey, "model_key", &ctx.llm_api_key);
    let _ = scrub.system_prompt("system_prompt", SYSTEM_PROMPT);
    let app = App {
        guard: Arc::new(ctx.guard().expect("the spec's [auth] builds a guard")),
        outbound: ctx.outbound.clone(),
        model_url: ctx.llm_base_url.clone(),
        model_key: ctx.llm_api_key.clone(),
        docs_url: ctx.downstream_url.clone(),
        scrubber: Arc::new(scrub.build().expect("the scrubber builds")),
        trust_model_ids,
    };
    Router::new().route("/assist", post(assist)).with_state(app)
}

async fn assist(State(app): State<App>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    // 1. The token, before anything else (and before the model is ever called).
    let needed = ScopeSet::parse(SCOPE);
    let presented: Vec<&[u8]> = headers
        .get_all("authorization")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let caller = match app.guard.decide(&presented, &needed, unix_now()) {
        Ok(who) => who,
        Err(r) => {
            let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let challenge = app.guard.challenge(r, Some(&needed));
            return (status, [("www-authenticate", challenge)]).into_response();
        }
    };
    let token = headers.get("authorization").cloned();

    // 2. The body: two strings, or a 400 that says nothing about what was sent.
    let parsed: Option<(String, String)> =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            Some((
                v["prompt"].as_str()?.to_owned(),
                v["doc_id"].as_str()?.to_owned(),
            ))
        });
    let Some((prompt, doc_id)) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    };

    // 3. The caller's own document (the downstream serves any id: ownership is ours to check).
    let Some(doc) = app.read_doc(&doc_id, &caller, token.as_ref()).await else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response();
    };

    // 4. The model, with one tool; at most two calls per request.
    let mut messages = vec![
        json!({"role": "system", "content": SYSTEM_PROMPT}),
        json!({"role": "user", "content": format!("{prompt}\n\nDocument {doc_id}:\n{doc}")}),
    ];
    let mut answer = String::new();
    for _ in 0..2 {
        let Some(message) = app.chat(&messages).await else {
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": "upstream_error"})),
            )
                .into_response();
        };
        let calls = message["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if calls.is_empty() {
            answer = message["content"].as_str().unwrap_or_default().to_owned();
            break;
        }
        messages.push(message.clone());
        for call in calls {
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}"))
                    .unwrap_or_default();
            let asked = args["id"].as_str().unwrap_or_default();
            // Provenance: the model may name only the document the caller asked about.
            let result = if call["function"]["name"] != "get_doc" {
                "unknown tool".to_owned()
            } else if asked != doc_id && !app.trust_model_ids {
                "not allowed: only the document of this request can be read".to_owned()
            } else if app.trust_model_ids {
                app.fetch(asked, token.as_ref()).await.unwrap_or_default()
            } else {
                doc.clone()
            };
            messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": result}));
        }
    }

    // 5. The answer, without the system prompt or the model key in any encoding.
    let (clean, _) = app.scrubber.scrub_str(&answer);
    Json(json!({"answer": clean})).into_response()
}

impl App {
    /// A document's content if the caller owns it.
    async fn read_doc(
        &self,
        id: &str,
        caller: &Authenticated,
        token: Option<&axum::http::HeaderValue>,
    ) -> Option<String> {
        let doc: Value = serde_json::from_str(&self.fetch(id, token).await?).ok()?;
        (doc["owner"] == caller.sub.as_str())
            .then(|| doc["content"].as_str().unwrap_or_default().to_owned())
    }

    /// `GET {docs}/docs/{id}` with the caller's token; the body of a 2xx answer.
    async fn fetch(&self, id: &str, token: Option<&axum::http::HeaderValue>) -> Option<String> {
        let url = format!("{}/docs/{}", self.docs_url, encode_path_segment(id));
        let mut req = axum::http::Request::get(url);
        if let Some(t) = token {
            req = req.header("authorization", t);
        }
        let resp = self
            .outbound
            .send(req.body(Default::default()).ok()?, MAX_BODY, TIMEOUT)
            .await
            .ok()?;
        resp.status()
            .is_success()
            .then(|| String::from_utf8_lossy(resp.body()).into_owned())
    }

    /// One chat completion; the assistant message.
    async fn chat(&self, messages: &[Value]) -> Option<Value> {
        let tools = json!([{"type": "function", "function": {
            "name": "get_doc",
            "description": "Read a document by its id.",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        }}]);
        let body = json!({"model": "gpt-4o-mini", "messages": messages, "tools": tools, "max_tokens": 512});
        let mut auth = b"Bearer ".to_vec();
        auth.extend_from_slice(self.model_key.expose());
        let req = axum::http::Request::post(format!("{}/chat/completions", self.model_url))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).ok()?.into())
            .ok()?;
        let resp = self.outbound.send(req, MAX_BODY, TIMEOUT).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: Value = serde_json::from_slice(resp.body()).ok()?;
        Some(v["choices"][0]["message"].clone())
    }
}

/// The service's principals, endpoint and downstream, as confab sees them.
fn spec() -> Spec {
    Spec::builder()
        .issuer("https://auth.example")
        .audience("docs-api")
        .principal(
            Principal::new("alice")
                .scope(SCOPE)
                .owns(["doc-a1", "doc-a2"]),
        )
        .principal(Principal::new("bob").scope(SCOPE).owns(["doc-b1"]))
        .endpoint(
            Endpoint::post("assist", "/assist")
                .scope(SCOPE)
                .llm()
                .capability("GET /docs/{id}")
                .body(json!({"prompt": "{prompt}", "doc_id": "{resource}"})),
        )
        .downstream("/docs/{id}")
        .build()
        .expect("a valid spec")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    for (name, trusting) in [("as written", false), ("trusting the model's ids", true)] {
        match Campaign::new(spec())
            .cases(400)
            .run(move |ctx| app(ctx, trusting))
            .await
        {
            Ok(report) => println!("== {name} ==\n{}", report.render_text(false)),
            Err(e) => eprintln!("== {name} ==\ncampaign failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab::oracle::Invariant;
    use confab::testing::{Harness, assert_holds};
    use proptest::prelude::*;

    #[test]
    fn the_service_holds_every_invariant() {
        let report = Campaign::new(spec())
            .cases(300)
            .run_blocking(|ctx| app(ctx, false))
            .expect("the campaign runs");
        assert_holds(&report);
    }

    #[test]
    fn every_generated_case_holds() {
        let harness = Harness::new(spec(), |ctx| app(ctx, false)).expect("serves valid requests");
        proptest!(ProptestConfig::with_cases(64), |(case in harness.cases())| {
            harness.check(&case)?;
        });
    }

    #[test]
    fn trusting_the_models_ids_is_caught() {
        let report = Campaign::new(spec())
            .cases(300)
            .run_blocking(|ctx| app(ctx, true))
            .expect("the campaign runs");
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.invariant == Invariant::Provenance),
            "{}",
            report.render_text(true)
        );
    }
}
