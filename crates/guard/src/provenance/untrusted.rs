//! Untrusted values and what is said about them: where they came from ([`Source`]), the
//! wrapper that makes them unusable ([`Untrusted`]), the bounded [`Excerpt`] errors show, and
//! why an id was refused ([`IdRejection`], [`IdError`]).

use std::fmt;

use super::kind::ResourceKind;
use serde::{Deserialize, Serialize};

/// Where an untrusted value came from. The provenance rule treats every source except
/// [`Source::UserRequest`] as unable to introduce new identifiers on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// Text or tool calls produced by the model: the worst case is that it obeys every
    /// injected instruction.
    LlmOutput,
    /// The authenticated caller's own request (path, query, body). Still untrusted as to
    /// syntax and permission, but the caller is entitled to name resources.
    UserRequest,
    /// The result of a tool or downstream call fed back to the model (may list ids of other
    /// tenants).
    ToolResult,
    /// Content retrieved on the caller's behalf (documents, web pages): the vector of
    /// indirect prompt injection.
    RetrievedContent,
    /// Anything else not under the caller's control (headers of third parties, caches).
    Other,
}

impl Source {
    /// The stable snake_case name used in error messages and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::LlmOutput => "llm_output",
            Source::UserRequest => "user_request",
            Source::ToolResult => "tool_result",
            Source::RetrievedContent => "retrieved_content",
            Source::Other => "other",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value from an untrusted place, tagged with its [`Source`].
///
/// Deliberately unusable: no `Deref`, `AsRef`, `Display`, `Serialize` or getter. Turn it into an
/// [`AuthorizedId`](super::AuthorizedId) with [`Validator::authorize`](super::Validator::authorize); for values that are never used as an
/// identifier, tool name, URL or argument (free prose handed to the output scrubber), there is
/// the loudly named [`Untrusted::into_inner_unchecked`].
#[derive(Clone)]
pub struct Untrusted<T> {
    pub(super) value: T,
    pub(super) source: Source,
}

impl<T> Untrusted<T> {
    /// Wraps a value from `source`.
    pub fn new(value: T, source: Source) -> Self {
        Untrusted { value, source }
    }

    /// Shorthand for a value taken from the model's output.
    pub fn from_llm(value: T) -> Self {
        Untrusted::new(value, Source::LlmOutput)
    }

    /// Shorthand for a value taken from the authenticated caller's request.
    pub fn from_user(value: T) -> Self {
        Untrusted::new(value, Source::UserRequest)
    }

    /// Where the value came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The raw value, bypassing every check.
    ///
    /// Exists because not every model output is an identifier: prose returned to the caller
    /// has to reach the output scrubber, and the harness must record what the model proposed.
    /// Never feed the result into a path, URL, query, tool name or argument; grep for this
    /// name in review.
    pub fn into_inner_unchecked(self) -> T {
        self.value
    }

    /// Crate-internal read access, for the validators (this module and `capability`).
    pub(crate) fn peek(&self) -> &T {
        &self.value
    }
}

impl<T> fmt::Debug for Untrusted<T> {
    /// Shows the source only: the value may be an echoed secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Untrusted(<{}, redacted>)", self.source)
    }
}

/// How many characters of an offending value an error may show.
pub const EXCERPT_CHARS: usize = 8;

/// A bounded, escaped prefix of an offending value, for error messages and audit lines.
///
/// At most [`EXCERPT_CHARS`] characters; anything but printable ASCII (and `"`, `\`) is
/// written as `\u{..}`, so an excerpt cannot inject line breaks, terminal escapes or bidi
/// overrides into a log, and is too short to carry a useful part of a key or token.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Excerpt(String);

impl Excerpt {
    /// Builds the excerpt of `s`.
    pub fn of(s: &str) -> Self {
        let mut out = String::new();
        let mut chars = s.chars();
        for c in chars.by_ref().take(EXCERPT_CHARS) {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                out.push(c);
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        }
        if chars.next().is_some() {
            out.push_str("...");
        }
        Excerpt(out)
    }

