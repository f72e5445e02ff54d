//! Anthropic's Messages API (`POST /v1/messages`; the SDK's base URL is the root, its key goes
//! in `x-api-key`, with `anthropic-version`).
//!
//! - Request: `{"model", "max_tokens", "system"?: "text" | [{"type": "text", "text"}],
//!   "messages": [{"role": "user" | "assistant", "content": "text" | [block]}], "tools"?:
//!   [{"name", "description"?, "input_schema"}], "stream"?}`; blocks are `text`, `tool_use`
//!   (`{"id", "name", "input"}`, the model's) and `tool_result` (`{"tool_use_id", "content":
//!   "text" | [text block]}`, the client's, in a user message).
//! - JSON answer: `{"id": "msg_…", "type": "message", "role": "assistant", "model", "content":
//!   [{"type": "text", "text"} | {"type": "tool_use", "id", "name", "input": {…}}],
//!   "stop_reason": "end_turn" | "tool_use", "stop_sequence": null, "usage": {"input_tokens",
//!   "output_tokens"}}`.
//! - Streaming: `event: <type>` + `data: {"type", …}`: `message_start` (the message with empty
//!   content), per block `content_block_start`, `content_block_delta` (`text_delta` pieces, or
//!   `input_json_delta` pieces of the input's JSON text), `content_block_stop`; then
//!   `message_delta` (`stop_reason`, `usage.output_tokens`) and `message_stop`.
//! - Errors: `{"type": "error", "error": {"type", "message"}}`; the model list (`GET
//!   /v1/models`): `{"data": [{"type": "model", "id", "display_name", "created_at"}],
//!   "has_more", "first_id", "last_id"}`.

use super::{
    ChatRequest, ModelTurn, WireError, content_bytes, content_text, function_tool, pieces,
    push_line,
};
use serde_json::{Value, json};

/// Parses a Messages request into what any generation call carries.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
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
        max_tokens: v.get("max_tokens").and_then(Value::as_u64),
        tools: v
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // Server tools (web search, …) have a versioned type and no schema.
            .filter(|t| t.get("input_schema").is_some())
            .filter_map(|t| {
                let name = t.get("name")?.as_str()?;
                Some(function_tool(
                    name,
                    t.get("description"),
                    t.get("input_schema"),
                ))
            })
            .collect(),
        ..ChatRequest::default()
    };
    if let Some(system) = v.get("system") {
        req.prompt_bytes += content_bytes(Some(system));
        push_line(&mut req.system_prompt, &content_text(Some(system)));
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or(WireError::BadRole(i))?;
        let content = m.get("content");
        req.prompt_bytes += content_bytes(content);
        if role != "user" {
            continue;
        }
        match content {
            Some(Value::Array(blocks)) => {
                let mut text = String::new();
                for b in blocks {
                    match b.get("type").and_then(Value::as_str) {
                        Some("tool_result") => {
                            req.tool_results.push(content_text(b.get("content")))
                        }
                        Some("text") => push_line(
                            &mut text,
                            b.get("text").and_then(Value::as_str).unwrap_or(""),
                        ),
                        _ => {}
                    }
                }
                if !text.is_empty() {
                    push_line(&mut req.user_prompt, &text);
                }
            }
            other => push_line(&mut req.user_prompt, &content_text(other)),
        }
    }
    Ok(req)
}

fn stop_reason(turn: &ModelTurn) -> &'static str {
    match turn {
        ModelTurn::Text { .. } => "end_turn",
        ModelTurn::ToolCalls { .. } => "tool_use",
    }
}

/// The content blocks of a turn.
pub fn content_blocks(turn: &ModelTurn) -> Vec<Value> {
    match turn {
        ModelTurn::Text { content } => vec![json!({"type": "text", "text": content})],
        ModelTurn::ToolCalls { tool_calls } => tool_calls
            .iter()
            .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}))
            .collect(),
    }
}

fn message(
    index: u32,
    req: &ChatRequest,
    content: Vec<Value>,
    stop: Value,
    output_tokens: usize,
) -> Value {
    json!({
        "id": format!("msg_confab{index}"),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": req.prompt_bytes.div_ceil(4), "output_tokens": output_tokens},
    })
}

/// A non-streaming answer.
pub fn message_json(index: u32, req: &ChatRequest, turn: &ModelTurn) -> Value {
    let content = content_blocks(turn);
    let out: usize = content
        .iter()
        .map(|c| c.to_string().len().div_ceil(4))
        .sum();
    message(index, req, content, json!(stop_reason(turn)), out)
}

/// A streamed answer: typed SSE events from `message_start` to `message_stop`.
pub fn sse_body(index: u32, req: &ChatRequest, turn: &ModelTurn) -> String {
    let mut events = vec![
        json!({"type": "message_start", "message": message(index, req, vec![], Value::Null, 1)}),
        json!({"type": "ping"}),
    ];
    let mut out = 0;
    for (i, block) in content_blocks(turn).into_iter().enumerate() {
        out += block.to_string().len().div_ceil(4);
        match turn {
            ModelTurn::Text { content } => {
                events.push(json!({"type": "content_block_start", "index": i,
                    "content_block": {"type": "text", "text": ""}}));
                for p in pieces(content) {
                    events.push(json!({"type": "content_block_delta", "index": i,
                        "delta": {"type": "text_delta", "text": p}}));
                }
            }
            ModelTurn::ToolCalls { .. } => {
                events.push(json!({"type": "content_block_start", "index": i,
                    "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}));
                let args = block["input"].to_string();
                for p in pieces(&args) {
                    events.push(json!({"type": "content_block_delta", "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": p}}));
                }
            }
        }
        events.push(json!({"type": "content_block_stop", "index": i}));
    }
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason(turn), "stop_sequence": null},
        "usage": {"output_tokens": out}}));
    events.push(json!({"type": "message_stop"}));
    let mut body = String::new();
    for e in events {
        body.push_str("event: ");
        body.push_str(e["type"].as_str().unwrap_or_default());
        body.push_str("\ndata: ");
        body.push_str(&e.to_string());
        body.push_str("\n\n");
    }
    body
}

