//! Specs written in Rust: [`SpecBuilder`], and builders for principals and endpoints.

use super::model::{Downstream, Endpoint, Limits, Method, Principal};
use super::{JWT_SECRET_PLACEHOLDER, Spec, SpecError};
use crate::guard::{AuthConfig, Secret};
use std::path::PathBuf;

impl Principal {
    /// A caller with no scope and no resources; add them with [`Principal::scope`] and
    /// [`Principal::owns`].
    pub fn new(name: impl Into<String>) -> Principal {
        Principal {
            name: name.into(),
            scope: String::new(),
            owns: Vec::new(),
            owns_by_type: Default::default(),
            owns_spec: None,
            login: None,
            claims: Default::default(),
            credential: Default::default(),
            headers: Default::default(),
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
        let upper = method.to_ascii_uppercase();
        Endpoint {
            name: name.into(),
            method: Method::parse(&upper).unwrap_or(Method::Get),
            bad_method: Method::parse(&upper).is_none().then_some(upper),
            path: path.into(),
            scope: String::new(),
            llm: false,
            capabilities: Vec::new(),
            body: None,
            form: None,
            body_file: None,
            body_file_json: None,
            allow: Vec::new(),
            headers: Default::default(),
            resource_type: None,
            bearer: true,
            follow: None,
        }
    }

    /// A GET endpoint named `name` at `path` (which may hold `{resource}`).
    pub fn get(name: impl Into<String>, path: impl Into<String>) -> Endpoint {
        Endpoint::new(name, "GET", path)
    }

    /// A POST endpoint named `name` at `path`; give it a body with `{prompt}` to send cases'
    /// prompts.
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
                subject_claim: None,
                claims: Default::default(),
                bound_claims: Vec::new(),
                secret_encoding: None,
                secret_bytes: None,
                cookie: None,
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

    /// `[auth] issuer`: the `iss` the service requires, and confab puts in valid tokens.
    pub fn issuer(mut self, iss: impl Into<String>) -> SpecBuilder {
        self.auth.issuer = Some(iss.into());
        self
    }

    /// `[auth] audience`: the `aud` the service requires, and confab puts in valid tokens.
    pub fn audience(mut self, aud: impl Into<String>) -> SpecBuilder {
        self.auth.audience = Some(aud.into());
        self
    }

    /// Adds a `[[principal]]`: a caller confab mints tokens for.
    pub fn principal(mut self, principal: Principal) -> SpecBuilder {
        self.principals.push(principal);
        self
    }

    /// Adds an `[[endpoint]]`: an operation cases are sent to.
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
            setup: Vec::new(),
            downstream: self.downstream,
            llm: Default::default(),
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
            if let Some(m) = &e.bad_method {
                return Err(spec.error_at(
                    &format!("endpoint[{i}].method"),
                    format!("{m:?}: use GET, POST, PUT, PATCH or DELETE (upper case)"),
                ));
            }
        }
        spec.validate_sections()?;
        Ok(spec)
    }
}
