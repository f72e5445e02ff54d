//! Ollama's API (the client's host is the root, `OLLAMA_HOST`; no key, or a bearer token).
//!
//! - `POST /api/chat`: `{"model", "messages": [{"role": "system" | "user" | "assistant" |
//!   "tool", "content", "tool_calls"?}], "tools"?: [chat-completions tool], "stream"? (default
//!   **true**), "options"?: {"num_predict"}}`; answer `{"model", "created_at", "message":
//!   {"role": "assistant", "content", "tool_calls"?: [{"function": {"name", "arguments":
//!   {…}}}]}, "done": true, "done_reason", counts}`.
//! - `POST /api/generate`: `{"model", "prompt", "system"?, "stream"?, "options"?}`; answer
//!   `{"model", "created_at", "response", "done": true, …}`. It has no tools: a tool-call turn
//!   is answered as the JSON text of its calls, as a model prompted to call tools writes them.
//! - Streaming: `application/x-ndjson`, one JSON object a line, `"done": false` with a piece
//!   of content (a tool call whole, in one line), then a last line `"done": true` with the counts.
//! - `GET /api/tags`: `{"models": [{"name", "model", "modified_at", "size", "digest",
//!   "details"}]}`. Errors: `{"error": "message"}`.

use super::{ChatRequest, ModelTurn, WireError, content_bytes, content_text, pieces, push_line};
use serde_json::{Value, json};

fn options(v: &Value, req: &mut ChatRequest) {
    req.model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("confab-model")
        .to_owned();
    req.stream = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    // A negative num_predict is "no limit".
    req.max_tokens = v.pointer("/options/num_predict").and_then(Value::as_u64);
}

/// Parses an `/api/chat` request.
pub fn parse_chat(body: &[u8]) -> Result<ChatRequest, WireError> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    let mut req = ChatRequest {
        tools: match v.get_mut("tools").map(Value::take) {
            Some(Value::Array(tools)) => tools,
            _ => Vec::new(),
        },
        ..ChatRequest::default()
    };
    options(&v, &mut req);
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(WireError::NoMessages)?;
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or(WireError::BadRole(i))?;
        let content = m.get("content");
        req.prompt_bytes += content_bytes(content);
        let text = content_text(content);
        match role {
            "system" => push_line(&mut req.system_prompt, &text),
            "user" => push_line(&mut req.user_prompt, &text),
            "tool" => req.tool_results.push(text),
            _ => {}
        }
    }
    Ok(req)
}

/// Parses an `/api/generate` request (no prompt: a model load, answered empty).
pub fn parse_generate(body: &[u8]) -> Result<ChatRequest, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    if !v.is_object() {
        return Err(WireError::NoInput);
    }
    let mut req = ChatRequest::default();
    options(&v, &mut req);
    for (key, into) in [
        ("system", &mut req.system_prompt),
        ("prompt", &mut req.user_prompt),
    ] {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            push_line(into, s);
            req.prompt_bytes += s.len();
        }
    }
    Ok(req)
}

fn counts(req: &ChatRequest, done_reason: &str, completion: usize) -> Value {
    json!({
        "done": true,
        "done_reason": done_reason,
        "total_duration": 1_000_000u64,
        "load_duration": 0,
        "prompt_eval_count": req.prompt_bytes.div_ceil(4),
        "prompt_eval_duration": 0,
        "eval_count": completion.div_ceil(4),
        "eval_duration": 1_000_000u64,
    })
}

fn line(req: &ChatRequest, key: &str, value: Value) -> Value {
    json!({"model": req.model, "created_at": "2026-11-29T00:00:00Z", key: value, "done": false})
}

fn merge(mut into: Value, from: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
    into
}

/// The `tool_calls` of a chat message.
fn tool_calls(turn: &ModelTurn) -> Vec<Value> {
    match turn {
        ModelTurn::Text { .. } => Vec::new(),
        ModelTurn::ToolCalls { tool_calls } => tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.arguments}}))
            .collect(),
    }
}

/// The `message` of a chat answer.
pub fn chat_message(turn: &ModelTurn) -> Value {
    match turn {
        ModelTurn::Text { content } => json!({"role": "assistant", "content": content}),
        ModelTurn::ToolCalls { .. } => {
            json!({"role": "assistant", "content": "", "tool_calls": tool_calls(turn)})
        }
    }
}

/// A non-streaming `/api/chat` answer.
pub fn chat_json(req: &ChatRequest, turn: &ModelTurn) -> Value {
    let message = chat_message(turn);
    let n = message.to_string().len();
    merge(line(req, "message", message), counts(req, "stop", n))
}

/// A streamed `/api/chat` answer (NDJSON).
pub fn chat_ndjson(req: &ChatRequest, turn: &ModelTurn) -> String {
    let mut lines = Vec::new();
    match turn {
        ModelTurn::Text { content } => {
            for p in pieces(content) {
                lines.push(line(
                    req,
                    "message",
                    json!({"role": "assistant", "content": p}),
                ));
            }
        }
        ModelTurn::ToolCalls { .. } => lines.push(line(
            req,
            "message",
            json!({"role": "assistant", "content": "", "tool_calls": tool_calls(turn)}),
        )),
    }
    let n = chat_message(turn).to_string().len();
    lines.push(merge(
        line(req, "message", json!({"role": "assistant", "content": ""})),
        counts(req, "stop", n),
    ));
    to_ndjson(lines)
}

