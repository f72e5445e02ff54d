//! The sections of a target spec (docs/ARCHITECTURE.md §3 and §3b), as serde reads them.

use super::template::{Unresolved, Vars};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// `[target]`: how to start the target (or where it already runs) and when it is ready.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The command that starts it, run from the current folder; omit for a running target.
    pub command: Option<Vec<String>>,
    /// Its base URL; `{port}` is a free loopback port confab picks.
    pub base_url: String,
    /// A path that answers GET with 2xx once the target is ready.
    #[serde(default = "default_ready")]
    pub ready: String,
    /// How long to wait for `ready`, in seconds (default 120: real apps take a while).
    #[serde(default = "default_startup_s")]
    pub startup_timeout_s: u64,
    /// The environment the command is started with (placeholders filled in).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_ready() -> String {
    "/healthz".to_owned()
}

/// The default `startup_timeout_s`.
pub const DEFAULT_STARTUP_TIMEOUT_S: u64 = 120;

fn default_startup_s() -> u64 {
    DEFAULT_STARTUP_TIMEOUT_S
}

/// `[downstream]`: what the sink serves. Optional: an app that calls nothing but the model
/// has none.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Downstream {
    /// The resource path template, e.g. `/docs/{id}`.
    pub resource: String,
}

/// `[llm]`: what the fake model says about itself.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Llm {
    /// The model ids listed at `GET /v1/models` (default one, `confab-model`). Any model name
    /// in a chat request is accepted whatever this says.
    #[serde(default)]
    pub models: Vec<String>,
}

impl Llm {
    /// The ids to list: `models`, or `confab-model`.
    pub fn listed(&self) -> Vec<String> {
        if self.models.is_empty() {
            vec!["confab-model".to_owned()]
        } else {
            self.models.clone()
        }
    }
}

/// `[limits]`: the caps of the COST invariant, and confab's own time limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `llm_calls_per_request`: the most model calls one client request may cause (COST;
    /// default 4). Past it the fake model records the overrun and ends the tool-call loop.
    #[serde(default = "default_llm_calls")]
    pub llm_calls_per_request: u32,
    /// `max_tokens`: the largest `max_tokens` (or `max_completion_tokens`, `max_output_tokens`,
    /// `num_predict`) a model call may request (COST; default 2048).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u64,
    /// `upstream_prompt_bytes`: the largest prompt one model call may send, in bytes of its
    /// messages' text (COST; default 32 KiB).
    #[serde(default = "default_prompt_bytes")]
    pub upstream_prompt_bytes: usize,
    /// `request_timeout_ms`: per-request timeout in milliseconds (default 10 000); a request
    /// that takes longer is a hang (ROBUST).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            llm_calls_per_request: default_llm_calls(),
            max_tokens: default_max_tokens(),
            upstream_prompt_bytes: default_prompt_bytes(),
            request_timeout_ms: default_request_timeout_ms(),
        }
    }
}

fn default_llm_calls() -> u32 {
    4
}
fn default_max_tokens() -> u64 {
    2048
}
fn default_prompt_bytes() -> usize {
    32 * 1024
}
fn default_request_timeout_ms() -> u64 {
    10_000
}

/// An HTTP method a spec may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum Method {
    /// `"GET"`.
    #[serde(rename = "GET")]
    Get,
    /// `"POST"`.
    #[serde(rename = "POST")]
    Post,
    /// `"PUT"`.
    #[serde(rename = "PUT")]
    Put,
    /// `"PATCH"`.
    #[serde(rename = "PATCH")]
    Patch,
    /// `"DELETE"`.
    #[serde(rename = "DELETE")]
    Delete,
}

