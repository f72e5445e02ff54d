//! The target spec (TOML), docs/ARCHITECTURE.md §3: loading, validation with errors that name the key and
//! the line, and the `{placeholder}` values confab fills in per run.
//!
//! A spec holding only `[auth]` is enough for `confab verify` and `confab scrub`; the
//! harness needs the other sections.

use crate::guard::{AuthConfig, ConfigError, Guard, Secret};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The placeholder that stands for a signing secret confab generates per run.
pub const JWT_SECRET_PLACEHOLDER: &str = "{jwt_secret}";

/// A parsed target spec. Its `Debug` leaves out the spec's text, which may hold a literal
/// secret; `[auth]`'s secrets are [`Secret`]s.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub target: Option<Target>,
    pub auth: AuthConfig,
    #[serde(default, rename = "principal")]
    pub principals: Vec<Principal>,
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<Endpoint>,
    pub downstream: Option<Downstream>,
    #[serde(default)]
    pub limits: Limits,
    /// The folder key files are read from: the spec's own folder.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the spec came from, for error messages.
    #[serde(skip)]
    pub origin: String,
    #[serde(skip)]
    source: String,
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec")
            .field("origin", &self.origin)
            .field("target", &self.target)
            .field("auth", &self.auth)
            .field("principals", &self.principals)
            .field("endpoints", &self.endpoints)
            .field("downstream", &self.downstream)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

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
    /// How long to wait for `ready`, in seconds.
    #[serde(default = "default_startup_s")]
    pub startup_timeout_s: u64,
    /// The environment the command is started with (placeholders filled in).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

fn default_ready() -> String {
    "/healthz".to_owned()
}

fn default_startup_s() -> u64 {
    30
}

/// `[downstream]`: what the sink serves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Downstream {
    /// The resource path template, e.g. `/docs/{id}`.
    pub resource: String,
}

/// `[limits]`: the caps of the COST invariant, and confab's own time limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_llm_calls")]
    pub llm_calls_per_request: u32,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u64,
    #[serde(default = "default_prompt_bytes")]
    pub upstream_prompt_bytes: usize,
    /// Per-request timeout; a request that takes longer is a hang (ROBUST).
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

/// `[[principal]]`: a caller confab mints tokens for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub name: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub owns: Vec<String>,
}

/// `[[endpoint]]`: an operation of the target.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub name: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub llm: bool,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The JSON body; string values may hold `{prompt}` and `{resource}`.
    pub body: Option<toml::Table>,
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
        self.body
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default()
    }

    /// The JSON body with `{prompt}` and `{resource}` filled in.
    pub fn render_body(&self, prompt: &str, resource: &str) -> Option<serde_json::Value> {
        fn fill(v: &toml::Value, prompt: &str, resource: &str) -> serde_json::Value {
            match v {
                toml::Value::String(s) => serde_json::Value::String(
                    s.replace("{prompt}", prompt)
                        .replace("{resource}", resource),
                ),
                toml::Value::Integer(i) => serde_json::Value::from(*i),
                toml::Value::Float(f) => serde_json::Value::from(*f),
                toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
                toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
                toml::Value::Array(a) => a.iter().map(|x| fill(x, prompt, resource)).collect(),
                toml::Value::Table(t) => serde_json::Value::Object(
                    t.iter()
                        .map(|(k, x)| (k.clone(), fill(x, prompt, resource)))
                        .collect(),
                ),
            }
        }
        self.body.as_ref().map(|b| {
            serde_json::Value::Object(
                b.iter()
                    .map(|(k, v)| (k.clone(), fill(v, prompt, resource)))
                    .collect(),
            )
        })
    }

    /// The request path with `{resource}` filled in (percent-encoded as one path segment).
    pub fn render_path(&self, resource: &str) -> String {
        self.path
            .replace("{resource}", &encode_path_segment(resource))
    }
}

pub use confab_target::encode_path_segment;

