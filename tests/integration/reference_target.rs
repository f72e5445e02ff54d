//! The reference target driven in-process on loopback, against a scripted fake model and a
//! recording fake documents API written here: for every planted flaw, the form with only that
//! flaw does the bad thing and the hardened form does not.
//!
//! This module is the world; `shipped` and `flaws` hold the tests.

mod flaws;
mod shipped;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use confab::generators::token::MintContext;
use confab::guard::{ScopeSet, Secret, unix_now};
use confab::spec::Spec;
use confab_reference_target::{CapturedLog, Flaws, LogSink, MODEL, ReferenceConfig, router};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const JWT_SECRET: &str = "reference-target-test-secret-0123456789";
const LLM_KEY: &str = "sk-confab-canary-0123456789abcdef";
const PROMPT: &str = "Summarise my document please (nonce N0NCE-7f3a)";

fn spec_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/reference")
        .join(name)
}

/// Every test runs under a time limit: a hang is a failure, not a stuck CI job.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out");
}

// ---------------------------------------------------------------------------------------------
// Loopback servers

/// confab's own loopback server (an ephemeral port, stopped on drop).
type Srv = confab::harness::Server;

async fn serve(router: Router) -> Srv {
    Srv::start(router).await.expect("bind loopback")
}

fn url(server: &Srv) -> String {
    format!("http://{}", server.addr())
}

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    authorization: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    fn push(&self, method: &str, path: &str, headers: &HeaderMap, body: &[u8]) {
        self.0.lock().expect("lock").push(Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }
    fn all(&self) -> Vec<Recorded> {
        self.0.lock().expect("lock").clone()
    }
}

async fn split(req: Request) -> (String, String, HeaderMap, Bytes) {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    (
        parts.method.to_string(),
        parts.uri.path().to_owned(),
        parts.headers,
        bytes,
    )
}

/// The documents API: alice owns doc-a1 and doc-a2, bob doc-b1; every content carries a
/// marker `MARKER-<id>`. Any other path is "the attacker host".
async fn docs_handler(State(rec): State<Recorder>, req: Request) -> Response {
    let (method, path, headers, body) = split(req).await;
    rec.push(&method, &path, &headers, &body);
    let Some(id) = path.strip_prefix("/docs/") else {
        return (StatusCode::OK, "attacker host").into_response();
    };
    let owner = match id {
        "doc-a1" | "doc-a2" => "alice",
        "doc-b1" => "bob",
        _ => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "not_found"})),
            )
                .into_response();
        }
    };
    match method.as_str() {
        "GET" => axum::Json(json!({
            "id": id, "owner": owner, "content": format!("Notes of {owner}. MARKER-{id}."),
        }))
        .into_response(),
        _ => axum::Json(json!({"id": id, "ok": true})).into_response(),
    }
}

/// One scripted model turn.
#[derive(Clone)]
enum Turn {
    Message(Value),
    Fail(u16),
    Stall(Duration),
}

fn text(s: &str) -> Turn {
    Turn::Message(json!({"role": "assistant", "content": s}))
}

fn tool(name: &str, args: Value) -> Turn {
    Turn::Message(json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{
            "id": format!("call_{name}"),
            "type": "function",
            "function": {"name": name, "arguments": args.to_string()},
        }],
    }))
}

#[derive(Clone)]
struct ModelState {
    rec: Recorder,
    script: Arc<Mutex<VecDeque<Turn>>>,
}

fn sse(message: &Value) -> String {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 0,
                   "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut out = chunk(json!({"role": "assistant"}), Value::Null);
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().enumerate() {
            out.push_str(&chunk(
                json!({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                        "function": {"name": c["function"]["name"], "arguments": ""}}]}),
                Value::Null,
            ));
            let args = c["function"]["arguments"].as_str().unwrap_or_default();
            for piece in args.as_bytes().chunks(5) {
                out.push_str(&chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": String::from_utf8_lossy(piece)}}]}),
                    Value::Null,
                ));
            }
        }
    }
    if let Some(content) = message.get("content").and_then(Value::as_str) {
        for piece in content.as_bytes().chunks(4) {
            out.push_str(&chunk(
                json!({"content": String::from_utf8_lossy(piece)}),
                Value::Null,
            ));
        }
    }
    out.push_str(&chunk(json!({}), json!("stop")));
    out.push_str("data: [DONE]\n\n");
    out
}

async fn model_handler(State(st): State<ModelState>, req: Request) -> Response {
    let (method, path, headers, body) = split(req).await;
    st.rec.push(&method, &path, &headers, &body);
    let turn = st
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| text("Done."));
    let message = match turn {
        Turn::Message(m) => m,
        Turn::Fail(status) => {
            return (
                StatusCode::from_u16(status).expect("status"),
                axum::Json(
                    json!({"error": {"message": "scripted failure", "type": "server_error"}}),
                ),
            )
                .into_response();
        }
        Turn::Stall(d) => {
            tokio::time::sleep(d).await;
            text("late").into_message()
        }
    };
    let stream = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("stream").and_then(Value::as_bool))
        .unwrap_or(false);
    if stream {
        ([(header::CONTENT_TYPE, "text/event-stream")], sse(&message)).into_response()
    } else {
        axum::Json(json!({
            "id": "chatcmpl-t", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }))
        .into_response()
    }
}

