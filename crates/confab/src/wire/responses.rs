//! OpenAI's Responses API (`POST /v1/responses`), what OpenAI's current SDKs and agents call.
//!
//! - Request: `{"model", "instructions"?, "input": "text" | [item], "tools"?: [{"type":
//!   "function", "name", "description"?, "parameters"?}], "max_output_tokens"?, "stream"?}`;
//!   an item is a message (`{"type"?: "message", "role", "content": "text" | [{"type":
//!   "input_text" | "output_text", "text"}]}`), a `function_call` the model made before, or a
//!   `function_call_output` (`{"call_id", "output"}`) the client sends back.
//! - JSON answer: `{"id": "resp_…", "object": "response", "status": "completed", "output":
//!   [item], "usage", …}`; text is a `message` item with one `output_text` part, each tool call a
//!   `function_call` item (`{"id": "fc_…", "call_id", "name", "arguments": "<JSON text>"}`).
//! - Streaming: `event: <type>` + `data: {"type", "sequence_number", …}` events:
//!   `response.created`, `response.in_progress`, per item `response.output_item.added`, text as
//!   `response.content_part.added`, `response.output_text.delta`…, `response.output_text.done`,
//!   `response.content_part.done`, arguments as `response.function_call_arguments.delta`…,
//!   `response.function_call_arguments.done`, then `response.output_item.done`; last
//!   `response.completed` with the whole response. No `[DONE]`.

use super::{
    ChatRequest, ModelTurn, WireError, content_bytes, content_text, function_tool, pieces,
    push_line,
};
use serde_json::{Value, json};

/// Parses a Responses request into what any generation call carries.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    let mut req = ChatRequest {
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("confab-model")
            .to_owned(),
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_tokens: v.get("max_output_tokens").and_then(Value::as_u64),
        tools: v
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
            .filter_map(|t| {
                let name = t.get("name")?.as_str()?;
                Some(function_tool(
                    name,
                    t.get("description"),
                    t.get("parameters"),
                ))
            })
            .collect(),
        ..ChatRequest::default()
    };
    if let Some(instructions) = v.get("instructions").and_then(Value::as_str) {
        push_line(&mut req.system_prompt, instructions);
        req.prompt_bytes += instructions.len();
    }
    match v.get("input") {
        Some(Value::String(s)) => {
            push_line(&mut req.user_prompt, s);
            req.prompt_bytes += s.len();
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(WireError::BadItem(i));
                }
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match kind {
                    "function_call_output" => {
                        let output = item.get("output");
                        req.prompt_bytes += content_bytes(output);
                        req.tool_results.push(content_text(output));
                    }
                    "message" => {
                        let role = item
                            .get("role")
                            .and_then(Value::as_str)
                            .ok_or(WireError::BadRole(i))?;
                        let content = item.get("content");
                        req.prompt_bytes += content_bytes(content);
                        let text = content_text(content);
                        match role {
                            "system" | "developer" => push_line(&mut req.system_prompt, &text),
                            "user" => push_line(&mut req.user_prompt, &text),
                            _ => {}
                        }
                    }
                    // The model's own earlier items (function_call, reasoning, …).
                    _ => {}
                }
            }
        }
        // A continuation of a stored response carries only the new items, if any.
        None if v.get("previous_response_id").is_some() => {}
        _ => return Err(WireError::NoInput),
    }
    Ok(req)
}

fn response_id(index: u32) -> String {
    format!("resp_confab{index}")
}

/// The output items of a turn, complete.
pub fn output_items(index: u32, turn: &ModelTurn) -> Vec<Value> {
    match turn {
        ModelTurn::Text { content } => vec![json!({
            "type": "message",
            "id": format!("msg_confab{index}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": content, "annotations": []}],
        })],
        ModelTurn::ToolCalls { tool_calls } => tool_calls
            .iter()
            .enumerate()
            .map(|(k, call)| {
                json!({
                    "type": "function_call",
                    "id": format!("fc_confab{index}_{k}"),
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments_json(),
                    "status": "completed",
                })
            })
            .collect(),
    }
}

fn response(index: u32, req: &ChatRequest, status: &str, output: Vec<Value>) -> Value {
    let completion: usize = output.iter().map(|o| o.to_string().len()).sum();
    let input = req.prompt_bytes.div_ceil(4);
    let out = completion.div_ceil(4);
    json!({
        "id": response_id(index),
        "object": "response",
        "created_at": 1_796_169_600u64,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": req.max_tokens,
        "model": req.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": if status == "completed" { json!({
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input + out,
        }) } else { Value::Null },
        "metadata": {},
    })
}

/// A non-streaming answer.
pub fn response_json(index: u32, req: &ChatRequest, turn: &ModelTurn) -> Value {
    response(index, req, "completed", output_items(index, turn))
}

