//! The target spec (TOML), docs/ARCHITECTURE.md §3: loading, validation with errors that name the key and
//! the line, and the `{placeholder}` values confab fills in per run.
//!
//! A spec holding only `[auth]` is enough for `confab verify` and `confab scrub`; the
//! harness needs the other sections.

mod builder;
pub mod check;
mod model;
pub mod openapi;
pub mod template;

pub use builder::SpecBuilder;
pub use model::{
    DEFAULT_STARTUP_TIMEOUT_S, Downstream, Endpoint, Follow, Limits, Llm, Login, Method, Principal,
    SetupStep, Target,
};

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
    /// `[target]`: how to start the target or where it runs; `None` in a spec that only
    /// `confab verify` and `confab scrub` read.
    pub target: Option<Target>,
    /// `[auth]`: how the target verifies tokens, and so how confab mints them.
    pub auth: AuthConfig,
    /// `[[principal]]`: the callers, in spec order.
    #[serde(default, rename = "principal")]
    pub principals: Vec<Principal>,
    /// `[[endpoint]]`: the operations cases are sent to, in spec order.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<Endpoint>,
    /// `[[setup]]`: requests run once, in order, before the baselines.
    #[serde(default)]
    pub setup: Vec<SetupStep>,
    /// `[downstream]`: the resource route the sink serves; `None` when the target calls
    /// nothing but the model.
    pub downstream: Option<Downstream>,
    /// `[llm]`: what the fake model lists.
    #[serde(default)]
    pub llm: Llm,
    /// `[limits]`: the COST caps and the per-request timeout (defaults when absent).
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
            .field("setup", &self.setup.len())
            .field("downstream", &self.downstream)
            .field("llm", &self.llm)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

pub use confab_target::encode_path_segment;

