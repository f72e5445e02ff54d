//! What a streaming client shows: a response in SSE (`data:` payloads) or NDJSON, read as a
//! client reads it, so a span the framing cut into pieces is whole again for ECHO and
//! OWNERSHIP (issue 14, item 9).

use crate::observation::Observation;
use serde_json::Value;
use std::collections::BTreeMap;

/// The text a client would assemble from a streamed response, or `None` when the response
/// is not a stream. JSON events contribute their string fields, each field's pieces joined in
/// order (so `{"type":"delta","text":"…"}` gives the text whole, not interleaved with
/// `delta`); other payloads are joined as they are.
pub(crate) fn reassemble(obs: &Observation) -> Option<String> {
    let body = obs.response_body.as_str();
    let content_type = obs.header("content-type").unwrap_or_default();
    let sse = content_type.contains("text/event-stream")
        || body.starts_with("data:")
        || body.contains("\ndata:");
    let payloads: Vec<&str> = if sse {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|p| p.strip_prefix(' ').unwrap_or(p))
            .filter(|p| *p != "[DONE]")
            .collect()
    } else {
        // Cheap tests first: this runs on every response.
        let ndjson = content_type.contains("ndjson")
            || content_type.contains("jsonl")
            || (body.starts_with('{') && body.contains("}\n{"));
        if !ndjson {
            return None;
        }
        let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
        if !lines.iter().all(|l| l.trim_start().starts_with('{')) {
            return None;
        }
        lines
    };
    if payloads.len() < 2 {
        return None;
    }
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut plain = String::new();
    for p in payloads {
        match serde_json::from_str::<Value>(p) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => {
                strings(&v, &mut String::new(), &mut fields)
            }
            Ok(Value::String(s)) => plain.push_str(&s),
            _ => plain.push_str(p),
        }
    }
    let mut out = plain;
    for text in fields.into_values() {
        out.push('\n');
        out.push_str(&text);
    }
    Some(out)
}

/// Appends every string leaf of `v` to the text of its path (array indices left out, so the
/// n-th event's `choices[0].delta.content` joins the others').
fn strings(v: &Value, path: &mut String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::String(s) => out.entry(path.clone()).or_default().push_str(s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, path, out)),
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                strings(item, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(body: &str, content_type: &str) -> Observation {
        Observation {
            status: Some(200),
            response_headers: vec![("content-type".into(), content_type.into())],
            response_body: body.into(),
            ..Observation::default()
        }
    }

    #[test]
    fn sse_and_ndjson_pieces_are_joined_per_field() {
        let sse = "data: {\"type\":\"delta\",\"text\":\"You are the \"}\n\n\
                   data: {\"type\":\"delta\",\"text\":\"Acme assistant\"}\n\ndata: [DONE]\n\n";
        let text = reassemble(&obs(sse, "text/event-stream")).unwrap_or_default();
        assert!(text.contains("You are the Acme assistant"), "{text}");
        let nd = "{\"t\":\"You are \"}\n{\"t\":\"the Acme\"}\n";
        let text = reassemble(&obs(nd, "application/x-ndjson")).unwrap_or_default();
        assert!(text.contains("You are the Acme"), "{text}");
        assert!(reassemble(&obs("{\"answer\":\"x\"}", "application/json")).is_none());
    }
}