impl Method {
    /// Every method a spec may name.
    pub const ALL: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    /// The method as a spec writes it (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// The method named `s` (upper case, as in a spec).
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// As an HTTP method.
    pub fn http(self) -> axum::http::Method {
        match self {
            Method::Get => axum::http::Method::GET,
            Method::Post => axum::http::Method::POST,
            Method::Put => axum::http::Method::PUT,
            Method::Patch => axum::http::Method::PATCH,
            Method::Delete => axum::http::Method::DELETE,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

fn post() -> Method {
    Method::Post
}

/// `owns`: a list of ids, or lists by resource type (`{ chat = [...], note = [...] }`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OwnsSpec {
    List(Vec<String>),
    Typed(BTreeMap<String, Vec<String>>),
}

/// `[[principal]] login`: the request that signs the principal in and gives its token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// `method` (default POST).
    #[serde(default = "post")]
    pub method: Method,
    /// `path`: the login route on the target, sent without a bearer token.
    pub path: String,
    /// A JSON body.
    pub body: Option<toml::Table>,
    /// An `application/x-www-form-urlencoded` body.
    pub form: Option<toml::Table>,
    /// Where the token is in the JSON response (a JSON pointer; default `/token`).
    #[serde(default = "default_token_pointer")]
    pub token: String,
}

fn default_token_pointer() -> String {
    "/token".to_owned()
}

/// `[[principal]]`: a caller confab mints tokens for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// `name`: how endpoints' `allow`, setup steps' `as` and findings refer to it.
    pub name: String,
    /// Space-separated scopes its tokens carry (none for an app that authorizes by role).
    #[serde(default)]
    pub scope: String,
    /// Every id it owns, of any type (filled from `owns` as written).
    #[serde(skip)]
    pub owns: Vec<String>,
    /// Its ids by resource type, when `owns` was written as a table.
    #[serde(skip)]
    pub owns_by_type: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "owns")]
    pub(super) owns_spec: Option<OwnsSpec>,
    /// Signs the principal in: its tokens then start from the login token's claims.
    pub login: Option<Login>,
    /// Extra claims on every token minted for it (placeholders allowed).
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Its non-bearer credential (headers), sent only on endpoints with `bearer = false`.
    #[serde(default)]
    pub credential: BTreeMap<String, String>,
    /// Headers sent on every request made as it.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Principal {
    /// The ids `{resource}` draws from on an endpoint of `resource_type` (all its ids without
    /// one, or when `owns` is a plain list).
    pub fn ids_of(&self, resource_type: Option<&str>) -> &[String] {
        match resource_type {
            Some(t) if !self.owns_by_type.is_empty() => {
                self.owns_by_type.get(t).map_or(&[], Vec::as_slice)
            }
            _ => &self.owns,
        }
    }

    /// Fills `owns` from what the spec says (called after parsing, and after setup).
    pub(super) fn normalise_owns(&mut self) {
        match self.owns_spec.take() {
            Some(OwnsSpec::List(ids)) => self.owns = ids,
            Some(OwnsSpec::Typed(by_type)) => {
                self.owns = by_type.values().flatten().cloned().collect();
                self.owns_by_type = by_type;
            }
            None => {}
        }
    }

    /// Fills placeholders in `owns` and `claims` (after setup: `{setup.NAME}`).
    pub fn resolve(&mut self, vars: &Vars<'_>, missing: &mut Vec<Unresolved>) {
        let fill = |s: &String, missing: &mut Vec<Unresolved>| {
            vars.fill(s, super::template::Place::Text, missing)
        };
        self.owns = self.owns.iter().map(|s| fill(s, missing)).collect();
        for ids in self.owns_by_type.values_mut() {
            *ids = ids.iter().map(|s| fill(s, missing)).collect();
        }
        self.claims = match vars.fill_json(&serde_json::Value::Object(self.claims.clone()), missing)
        {
            serde_json::Value::Object(o) => o,
            _ => serde_json::Map::new(),
        };
        self.credential = self
            .credential
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, missing)))
            .collect();
        self.headers = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, missing)))
            .collect();
    }
}

/// `[[setup]]`: a request run once, in order, after the target is ready.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupStep {
    /// The principal whose token the step carries; absent: no token.
    #[serde(rename = "as")]
    pub as_: Option<String>,
    /// `method` (default POST).
    #[serde(default = "post")]
    pub method: Method,
    /// `path`: the target route, placeholders allowed (`{setup.NAME}` of earlier steps).
    pub path: String,
    /// `body`: a JSON body, placeholders allowed (`{uuid}`, `{marker}`, `{setup.NAME}`).
    pub body: Option<toml::Table>,
    /// `form`: an `application/x-www-form-urlencoded` body instead.
    pub form: Option<toml::Table>,
    /// A JSON body from a file beside the spec.
    pub body_file: Option<PathBuf>,
    /// The file's JSON, read when the spec is loaded.
    #[serde(skip)]
    pub body_file_json: Option<serde_json::Value>,
    /// `headers`: extra request headers, placeholders allowed.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The status the step must answer (default: any 2xx).
    pub expect: Option<u16>,
    /// `NAME = "/json/pointer"`: values captured into `{setup.NAME}`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
}