/// Reassembles a streamed answer into the message it carries (what the SDK's accumulator
/// does); `None` if malformed or not ended by `message_stop`.
pub fn decode_sse(body: &str) -> Option<Value> {
    let mut msg: Option<Value> = None;
    let mut json_text: Vec<String> = Vec::new();
    let mut stopped = false;
    for event in body.split("\n\n").filter(|e| !e.is_empty()) {
        let (head, data) = event.split_once('\n')?;
        let kind = head.strip_prefix("event: ")?;
        let v: Value = serde_json::from_str(data.strip_prefix("data: ")?).ok()?;
        if v.get("type")?.as_str()? != kind {
            return None;
        }
        match kind {
            "message_start" => msg = Some(v.get("message")?.clone()),
            "content_block_start" => {
                let content = msg.as_mut()?.get_mut("content")?.as_array_mut()?;
                if v.get("index")?.as_u64()? as usize != content.len() {
                    return None;
                }
                content.push(v.get("content_block")?.clone());
                json_text.push(String::new());
            }
            "content_block_delta" => {
                let i = v.get("index")?.as_u64()? as usize;
                let block = msg.as_mut()?.get_mut("content")?.get_mut(i)?;
                let delta = v.get("delta")?;
                match delta.get("type")?.as_str()? {
                    "text_delta" => {
                        let t = format!(
                            "{}{}",
                            block.get("text")?.as_str()?,
                            delta.get("text")?.as_str()?
                        );
                        block["text"] = json!(t);
                    }
                    "input_json_delta" => json_text
                        .get_mut(i)?
                        .push_str(delta.get("partial_json")?.as_str()?),
                    _ => return None,
                }
            }
            "content_block_stop" => {
                let i = v.get("index")?.as_u64()? as usize;
                let block = msg.as_mut()?.get_mut("content")?.get_mut(i)?;
                let text = json_text.get(i)?;
                if block.get("type")?.as_str()? == "tool_use" && !text.is_empty() {
                    block["input"] = serde_json::from_str(text).ok()?;
                }
            }
            "message_delta" => {
                let m = msg.as_mut()?;
                m["stop_reason"] = v.pointer("/delta/stop_reason")?.clone();
                m["usage"]["output_tokens"] = v.pointer("/usage/output_tokens")?.clone();
            }
            "message_stop" => stopped = true,
            _ => {}
        }
    }
    if stopped { msg } else { None }
}

/// An Anthropic-shaped error body.
pub fn error_json(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// `GET /v1/models` in Anthropic's shape.
pub fn models_json(models: &[String]) -> Value {
    json!({
        "data": models.iter().map(|m| json!({
            "type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z",
        })).collect::<Vec<_>>(),
        "has_more": false,
        "first_id": models.first(),
        "last_id": models.last(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_system_blocks_tools_and_results() {
        let body = br#"{"model":"claude-x","max_tokens":256,"stream":true,
            "system":[{"type":"text","text":"sys"}],
            "tools":[{"name":"get_doc","description":"d","input_schema":{"type":"object","properties":{"id":{"type":"string"}}}},
                     {"type":"web_search_20250305","name":"web_search"}],
            "messages":[{"role":"user","content":"hi"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"get_doc","input":{"id":"x"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"res"}]},{"type":"text","text":"more"}]}]}"#;
        let r = parse_request(body).expect("parses");
        assert!(r.stream);
        assert_eq!(r.max_tokens, Some(256));
        assert_eq!(r.system_prompt, "sys");
        assert_eq!(r.user_prompt, "hi\nmore");
        assert_eq!(r.tool_results, vec!["res".to_owned()]);
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tools[0]["function"]["parameters"]["type"], "object");
        assert_eq!(parse_request(b"{}"), Err(WireError::NoMessages));
        assert_eq!(
            parse_request(br#"{"messages":[{}]}"#),
            Err(WireError::BadRole(0))
        );
    }

    #[test]
    fn stream_reassembles_to_the_json_message() {
        let req = ChatRequest {
            model: "m".into(),
            prompt_bytes: 40,
            ..ChatRequest::default()
        };
        for turn in crate::wire::sample_turns() {
            let sse = sse_body(1, &req, &turn);
            let decoded = decode_sse(&sse).expect("well-formed");
            assert_eq!(decoded, message_json(1, &req, &turn));
        }
        assert_eq!(
            error_json(401, "no")["error"]["type"],
            "authentication_error"
        );
        let list = models_json(&["a".into(), "b".into()]);
        assert_eq!(list["last_id"], "b");
    }
}
