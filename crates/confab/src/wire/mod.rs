//! The model APIs confab's fake model speaks (docs/ARCHITECTURE.md §9): parsing what a client
//! sends, and writing JSON answers, streams and errors. Pure functions, so the fuzz targets and
//! tests drive them without sockets.
//!
//! This file is OpenAI's chat completions (`POST /v1/chat/completions`) and what the dialects
//! share: [`ChatRequest`] (what any generation call carries, whatever its shape) and
//! [`ModelTurn`] (what the model answers). The other dialects each have a module:
//! [`responses`] (OpenAI Responses), [`anthropic`] (Anthropic Messages), [`ollama`] (Ollama's
//! chat and generate) and [`embeddings`] (OpenAI's and Ollama's embeddings). [`Dialect`] says
//! which one a request speaks, from its method and path.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod anthropic;
pub mod embeddings;
pub mod ollama;
pub mod responses;

/// A model API shape the fake model speaks, told by the request's method and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI `POST /v1/chat/completions` (SSE when streamed).
    Chat,
    /// OpenAI `POST /v1/responses` (typed SSE events when streamed).
    Responses,
    /// Anthropic `POST /v1/messages` (typed SSE events when streamed).
    Anthropic,
    /// Ollama `POST /api/chat` (NDJSON, streamed unless `"stream": false`).
    OllamaChat,
    /// Ollama `POST /api/generate` (NDJSON, streamed unless `"stream": false`).
    OllamaGenerate,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// Ollama `POST /api/embed`.
    OllamaEmbed,
}

impl Dialect {
    /// The dialect of a `POST` to `path` (no query), if confab speaks it.
    pub fn for_post(path: &str) -> Option<Dialect> {
        Some(match path {
            "/v1/chat/completions" => Dialect::Chat,
            "/v1/responses" => Dialect::Responses,
            "/v1/messages" => Dialect::Anthropic,
            "/api/chat" => Dialect::OllamaChat,
            "/api/generate" => Dialect::OllamaGenerate,
            "/v1/embeddings" => Dialect::Embeddings,
            "/api/embed" => Dialect::OllamaEmbed,
            _ => return None,
        })
    }

    /// The shape of the errors this dialect's clients parse.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Dialect::Chat | Dialect::Responses | Dialect::Embeddings => ErrorShape::OpenAi,
            Dialect::Anthropic => ErrorShape::Anthropic,
            Dialect::OllamaChat | Dialect::OllamaGenerate | Dialect::OllamaEmbed => {
                ErrorShape::Ollama
            }
        }
    }

    /// True for the embeddings dialects (no turn, no tools: vectors).
    pub fn is_embeddings(self) -> bool {
        matches!(self, Dialect::Embeddings | Dialect::OllamaEmbed)
    }

    /// Parses a request body of this dialect into what any generation call carries (for the
    /// embeddings dialects: the inputs as the user prompt).
    pub fn parse(self, body: &[u8]) -> Result<ChatRequest, WireError> {
        match self {
            Dialect::Chat => parse_request(body),
            Dialect::Responses => responses::parse_request(body),
            Dialect::Anthropic => anthropic::parse_request(body),
            Dialect::OllamaChat => ollama::parse_chat(body),
            Dialect::OllamaGenerate => ollama::parse_generate(body),
            Dialect::Embeddings | Dialect::OllamaEmbed => {
                embeddings::parse_request(body).map(|e| e.as_chat())
            }
        }
    }

    /// The answer to a generation call: content type and body, streamed when `req.stream`.
    /// `index` is the call's position in its case (it makes the ids). Embeddings dialects are
    /// answered by [`embeddings::answer`] instead.
    pub fn answer(self, index: u32, req: &ChatRequest, turn: &ModelTurn) -> (&'static str, String) {
        const SSE: &str = "text/event-stream";
        const JSON: &str = "application/json";
        const NDJSON: &str = "application/x-ndjson";
        let model = req.model.as_str();
        match (self, req.stream) {
            (Dialect::Chat, true) => (
                SSE,
                sse_body(
                    &format!("chatcmpl-confab{index}"),
                    model,
                    turn,
                    req.include_usage,
                ),
            ),
            (Dialect::Chat, false) => (
                JSON,
                completion_json(&format!("chatcmpl-confab{index}"), model, turn).to_string(),
            ),
            (Dialect::Responses, true) => (SSE, responses::sse_body(index, req, turn)),
            (Dialect::Responses, false) => {
                (JSON, responses::response_json(index, req, turn).to_string())
            }
            (Dialect::Anthropic, true) => (SSE, anthropic::sse_body(index, req, turn)),
            (Dialect::Anthropic, false) => {
                (JSON, anthropic::message_json(index, req, turn).to_string())
            }
            (Dialect::OllamaChat, true) => (NDJSON, ollama::chat_ndjson(req, turn)),
            (Dialect::OllamaChat, false) => (JSON, ollama::chat_json(req, turn).to_string()),
            (Dialect::OllamaGenerate, true) => (NDJSON, ollama::generate_ndjson(req, turn)),
            (Dialect::OllamaGenerate, false) => {
                (JSON, ollama::generate_json(req, turn).to_string())
            }
            (Dialect::Embeddings | Dialect::OllamaEmbed, _) => (
                JSON,
                error_body(ErrorShape::OpenAi, 400, "not a generation endpoint").to_string(),
            ),
        }
    }
}