/// A streamed answer: typed SSE events ending in `response.completed`.
pub fn sse_body(index: u32, req: &ChatRequest, turn: &ModelTurn) -> String {
    let mut events: Vec<Value> = vec![
        json!({"type": "response.created", "response": response(index, req, "in_progress", vec![])}),
        json!({"type": "response.in_progress", "response": response(index, req, "in_progress", vec![])}),
    ];
    let items = output_items(index, turn);
    for (output_index, item) in items.iter().enumerate() {
        let item_id = item["id"].clone();
        let mut added = item.clone();
        added["status"] = json!("in_progress");
        match turn {
            ModelTurn::Text { content } => {
                added["content"] = json!([]);
                events.push(json!({"type": "response.output_item.added", "output_index": output_index, "item": added}));
                let part =
                    |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
                events.push(
                    json!({"type": "response.content_part.added", "item_id": item_id,
                    "output_index": output_index, "content_index": 0, "part": part("")}),
                );
                for p in pieces(content) {
                    events.push(json!({"type": "response.output_text.delta", "item_id": item_id,
                        "output_index": output_index, "content_index": 0, "delta": p, "logprobs": []}));
                }
                events.push(json!({"type": "response.output_text.done", "item_id": item_id,
                    "output_index": output_index, "content_index": 0, "text": content, "logprobs": []}));
                events.push(
                    json!({"type": "response.content_part.done", "item_id": item_id,
                    "output_index": output_index, "content_index": 0, "part": part(content)}),
                );
            }
            ModelTurn::ToolCalls { .. } => {
                added["arguments"] = json!("");
                events.push(json!({"type": "response.output_item.added", "output_index": output_index, "item": added}));
                let args = item["arguments"].as_str().unwrap_or_default();
                for p in pieces(args) {
                    events.push(json!({"type": "response.function_call_arguments.delta",
                        "item_id": item_id, "output_index": output_index, "delta": p}));
                }
                events.push(json!({"type": "response.function_call_arguments.done",
                    "item_id": item_id, "output_index": output_index, "name": item["name"], "arguments": args}));
            }
        }
        events.push(json!({"type": "response.output_item.done", "output_index": output_index, "item": item}));
    }
    events.push(
        json!({"type": "response.completed", "response": response(index, req, "completed", items)}),
    );
    let mut body = String::new();
    for (n, mut e) in events.into_iter().enumerate() {
        e["sequence_number"] = json!(n);
        let kind = e["type"].as_str().unwrap_or_default().to_owned();
        body.push_str("event: ");
        body.push_str(&kind);
        body.push_str("\ndata: ");
        body.push_str(&e.to_string());
        body.push_str("\n\n");
    }
    body
}

/// Reassembles a streamed answer into its output items from the deltas (what the SDK's stream
/// accumulator does); `None` if malformed or not ended by `response.completed`.
pub fn decode_sse(body: &str) -> Option<Vec<Value>> {
    let mut items: Vec<Value> = Vec::new();
    let mut completed = false;
    for event in body.split("\n\n").filter(|e| !e.is_empty()) {
        let (head, data) = event.split_once('\n')?;
        let kind = head.strip_prefix("event: ")?;
        let v: Value = serde_json::from_str(data.strip_prefix("data: ")?).ok()?;
        if v.get("type")?.as_str()? != kind {
            return None;
        }
        let at = |v: &Value| {
            v.get("output_index")
                .and_then(Value::as_u64)
                .map(|i| i as usize)
        };
        match kind {
            "response.output_item.added" => {
                if at(&v)? != items.len() {
                    return None;
                }
                let mut item = v.get("item")?.clone();
                item["status"] = json!("completed");
                items.push(item);
            }
            "response.content_part.added" => {
                let item = items.get_mut(at(&v)?)?;
                item.get_mut("content")?
                    .as_array_mut()?
                    .push(v.get("part")?.clone());
            }
            "response.output_text.delta" => {
                let item = items.get_mut(at(&v)?)?;
                let ci = v.get("content_index")?.as_u64()? as usize;
                let part = item.get_mut("content")?.get_mut(ci)?;
                let text = format!(
                    "{}{}",
                    part.get("text")?.as_str()?,
                    v.get("delta")?.as_str()?
                );
                part["text"] = json!(text);
            }
            "response.function_call_arguments.delta" => {
                let item = items.get_mut(at(&v)?)?;
                let args = format!(
                    "{}{}",
                    item.get("arguments")?.as_str()?,
                    v.get("delta")?.as_str()?
                );
                item["arguments"] = json!(args);
            }
            "response.completed" => completed = true,
            _ => {}
        }
    }
    completed.then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_instructions_items_tools_and_outputs() {
        let body = br#"{"model":"gpt-x","instructions":"be terse","max_output_tokens":64,"stream":true,
            "tools":[{"type":"function","name":"get_doc","parameters":{"type":"object","properties":{"id":{"type":"string"}}}},
                     {"type":"web_search"}],
            "input":[{"role":"developer","content":"dev rule"},
                     {"role":"user","content":[{"type":"input_text","text":"hi"}]},
                     {"type":"function_call","call_id":"c1","name":"get_doc","arguments":"{}"},
                     {"type":"function_call_output","call_id":"c1","output":"the doc"}]}"#;
        let r = parse_request(body).expect("parses");
        assert!(r.stream);
        assert_eq!(r.max_tokens, Some(64));
        assert_eq!(r.system_prompt, "be terse\ndev rule");
        assert_eq!(r.user_prompt, "hi");
        assert_eq!(r.tool_results, vec!["the doc".to_owned()]);
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tools[0]["function"]["name"], "get_doc");
        let s = parse_request(br#"{"model":"m","input":"plain"}"#).expect("parses");
        assert_eq!(s.user_prompt, "plain");
        assert_eq!(parse_request(b"{}"), Err(WireError::NoInput));
        assert_eq!(
            parse_request(br#"{"input":[1]}"#),
            Err(WireError::BadItem(0))
        );
        assert!(matches!(parse_request(b"x"), Err(WireError::NotJson(_))));
    }

    #[test]
    fn stream_reassembles_to_the_json_output() {
        let req = ChatRequest {
            model: "m".into(),
            ..ChatRequest::default()
        };
        for turn in crate::wire::sample_turns() {
            let sse = sse_body(3, &req, &turn);
            assert!(sse.starts_with("event: response.created\n"));
            let items = decode_sse(&sse).expect("well-formed");
            let whole = response_json(3, &req, &turn);
            assert_eq!(whole["output"], json!(items));
            assert_eq!(whole["status"], "completed");
        }
    }
}
