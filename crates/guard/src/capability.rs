//! Capabilities: what an endpoint may do downstream on the caller's behalf, and the checks
//! that keep a model (or a confused handler) inside that.
//!
//! Invariant AGENCY of docs/ARCHITECTURE.md §4: no downstream call outside the endpoint's declared
//! capabilities, no request to a URL the model invented. Each endpoint declares
//!
//! * HTTP capabilities, parsed from strings like `"GET /docs/{id}"` ([`Capability`]); a
//!   concrete request matches one only with the same method, the same literal segments, and one
//!   non-empty segment per `{placeholder}`, whose value comes back as an [`Untrusted`] that
//!   still has to pass provenance;
//! * tools ([`ToolSpec`]): a name, the scope it needs and a small argument schema (resource
//!   ids of some kind, integers, booleans; no extra arguments);
//! * allowed URL hosts ([`HostAllowlist`]), matched exactly after a strict parse.
//!
//! Every capability and tool names the scope it needs (by default from the method:
//! [`MethodScopes`]). The **effective privilege** of a request is the token's scopes
//! intersected with the scopes the endpoint's own capabilities name
//! ([`EndpointPolicy::effective_scopes`]): an overscoped token gives the model nothing extra,
//! because an undeclared capability never matches whatever the token says.
//!
//! The checks hand back authorized types with private fields ([`AuthorizedRequest`],
//! [`AuthorizedCall`], [`AllowedUrl`]) or a typed denial.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use super::provenance::{AuthorizedId, Excerpt, IdError, ResourceKind, Untrusted, Validator};
use super::scope::ScopeSet;

// ---------------------------------------------------------------------------------------------
// Methods and path templates

/// An HTTP method a capability may name. Parsed case-sensitively (RFC 9110 §9.1: method
/// names are case-sensitive, and the standard ones are uppercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Options,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Options,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    /// The uppercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Parses an uppercase method name; `get` or `Get` is no method.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// True for methods that RFC 9110 §9.2.1 calls safe (read-only).
    pub fn is_safe(self) -> bool {
        matches!(self, Method::Get | Method::Head | Method::Options)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = CapabilityParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::parse(s).ok_or(CapabilityParseError::UnknownMethod)
    }
}

/// Why a capability string such as `"GET /docs/{id}"` did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityParseError {
    /// The empty string.
    #[error("empty capability")]
    Empty,
    /// Longer than [`MAX_TEMPLATE_LEN`].
    #[error("capability too long")]
    TooLong,
    /// Not exactly `METHOD SP PATH`: leading, trailing or repeated whitespace, tabs.
    #[error("capability must be \"METHOD /path\" with a single space")]
    BadShape,
    /// The method is not one of [`Method::ALL`] (case-sensitive).
    #[error("unknown HTTP method")]
    UnknownMethod,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// `//` or a trailing `/` (other than the root path `/`).
    #[error("empty path segment")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("dot segment in path")]
    DotSegment,
    /// A `?` or `#`: capabilities name paths, not queries.
    #[error("query or fragment in path template")]
    QueryOrFragment,
    /// A literal segment with a character outside RFC 3986 unreserved (`A-Za-z0-9-._~`).
    #[error("invalid character in path segment")]
    InvalidChar,
    /// A `{` or `}` that is not a whole `{name}` segment (`doc-{id}`, `{id`, `{}`).
    #[error("placeholder must be a whole segment {{name}}")]
    BadPlaceholder,
    /// A placeholder name that is not `[a-z_][a-z0-9_]*` of at most 32 bytes.
    #[error("placeholder name must match [a-z_][a-z0-9_]*")]
    BadParamName,
    /// The same placeholder twice.
    #[error("duplicate placeholder")]
    DuplicateParam,
}

/// Maximum length of a capability string.
pub const MAX_TEMPLATE_LEN: usize = 1024;

/// One segment of a path template.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Matched byte for byte.
    Literal(String),
    /// `{name}`: matches one non-empty segment, returned as untrusted.
    Param(String),
}

/// A path template such as `/docs/{id}/versions`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

