//! Drafting a spec: the commented skeleton `confab init` writes, and its `[[endpoint]]`
//! entries taken from an OpenAPI 3 document (JSON or YAML).

use serde_json::Value;
use std::fmt::Write as _;

/// One `[[endpoint]]` entry `confab init` writes: taken from an OpenAPI operation, or one of
/// the skeleton's examples. The user is expected to review it (its `notes` say what to check).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointDraft {
    /// `name`: the operation's `operationId` in snake case, else `method_path`; made unique.
    pub name: String,
    /// `method`, upper case.
    pub method: String,
    /// `path`: the first path parameter becomes `{resource}`, later ones their example value.
    pub path: String,
    /// `scope`: the first non-empty scope list of the operation's (else the document's)
    /// `security`, space-separated; empty when it names none.
    pub scope: String,
    /// `llm`: the operation mentions a model or assistant and takes a prompt in its body.
    pub llm: bool,
    /// (key, template) pairs of the JSON body; empty for no body.
    pub body: Vec<(String, String)>,
    /// Comment lines written above the entry (where it came from, what to check).
    pub notes: Vec<String>,
}

/// The example endpoints of a skeleton written without `--openapi`: a plain read and an
/// assistant that reaches the model.
pub fn default_endpoints() -> Vec<EndpointDraft> {
    vec![
        EndpointDraft {
            name: "read".to_owned(),
            method: "GET".to_owned(),
            path: "/docs/{resource}".to_owned(),
            scope: "docs:read".to_owned(),
            llm: false,
            body: Vec::new(),
            notes: vec![
                "A plain read: confab tries own, other tenants' and invented ids.".to_owned(),
            ],
        },
        EndpointDraft {
            name: "assist".to_owned(),
            method: "POST".to_owned(),
            path: "/assist".to_owned(),
            scope: "docs:read".to_owned(),
            llm: true,
            body: vec![
                ("prompt".to_owned(), "{prompt}".to_owned()),
                ("doc_id".to_owned(), "{resource}".to_owned()),
            ],
            notes: vec!["An endpoint that hands the caller's prompt to the model.".to_owned()],
        },
    ]
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_owned()
    } else {
        q(s)
    }
}

const HEADER: &str = r#"# confab target spec (docs/ARCHITECTURE.md §3; README: "Writing a spec").
# Written by `confab init`. Edit the values marked CHANGE, then run:
#   confab check-spec confab.toml      # explains anything that keeps it from scanning
#   confab scan --spec confab.toml     # a first campaign (exit 0: nothing found, 1: findings)
# Placeholders in {braces} are filled in by confab for every run.

[target]
# How to start your API. confab runs this command from the current folder with the
# environment below, waits for `ready`, runs its cases and stops it. CHANGE it to your app's
# start command. Omit `command` to test an API that is already running at base_url.
command = ["python3", "app.py"]
# Where your API listens. Must be loopback: confab only touches this machine.
# {port} is a free loopback port confab picks for each run.
base_url = "http://127.0.0.1:{port}"
# A path that answers GET with 2xx once your API is ready to serve.
ready = "/healthz"
# How long to wait for `ready`, in seconds.
startup_timeout_s = 30

[target.env]
# The environment your API is started with: your app must read these instead of the real
# model, keys and downstream URLs. Rename the variables to the ones your app reads.
PORT = "{port}"
# The fake model: an OpenAI-compatible API (chat completions, JSON and SSE), ends in /v1.
OPENAI_BASE_URL = "{llm_base_url}"
# A canary API key confab generates: it must never be echoed in responses, logs or prompts.
OPENAI_API_KEY = "{llm_api_key}"
# The sink: plays your downstream API (and an attacker host) and records every request.
DOCS_API_URL = "{downstream_url}"
# The signing secret confab generates for this run (see [auth].secret).
JWT_SECRET = "{jwt_secret}"