impl Principal {
    /// A caller with no scope and no resources; add them with [`Principal::scope`] and
    /// [`Principal::owns`].
    pub fn new(name: impl Into<String>) -> Principal {
        Principal {
            name: name.into(),
            scope: String::new(),
            owns: Vec::new(),
        }
    }

    /// The space-separated scopes its tokens carry.
    pub fn scope(mut self, scope: impl Into<String>) -> Principal {
        self.scope = scope.into();
        self
    }

    /// The resource ids it owns (the sink serves them, with a marker each).
    pub fn owns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Principal {
        self.owns.extend(ids.into_iter().map(Into::into));
        self
    }
}

impl Endpoint {
    /// An endpoint; `path` may hold `{resource}`. Methods are checked by [`SpecBuilder::build`].
    pub fn new(name: impl Into<String>, method: &str, path: impl Into<String>) -> Endpoint {
        Endpoint {
            name: name.into(),
            method: method.to_ascii_uppercase(),
            path: path.into(),
            scope: String::new(),
            llm: false,
            capabilities: Vec::new(),
            body: None,
        }
    }

    pub fn get(name: impl Into<String>, path: impl Into<String>) -> Endpoint {
        Endpoint::new(name, "GET", path)
    }

    pub fn post(name: impl Into<String>, path: impl Into<String>) -> Endpoint {
        Endpoint::new(name, "POST", path)
    }

    /// The scopes a caller needs (space-separated).
    pub fn scope(mut self, scope: impl Into<String>) -> Endpoint {
        self.scope = scope.into();
        self
    }

    /// The endpoint calls the model.
    pub fn llm(mut self) -> Endpoint {
        self.llm = true;
        self
    }

    /// A downstream operation the endpoint may perform on the caller's behalf
    /// (`METHOD /path/{id}`); the AGENCY invariant flags any other.
    pub fn capability(mut self, capability: impl Into<String>) -> Endpoint {
        self.capabilities.push(capability.into());
        self
    }

    /// The JSON body (an object); string values may hold `{prompt}` and `{resource}`.
    /// JSON `null`s are dropped (TOML has none).
    pub fn body(mut self, body: serde_json::Value) -> Endpoint {
        fn to_toml(v: serde_json::Value) -> Option<toml::Value> {
            Some(match v {
                serde_json::Value::Null => return None,
                serde_json::Value::Bool(b) => toml::Value::Boolean(b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => toml::Value::Integer(i),
                    None => toml::Value::Float(n.as_f64().unwrap_or(0.0)),
                },
                serde_json::Value::String(s) => toml::Value::String(s),
                serde_json::Value::Array(a) => {
                    toml::Value::Array(a.into_iter().filter_map(to_toml).collect())
                }
                serde_json::Value::Object(o) => toml::Value::Table(
                    o.into_iter()
                        .filter_map(|(k, v)| to_toml(v).map(|v| (k, v)))
                        .collect(),
                ),
            })
        }
        self.body = match to_toml(body) {
            Some(toml::Value::Table(t)) => Some(t),
            // A non-object body is refused by `build` through an empty marker table.
            Some(other) => Some(toml::Table::from_iter([(NOT_AN_OBJECT.to_owned(), other)])),
            None => None,
        };
        self
    }
}

/// Marks a body given to [`Endpoint::body`] that is not a JSON object.
const NOT_AN_OBJECT: &str = "\u{0}not-an-object";

/// A spec written in Rust: the same model a TOML spec loads into, checked the same way.
///
/// ```
/// use confab::spec::{Endpoint, Principal, Spec};
/// let spec = Spec::builder()
///     .hs256_generated()
///     .issuer("https://auth.example")
///     .audience("docs-api")
///     .principal(Principal::new("alice").scope("docs:read").owns(["doc-a1"]))
///     .principal(Principal::new("bob").scope("docs:read").owns(["doc-b1"]))
///     .endpoint(Endpoint::get("read", "/docs/{resource}").scope("docs:read"))
///     .downstream("/docs/{id}")
///     .build()
///     .expect("a valid spec");
/// assert_eq!(spec.endpoints.len(), 1);
/// ```
#[must_use]
pub struct SpecBuilder {
    auth: AuthConfig,
    principals: Vec<Principal>,
    endpoints: Vec<Endpoint>,
    downstream: Option<Downstream>,
    limits: Limits,
    origin: String,
    base_dir: PathBuf,
}

