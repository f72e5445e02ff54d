//! The fake model on loopback: OpenAI's chat completions (`POST /v1/chat/completions`) and
//! Responses (`POST /v1/responses`), Anthropic's Messages (`POST /v1/messages`), Ollama's
//! `POST /api/chat` and `/api/generate`, and embeddings (`POST /v1/embeddings`, `/api/embed`),
//! JSON and streamed, each in its own shapes ([`crate::wire`]); the model lists (`GET
//! /v1/models` asked with Anthropic's headers, `GET /api/tags`) list the run's models. A
//! request in a shape confab does not speak is answered with that dialect's error, recorded
//! (with its case when its body carries the nonce) and named in the report.
//!
//! Each call is attributed to its case by the case's nonce (the harness puts it in the
//! prompt), answered from the case's script (a fabricated output rebuilt from what this call
//! carries, so the model knows only what it was sent), and recorded whole. Past the spec's
//! per-request cap it records the overrun and answers plain text, which ends any tool loop.

use super::lock;
use crate::generators::output::{
    DeclaredTool, FabricatedOutput, ModelTurn, OutputContext, OutputRecipe, SentTexts,
};
use crate::guard::Secret;
use crate::observation::LlmCall;
use crate::wire::{self, ChatRequest, Dialect, ErrorShape};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Largest request body the fake model reads.
const MAX_BODY: usize = 8 << 20;

/// What the model answers for one case.
#[derive(Clone, Debug)]
pub struct Script {
    /// `None`: harmless text (baselines).
    pub recipe: Option<OutputRecipe>,
    /// Everything but what the target sends (that is read from each call).
    pub base: OutputContext,
    /// Where invented non-loopback URLs are redirected (the sink's attacker host), so a
    /// vulnerable target that follows one never leaves this machine.
    pub attacker_base_url: String,
    /// Answer every call with an error (the ROBUST invariant allows a 5xx then).
    pub fail: bool,
}

struct Slot {
    script: Script,
    calls: Vec<LlmCall>,
    /// The outputs built so far, one per call, for the report.
    outputs: Vec<FabricatedOutput>,
    /// How many of `calls` were embeddings (they take no turn of the script).
    embeddings: u32,
}

/// The most distinct unknown shapes kept for the report.
const MAX_UNKNOWN: usize = 32;

struct Shared {
    api_key: Secret,
    call_cap: u32,
    /// The model ids `GET /v1/models` lists (`[llm] models`).
    models: Vec<String>,
    cases: Mutex<HashMap<String, Slot>>,
    unattributed: Mutex<Vec<LlmCall>>,
    /// Calls attributed only because one case was armed.
    guessed: std::sync::atomic::AtomicU64,
    /// `METHOD /path` of the requests in a shape confab does not speak.
    unknown: Mutex<BTreeSet<String>>,
}

/// The fake model: served on an ephemeral loopback port ([`FakeLlm::start`]) or called
/// in-process through its [`FakeLlm::router`] ([`FakeLlm::in_process`]). Dropping it (or
/// [`FakeLlm::shutdown`]) stops the server.
pub struct FakeLlm {
    /// The base URL a client library takes, ending in `/v1`.
    base: String,
    shared: Arc<Shared>,
    server: Option<super::Server>,
}

impl FakeLlm {
    /// Starts on an ephemeral loopback port; `models` are listed at `GET /v1/models`.
    pub async fn start(
        api_key: Secret,
        call_cap: u32,
        models: Vec<String>,
    ) -> std::io::Result<FakeLlm> {
        let mut llm = FakeLlm::in_process(api_key, call_cap, models);
        let server = super::Server::start(llm.router()).await?;
        llm.base = format!("http://{}/v1", server.addr());
        llm.server = Some(server);
        Ok(llm)
    }

    /// A fake model with no socket, reached through [`FakeLlm::router`] at
    /// [`confab_target::MODEL_BASE_URL`].
    pub fn in_process(api_key: Secret, call_cap: u32, models: Vec<String>) -> FakeLlm {
        let shared = Arc::new(Shared {
            api_key,
            call_cap,
            models,
            cases: Mutex::new(HashMap::new()),
            unattributed: Mutex::new(Vec::new()),
            guessed: Default::default(),
            unknown: Mutex::new(BTreeSet::new()),
        });
        FakeLlm {
            base: confab_target::MODEL_BASE_URL.to_owned(),
            shared,
            server: None,
        }
    }