[auth]
# How your API verifies bearer tokens; confab mints its test tokens with the same settings
# and the reference guard decides with them what your API should accept.
# alg: HS256/384/512, or RS256/PS256/ES256/EdDSA with private_key_file + public_key_file.
alg = "HS256"
# "{jwt_secret}": generated per run and handed to your API through [target.env].
secret = "{jwt_secret}"
# Checked exactly when given (remove to accept any issuer, which confab will then report).
issuer = "https://issuer.test"
# Must be in the token's aud when given.
audience = "my-api"
# Clock skew allowed on exp/nbf, in seconds (at most 300).
leeway_s = 30

# Callers confab mints tokens for: a name (the token's sub), the scopes it holds
# (space-delimited) and the resource ids it owns. Give at least two principals so that
# confab can try one tenant's ids with another's token.
[[principal]]
name = "alice"
scope = "docs:read"
owns = ["doc-a1", "doc-a2"]

[[principal]]
name = "bob"
scope = "docs:read docs:write"
owns = ["doc-b1"]
"#;

const ENDPOINT_HELP: &str = r#"
# Endpoints: the operations confab sends cases to.
#   name          a unique name, used in findings and --endpoint
#   method        GET, POST, PUT, PATCH or DELETE
#   path          the path; {resource} is the id a case picks (own, another tenant's, invented)
#   body          the JSON body; "{prompt}" is where the case's prompt goes, "{resource}" an id
#   scope         the scope a token needs here (403 insufficient_scope without it)
#   llm           true when the endpoint calls the model
#   capabilities  every downstream call it may make, as "METHOD /path/{id}"; empty: none
"#;

const FOOTER: &str = r#"
[downstream]
# The resource path of your downstream API; the sink serves every principal's resources here
# as {"id": "...", "owner": "<principal name>", "content": "<marker>"} and records each call.
resource = "/docs/{id}"

[limits]
# The COST invariant's caps, per request: model calls, max_tokens asked for, prompt bytes
# sent upstream.
llm_calls_per_request = 4
max_tokens = 2048
upstream_prompt_bytes = 32768
# A request that takes longer than this (milliseconds) is a hang (ROBUST).
request_timeout_ms = 10000
"#;

/// The skeleton spec with these endpoints.
pub fn skeleton(endpoints: &[EndpointDraft], origin: Option<&str>, public: &[String]) -> String {
    let mut s = String::from(HEADER);
    s.push_str(ENDPOINT_HELP);
    if let Some(o) = origin {
        let _ = writeln!(
            s,
            "# Taken from {o}: check each scope and llm flag, and list the capabilities."
        );
    }
    if !public.is_empty() {
        let _ = writeln!(
            s,
            "# Left out (add one by hand, or use --include-public / --include-destructive):"
        );
        for op in public {
            let _ = writeln!(s, "#   {op}");
        }
    }
    for e in endpoints {
        s.push('\n');
        for n in &e.notes {
            let _ = writeln!(s, "# {n}");
        }
        let _ = writeln!(s, "[[endpoint]]");
        let _ = writeln!(s, "name = {}", q(&e.name));
        let _ = writeln!(s, "method = {}", q(&e.method));
        let _ = writeln!(s, "path = {}", q(&e.path));
        if !e.body.is_empty() {
            let fields: Vec<String> = e
                .body
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), q(v)))
                .collect();
            let _ = writeln!(s, "body = {{ {} }}", fields.join(", "));
        }
        let _ = writeln!(s, "scope = {}", q(&e.scope));
        let _ = writeln!(s, "llm = {}", e.llm);
        if e.llm || (e.method == "GET" && e.path.contains("{resource}")) {
            let _ = writeln!(
                s,
                "capabilities = [\"GET /docs/{{id}}\"]   # CHANGE: its downstream calls"
            );
        } else {
            let _ = writeln!(
                s,
                "capabilities = []   # CHANGE: its downstream calls, if any"
            );
        }
    }
    s.push_str(FOOTER);
    s
}

/// Why an OpenAPI document could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenApiError(String);