impl PathTemplate {
    /// Parses `/seg/{param}/...`. The root `/` has no segments.
    pub fn parse(path: &str) -> Result<Self, CapabilityParseError> {
        if path.len() > MAX_TEMPLATE_LEN {
            return Err(CapabilityParseError::TooLong);
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(CapabilityParseError::NotAbsolute);
        };
        if path.contains(['?', '#']) {
            return Err(CapabilityParseError::QueryOrFragment);
        }
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(PathTemplate { segments });
        }
        let mut names = BTreeSet::new();
        for seg in rest.split('/') {
            if seg.is_empty() {
                return Err(CapabilityParseError::EmptySegment);
            }
            if seg == "." || seg == ".." {
                return Err(CapabilityParseError::DotSegment);
            }
            if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let b = inner.as_bytes();
                let ok = !b.is_empty()
                    && b.len() <= 32
                    && (b[0].is_ascii_lowercase() || b[0] == b'_')
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
                if !ok {
                    return Err(if inner.contains(['{', '}']) || inner.is_empty() {
                        CapabilityParseError::BadPlaceholder
                    } else {
                        CapabilityParseError::BadParamName
                    });
                }
                if !names.insert(inner) {
                    return Err(CapabilityParseError::DuplicateParam);
                }
                segments.push(Segment::Param(inner.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err(CapabilityParseError::BadPlaceholder);
            } else if !seg.bytes().all(is_unreserved) {
                return Err(CapabilityParseError::InvalidChar);
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(PathTemplate { segments })
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The placeholder names, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Matches a concrete path (no query, no fragment). Literal segments must be equal byte
    /// for byte; each placeholder takes one non-empty segment, kept raw (still
    /// percent-encoded) so that provenance sees exactly what was sent.
    fn match_path<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let rest = path.strip_prefix('/')?;
        if path.contains(['?', '#']) {
            return None;
        }
        if rest.is_empty() {
            return self.segments.is_empty().then(Vec::new);
        }
        let mut parts = rest.split('/');
        let mut params = Vec::new();
        for seg in &self.segments {
            let part = parts.next()?;
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((name.as_str(), part)),
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(params)
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::Param(p) => write!(f, "/{{{p}}}")?,
            }
        }
        Ok(())
    }
}

/// One downstream HTTP call an endpoint may make: a method, a path template, and the scope it
/// needs (explicit, or from the endpoint's [`MethodScopes`]).
///
/// `Display` writes the capability string back (`GET /docs/{id}`) without the scope, so
/// `parse(display(c))` gives `c` back for a capability without an explicit scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Capability {
    method: Method,
    path: PathTemplate,
    scope: Option<String>,
}

impl TryFrom<String> for Capability {
    type Error = CapabilityParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Capability::parse(&s)
    }
}

impl FromStr for Capability {
    type Err = CapabilityParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::parse(s)
    }
}

impl Capability {
    /// Parses `"METHOD /path/{param}"`: an uppercase method, exactly one space, an absolute
    /// path template.
    pub fn parse(s: &str) -> Result<Self, CapabilityParseError> {
        if s.is_empty() {
            return Err(CapabilityParseError::Empty);
        }
        if s.len() > MAX_TEMPLATE_LEN {
            return Err(CapabilityParseError::TooLong);
        }
        let Some((method, path)) = s.split_once(' ') else {
            return Err(CapabilityParseError::BadShape);
        };
        if method.is_empty() || path.is_empty() || s.chars().any(|c| c.is_whitespace() && c != ' ')
        {
            return Err(CapabilityParseError::BadShape);
        }
        if path.contains(char::is_whitespace) {
            return Err(CapabilityParseError::BadShape);
        }
        let method = Method::parse(method).ok_or(CapabilityParseError::UnknownMethod)?;
        let path = PathTemplate::parse(path)?;
        Ok(Capability {
            method,
            path,
            scope: None,
        })
    }

    /// A capability from parts.
    pub fn new(method: Method, path: PathTemplate) -> Self {
        Capability {
            method,
            path,
            scope: None,
        }
    }

    /// Names the scope this capability needs, overriding the endpoint's [`MethodScopes`].
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The path template.
    pub fn path(&self) -> &PathTemplate {
        &self.path
    }

