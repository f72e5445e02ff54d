//! One endpoint's declaration ([`EndpointPolicy`]) and the effective privilege of a request
//! on it ([`EffectivePrivilege`]): where the HTTP, tool and URL checks are applied.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::http::{Capability, Method, MethodScopes};
use super::tool::{
    ArgSpec, ArgType, AuthorizedArg, AuthorizedCall, MAX_ARGUMENTS_BYTES, ToolDenial, ToolSpec,
};
use super::url::{AllowedUrl, HostAllowlist, UrlDenial};
use crate::provenance::{AuthorizedId, Excerpt, IdError, ResourceKind, Untrusted, Validator};
use crate::scope::ScopeSet;

/// A mistake in an endpoint's declaration (configuration, not request, errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A capability names no scope and its method has none in [`MethodScopes`].
    #[error("capability {0} names no scope and its method has no default")]
    NoScope(String),
    /// A scope that is empty or contains whitespace (one token is one scope).
    #[error("scope must be one non-empty token without whitespace")]
    BadScope,
    /// A tool name outside `[A-Za-z_][A-Za-z0-9_-]{0,63}`.
    #[error("invalid tool name")]
    BadToolName,
    /// Two tools with the same name.
    #[error("duplicate tool {0}")]
    DuplicateTool(String),
    /// Two arguments with the same name, or an empty argument name.
    #[error("tool {0}: duplicate or empty argument name")]
    BadArgName(String),
    /// A resource argument or placeholder of a kind the endpoint does not know.
    #[error("unknown resource kind {0}")]
    UnknownKind(String),
    /// A host entry that does not parse.
    #[error("invalid host entry: {0}")]
    BadHost(UrlDenial),
}

fn check_scope(s: &str) -> Result<(), PolicyError> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        Err(PolicyError::BadScope)
    } else {
        Ok(())
    }
}

/// Everything one endpoint may do downstream: its resource kinds, HTTP capabilities (with
/// resolved scopes), tools and allowed hosts.
#[derive(Clone, Debug)]
pub struct EndpointPolicy {
    name: String,
    default_kind: String,
    kinds: BTreeMap<String, ResourceKind>,
    param_kinds: BTreeMap<String, String>,
    method_scopes: MethodScopes,
    capabilities: Vec<(Capability, String)>,
    tools: BTreeMap<String, ToolSpec>,
    hosts: HostAllowlist,
}