/// Whose error body a client expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
    /// `{"error": "message"}`.
    Ollama,
}

impl ErrorShape {
    /// The shape for a request confab may not speak: Ollama's under `/api/`, Anthropic's when
    /// the client sent Anthropic's headers (`anthropic-version`, `x-api-key`), else OpenAI's.
    pub fn guess(path: &str, anthropic_headers: bool) -> ErrorShape {
        if path == "/api" || path.starts_with("/api/") {
            ErrorShape::Ollama
        } else if anthropic_headers {
            ErrorShape::Anthropic
        } else {
            ErrorShape::OpenAi
        }
    }
}

/// An error body in `shape`.
pub fn error_body(shape: ErrorShape, status: u16, message: &str) -> Value {
    match shape {
        ErrorShape::OpenAi => error_json(status, message),
        ErrorShape::Anthropic => anthropic::error_json(status, message),
        ErrorShape::Ollama => json!({"error": message}),
    }
}

/// What a recorded call carried, parsed by the dialect its path names (`uri` may carry a
/// scheme, authority and query); OpenAI chat completions when the path names none.
pub fn parse_call(uri: &str, body: &[u8]) -> Result<ChatRequest, WireError> {
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Dialect::for_post(path).unwrap_or(Dialect::Chat).parse(body)
}

/// A tool declaration in the chat-completions shape (what [`ChatRequest::tools`] holds, for
/// every dialect).
pub(crate) fn function_tool(
    name: &str,
    description: Option<&Value>,
    parameters: Option<&Value>,
) -> Value {
    let mut function = json!({"name": name});
    if let Some(d) = description {
        function["description"] = d.clone();
    }
    if let Some(p) = parameters {
        function["parameters"] = p.clone();
    }
    json!({"type": "function", "function": function})
}

/// Bytes of a content value: a string's length, else its JSON text's.
pub(crate) fn content_bytes(content: Option<&Value>) -> usize {
    content.map_or(0, |c| match c {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    })
}

/// One tool call in an assistant message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id (`call_…`) the target must quote back as `tool_call_id`.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments as JSON (sent on the wire as JSON text, see [`ToolCall::arguments_json`]).
    pub arguments: Value,
}

impl ToolCall {
    /// The `arguments` string of the wire format.
    pub fn arguments_json(&self) -> String {
        self.arguments.to_string()
    }

    /// The `tool_calls[]` entry of the wire format.
    pub fn to_openai(&self) -> Value {
        json!({
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json()},
        })
    }
}

/// What the fake model answers to one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelTurn {
    /// An assistant message with text content (`finish_reason: "stop"`).
    Text {
        /// The message text the target receives as the model's answer.
        content: String,
    },
    /// An assistant message with tool calls and null content (`finish_reason: "tool_calls"`).
    ToolCalls {
        /// The calls, in order (more than one: parallel tool calls).
        tool_calls: Vec<ToolCall>,
    },
}