/// The text `/api/generate` answers with.
pub fn generate_text(turn: &ModelTurn) -> String {
    match turn {
        ModelTurn::Text { content } => content.clone(),
        ModelTurn::ToolCalls { tool_calls } => json!(
            tool_calls
                .iter()
                .map(|c| json!({"name": c.name, "arguments": c.arguments}))
                .collect::<Vec<_>>()
        )
        .to_string(),
    }
}

/// A non-streaming `/api/generate` answer.
pub fn generate_json(req: &ChatRequest, turn: &ModelTurn) -> Value {
    let text = generate_text(turn);
    let n = text.len();
    merge(line(req, "response", json!(text)), counts(req, "stop", n))
}

/// A streamed `/api/generate` answer (NDJSON).
pub fn generate_ndjson(req: &ChatRequest, turn: &ModelTurn) -> String {
    let text = generate_text(turn);
    let mut lines: Vec<Value> = pieces(&text)
        .into_iter()
        .map(|p| line(req, "response", json!(p)))
        .collect();
    lines.push(merge(
        line(req, "response", json!("")),
        counts(req, "stop", text.len()),
    ));
    to_ndjson(lines)
}

fn to_ndjson(lines: Vec<Value>) -> String {
    let mut body = String::new();
    for l in lines {
        body.push_str(&l.to_string());
        body.push('\n');
    }
    body
}

/// Reassembles a streamed answer (chat or generate) into the non-streaming one, as a client
/// concatenating the pieces does; `None` if malformed or without a last `"done": true` line.
pub fn decode_ndjson(body: &str) -> Option<Value> {
    let mut content = String::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut chat = false;
    for l in body.lines() {
        let mut v: Value = serde_json::from_str(l).ok()?;
        if let Some(m) = v.get("message") {
            chat = true;
            content.push_str(m.get("content")?.as_str()?);
            if let Some(tc) = m.get("tool_calls").and_then(Value::as_array) {
                calls.extend(tc.iter().cloned());
            }
        } else {
            content.push_str(v.get("response")?.as_str()?);
        }
        if v.get("done")?.as_bool()? {
            let key = if chat { "message" } else { "response" };
            v[key] = if !chat {
                json!(content)
            } else if calls.is_empty() {
                json!({"role": "assistant", "content": content})
            } else {
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            };
            return Some(v);
        }
    }
    None
}

/// `GET /api/tags`.
pub fn tags_json(models: &[String]) -> Value {
    json!({"models": models.iter().map(|m| json!({
        "name": m,
        "model": m,
        "modified_at": "2026-11-29T00:00:00Z",
        "size": 4_000_000_000u64,
        "digest": format!("{:064x}", fnv(m.as_bytes())),
        "details": {"parent_model": "", "format": "gguf", "family": "confab", "families": ["confab"],
            "parameter_size": "7B", "quantization_level": "Q4_K_M"},
    })).collect::<Vec<_>>()})
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chat_and_generate() {
        let body = br#"{"model":"llama3","options":{"num_predict":99},
            "tools":[{"type":"function","function":{"name":"get_doc"}}],
            "messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"},
              {"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_doc","arguments":{}}}]},
              {"role":"tool","content":"res","tool_name":"get_doc"}]}"#;
        let r = parse_chat(body).expect("parses");
        assert!(r.stream, "Ollama streams unless told not to");
        assert_eq!(r.max_tokens, Some(99));
        assert_eq!(
            (r.system_prompt.as_str(), r.user_prompt.as_str()),
            ("sys", "hi")
        );
        assert_eq!(r.tool_results, vec!["res".to_owned()]);
        assert_eq!(r.tools.len(), 1);
        let g = parse_generate(br#"{"model":"m","prompt":"p","system":"s","stream":false}"#)
            .expect("parses");
        assert!(!g.stream);
        assert_eq!(
            (g.system_prompt.as_str(), g.user_prompt.as_str()),
            ("s", "p")
        );
        assert_eq!(parse_chat(b"{}"), Err(WireError::NoMessages));
        assert_eq!(parse_generate(b"[]"), Err(WireError::NoInput));
    }

    #[test]
    fn ndjson_reassembles_to_the_json_answer() {
        let req = ChatRequest {
            model: "m".into(),
            prompt_bytes: 12,
            ..ChatRequest::default()
        };
        for turn in crate::wire::sample_turns() {
            let streamed = decode_ndjson(&chat_ndjson(&req, &turn)).expect("well-formed");
            assert_eq!(streamed, chat_json(&req, &turn));
            let streamed = decode_ndjson(&generate_ndjson(&req, &turn)).expect("well-formed");
            assert_eq!(streamed, generate_json(&req, &turn));
        }
        assert_eq!(tags_json(&["a".into()])["models"][0]["name"], "a");
    }
}
