//! The target's side of the OpenAI chat-completions wire format (docs/ARCHITECTURE.md §9): the request it
//! sends, and the parsing of a JSON or SSE-streamed answer into one [`Reply`].
//!
//! Everything read from the model is bounded (body size, number of tool calls, argument
//! size), because the model is the adversary here.

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use confab_guard::Secret;
use confab_target::{Outbound, OutboundError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest model answer read, streamed or not.
pub const MAX_REPLY_BYTES: usize = 4 << 20;
/// Most tool calls taken from one model turn; the rest are dropped at parse time.
pub const MAX_TOOL_CALLS: usize = 32;
/// Largest `arguments` text of one tool call.
pub const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// One tool call proposed by the model, as the wire carries it. Every field is model output
/// and therefore untrusted; the handler wraps them in `Untrusted` before deciding anything.
#[derive(Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The call id the `role: tool` answer refers to.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The JSON text of the arguments (not parsed here).
    pub arguments: String,
}

impl std::fmt::Debug for ToolCall {
    /// Lengths only: a model may echo a secret into any of these.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolCall")
            .field("id_len", &self.id.len())
            .field("name_len", &self.name.len())
            .field("arguments_len", &self.arguments.len())
            .finish()
    }
}

/// One model turn: text, tool calls, or both.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The text of the turn, if any.
    pub content: Option<String>,
    /// The tool calls of the turn, in order.
    pub tool_calls: Vec<ToolCall>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("content_len", &self.content.as_ref().map(String::len))
            .field("tool_calls", &self.tool_calls)
            .finish()
    }
}

impl Reply {
    /// The assistant message that records this turn in the conversation (needed before the
    /// `role: tool` answers, which refer to the calls by id).
    pub fn assistant_message(&self) -> Value {
        let mut m = json!({ "role": "assistant", "content": self.content });
        if !self.tool_calls.is_empty() {
            m["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments },
                    })
                })
                .collect();
        }
        m
    }
}

/// Why a model call failed. Carries no part of the model's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("the model answered HTTP {0}")]
    /// The model answered with a non-2xx status.
    Status(u16),
    #[error("the model could not be reached")]
    /// The model could not be reached.
    Transport,
    #[error("the model did not answer in time")]
    /// The model did not answer in time.
    Timeout,
    #[error("the model's answer is not a chat completion")]
    /// The answer is not a chat completion (JSON or SSE).
    Malformed,
    #[error("the model's answer is too large")]
    /// The answer exceeds the size cap.
    TooLarge,
}