/// Reads an OpenAPI document (JSON or YAML) and drafts its endpoints: the drafts, and the
/// operations left out as public (no `security`).
pub fn read_openapi(
    path: &std::path::Path,
    include: Include,
) -> Result<(Vec<EndpointDraft>, Vec<String>), OpenApiError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| OpenApiError(format!("cannot read: {e}")))?;
    endpoints_from_openapi(&parse_openapi(&text)?, include)
}

/// Reads an OpenAPI document: JSON, or YAML when it is not JSON.
pub fn parse_openapi(text: &str) -> Result<Value, OpenApiError> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            let trimmed = text.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                return Err(OpenApiError(format!("invalid JSON: {json_err}")));
            }
            serde_norway::from_str::<Value>(text)
                .map_err(|e| OpenApiError(format!("neither JSON nor YAML: {e}")))
        }
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const LLM_WORDS: [&str; 7] = [
    "llm",
    "assistant",
    "chat",
    "prompt",
    "completion",
    "gpt",
    "language model",
];
const PROMPT_NAMES: [&str; 9] = [
    "prompt",
    "question",
    "query",
    "message",
    "input",
    "instruction",
    "instructions",
    "text",
    "content",
];

fn mentions_llm(op: &Value) -> bool {
    let text = ["summary", "description", "operationId"]
        .iter()
        .filter_map(|k| op.get(k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    LLM_WORDS.iter().any(|w| text.contains(w))
}

fn is_id_like(name: &str) -> bool {
    let n = name.to_lowercase();
    n == "id"
        || n.ends_with("_id")
        || n.ends_with("-id")
        || name.ends_with("Id")
        || name.ends_with("ID")
        || ["doc", "document", "resource", "file"].contains(&n.as_str())
}

/// Follows a local `$ref` (`#/components/schemas/X`), a few levels deep.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..8 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let Some(pointer) = r.strip_prefix('#') else {
            return v;
        };
        match doc.pointer(pointer) {
            Some(next) => v = next,
            None => return v,
        }
    }
    v
}

fn body_template(doc: &Value, op: &Value) -> Vec<(String, String)> {
    let Some(schema) = op
        .get("requestBody")
        .map(|b| resolve(doc, b))
        .and_then(|b| b.get("content"))
        .and_then(|c| {
            c.get("application/json").or_else(|| {
                c.as_object()
                    .and_then(|m| m.iter().find(|(k, _)| k.contains("json")).map(|(_, v)| v))
            })
        })
        .and_then(|m| m.get("schema"))
        .map(|s| resolve(doc, s))
    else {
        return Vec::new();
    };
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .filter_map(|(name, p)| {
            let p = resolve(doc, p);
            if p.get("type").and_then(Value::as_str) != Some("string") {
                return None;
            }
            let lower = name.to_lowercase();
            let value = if PROMPT_NAMES.contains(&lower.as_str()) {
                "{prompt}".to_owned()
            } else if is_id_like(name) {
                "{resource}".to_owned()
            } else {
                p.get("example")
                    .or_else(|| p.get("default"))
                    .or_else(|| p.get("enum").and_then(|e| e.get(0)))
                    .and_then(Value::as_str)
                    .unwrap_or("example")
                    .to_owned()
            };
            Some((name.clone(), value))
        })
        .collect()
}

fn scopes(doc: &Value, op: &Value) -> String {
    let reqs = op
        .get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array);
    reqs.into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|req| req.values())
        .filter_map(Value::as_array)
        .find(|scopes| !scopes.is_empty())
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out.trim_matches('_').to_owned()
}

