//! The fake model: an OpenAI-compatible `POST /v1/chat/completions` on loopback.
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
use crate::wire::{self, ChatRequest};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
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
}

struct Shared {
    api_key: Secret,
    call_cap: u32,
    /// The model ids `GET /v1/models` lists (`[llm] models`).
    models: Vec<String>,
    cases: Mutex<HashMap<String, Slot>>,
    unattributed: Mutex<Vec<LlmCall>>,
    /// Calls attributed only because one case was armed.
    guessed: std::sync::atomic::AtomicU64,
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

    /// Arms the script of a case before its request is sent.
    pub fn register(&self, nonce: &str, script: Script) {
        lock(&self.shared.cases).insert(
            nonce.to_owned(),
            Slot {
                script,
                calls: Vec::new(),
                outputs: Vec::new(),
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

    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    if let Some(listed) = models_route(&shared, &parts) {
        return listed;
    }
    let recorded = super::record(&parts, &bytes);
    if parts.uri.path() != "/v1/chat/completions" || parts.method != axum::http::Method::POST {
        return error(StatusCode::NOT_FOUND, "unknown endpoint");
    }
    if !authorized(&parts.headers, &shared.api_key) {
        return error(StatusCode::UNAUTHORIZED, "invalid api key");
    }
    let parsed = wire::parse_request(&bytes);

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
        return error(StatusCode::BAD_REQUEST, "request is not a chat completion");
    };

    let index = slot.as_ref().map_or(0, |s| s.calls.len() as u32);
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
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is overloaded (scripted)",
        );
    }
    let id = format!("chatcmpl-confab{index}");
    if chat.stream {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from(wire::sse_body(
                &id,
                &chat.model,
                &turn,
                chat.include_usage,
            )))
            .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
    } else {
        axum::Json(wire::completion_json(&id, &chat.model, &turn)).into_response()
    }
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
    if !authorized(&parts.headers, &shared.api_key) {
        return Some(error(StatusCode::UNAUTHORIZED, "invalid api key"));
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

fn authorized(headers: &HeaderMap, key: &Secret) -> bool {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let v = v.as_bytes();
    v.len() == key.len() + 7 && v[..7].eq_ignore_ascii_case(b"bearer ") && &v[7..] == key.expose()
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(wire::error_json(status.as_u16(), message)),
    )
        .into_response()
}
