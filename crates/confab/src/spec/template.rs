//! Placeholders: the `{name}`s confab fills in (docs/ARCHITECTURE.md §3b). Only names confab
//! knows are filled; any other text in braces is sent as it is (code, n8n-style `{{ $json.x }}`),
//! and `{{name}}` / `}}` around a known name write it literally (`{{uuid}}` sends `{uuid}`).

use std::collections::BTreeMap;

/// The placeholders confab fills in, without braces; `setup.NAME` and `response./pointer`
/// are families.
pub const KNOWN: [&str; 11] = [
    "port",
    "llm_base_url",
    "anthropic_base_url",
    "ollama_base_url",
    "llm_api_key",
    "downstream_url",
    "jwt_secret",
    "prompt",
    "resource",
    "uuid",
    "marker",
];

/// True for a name confab fills in (`setup.NAME`, `response./pointer` included).
pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
        || name
            .strip_prefix("setup.")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(is_name_byte))
        || name.strip_prefix("response.").is_some_and(is_pointer)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A JSON pointer (RFC 6901): empty, or `/`-separated tokens.
pub fn is_pointer(p: &str) -> bool {
    (p.is_empty() || p.starts_with('/')) && !p.contains(['{', '}', ' '])
}

/// Where a value goes: encoding differs by place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A JSON string, a form value or a header: the value as it is.
    Text,
    /// A URL path segment: percent-encoded.
    PathSegment,
    /// A query component: percent-encoded.
    Query,
}

/// The values of one rendering: the run's (`port`, `llm_base_url`, …, `setup.NAME`), the
/// case's (`prompt`, `resource`), the setup step's `marker`, and a first response (`follow`).
#[derive(Clone, Default)]
pub struct Vars<'a> {
    /// The run's values by name (`port`, `llm_base_url`, `jwt_secret`, `setup.NAME`, …);
    /// `None` where the run has not started (rendering a case without one).
    pub run: Option<&'a BTreeMap<String, String>>,
    /// `{prompt}`: the case's prompt; `None` outside an endpoint's request.
    pub prompt: Option<&'a str>,
    /// `{resource}`: the case's resource id; `None` outside an endpoint's request.
    pub resource: Option<&'a str>,
    /// `{marker}`: the setup step's ownership marker; `None` outside `[[setup]]`.
    pub marker: Option<&'a str>,
    /// The first answer's JSON, read by `{response./pointer}`; `None` outside `follow`.
    pub response: Option<&'a serde_json::Value>,
}

/// A known placeholder that had no value where it was used; it holds the name without braces
/// (`setup.alice_chat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved(pub String);

impl Vars<'_> {
    /// The value of a known name; `None` when it has none here.
    pub fn get(&self, name: &str) -> Option<String> {
        match name {
            "prompt" => self.prompt.map(str::to_owned),
            "resource" => self.resource.map(str::to_owned),
            "marker" => self.marker.map(str::to_owned),
            "uuid" => Some(uuid_v4()),
            _ => {
                if let Some(p) = name.strip_prefix("response.") {
                    return self.response.and_then(|r| r.pointer(p)).map(json_text);
                }
                self.run.and_then(|r| r.get(name)).cloned()
            }
        }
    }

    /// `s` with every known placeholder filled in (encoded for `place`); unknown braces kept.
    /// Known names without a value here are left as they are and listed in `missing`.
    pub fn fill(&self, s: &str, place: Place, missing: &mut Vec<Unresolved>) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            // `{{name}}`: a literal `{name}` for a known name; anything else as it is.
            if let Some(inner) = tail.strip_prefix("{{")
                && let Some(close) = inner.find("}}")
                && is_known(&inner[..close])
            {
                out.push('{');
                out.push_str(&inner[..close]);
                out.push('}');
                rest = &inner[close + 2..];
                continue;
            }
            if let Some(after) = tail.strip_prefix("{{") {
                out.push_str("{{");
                rest = after;
                continue;
            }
            match tail[1..].find('}') {
                Some(close) if is_known(&tail[1..1 + close]) => {
                    let name = &tail[1..1 + close];
                    match self.get(name) {
                        Some(v) => out.push_str(&encode(&v, place)),
                        None => {
                            missing.push(Unresolved(name.to_owned()));
                            out.push_str(&tail[..close + 2]);
                        }
                    }
                    rest = &tail[close + 2..];
                }
                _ => {
                    out.push('{');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A request path: values before `?` as path segments, after it as query components.
    pub fn fill_path(&self, path: &str, missing: &mut Vec<Unresolved>) -> String {
        match path.split_once('?') {
            Some((p, q)) => format!(
                "{}?{}",
                self.fill(p, Place::PathSegment, missing),
                self.fill(q, Place::Query, missing)
            ),
            None => self.fill(path, Place::PathSegment, missing),
        }
    }

    /// A TOML table as a JSON object, string values (and keys) filled in.
    pub fn fill_toml(&self, t: &toml::Table, missing: &mut Vec<Unresolved>) -> serde_json::Value {
        serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| {
                    (
                        self.fill(k, Place::Text, missing),
                        self.toml_value(v, missing),
                    )
                })
                .collect(),
        )
    }

    fn toml_value(&self, v: &toml::Value, missing: &mut Vec<Unresolved>) -> serde_json::Value {
        match v {
            toml::Value::String(s) => serde_json::Value::String(self.fill(s, Place::Text, missing)),
            toml::Value::Integer(i) => serde_json::Value::from(*i),
            toml::Value::Float(f) => serde_json::Value::from(*f),
            toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
            toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
            toml::Value::Array(a) => a.iter().map(|x| self.toml_value(x, missing)).collect(),
            toml::Value::Table(t) => self.fill_toml(t, missing),
        }
    }

    /// A JSON value with its strings (and member names) filled in.
    pub fn fill_json(
        &self,
        v: &serde_json::Value,
        missing: &mut Vec<Unresolved>,
    ) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => {
                serde_json::Value::String(self.fill(s, Place::Text, missing))
            }
            serde_json::Value::Array(a) => a.iter().map(|x| self.fill_json(x, missing)).collect(),
            serde_json::Value::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, x)| {
                        (
                            self.fill(k, Place::Text, missing),
                            self.fill_json(x, missing),
                        )
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Every known placeholder used in `s` (with `{{`-escaped ones left out).
pub fn placeholders(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let tail = &rest[open..];
        if let Some(inner) = tail.strip_prefix("{{") {
            rest = match inner.find("}}") {
                Some(close) if is_known(&inner[..close]) => &inner[close + 2..],
                _ => inner,
            };
            continue;
        }
        match tail[1..].find('}') {
            Some(close) if is_known(&tail[1..1 + close]) => {
                found.push(tail[1..1 + close].to_owned());
                rest = &tail[close + 2..];
            }
            _ => rest = &tail[1..],
        }
    }
    found
}