    /// The explicit scope, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Matches a concrete request. On a match, returns each placeholder's segment as an
    /// [`Untrusted`] value with the path's source: it still has to go through
    /// [`Validator::authorize`] before anything acts on it.
    pub fn match_request<T: AsRef<str>>(
        &self,
        method: Method,
        path: &Untrusted<T>,
    ) -> Option<Vec<(String, Untrusted<String>)>> {
        if method != self.method {
            return None;
        }
        let params = self.path.match_path(path.peek().as_ref())?;
        Some(
            params
                .into_iter()
                .map(|(n, v)| (n.to_owned(), Untrusted::new(v.to_owned(), path.source())))
                .collect(),
        )
    }

    /// Builds the concrete path from authorized ids, one per placeholder. Characters outside
    /// RFC 3986 unreserved are percent-encoded (possible only with a kind whose pattern allows
    /// them), so an id can never add a segment.
    pub fn render(&self, ids: &BTreeMap<String, AuthorizedId>) -> Result<String, RenderError> {
        let mut out = String::new();
        for seg in &self.path.segments {
            out.push('/');
            match seg {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => {
                    let id = ids
                        .get(p)
                        .ok_or_else(|| RenderError::MissingParam(p.clone()))?;
                    for b in id.as_str().bytes() {
                        if is_unreserved(b) {
                            out.push(char::from(b));
                        } else {
                            out.push_str(&format!("%{b:02X}"));
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(out)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A placeholder had no id in [`Capability::render`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// No id for the named placeholder.
    #[error("no id for placeholder {{{0}}}")]
    MissingParam(String),
}

/// The scope each method needs when a capability names none. Configurable per endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct MethodScopes(BTreeMap<Method, String>);

impl MethodScopes {
    /// No defaults: every capability must name its scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Safe methods (GET, HEAD, OPTIONS) need `read`, the others need `write`: e.g.
    /// `MethodScopes::read_write("docs:read", "docs:write")`.
    pub fn read_write(read: &str, write: &str) -> Self {
        let mut m = MethodScopes::new();
        for method in Method::ALL {
            m.set(method, if method.is_safe() { read } else { write });
        }
        m
    }

    /// Sets the scope of one method.
    pub fn set(&mut self, method: Method, scope: &str) -> &mut Self {
        self.0.insert(method, scope.to_owned());
        self
    }

    /// The scope of a method, if configured.
    pub fn get(&self, method: Method) -> Option<&str> {
        self.0.get(&method).map(String::as_str)
    }
}

// ---------------------------------------------------------------------------------------------
// Tools

/// The type of one tool argument.
///
/// Deserializes as `"integer"`, `"bool"` or `{ resource = "doc" }`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    /// A JSON string that must pass provenance as an id of the named [`ResourceKind`].
    Resource(String),
    /// A JSON integer that fits `i64` (no floats, no numeric strings).
    Integer,
    /// A JSON boolean (no `"true"` strings).
    Bool,
}

impl ArgType {
    fn name(&self) -> &'static str {
        match self {
            ArgType::Resource(_) => "resource id string",
            ArgType::Integer => "integer",
            ArgType::Bool => "bool",
        }
    }
}

fn default_true() -> bool {
    true
}

/// One declared argument of a tool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// The JSON member name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ArgType,
    /// Whether it must be present (default true). A JSON `null` counts as absent.
    #[serde(default = "default_true")]
    pub required: bool,
}

impl ArgSpec {
    /// A required argument.
    pub fn required(name: &str, ty: ArgType) -> Self {
        ArgSpec {
            name: name.to_owned(),
            ty,
            required: true,
        }
    }

    /// An optional argument.
    pub fn optional(name: &str, ty: ArgType) -> Self {
        ArgSpec {
            name: name.to_owned(),
            ty,
            required: false,
        }
    }
}

/// A tool an endpoint lets the model call: its exact name, the scope it needs and its
/// arguments (no others are accepted).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The exact tool name (`[A-Za-z_][A-Za-z0-9_-]{0,63}`); compared byte for byte.
    pub name: String,
    /// The scope a call needs.
    pub scope: String,
    /// The arguments.
    #[serde(default)]
    pub args: Vec<ArgSpec>,
}

impl ToolSpec {
    /// A tool with no arguments yet.
    pub fn new(name: &str, scope: &str) -> Self {
        ToolSpec {
            name: name.to_owned(),
            scope: scope.to_owned(),
            args: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: ArgSpec) -> Self {
        self.args.push(arg);
        self
    }
}

/// One validated tool argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizedArg {
    /// A resource id that passed provenance.
    Resource(AuthorizedId),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl AuthorizedArg {
    /// The argument as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            AuthorizedArg::Resource(id) => Value::String(id.as_str().to_owned()),
            AuthorizedArg::Integer(i) => Value::from(*i),
            AuthorizedArg::Bool(b) => Value::Bool(*b),
        }
    }
}

/// A tool call that passed every check; only [`EffectivePrivilege::authorize_tool_call`]
/// makes one. Execute this, not the model's original JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedCall {
    tool: String,
    scope: String,
    args: BTreeMap<String, AuthorizedArg>,
}

impl AuthorizedCall {
    /// The declared tool name.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The scope it was authorized under.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// One argument (absent optional arguments are absent).
    pub fn arg(&self, name: &str) -> Option<&AuthorizedArg> {
        self.args.get(name)
    }