/// The path with its first `{param}` as `{resource}`; later params become their example (or
/// their name), noted for the user.
fn convert_path(path: &str, params: &[Value], doc: &Value, notes: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = path;
    let mut first = true;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + len];
        out.push_str(&rest[..start]);
        if first {
            out.push_str("{resource}");
            if name != "resource" {
                notes.push(format!(
                    "{{{name}}} is the id confab varies ({{resource}})."
                ));
            }
            first = false;
        } else {
            let example = params
                .iter()
                .map(|p| resolve(doc, p))
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|p| {
                    p.get("example")
                        .or_else(|| p.get("schema").and_then(|s| s.get("example")))
                })
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| name.to_owned());
            let value = super::encode_path_segment(&example);
            notes.push(format!(
                "CHANGE: {{{name}}} is fixed to {value:?} (confab varies one id per path)."
            ));
            out.push_str(&value);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// True when an operation declares that it needs no credentials (`security: []`, or an
/// empty requirement `{}` that makes them optional): confab tests bearer-protected endpoints.
/// No credentials needed: `security: []`, an empty requirement, or no `security` at all, on
/// the operation or the document (FastAPI leaves it off its public routes).
fn is_public(doc: &Value, op: &Value) -> bool {
    op.get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array)
        .is_none_or(|reqs| {
            reqs.is_empty()
                || reqs
                    .iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
        })
}

/// What `confab init --openapi` leaves out unless asked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Include {
    /// Operations that need no credentials (nothing for a bearer-token campaign to test).
    pub public: bool,
    /// DELETE operations: a scan of a real deployment would delete its data.
    pub destructive: bool,
}