impl EndpointPolicy {
    /// An endpoint named `name` whose path placeholders are ids of `default_kind` unless
    /// [`EndpointPolicy::param_kind`] says otherwise, and whose capabilities without a scope
    /// take theirs from `method_scopes`.
    pub fn new(name: &str, default_kind: ResourceKind, method_scopes: MethodScopes) -> Self {
        let default = default_kind.name().to_owned();
        EndpointPolicy {
            name: name.to_owned(),
            kinds: BTreeMap::from([(default.clone(), default_kind)]),
            default_kind: default,
            param_kinds: BTreeMap::new(),
            method_scopes,
            capabilities: Vec::new(),
            tools: BTreeMap::new(),
            hosts: HostAllowlist::new(),
        }
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a resource kind that tools and placeholders may name.
    pub fn with_kind(mut self, kind: ResourceKind) -> Self {
        self.kinds.insert(kind.name().to_owned(), kind);
        self
    }

    /// Makes placeholder `{param}` an id of `kind` (which must have been added).
    pub fn param_kind(mut self, param: &str, kind: &str) -> Result<Self, PolicyError> {
        if !self.kinds.contains_key(kind) {
            return Err(PolicyError::UnknownKind(kind.to_owned()));
        }
        self.param_kinds.insert(param.to_owned(), kind.to_owned());
        Ok(self)
    }

    /// Declares an HTTP capability; its scope is its own or its method's default.
    pub fn capability(mut self, cap: Capability) -> Result<Self, PolicyError> {
        let scope = match cap.scope() {
            Some(s) => s.to_owned(),
            None => self
                .method_scopes
                .get(cap.method())
                .ok_or_else(|| PolicyError::NoScope(cap.to_string()))?
                .to_owned(),
        };
        check_scope(&scope)?;
        if !self.capabilities.iter().any(|(c, _)| c == &cap) {
            self.capabilities.push((cap, scope));
        }
        Ok(self)
    }

    /// Declares a tool.
    pub fn tool(mut self, tool: ToolSpec) -> Result<Self, PolicyError> {
        let b = tool.name.as_bytes();
        let name_ok = !b.is_empty()
            && b.len() <= 64
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
        if !name_ok {
            return Err(PolicyError::BadToolName);
        }
        check_scope(&tool.scope)?;
        let mut names = BTreeSet::new();
        for a in &tool.args {
            if a.name.is_empty() || !names.insert(a.name.as_str()) {
                return Err(PolicyError::BadArgName(tool.name.clone()));
            }
            if let ArgType::Resource(k) = &a.ty
                && !self.kinds.contains_key(k)
            {
                return Err(PolicyError::UnknownKind(k.clone()));
            }
        }
        if self.tools.contains_key(&tool.name) {
            return Err(PolicyError::DuplicateTool(tool.name));
        }
        self.tools.insert(tool.name.clone(), tool);
        Ok(self)
    }

    /// Declares a host (`host` or `host:port`) URLs may point at.
    pub fn host(mut self, authority: &str) -> Result<Self, PolicyError> {
        self.hosts.allow(authority).map_err(PolicyError::BadHost)?;
        Ok(self)
    }

    /// The declared capabilities with their resolved scopes.
    pub fn capabilities(&self) -> impl Iterator<Item = (&Capability, &str)> {
        self.capabilities.iter().map(|(c, s)| (c, s.as_str()))
    }

    /// The declared tools.
    pub fn tools(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.values()
    }

    /// The host allowlist.
    pub fn hosts(&self) -> &HostAllowlist {
        &self.hosts
    }

    /// Every scope the endpoint's capabilities and tools name.
    pub fn declared_scopes(&self) -> ScopeSet {
        self.capabilities
            .iter()
            .map(|(_, s)| s.as_str())
            .chain(self.tools.values().map(|t| t.scope.as_str()))
            .collect()
    }

    /// The effective privilege's scopes: the token's intersected with
    /// [`EndpointPolicy::declared_scopes`].
    pub fn effective_scopes(&self, token_scopes: &ScopeSet) -> ScopeSet {
        token_scopes.intersection(&self.declared_scopes())
    }

    /// What the model may do for one request: the effective scopes plus a validator bound to
    /// the request's principal and user-supplied ids.
    pub fn privilege<'a>(
        &'a self,
        token_scopes: &ScopeSet,
        validator: Validator<'a>,
    ) -> EffectivePrivilege<'a> {
        EffectivePrivilege {
            policy: self,
            scopes: self.effective_scopes(token_scopes),
            validator,
        }
    }

    fn kind_of_param(&self, param: &str) -> Option<&ResourceKind> {
        let name = self.param_kinds.get(param).unwrap_or(&self.default_kind);
        self.kinds.get(name)
    }
}

/// Why a downstream HTTP request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestDenial {
    /// The URL failed the host allowlist.
    #[error("URL refused: {0}")]
    Url(#[source] UrlDenial),
    /// No declared capability matches the method and path (or the path has a query).
    #[error("no declared capability for {method} {path}")]
    NoCapability {
        /// The request's method.
        method: Method,
        /// An excerpt of the request's path.
        path: Excerpt,
    },
    /// A capability matches, but its scope is not in the effective privilege.
    #[error("capability {capability} needs scope {required}, not in the effective privilege")]
    InsufficientScope {
        /// The capability, as declared.
        capability: String,
        /// The scope it needs.
        required: String,
    },
    /// A path parameter failed provenance.
    #[error("capability {capability}: parameter {param}: {error}")]
    Id {
        /// The capability that matched.
        capability: String,
        /// The `{placeholder}` whose value was refused.
        param: String,
        #[source]
        /// Why provenance refused it.
        error: IdError,
    },
}

impl RequestDenial {
    /// A stable snake_case name for the kind of denial.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestDenial::Url(_) => "url",
            RequestDenial::NoCapability { .. } => "no_capability",
            RequestDenial::InsufficientScope { .. } => "insufficient_scope",
            RequestDenial::Id { .. } => "id",
        }
    }
}

/// A downstream request that matches a declared capability within the effective privilege,
/// with every path parameter authorized. Its [`AuthorizedRequest::path`] is rebuilt from the
/// authorized ids, not copied from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedRequest {
    method: Method,
    capability: Capability,
    scope: String,
    params: BTreeMap<String, AuthorizedId>,
    path: String,
    url: Option<AllowedUrl>,
}

impl AuthorizedRequest {
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The capability it matched.
    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// The scope it was authorized under.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The authorized path parameters.
    pub fn params(&self) -> &BTreeMap<String, AuthorizedId> {
        &self.params
    }