    /// All arguments, by name.
    pub fn args(&self) -> &BTreeMap<String, AuthorizedArg> {
        &self.args
    }

    /// The arguments as a JSON object rebuilt from validated values.
    pub fn arguments_json(&self) -> Value {
        Value::Object(
            self.args
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }
}

/// Maximum size of a tool call's arguments when they arrive as a JSON string.
pub const MAX_ARGUMENTS_BYTES: usize = 64 * 1024;

/// Why a tool call proposed by the model was refused. Checked in the order of the variants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolDenial {
    /// The endpoint declares no tool of this exact name (invented, look-alike, other
    /// endpoint's).
    #[error("undeclared tool {name}")]
    UnknownTool {
        /// An excerpt of the proposed name.
        name: Excerpt,
    },
    /// The tool's scope is not in the effective privilege.
    #[error("tool {tool} needs scope {required}, not in the effective privilege")]
    InsufficientScope { tool: String, required: String },
    /// The arguments are not a JSON object (nor a string holding one, of at most
    /// [`MAX_ARGUMENTS_BYTES`]).
    #[error("tool {tool}: arguments are not a JSON object")]
    ArgumentsNotObject { tool: String },
    /// An argument the schema does not declare.
    #[error("tool {tool}: undeclared argument {arg}")]
    UnexpectedArgument { tool: String, arg: Excerpt },
    /// A required argument is absent or null.
    #[error("tool {tool}: missing argument {arg}")]
    MissingArgument { tool: String, arg: String },
    /// An argument of the wrong JSON type.
    #[error("tool {tool}: argument {arg} must be a {expected}")]
    WrongType {
        tool: String,
        arg: String,
        expected: &'static str,
    },
    /// A resource argument that failed provenance.
    #[error("tool {tool}: argument {arg}: {error}")]
    Id {
        tool: String,
        arg: String,
        #[source]
        error: IdError,
    },
}

impl ToolDenial {
    /// A stable snake_case name for the kind of denial.
    pub fn as_str(&self) -> &'static str {
        match self {
            ToolDenial::UnknownTool { .. } => "unknown_tool",
            ToolDenial::InsufficientScope { .. } => "insufficient_scope",
            ToolDenial::ArgumentsNotObject { .. } => "arguments_not_object",
            ToolDenial::UnexpectedArgument { .. } => "unexpected_argument",
            ToolDenial::MissingArgument { .. } => "missing_argument",
            ToolDenial::WrongType { .. } => "wrong_type",
            ToolDenial::Id { .. } => "id",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// URLs

/// Why a URL was refused. Syntax reasons come first; then, for a well-formed URL whose host
/// is not declared, what kind of host it is (all are refused alike; the class tells the
/// report what the model was reaching for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[non_exhaustive]
pub enum UrlDenial {
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL too long")]
    TooLong,
    /// Whitespace, control characters, non-ASCII or `\`: parsers disagree on these (WHATWG
    /// strips tabs and newlines, turns `\` into `/`), so they are refused rather than
    /// normalized.
    #[error("invalid character in URL")]
    InvalidChar,
    /// A scheme other than `http` or `https` (`file:`, `gopher:`, `javascript:`, ...).
    #[error("scheme not allowed")]
    BadScheme,
    /// No `scheme://authority` (relative URLs, `http:/host`, `http:host`).
    #[error("URL has no authority")]
    MissingAuthority,
    /// `user:pass@` in the authority (`http://docs.test@evil.test/`).
    #[error("userinfo in URL")]
    UserInfo,
    /// An empty host (`http:///x`, `http://:80/`).
    #[error("empty host")]
    EmptyHost,
    /// A port that is empty, not decimal, has leading zeros, or is out of 1..=65535.
    #[error("invalid port")]
    BadPort,
    /// A host name that is not lowercase-able LDH labels (percent-encoding, `_`, empty
    /// labels, trailing dot, over 253 bytes).
    #[error("invalid host")]
    InvalidHost,
    /// A numeric host that is not a canonical dotted quad: decimal (`2130706433`), octal
    /// (`0177.0.0.1`), hex (`0x7f.1`), short (`127.1`) forms.
    #[error("ambiguous IPv4 form")]
    AmbiguousIpv4,
    /// A bracketed IPv6 literal that does not parse (including zone ids).
    #[error("invalid IPv6 literal")]
    BadIpv6,
    /// Undeclared loopback: `localhost`, `*.localhost`, `127.0.0.0/8`, `::1`, mapped forms.
    #[error("loopback host not declared")]
    Loopback,
    /// Undeclared cloud metadata endpoint (`169.254.169.254`, `fd00:ec2::254`,
    /// `metadata.google.internal`, `100.100.100.200`).
    #[error("metadata host not declared")]
    Metadata,
    /// Undeclared link-local address (`169.254.0.0/16`, `fe80::/10`).
    #[error("link-local host not declared")]
    LinkLocal,
    /// Undeclared private address (RFC 1918, `100.64.0.0/10`, `fc00::/7`).
    #[error("private address not declared")]
    PrivateAddress,
    /// Undeclared unspecified or "this network" address (`0.0.0.0/8`, `::`).
    #[error("unspecified address")]
    Unspecified,
    /// Any other host that is not declared.
    #[error("host not declared")]
    UndeclaredHost,
    /// The host is declared, but not with this port.
    #[error("port not declared for host")]
    UndeclaredPort,
}

impl UrlDenial {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            UrlDenial::TooLong => "too_long",
            UrlDenial::InvalidChar => "invalid_char",
            UrlDenial::BadScheme => "bad_scheme",
            UrlDenial::MissingAuthority => "missing_authority",
            UrlDenial::UserInfo => "user_info",
            UrlDenial::EmptyHost => "empty_host",
            UrlDenial::BadPort => "bad_port",
            UrlDenial::InvalidHost => "invalid_host",
            UrlDenial::AmbiguousIpv4 => "ambiguous_ipv4",
            UrlDenial::BadIpv6 => "bad_ipv6",
            UrlDenial::Loopback => "loopback",
            UrlDenial::Metadata => "metadata",
            UrlDenial::LinkLocal => "link_local",
            UrlDenial::PrivateAddress => "private_address",
            UrlDenial::Unspecified => "unspecified",
            UrlDenial::UndeclaredHost => "undeclared_host",
            UrlDenial::UndeclaredPort => "undeclared_port",
        }
    }