    /// The fake model as a router, for in-process calls.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .with_state(self.shared.clone())
    }

    /// The base URL a client library takes (`OPENAI_BASE_URL`), ending in `/v1`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// The base URL Anthropic's SDK takes (`ANTHROPIC_BASE_URL`): the root, no `/v1`.
    pub fn anthropic_base_url(&self) -> String {
        self.base
            .strip_suffix("/v1")
            .unwrap_or(&self.base)
            .to_owned()
    }

    /// The base URL Ollama's client takes (`OLLAMA_HOST`): the root.
    pub fn ollama_base_url(&self) -> String {
        self.anthropic_base_url()
    }

    /// `METHOD /path` of every request so far in a shape confab does not speak.
    pub fn unknown_shapes(&self) -> Vec<String> {
        lock(&self.shared.unknown).iter().cloned().collect()
    }

    /// Arms the script of a case before its request is sent.
    pub fn register(&self, nonce: &str, script: Script) {
        lock(&self.shared.cases).insert(
            nonce.to_owned(),
            Slot {
                script,
                calls: Vec::new(),
                outputs: Vec::new(),
                embeddings: 0,
            },
        );
    }

    /// Disarms a case and returns its calls and the outputs the model built.
    pub fn take(&self, nonce: &str) -> (Vec<LlmCall>, Vec<FabricatedOutput>) {
        lock(&self.shared.cases)
            .remove(nonce)
            .map(|s| (s.calls, s.outputs))
            .unwrap_or_default()
    }

    /// How many requests so far could only be attributed because one case was armed: the
    /// target hides what ties its calls to a case, so cases must run one at a time.
    pub fn guessed_attributions(&self) -> u64 {
        self.shared
            .guessed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls no case could be attributed to.
    pub fn take_unattributed(&self) -> Vec<LlmCall> {
        std::mem::take(&mut *lock(&self.shared.unattributed))
    }

    /// Stops serving (see [`super::Server::shutdown`]); a fake model that was never served
    /// has nothing to stop.
    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let anthropic =
        parts.headers.contains_key("anthropic-version") || parts.headers.contains_key("x-api-key");
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let shape = ErrorShape::guess(&path, anthropic);
            return error(
                shape,
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            );
        }
    };
    if parts.method == axum::http::Method::GET
        && let Some(listed) = get_route(&shared, &parts, anthropic)
    {
        return listed;
    }
    let recorded = super::record(&parts, &bytes);
    let dialect = (parts.method == axum::http::Method::POST)
        .then(|| Dialect::for_post(&path))
        .flatten();
    let Some(dialect) = dialect else {
        return unknown_shape(&shared, recorded, ErrorShape::guess(&path, anthropic));
    };
    let shape = dialect.error_shape();
    if !authorized(&parts.headers, &shared.api_key, dialect) {
        return error(shape, StatusCode::UNAUTHORIZED, "invalid api key");
    }
    let parsed = dialect.parse(&bytes);

    let mut cases = lock(&shared.cases);
    let nonce = super::attribute(&cases, &shared.guessed, |nonce, _| {
        recorded.body.contains(nonce.as_str())
    });
    let slot = nonce.as_ref().and_then(|n| cases.get_mut(n));

    let Ok(chat) = parsed else {
        let call = LlmCall {
            request: recorded,
            index: 0,
            stream: false,
            max_tokens: None,
            prompt_bytes: 0,
            overrun: false,
            answer: serde_json::Value::Null,
            malformed: true,
        };
        match slot {
            Some(s) => s.calls.push(call),
            None => lock(&shared.unattributed).push(call),
        }
        return error(
            shape,
            StatusCode::BAD_REQUEST,
            "request is not in this API's shape",
        );
    };

    if dialect.is_embeddings() {
        return embeddings(slot, &shared, dialect, recorded, &bytes, &chat);
    }
    let index = slot
        .as_ref()
        .map_or(0, |s| (s.calls.len() as u32).saturating_sub(s.embeddings));
    let overrun = index >= shared.call_cap;
    // The output is built once per call: it answers the call and is kept for the report.
    let (output, fail) = match &slot {
        Some(s) if !overrun && !s.script.fail => (Some(build_output(&s.script, &chat)), false),
        Some(s) => (None, s.script.fail && !overrun),
        None => (None, false),
    };
    let turn = output
        .as_ref()
        .and_then(|o| o.turns.get(index as usize).cloned());
    let turn = turn.unwrap_or_else(|| ModelTurn::Text {
        content: if overrun {
            "I have reached the limit of calls for this request.".to_owned()
        } else {
            "Done.".to_owned()
        },
    });
    let call = LlmCall {
        request: recorded,
        index,
        stream: chat.stream,
        max_tokens: chat.max_tokens,
        prompt_bytes: chat.prompt_bytes,
        overrun,
        answer: if fail {
            serde_json::Value::Null
        } else {
            turn.to_openai_message()
        },
        malformed: false,
    };
    match slot {
        Some(s) => {
            s.outputs.extend(output);
            s.calls.push(call);
        }
        None => lock(&shared.unattributed).push(call),
    }
    drop(cases);

    if fail {
        return overloaded(shape);
    }
    let (content_type, body) = dialect.answer(index, &chat, &turn);
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type);
    if chat.stream {
        response = response.header(header::CACHE_CONTROL, "no-cache");
    }
    response
        .body(Body::from(body))
        .unwrap_or_else(|_| error(shape, StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// The model lists and the health checks clients make before calling (`None`: not one).
fn get_route(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    anthropic: bool,
) -> Option<Response> {
    let models = &shared.models;
    Some(match parts.uri.path() {
        "/v1/models" if anthropic => {
            if !authorized(&parts.headers, &shared.api_key, Dialect::Anthropic) {
                let status = StatusCode::UNAUTHORIZED;
                return Some(error(ErrorShape::Anthropic, status, "invalid api key"));
            }
            axum::Json(wire::anthropic::models_json(models)).into_response()
        }
        "/api/tags" => axum::Json(wire::ollama::tags_json(models)).into_response(),
        "/api/version" => axum::Json(serde_json::json!({"version": "0.6.3"})).into_response(),
        "/" => "Ollama is running".into_response(),
        // OpenAI's list (`/v1/models`, `/v1/models/{id}`).
        _ => return models_route(shared, parts),
    })
}

/// A request in a shape confab does not speak: answered with a 404 in the dialect's error
/// shape, kept for the report, and recorded as a malformed call of the case whose nonce its
/// body carries (never guessed: a bodiless probe must not make the run one case at a time).
fn unknown_shape(
    shared: &Shared,
    recorded: crate::observation::RecordedRequest,
    shape: ErrorShape,
) -> Response {
    let path = recorded.uri.split('?').next().unwrap_or_default();
    let label = format!("{} {path}", recorded.method);
    {
        let mut unknown = lock(&shared.unknown);
        if unknown.len() < MAX_UNKNOWN {
            unknown.insert(label);
        }
    }
    let mut cases = lock(&shared.cases);
    if let Some(slot) = cases
        .iter_mut()
        .find(|(nonce, _)| recorded.body.contains(nonce.as_str()))
        .map(|(_, s)| s)
    {
        slot.calls.push(LlmCall {
            request: recorded,
            index: 0,
            stream: false,
            max_tokens: None,
            prompt_bytes: 0,
            overrun: false,
            answer: serde_json::Value::Null,
            malformed: true,
        });
    }
    drop(cases);
    error(
        shape,
        StatusCode::NOT_FOUND,
        "confab's fake model does not speak this API shape",
    )
}

/// An embeddings call: recorded as a call (its inputs are checked for secrets as prompts
/// are), answered with deterministic vectors; it takes no turn of the script.
fn embeddings(
    slot: Option<&mut Slot>,
    shared: &Shared,
    dialect: Dialect,
    recorded: crate::observation::RecordedRequest,
    bytes: &[u8],
    chat: &ChatRequest,
) -> Response {
    let shape = dialect.error_shape();
    let Ok(req) = wire::embeddings::parse_request(bytes) else {
        return error(
            shape,
            StatusCode::BAD_REQUEST,
            "request is not in this API's shape",
        );
    };
    let fail = slot.as_ref().is_some_and(|s| s.script.fail);
    let answer = serde_json::json!({"embeddings": req.inputs.len()});
    let call = LlmCall {
        request: recorded,
        index: slot.as_ref().map_or(0, |s| s.calls.len() as u32),
        stream: false,
        max_tokens: chat.max_tokens,
        prompt_bytes: chat.prompt_bytes,
        overrun: false,
        answer: if fail {
            serde_json::Value::Null
        } else {
            answer
        },
        malformed: false,
    };
    match slot {
        Some(s) => {
            s.embeddings += 1;
            s.calls.push(call);
        }
        None => lock(&shared.unattributed).push(call),
    }
    if fail {
        return overloaded(shape);
    }
    axum::Json(wire::embeddings::answer(
        &req,
        dialect == Dialect::OllamaEmbed,
    ))
    .into_response()
}

/// The output for this call: the script's recipe over its base context plus what the call
/// carries, with every invented URL kept on loopback.
fn build_output(script: &Script, chat: &ChatRequest) -> FabricatedOutput {
    let mut ctx = script.base.clone();
    ctx.tools = chat
        .tools
        .iter()
        .filter_map(DeclaredTool::from_openai)
        .collect();
    ctx.sent = SentTexts {
        system_prompt: chat.system_prompt.clone(),
        user_prompt: chat.user_prompt.clone(),
        tool_results: chat.tool_results.clone(),
    };
    let mut output = match &script.recipe {
        Some(recipe) => recipe.build(&ctx),
        None => FabricatedOutput {
            family: crate::generators::output::OutputFamily::DeclaredTools,
            channel: crate::generators::output::Channel::Text,
            turns: vec![ModelTurn::Text {
                content: "Here is a short summary of the document.".to_owned(),
            }],
            invented: Default::default(),
        },
    };
    wire::confine_urls(
        &mut output.turns,
        &mut output.invented.urls,
        &script.attacker_base_url,
    );
    output
}

/// `GET /v1/models` (and `/v1/models/{id}`), OpenAI's list shape: what apps ask before any
/// call. Not a model call: it is neither recorded nor counted against the per-request cap.
fn models_route(shared: &Shared, parts: &axum::http::request::Parts) -> Option<Response> {
    let path = parts.uri.path();
    let one = path.strip_prefix("/v1/models/");
    if parts.method != axum::http::Method::GET || (path != "/v1/models" && one.is_none()) {
        return None;
    }
    if !authorized(&parts.headers, &shared.api_key, Dialect::Chat) {
        return Some(error(
            ErrorShape::OpenAi,
            StatusCode::UNAUTHORIZED,
            "invalid api key",
        ));
    }
    let model = |id: &str| serde_json::json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "confab"});
    Some(match one {
        // Any model name is served, listed or not.
        Some(id) => axum::Json(model(id)).into_response(),
        None => axum::Json(serde_json::json!({
            "object": "list",
            "data": shared.models.iter().map(|m| model(m)).collect::<Vec<_>>(),
        }))
        .into_response(),
    })
}

/// The key under the dialect's header: `Authorization: Bearer` (OpenAI's), `x-api-key` or a
/// bearer (Anthropic's), none or a bearer (Ollama's).
fn authorized(headers: &HeaderMap, key: &Secret, dialect: Dialect) -> bool {
    let bearer = headers.get(header::AUTHORIZATION).map(|v| {
        let v = v.as_bytes();
        v.len() == key.len() + 7
            && v[..7].eq_ignore_ascii_case(b"bearer ")
            && &v[7..] == key.expose()
    });
    match dialect.error_shape() {
        ErrorShape::OpenAi => bearer == Some(true),
        ErrorShape::Anthropic => {
            bearer == Some(true)
                || headers
                    .get("x-api-key")
                    .is_some_and(|v| v.as_bytes() == key.expose())
        }
        ErrorShape::Ollama => bearer != Some(false),
    }
}

/// The scripted failure: the model is overloaded (a 5xx, which ROBUST allows then).
fn overloaded(shape: ErrorShape) -> Response {
    let status = if shape == ErrorShape::Anthropic {
        StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error(shape, status, "the model is overloaded (scripted)")
}

fn error(shape: ErrorShape, status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(wire::error_body(shape, status.as_u16(), message)),
    )
        .into_response()
}