impl ModelTurn {
    /// `finish_reason` of the wire format.
    pub fn finish_reason(&self) -> &'static str {
        match self {
            ModelTurn::Text { .. } => "stop",
            ModelTurn::ToolCalls { .. } => "tool_calls",
        }
    }

    /// The `choices[0].message` object of the wire format.
    pub fn to_openai_message(&self) -> Value {
        match self {
            ModelTurn::Text { content } => json!({"role": "assistant", "content": content}),
            ModelTurn::ToolCalls { tool_calls } => json!({
                "role": "assistant",
                "content": null,
                "tool_calls": tool_calls.iter().map(ToolCall::to_openai).collect::<Vec<_>>(),
            }),
        }
    }
}

/// What the fake model reads from a generation request, whatever the dialect (each dialect's
/// parser fills the same fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The requested model name, echoed in the answer (`confab-model` when absent); any name is
    /// accepted.
    pub model: String,
    /// `stream: true`: answer as server-sent events (or NDJSON for Ollama).
    pub stream: bool,
    /// `stream_options.include_usage: true`: end the stream with a usage chunk.
    pub include_usage: bool,
    /// The requested output cap, for COST: `max_tokens`, else `max_completion_tokens`
    /// (`max_output_tokens` in Responses, `options.num_predict` in Ollama); `None` if absent.
    pub max_tokens: Option<u64>,
    /// The declared tools, in chat completions' `{"type": "function", "function": {"name",
    /// "parameters"}}` shape whatever the dialect: the tools a fabricated output may call.
    pub tools: Vec<Value>,
    /// System (and developer) message contents, joined by newlines.
    pub system_prompt: String,
    /// User message contents, joined by newlines.
    pub user_prompt: String,
    /// `role: tool` message contents, in order.
    pub tool_results: Vec<String>,
    /// Bytes of every message content: the upstream prompt size.
    pub prompt_bytes: usize,
}

/// Why a model-API request body could not be read, whatever its dialect (the fake model
/// records such a call as malformed and answers 400 with that API's error body).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    /// The body does not parse as JSON; the parser's message.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// A chat request (chat completions, Anthropic Messages, Ollama chat) without a
    /// `messages` array.
    #[error("`messages` is missing or not an array")]
    NoMessages,
    /// The message at this index (from 0) of `messages` (or of a Responses `input` array) has
    /// no string `role`.
    #[error("message {0} has no string `role`")]
    BadRole(usize),
    /// A Responses or embeddings request whose `input` is missing, of the wrong type or (for
    /// embeddings) longer than [`embeddings::MAX_INPUTS`]; or an Ollama generate body that is
    /// not an object.
    #[error("`input` is missing or neither a string nor an array")]
    NoInput,
    /// The item at this index (from 0) of a Responses or embeddings `input` array has the
    /// wrong type.
    #[error("input item {0} is not an object")]
    BadItem(usize),
}

/// Parses a request body. Content may be a string or an array of parts (`{"type":"text",
/// "text":…}`), as the API allows; other part types count toward the size only.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    // Moved out rather than cloned: the declarations are the bulk of a request.
    let tools = match v.get_mut("tools").map(Value::take) {
        Some(Value::Array(tools)) => tools,
        _ => Vec::new(),
    };
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(WireError::NoMessages)?;
    let mut req = ChatRequest {
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("confab-model")
            .to_owned(),
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        max_tokens: v
            .get("max_tokens")
            .or_else(|| v.get("max_completion_tokens"))
            .and_then(Value::as_u64),
        tools,
        ..ChatRequest::default()
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or(WireError::BadRole(i))?;
        let text = content_text(m.get("content"));
        req.prompt_bytes += content_bytes(m.get("content"));
        match role {
            "system" | "developer" => push_line(&mut req.system_prompt, &text),
            "user" => push_line(&mut req.user_prompt, &text),
            "tool" | "function" => req.tool_results.push(text),
            _ => {}
        }
    }
    Ok(req)
}

pub(crate) fn push_line(into: &mut String, text: &str) {
    if !into.is_empty() {
        into.push('\n');
    }
    into.push_str(text);
}

pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Rough token counts for `usage` (4 bytes a token, as tokenizers average on English).
pub(crate) fn usage(prompt_bytes: usize, completion_bytes: usize) -> Value {
    let p = prompt_bytes.div_ceil(4);
    let c = completion_bytes.div_ceil(4);
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// A non-streaming `chat.completion` answer.
pub fn completion_json(id: &str, model: &str, turn: &ModelTurn) -> Value {
    let message = turn.to_openai_message();
    let completion = message.to_string().len();
    json!({
        "id": id,
        "object": "chat.completion",
        "created": 1_796_169_600u64,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": turn.finish_reason()}],
        "usage": usage(0, completion),
    })
}

/// How many characters a streamed piece carries (real models stream a few at a time).
const PIECE: usize = 8;

pub(crate) fn pieces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in s.char_indices() {
        if count == PIECE {
            out.push(&s[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// A streamed answer: `data: {chunk}\n\n` events ending in `data: [DONE]\n\n` (docs/ARCHITECTURE.md §9).
pub fn sse_body(id: &str, model: &str, turn: &ModelTurn, include_usage: bool) -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 1_796_169_600u64,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let mut completion = 0;
    match turn {
        ModelTurn::Text { content } => {
            completion += content.len();
            for p in pieces(content) {
                events.push(chunk(json!({"content": p}), Value::Null));
            }
        }
        ModelTurn::ToolCalls { tool_calls } => {
            for (index, call) in tool_calls.iter().enumerate() {
                events.push(chunk(
                    json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": ""}}]}),
                    Value::Null,
                ));
                let args = call.arguments_json();
                completion += args.len() + call.name.len();
                for p in pieces(&args) {
                    events.push(chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": p}}]}),
                        Value::Null,
                    ));
                }
            }
        }
    }
    events.push(chunk(json!({}), json!(turn.finish_reason())));
    if include_usage {
        events.push(json!({
            "id": id, "object": "chat.completion.chunk", "created": 1_796_169_600u64,
            "model": model, "choices": [], "usage": usage(0, completion),
        }));
    }
    let mut body = String::new();
    for e in events {
        body.push_str("data: ");
        body.push_str(&e.to_string());
        body.push_str("\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    body
}

/// Reassembles a streamed answer into the message it carries (what a client library does);
/// `None` if the stream is malformed. Used to check [`sse_body`] against [`completion_json`].
pub fn decode_sse(body: &str) -> Option<Value> {
    let mut content = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut done = false;
    for event in body.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ")?;
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).ok()?;
        let Some(delta) = v.pointer("/choices/0/delta") else {
            continue;
        };
        if let Some(c) = delta.get("content").and_then(Value::as_str) {
            content.push_str(c);
        }
        for tc in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = tc.get("index")?.as_u64()? as usize;
            if index == calls.len() {
                calls.push(Default::default());
            }
            let slot = calls.get_mut(index)?;
            if let Some(id) = tc.get("id").and_then(Value::as_str) {
                slot.0 = id.to_owned();
            }
            if let Some(n) = tc.pointer("/function/name").and_then(Value::as_str) {
                slot.1 = n.to_owned();
            }
            if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                slot.2.push_str(a);
            }
        }
    }
    if !done {
        return None;
    }
    Some(if calls.is_empty() {
        json!({"role": "assistant", "content": content})
    } else {
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": calls.into_iter().map(|(id, name, args)| json!({
                "id": id, "type": "function", "function": {"name": name, "arguments": args},
            })).collect::<Vec<_>>(),
        })
    })
}

/// An OpenAI-shaped error body.
pub fn error_json(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

/// True when a URL's host is on this machine's loopback.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host == "::1"
        || (host.starts_with("127.")
            && host.split('.').count() == 4
            && host.split('.').all(|o| o.parse::<u8>().is_ok()))
}

