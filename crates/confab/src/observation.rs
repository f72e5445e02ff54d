//! What the harness saw of one exchange: the target's response, every call it made to the
//! fake model, every request it made downstream, and its log lines. Plain data: the harness
//! fills it in, the oracle reads it, reports and replay files store it.

use serde::{Deserialize, Serialize};

/// An HTTP request as recorded by the fake LLM or the sink.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The request method as sent (`GET`, `POST`, …).
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
    /// The call as the fake model received it.
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
    /// Which host the target addressed: the downstream API or the attacker host.
    pub host: SinkHost,
    /// The request as the sink received it.
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
    /// Response headers, names lower-cased, values lossily decoded.
    pub response_headers: Vec<(String, String)>,
    /// The response body, lossily decoded as UTF-8 (at most 64 MiB is read).
    pub response_body: String,
    /// Milliseconds from sending the request to the end of the response (or the timeout).
    pub elapsed_ms: u64,
    /// No response came within `[limits] request_timeout_ms`.
    pub timed_out: bool,
    /// A transport error, when there was no response.
    pub transport_error: Option<String>,
    /// The calls the target made to the fake model for this case, in order.
    pub llm_calls: Vec<LlmCall>,
    /// The requests the target made to the downstream API or the attacker host, in order.
    pub sink_requests: Vec<SinkRequest>,
    /// Target log lines (stdout and stderr) attributed to this case.
    pub logs: Vec<String>,
    /// Identifiers the fake model supplied in this case (ids it invented or guessed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_ids: Vec<String>,
    /// What the same request got under the principal's valid token and under none, when
    /// the response alone could not tell an acceptance from a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential: Option<Differential>,
}

/// The statuses the same request (same endpoint, resource and body) got with the case's
/// credential swapped for the principal's valid token, and for none: how acceptance is judged
/// (docs/ARCHITECTURE.md §4). `None` where no response came.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Differential {
    /// The status under the principal's valid token.
    pub valid: Option<u16>,
    /// The status with no credential at all.
    pub none: Option<u16>,
}

/// A request path as an HTTP server reads it (RFC 3986 §5.2.4 and §6.2.2): percent-encoded
/// unreserved characters and slashes decoded, then dot segments removed. A model-supplied id
/// `doc-a2/../doc-b2` reaches the server as `/docs/doc-b2`.
pub fn normalize_path(path: &str) -> String {
    let decoded = decode_path(path);
    remove_dot_segments(&decoded)
}

fn decode_path(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            && (v.is_ascii_alphanumeric() || b"-._~/".contains(&v))
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// Every path segment and query value of a request target, percent-decoded: where a
/// model-supplied string can sit whatever shape the target gave the URL.
pub fn target_values(uri: &str) -> Vec<String> {
    let without_scheme = match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => uri,
    };
    let (path, query) = without_scheme
        .split_once('?')
        .unwrap_or((without_scheme, ""));
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .chain(
            query
                .split('&')
                .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
                .filter(|v| !v.is_empty())
                .map(decode),
        )
        .collect()
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

/// Decodes every `%XX`, lossily as UTF-8.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_a_server_reads_them() {
        assert_eq!(normalize_path("/docs/doc-a2/../doc-b2"), "/docs/doc-b2");
        assert_eq!(normalize_path("/docs/.."), "/");
        assert_eq!(normalize_path("/docs/doc-a2%2F..%2Fdoc-b2"), "/docs/doc-b2");
        assert_eq!(normalize_path("/docs/%64oc-b1"), "/docs/doc-b1");
        assert_eq!(normalize_path("/docs/./doc-a1"), "/docs/doc-a1");
        assert_eq!(normalize_path("/../../etc/passwd"), "/etc/passwd");
        // A reserved character stays encoded: `%3F` is not a query.
        assert_eq!(normalize_path("/docs/a%3Fb"), "/docs/a%3Fb");
        assert_eq!(
            target_values("/v1/docs/doc-a1?id=doc%2Db1&x="),
            ["v1", "docs", "doc-a1", "doc-b1"]
        );
    }
}