impl Spec {
    /// Starts a spec in Rust ([`SpecBuilder`]); errors name the place it was started from.
    #[track_caller]
    pub fn builder() -> SpecBuilder {
        let at = std::panic::Location::caller();
        SpecBuilder {
            auth: AuthConfig {
                alg: "HS256".to_owned(),
                secret: Some(Secret::from(JWT_SECRET_PLACEHOLDER)),
                secret_base64url: None,
                public_key_file: None,
                private_key_file: None,
                issuer: None,
                audience: None,
                leeway_s: 30,
                typ: None,
                max_token_bytes: None,
                realm: None,
                keys: Vec::new(),
            },
            principals: Vec::new(),
            endpoints: Vec::new(),
            downstream: None,
            limits: Limits::default(),
            origin: format!("spec built at {}:{}", at.file(), at.line()),
            base_dir: PathBuf::from("."),
        }
    }
}

impl SpecBuilder {
    /// HS256 with a secret confab generates per run (the default): the service under test
    /// gets it from its context.
    pub fn hs256_generated(mut self) -> SpecBuilder {
        self.auth.alg = "HS256".to_owned();
        self.auth.secret = Some(Secret::from(JWT_SECRET_PLACEHOLDER));
        self
    }

    /// Any `[auth]` section (asymmetric keys, a `kid` map, `typ`, ...).
    pub fn auth(mut self, auth: AuthConfig) -> SpecBuilder {
        self.auth = auth;
        self
    }

    pub fn issuer(mut self, iss: impl Into<String>) -> SpecBuilder {
        self.auth.issuer = Some(iss.into());
        self
    }

    pub fn audience(mut self, aud: impl Into<String>) -> SpecBuilder {
        self.auth.audience = Some(aud.into());
        self
    }

    pub fn principal(mut self, principal: Principal) -> SpecBuilder {
        self.principals.push(principal);
        self
    }

    pub fn endpoint(mut self, endpoint: Endpoint) -> SpecBuilder {
        self.endpoints.push(endpoint);
        self
    }

    /// The downstream resource template, e.g. `/docs/{id}`.
    pub fn downstream(mut self, resource: impl Into<String>) -> SpecBuilder {
        self.downstream = Some(Downstream {
            resource: resource.into(),
        });
        self
    }

    /// The COST caps and the request timeout.
    pub fn limits(mut self, limits: Limits) -> SpecBuilder {
        self.limits = limits;
        self
    }

    /// Where key files named in `[auth]` are read from (default: the current folder).
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> SpecBuilder {
        self.base_dir = dir.into();
        self
    }

    /// Checks the spec as [`Spec::parse`] does.
    pub fn build(self) -> Result<Spec, SpecError> {
        let spec = Spec {
            target: None,
            auth: self.auth,
            principals: self.principals,
            endpoints: self.endpoints,
            downstream: self.downstream,
            limits: self.limits,
            base_dir: self.base_dir,
            origin: self.origin,
            source: String::new(),
        };
        spec.auth
            .validate_policy()
            .map_err(|e| spec.config_error(e))?;
        for (i, e) in spec.endpoints.iter().enumerate() {
            if e.body
                .as_ref()
                .is_some_and(|b| b.contains_key(NOT_AN_OBJECT))
            {
                return Err(spec.error_at(&format!("endpoint[{i}].body"), "must be a JSON object"));
            }
        }
        spec.validate_sections()?;
        Ok(spec)
    }
}