    /// The variant named `name`, if any (for tables of expected outcomes).
    pub fn from_name(name: &str) -> Option<UrlDenial> {
        use UrlDenial::*;
        [
            TooLong,
            InvalidChar,
            BadScheme,
            MissingAuthority,
            UserInfo,
            EmptyHost,
            BadPort,
            InvalidHost,
            AmbiguousIpv4,
            BadIpv6,
            Loopback,
            Metadata,
            LinkLocal,
            PrivateAddress,
            Unspecified,
            UndeclaredHost,
            UndeclaredPort,
        ]
        .into_iter()
        .find(|d| d.as_str() == name)
    }
}

/// Maximum URL length.
pub const MAX_URL_LEN: usize = 2048;

/// A URL scheme confab lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed host: a lowercase DNS name, or an IP literal in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses `host[:port]` (no scheme, no userinfo). Strict: see [`UrlDenial`].
fn parse_authority(auth: &str) -> Result<(Host, Option<u16>), UrlDenial> {
    if auth.contains('@') {
        return Err(UrlDenial::UserInfo);
    }
    let (host, port) = if let Some(inner) = auth.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err(UrlDenial::BadIpv6);
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlDenial::BadPort)?),
        };
        let addr = Ipv6Addr::from_str(v6).map_err(|_| UrlDenial::BadIpv6)?;
        (Host::V6(addr), port)
    } else {
        let (h, port) = match auth.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        };
        (parse_host_name(h)?, port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, UrlDenial> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.starts_with('0') {
        return Err(UrlDenial::BadPort);
    }
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(UrlDenial::BadPort),
    }
}

