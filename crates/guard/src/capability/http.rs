//! HTTP capabilities: methods, path templates such as `/docs/{id}`, the [`Capability`] that
//! pairs them with a scope, and the default scope per method ([`MethodScopes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::provenance::{AuthorizedId, Untrusted};

/// An HTTP method a capability may name. Parsed case-sensitively (RFC 9110 §9.1: method
/// names are case-sensitive, and the standard ones are uppercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `OPTIONS`.
    Options,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
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
    /// [`Validator::authorize`](crate::provenance::Validator::authorize) before anything acts on it.
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

/// Convenience for callers that hold a method name from untrusted text: parses it exactly.
pub fn parse_method(m: &Untrusted<String>) -> Option<Method> {
    Method::parse(m.peek())
}