    /// The path, rendered from the template and the authorized ids.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The allowed URL, for requests checked with
    /// [`EffectivePrivilege::authorize_downstream`].
    pub fn url(&self) -> Option<&AllowedUrl> {
        self.url.as_ref()
    }
}

/// The effective privilege of one request on one endpoint: what the model may make the
/// endpoint do. Every check goes through here.
#[derive(Clone, Debug)]
pub struct EffectivePrivilege<'a> {
    policy: &'a EndpointPolicy,
    scopes: ScopeSet,
    validator: Validator<'a>,
}

impl<'a> EffectivePrivilege<'a> {
    /// The effective scopes (token ∩ declared).
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// The capabilities usable under the effective scopes.
    pub fn allowed_capabilities(&self) -> impl Iterator<Item = &'a Capability> + '_ {
        self.policy
            .capabilities
            .iter()
            .filter(|(_, s)| self.scopes.contains(s))
            .map(|(c, _)| c)
    }

    /// The tools usable under the effective scopes: the only ones a target should offer the
    /// model.
    pub fn allowed_tools(&self) -> impl Iterator<Item = &'a ToolSpec> + '_ {
        self.policy
            .tools
            .values()
            .filter(|t| self.scopes.contains(&t.scope))
    }

    /// Checks a downstream request given as method and path (the path, query-free, from
    /// wherever it came, tagged with that source).
    ///
    /// Of the capabilities that match method and path, those outside the effective scopes are
    /// skipped; the first whose parameters all pass provenance wins. Denials: no match
    /// ([`RequestDenial::NoCapability`]), only out-of-scope matches
    /// ([`RequestDenial::InsufficientScope`]), or the first parameter failure
    /// ([`RequestDenial::Id`]).
    pub fn authorize_request<T: AsRef<str>>(
        &self,
        method: Method,
        path: Untrusted<T>,
    ) -> Result<AuthorizedRequest, RequestDenial> {
        let mut first_err: Option<RequestDenial> = None;
        let mut matched = false;
        for (cap, scope) in &self.policy.capabilities {
            let Some(raw_params) = cap.match_request(method, &path) else {
                continue;
            };
            matched = true;
            if !self.scopes.contains(scope) {
                first_err.get_or_insert(RequestDenial::InsufficientScope {
                    capability: cap.to_string(),
                    required: scope.clone(),
                });
                continue;
            }
            match self.authorize_params(cap, raw_params) {
                Ok(params) => {
                    let rendered = cap.render(&params).map_err(|_| {
                        // Unreachable: every placeholder was matched and authorized.
                        RequestDenial::NoCapability {
                            method,
                            path: Excerpt::of(path.peek().as_ref()),
                        }
                    })?;
                    return Ok(AuthorizedRequest {
                        method,
                        capability: cap.clone(),
                        scope: scope.clone(),
                        params,
                        path: rendered,
                        url: None,
                    });
                }
                Err(e) => {
                    // A parameter failure is more telling than an out-of-scope match.
                    if !matches!(first_err, Some(RequestDenial::Id { .. })) {
                        first_err = Some(e);
                    }
                }
            }
        }
        Err(match first_err {
            Some(e) if matched => e,
            _ => RequestDenial::NoCapability {
                method,
                path: Excerpt::of(path.peek().as_ref()),
            },
        })
    }

