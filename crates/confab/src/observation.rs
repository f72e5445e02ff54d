//! What the harness saw of one exchange: the target's response, every call it made to the
//! fake model, every request it made downstream, and its log lines. Plain data: the harness
//! fills it in, the oracle reads it, reports and replay files store it.

use serde::{Deserialize, Serialize};

/// An HTTP request as recorded by the fake LLM or the sink.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target as sent: origin-form `/path?query`, or absolute-form when the target
    /// used the sink as its proxy.
    pub uri: String,
    /// Header names lower-cased, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

impl RecordedRequest {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        let without_scheme = match self.uri.find("://") {
            Some(i) => {
                let rest = &self.uri[i + 3..];
                rest.find('/').map_or("/", |j| &rest[j..])
            }
            None => &self.uri,
        };
        without_scheme.split('?').next().unwrap_or(without_scheme)
    }
}

/// One call the target made to the fake model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    pub request: RecordedRequest,
    /// The call's position among this case's calls (0 for the first).
    pub index: u32,
    /// `stream: true` was asked for.
    pub stream: bool,
    /// `max_tokens` or `max_completion_tokens`, if the target set one.
    pub max_tokens: Option<u64>,
    /// Bytes of all message contents sent (the upstream prompt size).
    pub prompt_bytes: usize,
    /// The call went past the spec's per-request cap: the model ended the loop instead of
    /// following the script.
    pub overrun: bool,
    /// What the fake model answered, as the OpenAI `message` object.
    pub answer: serde_json::Value,
    /// The request did not parse as a chat completion (answered with a 400).
    pub malformed: bool,
}

/// Where a downstream request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkHost {
    /// The downstream API (`[downstream] resource`).
    Downstream,
    /// The attacker host: invented URLs, `jku`/`x5u`, anything the target was not told about.
    Attacker,
}

/// One request the target made to the sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkRequest {
    pub host: SinkHost,
    pub request: RecordedRequest,
    /// The resource id, when the path matched `[downstream] resource`.
    pub resource: Option<String>,
    /// What the sink answered.
    pub status: u16,
}

/// Everything observed for one case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The response status; `None` when there was no response (connection error or timeout).
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    pub elapsed_ms: u64,
    pub timed_out: bool,
    /// A transport error, when there was no response.
    pub transport_error: Option<String>,
    pub llm_calls: Vec<LlmCall>,
    pub sink_requests: Vec<SinkRequest>,
    /// Target log lines (stdout and stderr) attributed to this case.
    pub logs: Vec<String>,
}

impl Observation {
    /// The first value of a response header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