/// A JSON value as placeholder text: strings without quotes, anything else as JSON.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode(v: &str, place: Place) -> String {
    match place {
        Place::Text => v.to_owned(),
        Place::PathSegment => confab_target::encode_path_segment(v),
        Place::Query => v
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect(),
    }
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // The system RNG failing leaves zeros: a valid UUID still, and only a test value.
    let _ = aws_lc_rs::rand::fill(&mut b);
    uuid_from_bytes(b)
}

/// A version 4 UUID made from 16 bytes (deterministic for the same bytes).
pub fn uuid_from_bytes(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// True for a UUID in its usual text form.
pub fn looks_like_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `application/x-www-form-urlencoded` of a JSON object's members (strings as they are, other
/// values as JSON).
pub fn form_encode(v: &serde_json::Value) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b if b.is_ascii_alphanumeric() || b"-._*".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(&json_text(v))))
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "llm_base_url".to_owned(),
                "http://127.0.0.1:9/v1".to_owned(),
            ),
            ("setup.alice_chat".to_owned(), "c-1".to_owned()),
        ])
    }

    #[test]
    fn known_names_are_filled_and_other_braces_kept() {
        let run = run_vars();
        let vars = Vars {
            run: Some(&run),
            prompt: Some("hi"),
            marker: Some("cfbmark-1"),
            ..Vars::default()
        };
        let mut missing = Vec::new();
        let code =
            "function f(x) { return {a: 1}; } {{ $json.name }} {unknown} {{uuid}} {{ prompt }}";
        assert_eq!(
            vars.fill(code, Place::Text, &mut missing),
            "function f(x) { return {a: 1}; } {{ $json.name }} {unknown} {uuid} {{ prompt }}"
        );
        assert_eq!(
            vars.fill(
                "{llm_base_url} {prompt}/{marker} {setup.alice_chat}",
                Place::Text,
                &mut missing
            ),
            "http://127.0.0.1:9/v1 hi/cfbmark-1 c-1"
        );
        assert!(missing.is_empty());
        assert_eq!(
            vars.fill("{resource} {setup.nope}", Place::Text, &mut missing),
            "{resource} {setup.nope}"
        );
        assert_eq!(
            missing,
            vec![
                Unresolved("resource".into()),
                Unresolved("setup.nope".into())
            ]
        );
        let u = vars.fill("{uuid}", Place::Text, &mut missing);
        assert!(looks_like_uuid(&u), "{u}");
        assert_ne!(u, vars.fill("{uuid}", Place::Text, &mut missing));
    }

    #[test]
    fn paths_encode_segments_and_queries() {
        let vars = Vars {
            resource: Some("a b/c"),
            ..Vars::default()
        };
        let mut missing = Vec::new();
        assert_eq!(
            vars.fill_path("/chats/{resource}?q={resource}", &mut missing),
            "/chats/a%20b%2Fc?q=a%20b%2Fc"
        );
    }

    #[test]
    fn pointers_capture_response_values() {
        let resp = serde_json::json!({"job_id": "j-1", "n": 3, "a": [{"id": "x"}]});
        let vars = Vars {
            response: Some(&resp),
            ..Vars::default()
        };
        let mut missing = Vec::new();
        assert_eq!(
            vars.fill_path(
                "/jobs/{response./job_id}/{response./a/0/id}/{response./n}",
                &mut missing
            ),
            "/jobs/j-1/x/3"
        );
        assert_eq!(
            vars.fill("{response./none}", Place::Text, &mut missing),
            "{response./none}"
        );
        assert_eq!(missing.len(), 1);
        assert_eq!(
            placeholders("{response./job_id} {{uuid}} {x} {setup.a}"),
            ["response./job_id", "setup.a"]
        );
    }

    #[test]
    fn forms_are_urlencoded() {
        let v = serde_json::json!({"username": "a@b.test", "password": "p w&"});
        assert_eq!(form_encode(&v), "password=p+w%26&username=a%40b.test");
    }
}