    fn authorize_params(
        &self,
        cap: &Capability,
        raw: Vec<(String, Untrusted<String>)>,
    ) -> Result<BTreeMap<String, AuthorizedId>, RequestDenial> {
        let mut out = BTreeMap::new();
        for (name, value) in raw {
            let Some(kind) = self.policy.kind_of_param(&name) else {
                // The default kind is always present, so this cannot happen; refuse anyway.
                return Err(RequestDenial::NoCapability {
                    method: cap.method(),
                    path: Excerpt::of(&cap.to_string()),
                });
            };
            match self.validator.authorize(kind, value) {
                Ok(id) => {
                    out.insert(name, id);
                }
                Err(error) => {
                    return Err(RequestDenial::Id {
                        capability: cap.to_string(),
                        param: name,
                        error,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Checks a URL against the endpoint's host allowlist alone (for tools that fetch URLs).
    pub fn authorize_url<T: AsRef<str>>(&self, url: Untrusted<T>) -> Result<AllowedUrl, UrlDenial> {
        self.policy.hosts.check(url.peek().as_ref())
    }

    /// Checks a full downstream request: the URL's host must be declared, it must have no
    /// query, and method and path must pass [`EffectivePrivilege::authorize_request`].
    pub fn authorize_downstream<T: AsRef<str>>(
        &self,
        method: Method,
        url: Untrusted<T>,
    ) -> Result<AuthorizedRequest, RequestDenial> {
        let source = url.source();
        let allowed = self
            .policy
            .hosts
            .check(url.peek().as_ref())
            .map_err(RequestDenial::Url)?;
        if allowed.query().is_some() {
            return Err(RequestDenial::NoCapability {
                method,
                path: Excerpt::of(allowed.path()),
            });
        }
        let mut req =
            self.authorize_request(method, Untrusted::new(allowed.path().to_owned(), source))?;
        req.url = Some(allowed);
        Ok(req)
    }

    /// Checks a tool call proposed by the model: declared tool (exact name), tool scope in
    /// the effective privilege, arguments a JSON object (or, as in the OpenAI wire format, a
    /// string holding one) with no undeclared member, every required argument present and
    /// non-null, each of its declared type, and each resource argument through provenance.
    pub fn authorize_tool_call<N: AsRef<str>>(
        &self,
        name: Untrusted<N>,
        arguments: Untrusted<Value>,
    ) -> Result<AuthorizedCall, ToolDenial> {
        let source = arguments.source();
        let name = name.peek().as_ref();
        let Some(tool) = self.policy.tools.get(name) else {
            return Err(ToolDenial::UnknownTool {
                name: Excerpt::of(name),
            });
        };
        let tname = || tool.name.clone();
        if !self.scopes.contains(&tool.scope) {
            return Err(ToolDenial::InsufficientScope {
                tool: tname(),
                required: tool.scope.clone(),
            });
        }
        let parsed;
        let obj = match arguments.peek() {
            Value::Object(m) => m,
            Value::String(s) if s.len() <= MAX_ARGUMENTS_BYTES => {
                parsed = serde_json::from_str::<Value>(s)
                    .map_err(|_| ToolDenial::ArgumentsNotObject { tool: tname() })?;
                match &parsed {
                    Value::Object(m) => m,
                    _ => return Err(ToolDenial::ArgumentsNotObject { tool: tname() }),
                }
            }
            _ => return Err(ToolDenial::ArgumentsNotObject { tool: tname() }),
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !tool.args.iter().any(|a| &a.name == *k))
        {
            return Err(ToolDenial::UnexpectedArgument {
                tool: tname(),
                arg: Excerpt::of(k),
            });
        }
        let present = |a: &ArgSpec| obj.get(&a.name).filter(|v| !v.is_null());
        if let Some(a) = tool
            .args
            .iter()
            .find(|a| a.required && present(a).is_none())
        {
            return Err(ToolDenial::MissingArgument {
                tool: tname(),
                arg: a.name.clone(),
            });
        }
        let wrong = |a: &ArgSpec| ToolDenial::WrongType {
            tool: tname(),
            arg: a.name.clone(),
            expected: a.ty.name(),
        };
        // Types first for every argument, then provenance, so a schema error is reported
        // before any permission lookup.
        for a in &tool.args {
            if let Some(v) = present(a) {
                let ok = match a.ty {
                    ArgType::Resource(_) => v.is_string(),
                    ArgType::Integer => v.as_i64().is_some(),
                    ArgType::Bool => v.is_boolean(),
                };
                if !ok {
                    return Err(wrong(a));
                }
            }
        }
        let mut args = BTreeMap::new();
        for a in &tool.args {
            let Some(v) = present(a) else { continue };
            let arg = match (&a.ty, v) {
                (ArgType::Resource(kind), Value::String(s)) => {
                    let Some(kind) = self.policy.kinds.get(kind) else {
                        return Err(wrong(a));
                    };
                    let id = self
                        .validator
                        .authorize(kind, Untrusted::new(s.as_str(), source))
                        .map_err(|error| ToolDenial::Id {
                            tool: tname(),
                            arg: a.name.clone(),
                            error,
                        })?;
                    AuthorizedArg::Resource(id)
                }
                (ArgType::Integer, v) => {
                    AuthorizedArg::Integer(v.as_i64().ok_or_else(|| wrong(a))?)
                }
                (ArgType::Bool, Value::Bool(b)) => AuthorizedArg::Bool(*b),
                _ => return Err(wrong(a)),
            };
            args.insert(a.name.clone(), arg);
        }
        Ok(AuthorizedCall {
            tool: tool.name.clone(),
            scope: tool.scope.clone(),
            args,
        })
    }
}