/// Points every invented URL that would leave this machine at the sink's attacker host
/// instead (`http://169.254.169.254/x` → `{attacker}/169.254.169.254/x`), in the turns and in
/// the ground truth alike. confab never makes a target send traffic off loopback.
pub fn confine_urls(turns: &mut [ModelTurn], urls: &mut [String], attacker_base_url: &str) {
    let base = attacker_base_url.trim_end_matches('/');
    let mut map: Vec<(String, String)> = Vec::new();
    for url in urls.iter() {
        // Already on the attacker host (which in-process is not a loopback name).
        if !is_loopback_url(url) && !url.starts_with(base) {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            map.push((url.clone(), format!("{base}/{rest}")));
        }
    }
    if map.is_empty() {
        return;
    }
    // Longest first, so a URL that contains another is replaced whole.
    map.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let fix = |s: &str| -> String {
        let mut out = s.to_owned();
        for (from, to) in &map {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    };
    for turn in turns.iter_mut() {
        match turn {
            ModelTurn::Text { content } => *content = fix(content),
            ModelTurn::ToolCalls { tool_calls } => {
                for call in tool_calls {
                    fix_json(&mut call.arguments, &fix);
                }
            }
        }
    }
    for url in urls.iter_mut() {
        *url = fix(url);
    }
}

fn fix_json(v: &mut Value, fix: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = fix(s),
        Value::Array(a) => a.iter_mut().for_each(|x| fix_json(x, fix)),
        Value::Object(o) => o.values_mut().for_each(|x| fix_json(x, fix)),
        _ => {}
    }
}

/// The turns every dialect's stream-reassembly test streams: non-ASCII text (cut inside a
/// character by a small chunk size), and two parallel tool calls with nested arguments.
#[cfg(test)]
pub(crate) fn sample_turns() -> [ModelTurn; 2] {
    [
        ModelTurn::Text {
            content: "héllo wörld, a longer answer".into(),
        },
        ModelTurn::ToolCalls {
            tool_calls: vec![
                ToolCall {
                    id: "call_1".into(),
                    name: "delete_doc".into(),
                    arguments: json!({"id": "doc-b1"}),
                },
                ToolCall {
                    id: "call_2".into(),
                    name: "fetch_url".into(),
                    arguments: json!({"url": "http://127.0.0.1:9/x", "n": [1, 2]}),
                },
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_roles_sizes_and_options() {
        let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
            "max_completion_tokens":77,"tools":[{"type":"function","function":{"name":"get_doc"}}],
            "messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hi"}]},
            {"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","tool_call_id":"c","content":"res"}]}"#;
        let r = parse_request(body).expect("parses");
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(77));
        assert_eq!(r.system_prompt, "sys");
        assert_eq!(r.user_prompt, "hi");
        assert_eq!(r.tool_results, vec!["res".to_owned()]);
        assert_eq!(r.tools.len(), 1);
        assert_eq!(parse_request(b"{}"), Err(WireError::NoMessages));
        assert!(matches!(parse_request(b"nope"), Err(WireError::NotJson(_))));
    }

    #[test]
    fn sse_reassembles_to_the_json_message() {
        for turn in sample_turns() {
            let sse = sse_body("id", "m", &turn, true);
            assert!(sse.ends_with("data: [DONE]\n\n"));
            let decoded = decode_sse(&sse).expect("well-formed");
            assert_eq!(decoded, turn.to_openai_message());
            let whole = completion_json("id", "m", &turn);
            assert_eq!(whole["choices"][0]["message"], decoded);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// The dialects' fuzz targets on random bytes and on random JSON-ish text: no panic,
        /// and every streamed answer reassembles into the JSON one.
        #[test]
        fn dialect_fuzz_targets_hold(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            text in r#"\{("(model|input|messages|system|prompt|tools|stream|dimensions|options|role|content|type)":(\[|\{|"[a-z ]{0,6}"|[0-9]{1,4}|true|null)[,}\]]?){0,8}"#,
        ) {
            for data in [&bytes[..], text.as_bytes()] {
                crate::internal::fuzzing::wire_responses(data);
                crate::internal::fuzzing::wire_anthropic(data);
                crate::internal::fuzzing::wire_ollama(data);
                crate::internal::fuzzing::wire_embeddings(data);
                let _ = parse_call("/v1/messages", data);
            }
        }
    }

    #[test]
    fn loopback_detection() {
        for u in [
            "http://127.0.0.1:8/x",
            "http://localhost/",
            "http://[::1]:9/",
            "https://127.9.9.9",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "http://169.254.169.254/latest",
            "http://2130706433/",
            "http://attacker.test/",
            "http://127.0.0.1.evil.test/",
            "http://user@10.0.0.1/",
            "http://[fd00::1]/",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }
}
