//! Embeddings: OpenAI's `POST /v1/embeddings` and Ollama's `POST /api/embed`.
//!
//! - OpenAI: `{"model", "input": "text" | ["text"] | [token] | [[token]], "dimensions"?,
//!   "encoding_format"?: "float" | "base64"}` (the Python SDK asks for base64 unless told
//!   otherwise: little-endian f32s); answer `{"object": "list", "data": [{"object":
//!   "embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}`.
//! - Ollama: `{"model", "input": "text" | ["text"], "dimensions"?}`; answer `{"model",
//!   "embeddings": [[f32]], "prompt_eval_count"}`.
//!
//! The vectors are deterministic: seeded from the input's bytes, of unit length, of the
//! requested dimension or [`DEFAULT_DIMENSIONS`] (OpenAI) / [`OLLAMA_DIMENSIONS`] (Ollama), so a
//! retrieval pipeline runs and the same text always lands at the same point.

use super::{ChatRequest, WireError, push_line};
use base64::Engine as _;
use serde_json::{Value, json};

/// OpenAI's default (text-embedding-3-small's dimension).
pub const DEFAULT_DIMENSIONS: usize = 1536;
/// Ollama's default (nomic-embed-text's dimension).
pub const OLLAMA_DIMENSIONS: usize = 768;
/// The largest dimension answered (text-embedding-3-large's).
pub const MAX_DIMENSIONS: usize = 3072;
/// The most inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// What an embeddings request carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbeddingsRequest {
    /// The requested model name, echoed in the answer; any name is accepted.
    pub model: String,
    /// Each input as text (token arrays as their numbers' JSON text).
    pub inputs: Vec<String>,
    /// `dimensions`, if given.
    pub dimensions: Option<usize>,
    /// `encoding_format: "base64"`.
    pub base64: bool,
}

impl EmbeddingsRequest {
    /// The inputs as a generation call's user prompt (attribution and the secret checks read
    /// them as they read prompts).
    pub fn as_chat(&self) -> ChatRequest {
        let mut req = ChatRequest {
            model: self.model.clone(),
            // An embedding generates no tokens: its output is bounded by construction.
            max_tokens: Some(0),
            ..ChatRequest::default()
        };
        for i in &self.inputs {
            push_line(&mut req.user_prompt, i);
            req.prompt_bytes += i.len();
        }
        req
    }
}

/// Parses an embeddings request (either dialect).
pub fn parse_request(body: &[u8]) -> Result<EmbeddingsRequest, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    let inputs = match v.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= MAX_INPUTS => {
            // A flat array of numbers is one tokenised input.
            if !items.is_empty() && items.iter().all(Value::is_number) {
                vec![Value::Array(items.clone()).to_string()]
            } else {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        Value::Array(_) => out.push(item.to_string()),
                        _ => return Err(WireError::BadItem(i)),
                    }
                }
                out
            }
        }
        _ => return Err(WireError::NoInput),
    };
    Ok(EmbeddingsRequest {
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("confab-embedding")
            .to_owned(),
        inputs,
        dimensions: v
            .get("dimensions")
            .and_then(Value::as_u64)
            .map(|d| (d as usize).clamp(1, MAX_DIMENSIONS)),
        base64: v.get("encoding_format").and_then(Value::as_str) == Some("base64"),
    })
}

/// The vector of `input`: deterministic, of unit length.
pub fn vector(input: &str, dimensions: usize) -> Vec<f32> {
    let mut state = input.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut v: Vec<f32> = (0..dimensions.clamp(1, MAX_DIMENSIONS))
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The answer in OpenAI's shape (`ollama: false`) or Ollama's.
pub fn answer(req: &EmbeddingsRequest, ollama: bool) -> Value {
    let default = if ollama {
        OLLAMA_DIMENSIONS
    } else {
        DEFAULT_DIMENSIONS
    };
    let dims = req.dimensions.unwrap_or(default);
    let tokens: usize = req.inputs.iter().map(|i| i.len().div_ceil(4)).sum();
    let vectors = req.inputs.iter().map(|i| vector(i, dims));
    if ollama {
        return json!({
            "model": req.model,
            "embeddings": vectors.collect::<Vec<_>>(),
            "total_duration": 1_000_000u64,
            "load_duration": 0,
            "prompt_eval_count": tokens,
        });
    }
    let data: Vec<Value> = vectors
        .enumerate()
        .map(|(index, v)| {
            let embedding = if req.base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_input_form() {
        let r = parse_request(
            br#"{"model":"e","input":"one","dimensions":8,"encoding_format":"base64"}"#,
        )
        .expect("parses");
        assert_eq!((r.inputs.len(), r.dimensions, r.base64), (1, Some(8), true));
        let r = parse_request(br#"{"input":["a","b"]}"#).expect("parses");
        assert_eq!(r.inputs, vec!["a".to_owned(), "b".to_owned()]);
        let r = parse_request(br#"{"input":[1,2,3]}"#).expect("parses");
        assert_eq!(r.inputs, vec!["[1,2,3]".to_owned()]);
        assert_eq!(parse_request(b"{}"), Err(WireError::NoInput));
        assert_eq!(
            parse_request(br#"{"input":[true]}"#),
            Err(WireError::BadItem(0))
        );
        let chat = parse_request(br#"{"input":["a","bc"]}"#)
            .expect("parses")
            .as_chat();
        assert_eq!((chat.user_prompt.as_str(), chat.prompt_bytes), ("a\nbc", 3));
    }

    #[test]
    fn vectors_are_deterministic_unit_and_sized() {
        let a = vector("hello", 16);
        assert_eq!(a, vector("hello", 16));
        assert_ne!(a, vector("hellp", 16));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        let req = parse_request(br#"{"input":["x","y"]}"#).expect("parses");
        let out = answer(&req, false);
        assert_eq!(
            out["data"][1]["embedding"].as_array().map(Vec::len),
            Some(DEFAULT_DIMENSIONS)
        );
        let out = answer(&req, true);
        assert_eq!(
            out["embeddings"][0].as_array().map(Vec::len),
            Some(OLLAMA_DIMENSIONS)
        );
        let b64 = parse_request(br#"{"input":"x","dimensions":4,"encoding_format":"base64"}"#)
            .expect("parses");
        let text = answer(&b64, false)["data"][0]["embedding"]
            .as_str()
            .map(str::to_owned);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(bytes.len(), 16);
    }
}