fn parse_host_name(h: &str) -> Result<Host, UrlDenial> {
    if h.is_empty() {
        return Err(UrlDenial::EmptyHost);
    }
    if h.len() > 253 || h.contains(['[', ']', ':']) {
        return Err(UrlDenial::InvalidHost);
    }
    let lower = h.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    // WHATWG parses a host whose last label is numeric ("ends in a number") as IPv4 in any of
    // its historic forms; only the canonical dotted quad is accepted here.
    let last = labels.last().copied().unwrap_or_default();
    let numeric = |l: &str| {
        !l.is_empty()
            && (l.bytes().all(|b| b.is_ascii_digit())
                || l.strip_prefix("0x")
                    .is_some_and(|x| x.bytes().all(|b| b.is_ascii_hexdigit())))
    };
    if numeric(last) {
        let canonical = labels.len() == 4
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 3
                    && l.bytes().all(|b| b.is_ascii_digit())
                    && (l.len() == 1 || !l.starts_with('0'))
                    && l.parse::<u8>().is_ok()
            });
        if !canonical {
            return Err(UrlDenial::AmbiguousIpv4);
        }
        let addr = Ipv4Addr::from_str(&lower).map_err(|_| UrlDenial::AmbiguousIpv4)?;
        return Ok(Host::V4(addr));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !labels.iter().all(|l| label_ok(l)) {
        return Err(UrlDenial::InvalidHost);
    }
    Ok(Host::Name(lower))
}

fn classify_v4(a: Ipv4Addr) -> UrlDenial {
    let o = a.octets();
    if a.is_loopback() {
        UrlDenial::Loopback
    } else if a == Ipv4Addr::new(169, 254, 169, 254) || a == Ipv4Addr::new(100, 100, 100, 200) {
        UrlDenial::Metadata
    } else if a.is_link_local() {
        UrlDenial::LinkLocal
    } else if a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        UrlDenial::PrivateAddress
    } else if o[0] == 0 {
        UrlDenial::Unspecified
    } else {
        UrlDenial::UndeclaredHost
    }
}

fn classify(host: &Host) -> UrlDenial {
    match host {
        Host::Name(n) => {
            if n == "localhost" || n.ends_with(".localhost") {
                UrlDenial::Loopback
            } else if n == "metadata.google.internal" || n == "metadata" {
                UrlDenial::Metadata
            } else {
                UrlDenial::UndeclaredHost
            }
        }
        Host::V4(a) => classify_v4(*a),
        Host::V6(a) => {
            let s = a.segments();
            if a.is_loopback() {
                UrlDenial::Loopback
            } else if a.is_unspecified() {
                UrlDenial::Unspecified
            } else if let Some(v4) = a.to_ipv4_mapped() {
                classify_v4(v4)
            } else if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // IPv4-compatible (deprecated) and NAT64 forms embed an IPv4 address.
                let [a1, a2, b1, b2] = [s[6] >> 8, s[6] & 0xff, s[7] >> 8, s[7] & 0xff];
                classify_v4(Ipv4Addr::new(a1 as u8, a2 as u8, b1 as u8, b2 as u8))
            } else if *a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                UrlDenial::Metadata
            } else if (s[0] & 0xffc0) == 0xfe80 {
                UrlDenial::LinkLocal
            } else if (s[0] & 0xfe00) == 0xfc00 {
                UrlDenial::PrivateAddress
            } else {
                UrlDenial::UndeclaredHost
            }
        }
    }
}

