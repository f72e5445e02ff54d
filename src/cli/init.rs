//! `confab init`: writes a commented spec skeleton (optionally with `[[endpoint]]` entries taken
//! from an OpenAPI 3 document, JSON or YAML). `confab check-spec`: says everything that keeps a
//! spec from scanning, each problem with file:line: key.

use confab::guard::ScopeSet;
use confab::spec::{JWT_SECRET_PLACEHOLDER, Spec, SpecError};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InitArgs {
    /// Where to write the spec.
    #[arg(long, default_value = "confab.toml")]
    pub out: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Fill the endpoints from this OpenAPI 3 document (JSON or YAML).
    #[arg(long, value_name = "FILE")]
    pub openapi: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CheckSpecArgs {
    /// The spec to check.
    pub file: PathBuf,
}

/// One `[[endpoint]]` entry to write.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointDraft {
    pub name: String,
    pub method: String,
    pub path: String,
    pub scope: String,
    pub llm: bool,
    /// (key, template) pairs of the JSON body; empty for no body.
    pub body: Vec<(String, String)>,
    /// Comment lines written above the entry (where it came from, what to check).
    pub notes: Vec<String>,
}

fn default_endpoints() -> Vec<EndpointDraft> {
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
            "# Left out, as they take no credentials (security: []): {}",
            public.join(", ")
        );
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
            let value = confab::spec::encode_path_segment(&example);
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
fn is_public(doc: &Value, op: &Value) -> bool {
    op.get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array)
        .is_some_and(|reqs| {
            reqs.is_empty()
                || reqs
                    .iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
        })
}