/// What is wrong with a spec, and where: the file, the line (when known) and the key.
#[derive(Debug)]
pub struct SpecError {
    pub origin: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

impl Spec {
    /// Reads and parses a spec file.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let origin = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| SpecError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Spec::parse(&source, &origin, &base_dir)
    }

    /// Parses spec text; `origin` names it in errors and `base_dir` anchors relative paths.
    pub fn parse(source: &str, origin: &str, base_dir: &Path) -> Result<Spec, SpecError> {
        let mut spec: Spec = toml::from_str(source).map_err(|e| SpecError {
            origin: origin.to_owned(),
            line: e.span().map(|s| line_of(source, s.start)),
            key: None,
            message: e.message().trim_end().to_owned(),
        })?;
        spec.base_dir = base_dir.to_path_buf();
        spec.origin = origin.to_owned();
        spec.source = source.to_owned();
        spec.auth
            .validate_policy()
            .map_err(|e| spec.config_error(e))?;
        spec.validate_sections()?;
        Ok(spec)
    }

    /// Checks what serde cannot: names unique, methods known, templates well-formed.
    fn validate_sections(&self) -> Result<(), SpecError> {
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in self.principals.iter().enumerate() {
            if p.name.is_empty() || names.contains(&p.name.as_str()) {
                return Err(self.error_at(
                    &format!("principal[{i}].name"),
                    format!("{:?} is empty or used twice", p.name),
                ));
            }
            names.push(&p.name);
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let key = |k: &str| format!("endpoint[{i}].{k}");
            if e.name.is_empty() || names.contains(&e.name.as_str()) {
                return Err(
                    self.error_at(&key("name"), format!("{:?} is empty or used twice", e.name))
                );
            }
            names.push(&e.name);
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&e.method.as_str()) {
                return Err(self.error_at(
                    &key("method"),
                    format!(
                        "{:?}: use GET, POST, PUT, PATCH or DELETE (upper case)",
                        e.method
                    ),
                ));
            }
            if !e.path.starts_with('/') {
                return Err(self.error_at(&key("path"), "must start with /"));
            }
            for (j, c) in e.capabilities.iter().enumerate() {
                if crate::guard::capability::Capability::parse(c).is_err() {
                    return Err(self.error_at(
                        &format!("endpoint[{i}].capabilities[{j}]"),
                        format!("{c:?} is not `METHOD /path/{{id}}`"),
                    ));
                }
            }
        }
        if let Some(d) = &self.downstream
            && (!d.resource.starts_with('/') || !d.resource.contains("{id}"))
        {
            return Err(self.error_at(
                "downstream.resource",
                "must be a path with an {id} placeholder, e.g. /docs/{id}",
            ));
        }
        if let Some(t) = &self.target {
            if t.command.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(
                    self.error_at("target.command", "is empty; omit it for a running target")
                );
            }
            if !(t.base_url.starts_with("http://127.")
                || t.base_url.starts_with("http://[::1]")
                || t.base_url.starts_with("http://localhost"))
            {
                return Err(self.error_at(
                    "target.base_url",
                    "must be a loopback http URL (127.0.0.0/8, [::1] or localhost): confab only touches this machine",
                ));
            }
        }
        if self.limits.llm_calls_per_request == 0 || self.limits.request_timeout_ms == 0 {
            return Err(self.error_at("limits", "caps and timeouts must be at least 1"));
        }
        Ok(())
    }

    /// True when `[auth]` asks for a per-run generated secret.
    pub fn secret_is_generated(&self) -> bool {
        self.auth
            .secret
            .as_ref()
            .is_some_and(|s| s.expose() == JWT_SECRET_PLACEHOLDER.as_bytes())
    }

    /// Replaces a `{jwt_secret}` placeholder with the run's generated secret.
    pub fn fill_jwt_secret(&mut self, generated: &Secret) {
        if self.secret_is_generated() {
            self.auth.secret = Some(generated.clone());
        }
    }

    /// Builds the reference guard from `[auth]`. A `{jwt_secret}` placeholder must have been
    /// filled first: a guard keyed with the placeholder text would accept forgeries.
    pub fn guard(&self) -> Result<Guard, SpecError> {
        if self.secret_is_generated() {
            return Err(self.error_at(
                "auth.secret",
                format!(
                    "is {JWT_SECRET_PLACEHOLDER}, a secret confab generates per scan; \
                     give the target's real secret here to verify its tokens"
                ),
            ));
        }
        Guard::from_config(&self.auth, &self.base_dir).map_err(|e| self.config_error(e))
    }

    /// The values a scrubber must treat as secret (signing secrets, private keys).
    pub fn registered_secrets(&self) -> Vec<(String, Secret)> {
        if self.secret_is_generated() {
            return Vec::new();
        }
        self.auth.secret_values(&self.base_dir)
    }

    /// A `[auth]` configuration error, located at its key.
    pub fn config_error(&self, e: ConfigError) -> SpecError {
        let key = format!("auth.{}", e.key());
        let text = e.to_string();
        let message = text
            .strip_prefix(&format!("{key}: "))
            .unwrap_or(&text)
            .to_owned();
        self.error_at(&key, message)
    }

    /// An error about `key` (a dotted path such as `auth.keys[1].alg`), with its line.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            origin: self.origin.clone(),
            line: locate(&self.source, key),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    source
        .as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of a dotted key path (`a.b[2].c`) in TOML text, or of its deepest existing parent.