/// What is wrong with a spec, and where: the file, the line (when known) and the key.
#[derive(Clone, Debug)]
pub struct SpecError {
    /// Where the spec came from: its file path, or the Rust source line a [`SpecBuilder`]
    /// was built at.
    pub origin: String,
    /// The 1-based line in the spec's text; `None` for a spec built in Rust, a file that could
    /// not be read, or a key that is not written in the text (a missing section).
    pub line: Option<usize>,
    /// The dotted key at fault (`auth.leeway_s`, `endpoint[1].path`, indexes from 0); `None`
    /// when no one key is.
    pub key: Option<String>,
    /// What is wrong, in plain words.
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
        let mut spec: Spec = toml::from_str(source).map_err(|e| parse_error(source, origin, &e))?;
        spec.base_dir = base_dir.to_path_buf();
        spec.origin = origin.to_owned();
        spec.source = source.to_owned();
        for p in &mut spec.principals {
            p.normalise_owns();
        }
        spec.auth
            .validate_policy()
            .map_err(|e| spec.config_error(e))?;
        spec.validate_sections()?;
        spec.read_body_files()?;
        Ok(spec)
    }

    /// Reads every `body_file` (beside the spec) as JSON.
    fn read_body_files(&mut self) -> Result<(), SpecError> {
        let read = |spec: &Spec,
                    key: String,
                    file: &Path|
         -> Result<serde_json::Value, SpecError> {
            let path = spec.base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| spec.error_at(&key, format!("cannot read {}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| spec.error_at(&key, format!("{} is not JSON: {e}", path.display())))
        };
        for i in 0..self.setup.len() {
            if let Some(f) = self.setup[i].body_file.clone() {
                let json = read(self, format!("setup[{i}].body_file"), &f)?;
                self.setup[i].body_file_json = Some(json);
            }
        }
        for i in 0..self.endpoints.len() {
            if let Some(f) = self.endpoints[i].body_file.clone() {
                let json = read(self, format!("endpoint[{i}].body_file"), &f)?;
                self.endpoints[i].body_file_json = Some(json);
            }
        }
        Ok(())
    }

    /// The principal named `name`, by index.
    pub fn principal_index(&self, name: &str) -> Option<usize> {
        self.principals.iter().position(|p| p.name == name)
    }

    /// The claim that names the caller (`[auth] subject_claim`, default `sub`).
    pub fn subject_claim(&self) -> &str {
        self.auth.subject_claim.as_deref().unwrap_or("sub")
    }

    /// A fresh `{jwt_secret}` as `[auth] secret_encoding` and `secret_bytes` say: hex by
    /// default; `base64`/`base64url` with their `=` padding (a Fernet key is base64url of 32
    /// bytes, 44 characters).
    pub fn generate_secret(&self) -> String {
        use base64::Engine as _;
        let mut buf = vec![0u8; self.auth.secret_bytes.unwrap_or(32)];
        // The system RNG failing leaves zeros: a test value still.
        let _ = aws_lc_rs::rand::fill(&mut buf);
        match self.auth.secret_encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD.encode(&buf),
            Some("base64url") => base64::engine::general_purpose::URL_SAFE.encode(&buf),
            _ => buf.iter().map(|b| format!("{b:02x}")).collect(),
        }
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
        self.validate_real_app_keys()?;
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

    /// The keys of §3b: logins, setup steps, bodies, `allow`, `follow`, credentials.
    fn validate_real_app_keys(&self) -> Result<(), SpecError> {
        let known = |name: &str| self.principal_index(name).is_some();
        let bodies = |key: &dyn Fn(&str) -> String,
                      body: bool,
                      form: bool,
                      file: bool|
         -> Result<(), SpecError> {
            if u8::from(body) + u8::from(form) + u8::from(file) > 1 {
                let k = if form { "form" } else { "body_file" };
                return Err(self.error_at(&key(k), "give one of body, form and body_file"));
            }
            Ok(())
        };
        let pointer = |key: String, p: &str| -> Result<(), SpecError> {
            if template::is_pointer(p) {
                Ok(())
            } else {
                Err(self.error_at(
                    &key,
                    format!("{p:?} is not a JSON pointer (e.g. \"/token\")"),
                ))
            }
        };
        for (i, p) in self.principals.iter().enumerate() {
            if let Some(l) = &p.login {
                let key = |k: &str| format!("principal[{i}].login.{k}");
                if !l.path.starts_with('/') {
                    return Err(self.error_at(&key("path"), "must start with /"));
                }
                bodies(&key, l.body.is_some(), l.form.is_some(), false)?;
                pointer(key("token"), &l.token)?;
            }
        }
        let mut saved: Vec<&str> = Vec::new();
        for (i, s) in self.setup.iter().enumerate() {
            let key = |k: &str| format!("setup[{i}].{k}");
            if let Some(a) = &s.as_
                && !known(a)
            {
                return Err(self.error_at(&key("as"), format!("{a:?} is not a [[principal]]")));
            }
            if !s.path.starts_with('/') {
                return Err(self.error_at(&key("path"), "must start with /"));
            }
            bodies(
                &key,
                s.body.is_some(),
                s.form.is_some(),
                s.body_file.is_some(),
            )?;
            if let Some(code) = s.expect
                && !(100..=599).contains(&code)
            {
                return Err(self.error_at(&key("expect"), "must be an HTTP status"));
            }
            for (name, p) in &s.save {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(self.error_at(
                        &key("save"),
                        format!("{name:?}: use letters, digits, _ and -"),
                    ));
                }
                if saved.contains(&name.as_str()) {
                    return Err(self.error_at(&key("save"), format!("{name:?} is saved twice")));
                }
                saved.push(name);
                pointer(key("save"), p)?;
            }
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let key = |k: &str| format!("endpoint[{i}].{k}");
            bodies(
                &key,
                e.body.is_some(),
                e.form.is_some(),
                e.body_file.is_some(),
            )?;
            for a in &e.allow {
                if !known(a) {
                    return Err(
                        self.error_at(&key("allow"), format!("{a:?} is not a [[principal]]"))
                    );
                }
            }
            if let Some(f) = &e.follow {
                if !f.path.starts_with('/') {
                    return Err(self.error_at(&key("follow"), "path must start with /"));
                }
                bodies(
                    &|k: &str| key(&format!("follow.{k}")),
                    f.body.is_some(),
                    f.form.is_some(),
                    false,
                )?;
            }
            if !e.bearer && self.principals.iter().all(|p| p.credential.is_empty()) {
                return Err(self.error_at(
                    &key("bearer"),
                    "is false, but no [[principal]] has a credential to send instead",
                ));
            }
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

/// Every problem that keeps `source` from parsing, not only the first: after each error located
/// on a `key = value` line, that line is set aside and the text parsed again (at most 32
/// times). A "missing" error caused by a line set aside is not reported: the line's own error
/// already is. Empty when the text parses.
pub fn parse_errors(source: &str, origin: &str) -> Vec<SpecError> {
    let mut text = source.to_owned();
    let mut errors: Vec<SpecError> = Vec::new();
    let mut set_aside: Vec<String> = Vec::new();
    for _ in 0..32 {
        let Err(e) = toml::from_str::<Spec>(&text) else {
            break;
        };
        let err = parse_error(&text, origin, &e);
        let artifact = err.message.starts_with("missing")
            && set_aside
                .iter()
                .any(|k| err.message.contains(k.rsplit('.').next().unwrap_or(k)));
        if !artifact {
            errors.push(err.clone());
        }
        let Some(line) = err.line.filter(|_| err.key.is_some()) else {
            break;
        };
        // Blank the line (keeping line numbers) and go on.
        let mut lines: Vec<&str> = text.split('\n').collect();
        if line == 0 || line > lines.len() {
            break;
        }
        lines[line - 1] = "";
        text = lines.join("\n");
        set_aside.extend(err.key);
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// A TOML or shape error as a [`SpecError`]: its line, the dotted key it sits at (when it sits
/// on a `key = value` line), and a message in words rather than Rust types.
fn parse_error(source: &str, origin: &str, e: &toml::de::Error) -> SpecError {
    let offset = e.span().map(|s| s.start);
    SpecError {
        origin: origin.to_owned(),
        line: offset.map(|o| line_of(source, o)),
        key: offset.and_then(|o| key_at(source, o)),
        message: plain_message(e.message().trim_end()),
    }
}

/// The dotted key (`auth.leeway_s`, `principal[1].name`) of the `key = value` line holding
/// `offset`, from the table headers above it.
fn key_at(source: &str, offset: usize) -> Option<String> {
    let mut table = String::new();
    let mut arrays: std::collections::BTreeMap<String, usize> = Default::default();
    let mut start = 0;
    for line in source.split_inclusive('\n') {
        let end = start + line.len();
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_owned();
            let n = arrays
                .entry(name.clone())
                .and_modify(|n| *n += 1)
                .or_insert(0);
            table = format!("{name}[{n}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_owned();
        }
        if offset < end || end == source.len() {
            let (key, _) = t.split_once('=')?;
            let key = key.trim().trim_matches('"');
            if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            });
        }
        start = end;
    }
    None
}

/// serde's wording for people who write TOML, not Rust.
fn plain_message(message: &str) -> String {
    let mut m = message.to_owned();
    for (rust, words) in [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list [ ... ]"),
        ("expected a map", "expected a table { ... }"),
        ("expected struct", "expected a table"),
    ] {
        m = m.replace(rust, words);
    }
    m
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

    #[test]
    fn generated_secrets_follow_secret_encoding() {
        let with = |enc: &str| {
            let src = format!(
                "[auth]\nalg = \"HS256\"\nsecret = \"{{jwt_secret}}\"\nsecret_encoding = \"{enc}\"\nsecret_bytes = 32\n"
            );
            Spec::parse(&src, "t.toml", Path::new("."))
                .expect("valid")
                .generate_secret()
        };
        let fernet = with("base64url");
        assert_eq!(fernet.len(), 44, "{fernet}");
        assert!(fernet.ends_with('='));
        assert!(!fernet.contains(['+', '/']));
        assert_eq!(with("hex").len(), 64);
        assert_eq!(with("base64").len(), 44);
        let err = Spec::parse(
            "[auth]\nalg = \"HS256\"\nsecret = \"x\"\nsecret_encoding = \"b32\"\n",
            "t.toml",
            Path::new("."),
        )
        .expect_err("unknown encoding");
        assert_eq!(err.line, Some(4));
    }

    #[test]
    fn real_app_keys_parse_and_are_checked() {
        let src = r#"
[auth]
alg = "HS256"
secret = "{jwt_secret}"
[[principal]]
name = "alice"
owns = { chat = ["{setup.c}"], note = ["n-1"] }
login = { path = "/login", form = { username = "a" }, token = "/access_token" }
[[setup]]
as = "alice"
path = "/chats"
body = { content = "{marker}" }
save = { c = "/id" }
[[endpoint]]
name = "list"
method = "GET"
path = "/users"
allow = ["bob"]
"#;
        let err = Spec::parse(src, "t.toml", Path::new(".")).expect_err("bob is unknown");
        assert_eq!(err.key.as_deref(), Some("endpoint[0].allow"));
        assert_eq!(err.line, Some(18));
        let spec = Spec::parse(
            &src.replace("\"bob\"", "\"alice\""),
            "t.toml",
            Path::new("."),
        )
        .expect("valid");
        let alice = &spec.principals[0];
        assert_eq!(alice.ids_of(Some("note")), ["n-1"]);
        assert_eq!(alice.owns.len(), 2);
        assert_eq!(spec.setup[0].method, Method::Post);
        assert!(alice.login.as_ref().is_some_and(|l| l.form.is_some()));
    }

    #[test]
    fn every_parse_problem_at_once_each_at_its_line_and_dotted_key() {
        let text = "[auth]\nalg = \"HS256\"\nleeway_s = \"ten\"\nissuer = 5\n\n[[principal]]\nname = \"a\"\n[[principal]]\nname = 5\n";
        let errors: Vec<String> = parse_errors(text, "s.toml")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "s.toml:3: auth.leeway_s: invalid type: string \"ten\", expected a whole number",
                "s.toml:4: auth.issuer: invalid type: integer `5`, expected a string",
                "s.toml:9: principal[1].name: invalid type: integer `5`, expected a string",
            ]
        );
        // Spec::parse stops at the first, in the same words.
        let first = Spec::parse(text, "s.toml", Path::new(".")).expect_err("bad");
        assert!(first.to_string().starts_with("s.toml:"), "{first}");
        assert!(first.key.is_some(), "{first}");
        assert!(parse_errors("[auth]\nalg = \"HS256\"\n", "s.toml").is_empty());
    }
}