/// A URL that passed the allowlist: scheme, canonical host, effective port, path and query
/// (the fragment, never sent to a server, is dropped). Only [`HostAllowlist::check`] makes
/// one; `Display` writes the normalized URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AllowedUrl {
    scheme: Scheme,
    host: Host,
    port: u16,
    path: String,
    query: Option<String>,
}

impl AllowedUrl {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The canonical host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The effective port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path (at least `/`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

impl fmt::Display for AllowedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// The hosts an endpoint may reach, matched exactly (host and port) after a strict parse.
///
/// A strict parser of our own rather than the `url` crate: `url` implements WHATWG, which
/// *normalizes* the tricks (decimal and octal IPv4, `\` as `/`, stripped tabs) into something
/// that may then match; here every such form is refused outright, so the guard and whatever
/// parser the target uses cannot disagree about an accepted URL.
///
/// An entry without a port allows only the scheme's default port (80/443): declaring
/// `docs.test` does not open `docs.test:22`.
///
/// Deserializes from a list of entries: `hosts = ["docs.test", "127.0.0.1:8080"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct HostAllowlist {
    entries: BTreeSet<(Host, Option<u16>)>,
}

impl TryFrom<Vec<String>> for HostAllowlist {
    type Error = UrlDenial;
    fn try_from(v: Vec<String>) -> Result<Self, UrlDenial> {
        let mut h = HostAllowlist::new();
        for e in &v {
            h.allow(e)?;
        }
        Ok(h)
    }
}

impl HostAllowlist {
    /// An empty allowlist: no URL passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `host` or `host:port` (`docs.test`, `127.0.0.1:8080`, `[::1]:9000`).
    pub fn allow(&mut self, authority: &str) -> Result<&mut Self, UrlDenial> {
        if authority.is_empty()
            || authority.len() > MAX_URL_LEN
            || !authority
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
        {
            return Err(UrlDenial::InvalidChar);
        }
        let (host, port) = parse_authority(authority)?;
        self.entries.insert((host, port));
        Ok(self)
    }

    /// True when no host is declared.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parses `url` strictly and accepts it only if its host and port are declared.
    pub fn check(&self, url: &str) -> Result<AllowedUrl, UrlDenial> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlDenial::TooLong);
        }
        if !url
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
        {
            return Err(UrlDenial::InvalidChar);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            // `http:/x`, `http:x`, `javascript:...`, `file:...`, relative references.
            return Err(match url.split_once(':') {
                Some((s, _)) if !s.contains(['/', '?', '#']) && !is_http(s) => UrlDenial::BadScheme,
                _ => UrlDenial::MissingAuthority,
            });
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(UrlDenial::BadScheme),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(UrlDenial::EmptyHost);
        }
        let (host, port) = parse_authority(authority)?;
        let effective = port.unwrap_or(scheme.default_port());
        let declared = self
            .entries
            .iter()
            .any(|(h, p)| h == &host && p.unwrap_or(scheme.default_port()) == effective);
        if !declared {
            if self.entries.iter().any(|(h, _)| h == &host) {
                return Err(UrlDenial::UndeclaredPort);
            }
            return Err(classify(&host));
        }
        let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (tail, None),
        };
        Ok(AllowedUrl {
            scheme,
            host,
            port: effective,
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            query,
        })
    }
}

fn is_http(s: &str) -> bool {
    s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https")
}

// ---------------------------------------------------------------------------------------------
// Endpoint policy and effective privilege

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
    NoCapability { method: Method, path: Excerpt },
    /// A capability matches, but its scope is not in the effective privilege.
    #[error("capability {capability} needs scope {required}, not in the effective privilege")]
    InsufficientScope {
        capability: String,
        required: String,
    },
    /// A path parameter failed provenance.
    #[error("capability {capability}: parameter {param}: {error}")]
    Id {
        capability: String,
        param: String,
        #[source]
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

/// Convenience for callers that hold a method name from untrusted text: parses it exactly.
pub fn parse_method(m: &Untrusted<String>) -> Option<Method> {
    Method::parse(m.peek())
}