fn locate(source: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(source).ok()?;
    let mut node: Option<&toml::Spanned<DeValue>> = None;
    let mut found = None;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let next = match node {
            None => root.get_ref().get(name),
            Some(n) => n.get_ref().get(name),
        };
        let Some(next) = next else {
            break;
        };
        found = Some(next.span().start);
        node = Some(next);
        if let Some(i) = index {
            let Some(item) = next.get_ref().get(i) else {
                break;
            };
            found = Some(item.span().start);
            node = Some(item);
        }
    }
    found.map(|offset| line_of(source, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[auth]\nalg = \"HS256\"\nsecret = \"s3cret-s3cret-s3cret-s3cret-s3cret\"\n";

    #[test]
    fn auth_only_spec_is_valid() {
        let spec = Spec::parse(MINIMAL, "t.toml", Path::new(".")).expect("valid");
        assert!(spec.guard().is_ok());
        assert_eq!(spec.registered_secrets().len(), 1);
    }

    #[test]
    fn errors_name_key_and_line() {
        let src = "[auth]\nalg = \"HS256\"\nsecret = \"x\"\nleeway_s = 9000\n";
        let err = Spec::parse(src, "t.toml", Path::new(".")).expect_err("leeway too big");
        assert_eq!(err.line, Some(4));
        assert_eq!(err.key.as_deref(), Some("auth.leeway_s"));
        let src = "[auth]\nalg = \"none\"\nsecret = \"x\"\n";
        let err = Spec::parse(src, "t.toml", Path::new("."))
            .expect("parses")
            .guard()
            .expect_err("alg none");
        assert_eq!(err.line, Some(2));
        assert!(
            err.to_string()
                .starts_with("t.toml:2: auth.alg: unsupported algorithm")
        );
        let err = Spec::parse(
            "[auth]\nalg = \"HS256\"\nsecrt = \"x\"\n",
            "t.toml",
            Path::new("."),
        )
        .expect_err("typo");
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("secrt"));
    }

    #[test]
    fn generated_secret_is_never_used_as_a_key() {
        let src = "[auth]\nalg = \"HS256\"\nsecret = \"{jwt_secret}\"\n";
        let mut spec = Spec::parse(src, "t.toml", Path::new(".")).expect("valid");
        assert!(spec.guard().is_err());
        assert!(spec.registered_secrets().is_empty());
        spec.fill_jwt_secret(&Secret::from("generated-secret-generated-secret"));
        assert!(spec.guard().is_ok());
    }
}