/// The tool declarations sent with every request: the four tools of the documents API,
/// write and fetch tools included. The hardened target declares them too and refuses what
/// the endpoint may not do when the model calls it: that is the worst case confab's fake
/// model plays (it calls every tool the target declared), and the refusal is the guard's.
pub fn tools() -> Value {
    let id = json!({ "type": "string", "description": "The document id, e.g. doc-a1." });
    json!([
        {
            "type": "function",
            "function": {
                "name": "get_doc",
                "description": "Read one document of the caller by its id.",
                "parameters": {
                    "type": "object",
                    "properties": { "id": id },
                    "required": ["id"],
                    "additionalProperties": false,
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "update_doc",
                "description": "Replace the content of a document.",
                "parameters": {
                    "type": "object",
                    "properties": { "id": id, "content": { "type": "string" } },
                    "required": ["id", "content"],
                    "additionalProperties": false,
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "delete_doc",
                "description": "Delete a document.",
                "parameters": {
                    "type": "object",
                    "properties": { "id": id },
                    "required": ["id"],
                    "additionalProperties": false,
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "fetch_url",
                "description": "Fetch a web page.",
                "parameters": {
                    "type": "object",
                    "properties": { "url": { "type": "string" } },
                    "required": ["url"],
                    "additionalProperties": false,
                },
            },
        },
    ])
}

/// The request body of one chat completion.
pub fn request_body(model: &str, messages: &[Value], max_tokens: u32, stream: bool) -> Value {
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "tools": tools(),
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

/// Sends one chat completion and parses the answer (JSON or SSE, by `stream`).
pub async fn complete(
    outbound: &Outbound,
    base_url: &str,
    api_key: &Secret,
    body: &Value,
    stream: bool,
    timeout: Duration,
) -> Result<Reply, LlmError> {
    let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    let mut auth = b"Bearer ".to_vec();
    auth.extend_from_slice(api_key.expose());
    let mut auth = HeaderValue::from_bytes(&auth).map_err(|_| LlmError::Transport)?;
    // Keeps the key out of any header dump a client or a proxy might print.
    auth.set_sensitive(true);
    let body = serde_json::to_vec(body).map_err(|_| LlmError::Malformed)?;
    let req = axum::http::Request::post(url)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .map_err(|_| LlmError::Transport)?;
    let resp = outbound
        .send(req, MAX_REPLY_BYTES, timeout)
        .await
        .map_err(|e| match e {
            OutboundError::Timeout => LlmError::Timeout,
            OutboundError::TooLarge(_) => LlmError::TooLarge,
            OutboundError::Transport(_) => LlmError::Transport,
        })?;
    if !resp.status().is_success() {
        return Err(LlmError::Status(resp.status().as_u16()));
    }
    if stream {
        parse_sse(resp.body())
    } else {
        parse_json(resp.body())
    }
}

/// `arguments` as JSON text: the spec says a string, but some servers send an object.
fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn bounded(mut s: String, cap: usize) -> String {
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Parses a non-streamed chat completion: `choices[0].message`.
pub fn parse_json(bytes: &[u8]) -> Result<Reply, LlmError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| LlmError::Malformed)?;
    let message = v
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
        .ok_or(LlmError::Malformed)?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut tool_calls = Vec::new();
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().take(MAX_TOOL_CALLS).enumerate() {
            let f = c.get("function");
            tool_calls.push(ToolCall {
                id: c
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{i}"), str::to_owned),
                name: f
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                arguments: bounded(
                    arguments_text(f.and_then(|f| f.get("arguments"))),
                    MAX_ARGUMENT_BYTES,
                ),
            });
        }
    }
    Ok(Reply {
        content,
        tool_calls,
    })
}

/// Parses an SSE stream of `chat.completion.chunk`s (docs/ARCHITECTURE.md §9): text pieces are
/// concatenated, tool calls assembled by `index` (the first fragment names id and function,
/// later ones append to `arguments`), and `data: [DONE]` ends it. A stream with no chunk at
/// all is malformed; one cut short before `[DONE]` is taken as far as it went.
pub fn parse_sse(bytes: &[u8]) -> Result<Reply, LlmError> {
    let text = std::str::from_utf8(bytes).map_err(|_| LlmError::Malformed)?;
    let mut content: Option<String> = None;
    let mut calls: BTreeMap<u64, ToolCall> = BTreeMap::new();
    let mut chunks = 0usize;
    let mut data = String::new();
    // A trailing empty line flushes the last event even without a final blank line.
    for line in text.split('\n').chain(std::iter::once("")) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            continue;
        }
        if !line.is_empty() || data.is_empty() {
            // `event:`, `id:`, comments and stray lines carry nothing for us.
            continue;
        }
        let event = std::mem::take(&mut data);
        if event.trim() == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(&event).map_err(|_| LlmError::Malformed)?;
        chunks += 1;
        let Some(delta) = chunk
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("delta"))
        else {
            // The usage chunk has `choices: []`.
            continue;
        };
        if let Some(piece) = delta.get("content").and_then(Value::as_str) {
            content.get_or_insert_with(String::new).push_str(piece);
        }
        let Some(fragments) = delta.get("tool_calls").and_then(Value::as_array) else {
            continue;
        };
        for (pos, frag) in fragments.iter().enumerate() {
            let index = frag
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            if !calls.contains_key(&index) && calls.len() >= MAX_TOOL_CALLS {
                continue;
            }
            let call = calls.entry(index).or_insert_with(|| ToolCall {
                id: format!("call_{index}"),
                name: String::new(),
                arguments: String::new(),
            });
            if let Some(id) = frag.get("id").and_then(Value::as_str) {
                id.clone_into(&mut call.id);
            }
            let f = frag.get("function");
            if let Some(name) = f.and_then(|f| f.get("name")).and_then(Value::as_str)
                && call.name.len() + name.len() <= 256
            {
                call.name.push_str(name);
            }
            if let Some(args) = f.and_then(|f| f.get("arguments")).and_then(Value::as_str)
                && call.arguments.len() + args.len() <= MAX_ARGUMENT_BYTES
            {
                call.arguments.push_str(args);
            }
        }
    }
    if chunks == 0 {
        return Err(LlmError::Malformed);
    }
    Ok(Reply {
        content,
        tool_calls: calls.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reply_with_tool_call() {
        let body = json!({
            "choices": [{ "index": 0, "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{ "id": "c1", "type": "function",
                    "function": { "name": "get_doc", "arguments": "{\"id\":\"doc-a1\"}" } }]
            }, "finish_reason": "tool_calls" }]
        });
        let r = parse_json(body.to_string().as_bytes()).expect("parses");
        assert_eq!(r.content, None);
        assert_eq!(r.tool_calls.len(), 1);
        assert_eq!(r.tool_calls[0].name, "get_doc");
        assert_eq!(r.tool_calls[0].arguments, "{\"id\":\"doc-a1\"}");
        assert!(parse_json(b"{\"choices\": []}").is_err());
        assert!(parse_json(b"not json").is_err());
    }

    #[test]
    fn sse_reply_assembles_fragments() {
        let chunks = [
            json!({"choices":[{"index":0,"delta":{"role":"assistant"}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_doc","arguments":""}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"id\":"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"doc-a1\"}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"content":"Hel"}}]}),
            json!({"choices":[{"index":0,"delta":{"content":"lo"}}]}),
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
            json!({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}),
        ];
        let mut body = String::new();
        for c in &chunks {
            body.push_str(&format!("data: {c}\r\n\r\n"));
        }
        body.push_str("data: [DONE]\n\n");
        let r = parse_sse(body.as_bytes()).expect("parses");
        assert_eq!(r.content.as_deref(), Some("Hello"));
        assert_eq!(r.tool_calls.len(), 1);
        assert_eq!(r.tool_calls[0].id, "c1");
        assert_eq!(r.tool_calls[0].arguments, "{\"id\":\"doc-a1\"}");
        assert!(parse_sse(b"").is_err());
        assert!(parse_sse(b"data: {oops\n\n").is_err());
    }

    #[test]
    fn assistant_message_round_trips_calls() {
        let r = Reply {
            content: None,
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "delete_doc".into(),
                arguments: "{}".into(),
            }],
        };
        let m = r.assistant_message();
        assert_eq!(m["tool_calls"][0]["function"]["name"], "delete_doc");
        assert!(m["content"].is_null());
    }
}