/// `[[endpoint]] follow`: a second request made right after the first, as the same principal.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    /// `method` (default GET).
    #[serde(default = "get")]
    pub method: Method,
    /// `path`: may read the first answer through `{response./json/pointer}`.
    pub path: String,
    /// `body`: a JSON body; `{response./pointer}` allowed.
    pub body: Option<toml::Table>,
    /// `form`: an `application/x-www-form-urlencoded` body instead.
    pub form: Option<toml::Table>,
    /// `headers`: extra request headers for the second request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn get() -> Method {
    Method::Get
}

fn yes() -> bool {
    true
}

/// `[[endpoint]]`: an operation of the target.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `name`: how findings and reports refer to it.
    pub name: String,
    /// `method`: required.
    pub method: Method,
    /// `path`: the route; `{resource}` is the case's resource id, percent-encoded as one
    /// segment (or as a query component after `?`).
    pub path: String,
    /// The scopes a caller needs (space-separated; none by default).
    #[serde(default)]
    pub scope: String,
    /// `llm = true`: the endpoint calls the model, so model-output and prompt cases target it
    /// and UNAUTH_LLM applies.
    #[serde(default)]
    pub llm: bool,
    /// `capabilities`: everything it may do downstream, as `"METHOD /path/{id}"` routes or tool
    /// names; anything else the sink sees is an AGENCY finding.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The JSON body; string values may hold `{prompt}` and `{resource}`.
    pub body: Option<toml::Table>,
    /// An `application/x-www-form-urlencoded` body instead.
    pub form: Option<toml::Table>,
    /// A JSON body from a file beside the spec.
    pub body_file: Option<PathBuf>,
    /// The file's JSON, read when the spec is loaded.
    #[serde(skip)]
    pub body_file_json: Option<serde_json::Value>,
    /// Only these principals may call it: every other must be refused (AUTHZ).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Headers sent on every request to it.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Which of a principal's `owns` lists `{resource}` draws from.
    pub resource_type: Option<String>,
    /// `false`: authenticated by the principal's `credential` alone, no bearer token.
    #[serde(default = "yes")]
    pub bearer: bool,
    /// A second request whose placeholders may read the first response.
    pub follow: Option<Follow>,
    /// A method the builder was given that is none of [`Method`]'s.
    #[serde(skip)]
    pub(super) bad_method: Option<String>,
}

impl Endpoint {
    /// True when the request carries a resource id chosen by the case.
    pub fn takes_resource(&self) -> bool {
        self.path.contains("{resource}") || self.body_text().contains("{resource}")
    }

    /// True when the request carries the case's prompt.
    pub fn takes_prompt(&self) -> bool {
        self.body_text().contains("{prompt}")
    }

    fn body_text(&self) -> String {
        let mut s = String::new();
        for t in [&self.body, &self.form].into_iter().flatten() {
            s.push_str(&t.to_string());
        }
        if let Some(j) = &self.body_file_json {
            s.push_str(&j.to_string());
        }
        s
    }

    /// True when it sends a JSON body (`body` or `body_file`).
    pub fn has_json_body(&self) -> bool {
        self.body.is_some() || self.body_file_json.is_some()
    }

    /// The JSON body (or the form's members) with placeholders filled in.
    pub fn render_body_with(
        &self,
        vars: &Vars<'_>,
        missing: &mut Vec<Unresolved>,
    ) -> Option<serde_json::Value> {
        if let Some(b) = &self.body {
            return Some(vars.fill_toml(b, missing));
        }
        if let Some(j) = &self.body_file_json {
            return Some(vars.fill_json(j, missing));
        }
        self.form.as_ref().map(|f| vars.fill_toml(f, missing))
    }

    /// The JSON body with `{prompt}` and `{resource}` filled in.
    pub fn render_body(&self, prompt: &str, resource: &str) -> Option<serde_json::Value> {
        let vars = Vars {
            prompt: Some(prompt),
            resource: Some(resource),
            ..Vars::default()
        };
        self.render_body_with(&vars, &mut Vec::new())
    }

    /// The request path with `{resource}` filled in (percent-encoded as one path segment, or
    /// as a query component after `?`).
    pub fn render_path(&self, resource: &str) -> String {
        let vars = Vars {
            resource: Some(resource),
            ..Vars::default()
        };
        vars.fill_path(&self.path, &mut Vec::new())
    }

    /// True when `principal` may call it (`allow` empty: everyone).
    pub fn allows(&self, principal: &str) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|a| a == principal)
    }
}