/// The endpoints of an OpenAPI 3 document's `paths`, and the operations left out because
/// they need no credentials (`METHOD /path`).
pub fn endpoints_from_openapi(
    doc: &Value,
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
            if is_public(doc, op) {
                public.push(format!("{} {path}", method.to_uppercase()));
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
            let llm = mentions_llm(op);
            if llm && !body.iter().any(|(_, v)| v == "{prompt}") {
                notes.push(
                    "CHANGE: it reaches the model, but no body field was recognized as the \
                     prompt: put \"{prompt}\" where the user's text goes."
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

pub fn init(args: InitArgs) -> ExitCode {
    let (endpoints, origin, public) = match &args.openapi {
        None => (default_endpoints(), None, Vec::new()),
        Some(path) => {
            let doc = std::fs::read_to_string(path)
                .map_err(|e| OpenApiError(format!("cannot read: {e}")))
                .and_then(|t| parse_openapi(&t))
                .and_then(|d| endpoints_from_openapi(&d));
            match doc {
                Ok((e, public)) => (e, Some(path.display().to_string()), public),
                Err(e) => return super::fail(&format!("init: {}", path.display()), &e),
            }
        }
    };
    let text = skeleton(&endpoints, origin.as_deref(), &public);
    // A skeleton that does not parse would be confab's bug; say so rather than write it.
    if let Err(e) = Spec::parse(
        &text,
        &args.out.display().to_string(),
        std::path::Path::new("."),
    ) {
        return super::fail("init: the generated spec is invalid (a confab bug)", &e);
    }
    let open = if args.force {
        std::fs::File::create(&args.out)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&args.out)
    };
    let result = open.and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    match result {
        Ok(()) => {
            eprintln!(
                "confab: wrote {} ({} endpoint(s)). Edit the lines marked CHANGE, then: \
                 confab check-spec {0} && confab scan --spec {0}",
                args.out.display(),
                endpoints.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => super::fail(
            &format!("init: {}", args.out.display()),
            &"exists; pass --force to overwrite it, or --out to write elsewhere",
        ),
        Err(e) => super::fail(&format!("init: {}", args.out.display()), &e),
    }
}

/// A problem of a spec: an error keeps `confab scan` from running, a warning makes its
/// campaign weaker than it could be.
pub struct Problem {
    pub error: bool,
    pub detail: SpecError,
}

/// Everything `confab scan` needs of a spec beyond parsing.
pub fn check(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut err = |key: &str, msg: String| {
        out.push(Problem {
            error: true,
            detail: spec.error_at(key, msg),
        })
    };
    if spec.target.is_none() {
        err(
            "target",
            "missing: [target] says how to start the API or where it runs".into(),
        );
    }
    if spec.downstream.is_none() {
        err(
            "downstream",
            "missing: [downstream] resource = \"/docs/{id}\" tells the sink what to serve".into(),
        );
    }
    if spec.endpoints.is_empty() {
        err(
            "endpoint",
            "no [[endpoint]]: nothing to send cases to".into(),
        );
    }
    if spec.principals.is_empty() {
        err(
            "principal",
            "no [[principal]]: confab mints tokens for principals".into(),
        );
    }
    if !spec.secret_is_generated()
        && let Err(e) = spec.guard()
    {
        out.push(Problem {
            error: true,
            detail: e,
        });
    }
    if !spec.principals.is_empty() {
        for e in &spec.endpoints {
            if let Err(e) =
                confab::generators::token::MintContext::for_spec(spec, ScopeSet::parse(&e.scope))
            {
                out.push(Problem {
                    error: true,
                    detail: e,
                });
                break;
            }
        }
    }
    let mut warn = |key: &str, msg: String| {
        out.push(Problem {
            error: false,
            detail: spec.error_at(key, msg),
        })
    };
    let env_text = spec
        .target
        .as_ref()
        .map(|t| t.env.values().cloned().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let command_text = spec
        .target
        .as_ref()
        .and_then(|t| t.command.as_ref())
        .map(|c| c.join(" "))
        .unwrap_or_default();
    let passed = |p: &str| env_text.contains(p) || command_text.contains(p);
    if spec.target.is_some() {
        let model_urls = [
            "{llm_base_url}",
            "{anthropic_base_url}",
            "{ollama_base_url}",
        ];
        if spec.endpoints.iter().any(|e| e.llm) && !model_urls.iter().any(|p| passed(p)) {
            warn(
                "target.env",
                "no variable carries {llm_base_url} (or {anthropic_base_url}, \
                 {ollama_base_url}): the API cannot find confab's fake model"
                    .into(),
            );
        }
        if spec.downstream.is_some() && !passed("{downstream_url}") {
            warn(
                "target.env",
                "no variable carries {downstream_url}: the API's downstream calls miss the sink"
                    .into(),
            );
        }
        if spec.secret_is_generated() && !passed(JWT_SECRET_PLACEHOLDER) {
            warn(
                "auth.secret",
                "is {jwt_secret} but no [target.env] variable passes {jwt_secret} to the API: \
                 it cannot verify confab's tokens"
                    .into(),
            );
        }
    }
    for (i, e) in spec.endpoints.iter().enumerate() {
        let required = ScopeSet::parse(&e.scope);
        if !spec.principals.is_empty()
            && !spec
                .principals
                .iter()
                .any(|p| ScopeSet::parse(&p.scope).includes(&required))
        {
            warn(
                &format!("endpoint[{i}].scope"),
                format!(
                    "no principal holds {:?}: confab cannot send a valid request to {}",
                    e.scope, e.name
                ),
            );
        }
        if e.llm && !e.takes_prompt() {
            warn(
                &format!("endpoint[{i}].llm"),
                format!(
                    "{} reaches the model but nothing carries \"{{prompt}}\": the cases' prompts never reach it",
                    e.name
                ),
            );
        }
    }
    if spec.principals.len() == 1 {
        warn(
            "principal",
            "only one principal: cross-tenant cases (OWNERSHIP, IDOR) need two".into(),
        );
    }
    for (i, p) in spec.principals.iter().enumerate() {
        if p.owns.is_empty() {
            warn(
                &format!("principal[{i}].owns"),
                format!(
                    "{} owns no resource: give it ids so that cases can use them",
                    p.name
                ),
            );
        }
    }
    out
}

pub fn check_spec(args: CheckSpecArgs) -> ExitCode {
    let spec = match Spec::load(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("confab: check-spec: 1 problem");
            return ExitCode::from(2);
        }
    };
    let problems = check(&spec);
    let errors = problems.iter().filter(|p| p.error).count();
    for p in &problems {
        let label = if p.error { "error" } else { "warning" };
        eprintln!("{label}: {}", p.detail);
    }
    if errors > 0 {
        eprintln!(
            "confab: check-spec: {errors} problem(s), {} warning(s)",
            problems.len() - errors
        );
        ExitCode::from(2)
    } else {
        println!(
            "{}: ok ({} endpoint(s), {} principal(s){})",
            args.file.display(),
            spec.endpoints.len(),
            spec.principals.len(),
            if problems.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s)", problems.len())
            }
        );
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_skeleton_is_a_spec_without_problems() {
        let text = skeleton(&default_endpoints(), None, &[]);
        let spec = Spec::parse(&text, "confab.toml", Path::new(".")).expect("parses");
        let problems: Vec<String> = check(&spec).iter().map(|p| p.detail.to_string()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(spec.endpoints.len(), 2);
        // Every key is explained: each `key =` line has a comment or follows one.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim();
            if t.contains(" = ") && !t.starts_with('#') && !t.starts_with("[[") {
                let explained = t.contains('#')
                    || lines[..i]
                        .iter()
                        .rev()
                        .take(12)
                        .any(|p| p.trim_start().starts_with('#'));
                assert!(explained, "line {} unexplained: {t}", i + 1);
            }
        }
    }

    #[test]
    fn check_explains_what_keeps_a_spec_from_scanning() {
        let src = "[auth]\nalg = \"HS256\"\nsecret = \"{jwt_secret}\"\n\n[[endpoint]]\nname = \"a\"\nmethod = \"POST\"\npath = \"/a\"\nscope = \"x:y\"\nllm = true\n";
        let spec = Spec::parse(src, "s.toml", Path::new(".")).expect("parses");
        let problems = check(&spec);
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}{}", if p.error { "E " } else { "W " }, p.detail))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("E s.toml: target: missing")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("E s.toml: downstream: missing"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("E s.toml: principal: no"))
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("W s.toml:10: endpoint[0].llm:")),
            "{text:?}"
        );
    }

    #[test]
    fn openapi_paths_become_endpoints() {
        let doc =
            parse_openapi(include_str!("../../tests/data/openapi/docs-api.json")).expect("json");
        let (eps, public) = endpoints_from_openapi(&doc).expect("endpoints");
        assert_eq!(public, ["GET /healthz"]);
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
        assert!(
            text.contains("# Left out, as they take no credentials (security: []): GET /healthz")
        );
        let spec = Spec::parse(&text, "c.toml", Path::new(".")).expect("parses");
        assert_eq!(spec.endpoints.len(), eps.len());
        assert!(check(&spec).iter().all(|p| !p.error));
    }

    #[test]
    fn yaml_openapi_is_read_too() {
        let yaml = "openapi: 3.0.3\npaths:\n  /chat:\n    post:\n      summary: Chat with the assistant\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                message: {type: string}\n";
        let doc = parse_openapi(yaml).expect("yaml");
        let (eps, _) = endpoints_from_openapi(&doc).expect("endpoints");
        assert_eq!(eps.len(), 1);
        assert!(eps[0].llm);
        assert_eq!(eps[0].name, "post_chat");
        assert_eq!(
            eps[0].body,
            vec![("message".to_owned(), "{prompt}".to_owned())]
        );
        assert!(parse_openapi("{ not json").is_err());
    }
}