/// The endpoints of an OpenAPI 3 document's `paths`, and the operations left out because
/// they need no credentials (`METHOD /path`).
pub fn endpoints_from_openapi(
    doc: &Value,
    include: Include,
) -> Result<(Vec<EndpointDraft>, Vec<String>), OpenApiError> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| OpenApiError("no `paths` object: is this an OpenAPI 3 document?".into()))?;
    let mut out: Vec<EndpointDraft> = Vec::new();
    let mut public = Vec::new();
    for (path, item) in paths {
        let item = resolve(doc, item);
        let shared: Vec<Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            if !include.public && is_public(doc, op) {
                public.push(format!(
                    "{} {path} (public: it takes no credentials)",
                    method.to_uppercase()
                ));
                continue;
            }
            if !include.destructive && method == "delete" {
                public.push(format!(
                    "{} {path} (destructive: a scan would delete data)",
                    method.to_uppercase()
                ));
                continue;
            }
            let mut params = shared.clone();
            params.extend(
                op.get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut notes = Vec::new();
            let summary = op
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default();
            notes.push(format!(
                "{} {path}{}",
                method.to_uppercase(),
                if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {}", summary.lines().next().unwrap_or_default())
                }
            ));
            let spec_path = convert_path(path, &params, doc, &mut notes);
            let mut name = op
                .get("operationId")
                .and_then(Value::as_str)
                .map(snake)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| snake(&format!("{method} {path}")));
            if out.iter().any(|e| e.name == name) {
                name = format!("{name}_{method}");
            }
            let body = body_template(doc, op);
            // Reaching the model is a claim about where a prompt goes: a chat app mentions
            // "chat" on every route, but only those taking the user's text call the model.
            let takes_prompt = body.iter().any(|(_, v)| v == "{prompt}");
            let llm = mentions_llm(op) && takes_prompt;
            if mentions_llm(op) && !takes_prompt && method != "get" && method != "delete" {
                notes.push(
                    "CHANGE: it mentions a model, but no body field was recognized as the \
                     prompt: if it reaches the model, put \"{prompt}\" where the user's text \
                     goes and set llm = true."
                        .to_owned(),
                );
            }
            out.push(EndpointDraft {
                name,
                method: method.to_uppercase(),
                path: spec_path,
                scope: scopes(doc, op),
                llm,
                body,
                notes,
            });
        }
    }
    if out.is_empty() {
        return Err(OpenApiError(
            "no GET/POST/PUT/PATCH/DELETE operation that takes credentials under `paths`".into(),
        ));
    }
    Ok((out, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;
    use crate::spec::check::check;
    use std::path::Path;

    #[test]
    fn openapi_paths_become_endpoints() {
        let doc = parse_openapi(include_str!("../../../../tests/data/openapi/docs-api.json"))
            .expect("json");
        let (eps, public) = endpoints_from_openapi(&doc, Include::default()).expect("endpoints");
        assert_eq!(public, ["GET /healthz (public: it takes no credentials)"]);
        assert_eq!(eps.len(), 3);
        let by = |n: &str| {
            eps.iter()
                .find(|e| e.name == n)
                .unwrap_or_else(|| panic!("{n}: {eps:?}"))
        };
        let get = by("get_document");
        assert_eq!(get.method, "GET");
        assert_eq!(get.path, "/docs/{resource}");
        assert_eq!(get.scope, "docs:read");
        assert!(!get.llm);
        let ask = by("ask_assistant");
        assert!(ask.llm);
        assert_eq!(ask.method, "POST");
        assert_eq!(
            ask.body,
            vec![
                ("doc_id".to_owned(), "{resource}".to_owned()),
                ("prompt".to_owned(), "{prompt}".to_owned()),
                ("tone".to_owned(), "formal".to_owned()),
            ]
        );
        let share = by("share_document");
        assert_eq!(share.path, "/orgs/{resource}/docs/acme");
        assert_eq!(share.scope, "docs:write");
        assert!(!share.llm);
        let text = skeleton(&eps, Some("docs-api.json"), &public);
        assert!(text.contains("#   GET /healthz (public: it takes no credentials)"));
        let spec = Spec::parse(&text, "c.toml", Path::new(".")).expect("parses");
        assert_eq!(spec.endpoints.len(), eps.len());
        assert!(check(&spec).iter().all(|p| !p.error));
    }

    #[test]
    fn yaml_openapi_is_read_too() {
        let yaml = "openapi: 3.0.3\nsecurity:\n  - bearer: []\npaths:\n  /chat:\n    post:\n      summary: Chat with the assistant\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                message: {type: string}\n";
        let doc = parse_openapi(yaml).expect("yaml");
        let (eps, _) = endpoints_from_openapi(&doc, Include::default()).expect("endpoints");
        assert_eq!(eps.len(), 1);
        assert!(eps[0].llm);
        assert_eq!(eps[0].name, "post_chat");
        assert_eq!(
            eps[0].body,
            vec![("message".to_owned(), "{prompt}".to_owned())]
        );
        assert!(parse_openapi("{ not json").is_err());
    }

    /// FastAPI leaves `security` off its public routes; a chat app mentions "chat" on every
    /// route; DELETE would delete data. Only the protected route that takes a prompt is drafted
    /// as reaching the model.
    #[test]
    fn public_destructive_and_promptless_operations_are_told_apart() {
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "paths": {
                "/health": {"get": {"summary": "health"}},
                "/chats/{id}": {
                    "get": {"summary": "Get a chat", "security": [{"bearer": []}]},
                    "delete": {"summary": "Delete a chat", "security": [{"bearer": []}]},
                },
                "/chats/{id}/ask": {"post": {
                    "summary": "Ask the chat assistant",
                    "security": [{"bearer": []}],
                    "requestBody": {"content": {"application/json": {"schema": {
                        "type": "object", "properties": {"prompt": {"type": "string"}}}}}},
                }},
            },
        });
        let (eps, left_out) = endpoints_from_openapi(&doc, Include::default()).expect("drafts");
        let names: Vec<(&str, bool)> = eps.iter().map(|e| (e.method.as_str(), e.llm)).collect();
        assert_eq!(names, [("GET", false), ("POST", true)], "{eps:?}");
        assert_eq!(left_out.len(), 2, "{left_out:?}");
        assert!(
            left_out
                .iter()
                .any(|o| o.starts_with("GET /health (public"))
        );
        assert!(
            left_out
                .iter()
                .any(|o| o.starts_with("DELETE /chats/{id} (destructive"))
        );
        let all = Include {
            public: true,
            destructive: true,
        };
        let (eps, left_out) = endpoints_from_openapi(&doc, all).expect("drafts");
        assert_eq!((eps.len(), left_out.len()), (4, 0));
    }
}