    /// The escaped text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why an untrusted identifier was refused.
///
/// The checks run in the order of the variants, and the first failing one is reported, so a
/// generated family of fabricated ids has one expected reason. The explicit rejections come
/// before the kind's pattern on purpose: a kind configured with a loose pattern still never
/// lets traversal, encodings, look-alikes, wildcards or injection strings through.
/// [`IdRejection::as_str`] names are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[non_exhaustive]
pub enum IdRejection {
    /// The empty string.
    #[error("empty identifier")]
    Empty,
    /// Longer (in bytes) than the kind's `max_len`; checked first so no later check works on
    /// unbounded input.
    #[error("identifier too long")]
    TooLong,
    /// A NUL byte: truncation in C strings and many storage layers (`doc-a1\0../x`).
    #[error("NUL byte in identifier")]
    NulByte,
    /// CR or LF: header and log injection (CWE-93, CWE-117).
    #[error("CR/LF injection in identifier")]
    CrlfInjection,
    /// Any other C0/C1 control character or DEL.
    #[error("control character in identifier")]
    ControlChar,
    /// Zero-width or bidi-control characters (U+200B..U+200F, U+2060.., U+FEFF, U+202A..):
    /// invisible, so `doc-a1` and `doc-\u{200b}a1` look the same to a reviewer.
    #[error("invisible character in identifier")]
    InvisibleChar,
    /// Fullwidth forms (U+FF01..U+FF5E, U+3000), which NFKC folds to ASCII (`ｄｏｃ－１`).
    #[error("fullwidth character in identifier")]
    Fullwidth,
    /// Letters of other scripts that look like ASCII (Cyrillic `а`, Greek `ο`, mathematical
    /// alphanumerics, combining marks, IPA and modifier letters).
    #[error("look-alike (homoglyph) character in identifier")]
    Homoglyph,
    /// Any other non-ASCII character: identifiers are ASCII.
    #[error("non-ASCII character in identifier")]
    NonAscii,
    /// `..`, `/`, `\`, or an id that is `.`: escapes the resource collection (CWE-22).
    #[error("path traversal in identifier")]
    PathTraversal,
    /// `%XX` whose decoding still contains `%XX` (`%252f`): defeats single-decode filters.
    #[error("double percent-encoding in identifier")]
    DoubleEncoding,
    /// `%XX` percent-encoding (`%2e%2e`, `%2f`): decoded downstream into something else.
    #[error("percent-encoding in identifier")]
    PercentEncoding,
    /// Template syntax (`{{`, `}}`, `{%`, `${`, `#{`, `<%`): server-side template injection.
    #[error("template injection in identifier")]
    TemplateInjection,
    /// SQL quotes and comments (`'`, `"`, `--`, `#`): SQL injection (CWE-89).
    #[error("SQL injection in identifier")]
    SqlInjection,
    /// Shell metacharacters (`;`, `|`, `&`, `$`, backtick, `<`, `>`, parentheses, braces,
    /// `!`): command injection (CWE-78).
    #[error("shell metacharacter in identifier")]
    ShellInjection,
    /// `*`, `?` or a bare `%`: glob, LIKE and query wildcards that can select many resources.
    #[error("wildcard in identifier")]
    Wildcard,
    /// Printable ASCII that the kind's anchored pattern does not match.
    #[error("identifier does not match its kind's pattern")]
    PatternMismatch,
    /// Syntactically fine, but the principal may not access it ([`PermissionStore::permits`](super::PermissionStore::permits)):
    /// another tenant's id (CWE-639).
    #[error("principal is not permitted this resource")]
    NotPermitted,
    /// The provenance rule: the id came from somewhere other than the user's request, the
    /// user did not supply it, and the principal does not own it (CWE-1426).
    #[error("identifier was neither supplied by the user nor owned by the principal")]
    Unsourced,
}

impl IdRejection {
    /// Every reason, in check order.
    pub const ALL: [IdRejection; 19] = [
        IdRejection::Empty,
        IdRejection::TooLong,
        IdRejection::NulByte,
        IdRejection::CrlfInjection,
        IdRejection::ControlChar,
        IdRejection::InvisibleChar,
        IdRejection::Fullwidth,
        IdRejection::Homoglyph,
        IdRejection::NonAscii,
        IdRejection::PathTraversal,
        IdRejection::DoubleEncoding,
        IdRejection::PercentEncoding,
        IdRejection::TemplateInjection,
        IdRejection::SqlInjection,
        IdRejection::ShellInjection,
        IdRejection::Wildcard,
        IdRejection::PatternMismatch,
        IdRejection::NotPermitted,
        IdRejection::Unsourced,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdRejection::Empty => "empty",
            IdRejection::TooLong => "too_long",
            IdRejection::NulByte => "nul_byte",
            IdRejection::CrlfInjection => "crlf_injection",
            IdRejection::ControlChar => "control_char",
            IdRejection::InvisibleChar => "invisible_char",
            IdRejection::Fullwidth => "fullwidth",
            IdRejection::Homoglyph => "homoglyph",
            IdRejection::NonAscii => "non_ascii",
            IdRejection::PathTraversal => "path_traversal",
            IdRejection::DoubleEncoding => "double_encoding",
            IdRejection::PercentEncoding => "percent_encoding",
            IdRejection::Wildcard => "wildcard",
            IdRejection::TemplateInjection => "template_injection",
            IdRejection::SqlInjection => "sql_injection",
            IdRejection::ShellInjection => "shell_injection",
            IdRejection::PatternMismatch => "pattern_mismatch",
            IdRejection::NotPermitted => "not_permitted",
            IdRejection::Unsourced => "unsourced",
        }
    }

    /// The reason named `name`, if any.
    pub fn from_name(name: &str) -> Option<IdRejection> {
        IdRejection::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// True for the syntactic reasons (everything before the permission check).
    pub fn is_syntactic(self) -> bool {
        !matches!(self, IdRejection::NotPermitted | IdRejection::Unsourced)
    }
}

/// An identifier refused by [`Validator::authorize`](super::Validator::authorize): the reason plus enough context to act
/// on it, and never more of the value than an [`Excerpt`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} id from {origin} refused: {reason} ({len} bytes, starts {excerpt})")]
pub struct IdError {
    reason: IdRejection,
    kind: String,
    // Not named `source`: thiserror would take it for the error's cause.
    origin: Source,
    len: usize,
    excerpt: Excerpt,
}

impl IdError {
    pub(super) fn new(
        reason: IdRejection,
        kind: &ResourceKind,
        origin: Source,
        value: &str,
    ) -> Self {
        IdError {
            reason,
            kind: kind.name.to_string(),
            origin,
            len: value.len(),
            excerpt: Excerpt::of(value),
        }
    }

    /// Why the id was refused.
    pub fn reason(&self) -> IdRejection {
        self.reason
    }

    /// The name of the resource kind it was checked as.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Where the value came from.
    pub fn source(&self) -> Source {
        self.origin
    }

    /// The length in bytes of the offending value.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the offending value was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bounded, escaped prefix of the offending value.
    pub fn excerpt(&self) -> &Excerpt {
        &self.excerpt
    }
}