impl Turn {
    fn into_message(self) -> Value {
        match self {
            Turn::Message(m) => m,
            _ => Value::Null,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world: target + fake model + fake docs + attacker host

struct Urls {
    docs: String,
    attacker: String,
}

struct World {
    target: Srv,
    _model: Srv,
    _docs: Srv,
    _attacker: Srv,
    model: Recorder,
    docs: Recorder,
    attacker: Recorder,
    log: CapturedLog,
    mint: MintContext,
    client: reqwest::Client,
}

fn fixture_spec(audience: Option<&str>) -> Spec {
    let text = std::fs::read_to_string(spec_path("hardened.toml")).expect("spec");
    let text = match audience {
        Some(a) => text.replace("audience = \"docs-api\"", &format!("audience = \"{a}\"")),
        None => text,
    };
    let mut spec = Spec::parse(&text, "hardened.toml", Path::new(".")).expect("spec parses");
    spec.fill_jwt_secret(&Secret::from(JWT_SECRET));
    spec
}

async fn world(flaws: Flaws, script: impl FnOnce(&Urls) -> Vec<Turn>) -> World {
    world_with(flaws, script, |_| {}).await
}

async fn world_with(
    flaws: Flaws,
    script: impl FnOnce(&Urls) -> Vec<Turn>,
    tweak: impl FnOnce(&mut ReferenceConfig),
) -> World {
    let docs_rec = Recorder::default();
    let docs = serve(
        Router::new()
            .fallback(docs_handler)
            .with_state(docs_rec.clone()),
    )
    .await;
    let attacker_rec = Recorder::default();
    let attacker = serve(
        Router::new()
            .fallback(docs_handler)
            .with_state(attacker_rec.clone()),
    )
    .await;
    let urls = Urls {
        docs: url(&docs),
        attacker: url(&attacker),
    };
    let model_rec = Recorder::default();
    let model = serve(
        Router::new()
            .fallback(model_handler)
            .with_state(ModelState {
                rec: model_rec.clone(),
                script: Arc::new(Mutex::new(script(&urls).into())),
            }),
    )
    .await;

    let spec = fixture_spec(None);
    let guard = spec.guard().expect("guard");
    let mint = MintContext::for_spec(&spec, ScopeSet::parse("docs:read")).expect("mint context");
    let (log, buffer) = LogSink::memory();
    let mut cfg = ReferenceConfig::new(
        Arc::new(guard),
        format!("{}/v1", url(&model)),
        Secret::from(LLM_KEY),
        url(&docs),
        flaws,
    );
    cfg.jwt_secret = Some(Secret::from(JWT_SECRET));
    cfg.log = log;
    tweak(&mut cfg);
    let target = serve(router(cfg)).await;
    World {
        target,
        _model: model,
        _docs: docs,
        _attacker: attacker,
        model: model_rec,
        docs: docs_rec,
        attacker: attacker_rec,
        log: buffer,
        mint,
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client"),
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl World {
    fn token(&self, sub: &str) -> String {
        let scope = if sub == "bob" {
            "docs:read docs:write"
        } else {
            "docs:read"
        };
        self.mint
            .mint_valid(sub, &ScopeSet::parse(scope), unix_now(), 600)
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> Answer {
        let req = match token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        };
        let resp = req.send().await.expect("target answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get_doc(&self, token: Option<&str>, id: &str) -> Answer {
        let url = format!("{}/docs/{id}", url(&self.target));
        self.send(self.client.get(url), token).await
    }

    async fn assist_raw(&self, token: Option<&str>, body: &str) -> Answer {
        let url = format!("{}/assist", url(&self.target));
        let req = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        self.send(req, token).await
    }

    async fn assist(&self, token: Option<&str>, doc_id: &str) -> Answer {
        let body = json!({"prompt": PROMPT, "doc_id": doc_id}).to_string();
        self.assist_raw(token, &body).await
    }

    /// The bodies the model received, in order.
    fn model_bodies(&self) -> Vec<String> {
        self.model.all().into_iter().map(|r| r.body).collect()
    }

    fn docs_hits(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.docs
            .all()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }
}

/// The hardened form, then the form with only `flaw` planted.
fn forms(flaw: &str) -> [(Flaws, bool); 2] {
    [
        (Flaws::none(), false),
        (Flaws::only(flaw).expect("known flaw"), true),
    ]
}

fn answer_text(a: &Answer) -> String {
    serde_json::from_str::<Value>(&a.body)
        .ok()
        .and_then(|v| v.get("answer").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

fn signature(token: &str) -> &str {
    token.rsplit('.').next().expect("three segments")
}
