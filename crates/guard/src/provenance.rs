//! Provenance: values from untrusted places (above all, LLM output) cannot be used as
//! resource identifiers until they have been validated and authorized.
//!
//! The threat (docs/ARCHITECTURE.md §1, invariant PROVENANCE in §4): a model invents or is steered into
//! an identifier (`doc-b1` of another tenant, `../admin`, `%2e%2e%2f`, `dоc-a1` with a
//! Cyrillic `о`, `*`, `1'--`) and the API acts on it with the caller's token. Here the type
//! system closes that door:
//!
//! * [`Untrusted<T>`] wraps such a value together with its [`Source`]. It has no `Deref`, no
//!   `Display`, no `AsRef`, no `Serialize` and no accessor; its `Debug` shows the source only.
//!   The one way out that keeps the value usable as an identifier is [`Validator::authorize`].
//! * [`Validator::authorize`] applies, in a fixed order, the explicit rejections of
//!   [`IdRejection`] (traversal, encodings, control and look-alike characters, wildcards,
//!   injection strings), the kind's anchored, length-capped pattern ([`ResourceKind`]), the
//!   permission check ([`PermissionStore::permits`]) and the provenance rule (an id that did not
//!   come from the user's request must be one the user supplied or one the principal owns).
//! * The result, [`AuthorizedId`], has private fields and no public constructor: a handler
//!   that takes an `AuthorizedId` cannot be handed an unvalidated string.
//!
//! Errors ([`IdError`]) never carry more than [`EXCERPT_CHARS`] characters of the offending
//! value, escaped, so an LLM output that echoes a secret into an "id" cannot push that secret
//! into a log line through the guard.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use regex::Regex;
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
/// [`AuthorizedId`] with [`Validator::authorize`]; for values that are never used as an
/// identifier, tool name, URL or argument (free prose handed to the output scrubber), there is
/// the loudly named [`Untrusted::into_inner_unchecked`].
#[derive(Clone)]
pub struct Untrusted<T> {
    value: T,
    source: Source,
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
    /// Syntactically fine, but the principal may not access it ([`PermissionStore::permits`]):
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

/// An identifier refused by [`Validator::authorize`]: the reason plus enough context to act
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
    fn new(reason: IdRejection, kind: &ResourceKind, origin: Source, value: &str) -> Self {
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

/// The default id pattern: an ASCII letter or digit, then up to 63 letters, digits, `_`, `-`.
pub const DEFAULT_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";
/// The default length cap, in bytes.
pub const DEFAULT_MAX_LEN: usize = 64;
/// The largest `max_len` a kind may declare: identifiers are short, and the cap bounds the
/// work of every check.
pub const MAX_MAX_LEN: usize = 1024;

/// A kind of resource (documents, users, tickets): a name, an anchored pattern compiled once,
/// and a length cap.
///
/// The pattern is always matched as `^(?:pattern)$`, so a pattern written without anchors
/// cannot match a substring. Deserializes from `{ name, pattern?, max_len? }`.
#[derive(Clone, Deserialize)]
#[serde(try_from = "ResourceKindSpec")]
pub struct ResourceKind {
    name: Arc<str>,
    pattern: Arc<str>,
    anchored: Regex,
    max_len: usize,
}

/// Why a [`ResourceKind`] could not be built (configuration errors, not request errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KindError {
    /// The name is empty or not `[a-z][a-z0-9_-]*`.
    #[error("resource kind name must match [a-z][a-z0-9_-]*")]
    BadName,
    /// `max_len` is 0 or above [`MAX_MAX_LEN`].
    #[error("max_len must be between 1 and {MAX_MAX_LEN}")]
    BadMaxLen,
    /// The pattern does not compile; the message is the regex crate's.
    #[error("invalid pattern: {0}")]
    BadPattern(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceKindSpec {
    name: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    max_len: Option<usize>,
}

impl TryFrom<ResourceKindSpec> for ResourceKind {
    type Error = KindError;
    fn try_from(s: ResourceKindSpec) -> Result<Self, KindError> {
        ResourceKind::new(
            &s.name,
            s.pattern.as_deref().unwrap_or(DEFAULT_PATTERN),
            s.max_len.unwrap_or(DEFAULT_MAX_LEN),
        )
    }
}

impl ResourceKind {
    /// A kind with its own pattern and cap. The pattern is compiled here, once.
    pub fn new(name: &str, pattern: &str, max_len: usize) -> Result<Self, KindError> {
        let mut chars = name.chars();
        let name_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(KindError::BadName);
        }
        if max_len == 0 || max_len > MAX_MAX_LEN {
            return Err(KindError::BadMaxLen);
        }
        let anchored = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| KindError::BadPattern(e.to_string()))?;
        Ok(ResourceKind {
            name: name.into(),
            pattern: pattern.into(),
            anchored,
            max_len,
        })
    }

    /// A kind with [`DEFAULT_PATTERN`] and [`DEFAULT_MAX_LEN`].
    pub fn with_default_pattern(name: &str) -> Result<Self, KindError> {
        ResourceKind::new(name, DEFAULT_PATTERN, DEFAULT_MAX_LEN)
    }

    /// The kind's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pattern as configured (before anchoring).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The length cap in bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The syntactic checks alone (everything up to and including the pattern), with no
    /// permission or provenance decision. Useful to vet configured ids (`owns = [...]`).
    pub fn check_syntax(&self, id: &str) -> Result<(), IdRejection> {
        check_syntax(id, self)
    }
}

impl PartialEq for ResourceKind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.pattern == other.pattern && self.max_len == other.max_len
    }
}

impl Eq for ResourceKind {}

impl fmt::Debug for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceKind")
            .field("name", &self.name)
            .field("pattern", &self.pattern)
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// Classifies a non-ASCII character (see the variants of [`IdRejection`]).
fn classify_non_ascii(c: char) -> IdRejection {
    match c {
        '\u{80}'..='\u{9f}' => IdRejection::ControlChar,
        '\u{ad}'
        | '\u{34f}'
        | '\u{61c}'
        | '\u{115f}'
        | '\u{1160}'
        | '\u{17b4}'
        | '\u{17b5}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{3164}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{e0000}'..='\u{e007f}' => IdRejection::InvisibleChar,
        '\u{3000}' | '\u{ff01}'..='\u{ff5e}' => IdRejection::Fullwidth,
        // Latin-1 and Latin Extended letters (`ı`, `ſ`, `à`), IPA, modifier letters,
        // combining marks, Greek, Cyrillic, Armenian, Cherokee, Latin Extended Additional,
        // superscripts and subscripts, letterlike symbols, circled alphanumerics,
        // mathematical alphanumerics.
        '\u{c0}'..='\u{24f}'
        | '\u{250}'..='\u{2ff}'
        | '\u{300}'..='\u{36f}'
        | '\u{370}'..='\u{3ff}'
        | '\u{400}'..='\u{52f}'
        | '\u{530}'..='\u{58f}'
        | '\u{13a0}'..='\u{13ff}'
        | '\u{1d00}'..='\u{1dff}'
        | '\u{1e00}'..='\u{1eff}'
        | '\u{2070}'..='\u{209f}'
        | '\u{2100}'..='\u{214f}'
        | '\u{2460}'..='\u{24ff}'
        | '\u{a640}'..='\u{a69f}'
        | '\u{1d400}'..='\u{1d7ff}' => IdRejection::Homoglyph,
        _ => IdRejection::NonAscii,
    }
}

/// True when `s` holds a `%XX` escape (two hex digits).
fn has_escape(s: &[u8]) -> bool {
    s.windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// Decodes `%XX` escapes once (bytes that are not escapes are kept).
fn percent_decode_once(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex_val),
                s.get(i + 2).copied().and_then(hex_val),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The syntactic checks, in the order of [`IdRejection`].
fn check_syntax(id: &str, kind: &ResourceKind) -> Result<(), IdRejection> {
    if id.is_empty() {
        return Err(IdRejection::Empty);
    }
    if id.len() > kind.max_len {
        return Err(IdRejection::TooLong);
    }
    if id.contains('\0') {
        return Err(IdRejection::NulByte);
    }
    if id.contains(['\r', '\n']) {
        return Err(IdRejection::CrlfInjection);
    }
    if id.chars().any(|c| c.is_ascii_control()) {
        return Err(IdRejection::ControlChar);
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii()) {
        return Err(classify_non_ascii(c));
    }
    // From here on `id` is printable ASCII (0x20..=0x7e).
    if id.contains("..") || id.contains(['/', '\\']) || id == "." {
        return Err(IdRejection::PathTraversal);
    }
    let bytes = id.as_bytes();
    if has_escape(bytes) {
        return Err(if has_escape(&percent_decode_once(bytes)) {
            IdRejection::DoubleEncoding
        } else {
            IdRejection::PercentEncoding
        });
    }
    const TEMPLATE: [&str; 6] = ["{{", "}}", "{%", "${", "#{", "<%"];
    if TEMPLATE.iter().any(|t| id.contains(t)) {
        return Err(IdRejection::TemplateInjection);
    }
    if id.contains(['\'', '"', '#']) || id.contains("--") {
        return Err(IdRejection::SqlInjection);
    }
    if id.contains([';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', '!']) {
        return Err(IdRejection::ShellInjection);
    }
    if id.contains(['*', '?', '%']) {
        return Err(IdRejection::Wildcard);
    }
    if !kind.anchored.is_match(id) {
        return Err(IdRejection::PatternMismatch);
    }
    Ok(())
}

/// Who may access what. Implement it over your own store; [`MemoryPermissions`] is the
/// simple in-memory one.
pub trait PermissionStore {
    /// May `principal` access the resource `id` of `kind` at all? (Owned, shared, public.)
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool;

    /// Does `principal` own it? Only owned ids (and ids the user supplied) may be introduced
    /// by the model. The default treats every permitted resource as owned; override it when
    /// some permitted resources (shared, public) must not be reachable through the model
    /// unless the user names them.
    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        self.permits(principal, kind, id)
    }
}

impl<P: PermissionStore + ?Sized> PermissionStore for &P {
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).permits(principal, kind, id)
    }
    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).owns(principal, kind, id)
    }
}

impl<P: PermissionStore + ?Sized> PermissionStore for Arc<P> {
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).permits(principal, kind, id)
    }
    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        (**self).owns(principal, kind, id)
    }
}

/// An in-memory [`PermissionStore`]: owned resources (permitted and model-reachable) and
/// shared ones (permitted, reachable only when the user names them).
#[derive(Clone, Debug, Default)]
pub struct MemoryPermissions {
    // (principal, kind name, id)
    owned: BTreeSet<(String, String, String)>,
    shared: BTreeSet<(String, String, String)>,
}

impl MemoryPermissions {
    /// An empty store: nobody may access anything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `principal` owns `id` of kind `kind`.
    pub fn own(&mut self, principal: &str, kind: &str, id: &str) -> &mut Self {
        self.owned
            .insert((principal.to_owned(), kind.to_owned(), id.to_owned()));
        self
    }

    /// Records that `principal` may access (but does not own) `id` of kind `kind`.
    pub fn share(&mut self, principal: &str, kind: &str, id: &str) -> &mut Self {
        self.shared
            .insert((principal.to_owned(), kind.to_owned(), id.to_owned()));
        self
    }

    fn has(set: &BTreeSet<(String, String, String)>, p: &str, k: &str, id: &str) -> bool {
        // Scoped tuple lookup without allocating on the happy path would need a custom
        // Borrow; sets are small and this is not hot, so allocate.
        set.contains(&(p.to_owned(), k.to_owned(), id.to_owned()))
    }
}

impl PermissionStore for MemoryPermissions {
    fn permits(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        Self::has(&self.owned, principal, kind.name(), id)
            || Self::has(&self.shared, principal, kind.name(), id)
    }

    fn owns(&self, principal: &str, kind: &ResourceKind, id: &str) -> bool {
        Self::has(&self.owned, principal, kind.name(), id)
    }
}

/// What one request established: the authenticated principal (the token's `sub`) and the
/// identifiers the user supplied in it (path parameters, body fields).
///
/// User-supplied ids are recorded per kind and compared byte for byte; they are not trusted
/// by being recorded (they still have to pass syntax and permission), they only satisfy the
/// provenance rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    principal: String,
    supplied: BTreeSet<(String, String)>,
}

impl RequestContext {
    /// A context for `principal` with no user-supplied ids.
    pub fn new(principal: impl Into<String>) -> Self {
        RequestContext {
            principal: principal.into(),
            supplied: BTreeSet::new(),
        }
    }

    /// Records that the user's request named `id` as a resource of `kind`.
    pub fn supply(&mut self, kind: &ResourceKind, id: impl Into<String>) -> &mut Self {
        self.supplied.insert((kind.name().to_owned(), id.into()));
        self
    }

    /// Builder form of [`RequestContext::supply`].
    pub fn with_supplied(mut self, kind: &ResourceKind, id: impl Into<String>) -> Self {
        self.supply(kind, id);
        self
    }

    /// The principal.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Did the user supply `id` as a `kind`?
    pub fn is_supplied(&self, kind: &ResourceKind, id: &str) -> bool {
        // Linear scan avoids allocating a key; a request supplies a handful of ids.
        self.supplied
            .iter()
            .any(|(k, i)| k == kind.name() && i == id)
    }
}

/// Why an [`AuthorizedId`] was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The value came from the user's request itself.
    UserRequest,
    /// The value came from elsewhere (the model) but equals an id the user supplied.
    UserSupplied,
    /// The value came from elsewhere (the model) and the principal owns it.
    Owned,
}

/// A resource id that passed every check for a principal: the only thing a handler should
/// ever put into a path, query or downstream call.
///
/// The fields are private and there is no public constructor or `Deserialize`: only
/// [`Validator::authorize`] makes one. Unlike [`Untrusted`] it may be displayed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthorizedId {
    kind: Arc<str>,
    id: String,
    source: Source,
    basis: Basis,
}

impl AuthorizedId {
    /// The validated id.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The name of its resource kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Where the value came from before it was validated.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Why it was accepted.
    pub fn basis(&self) -> Basis {
        self.basis
    }
}

impl fmt::Display for AuthorizedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl AsRef<str> for AuthorizedId {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

/// Validates untrusted ids for one request: syntax, permission, provenance.
#[derive(Clone, Copy)]
pub struct Validator<'a> {
    // `Sync` so a validator can live across `.await` points in async handlers.
    store: &'a (dyn PermissionStore + Sync),
    ctx: &'a RequestContext,
}

impl fmt::Debug for Validator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator").field("ctx", self.ctx).finish()
    }
}

impl<'a> Validator<'a> {
    /// A validator for the request described by `ctx`, deciding permissions with `store`.
    pub fn new(store: &'a (dyn PermissionStore + Sync), ctx: &'a RequestContext) -> Self {
        Validator { store, ctx }
    }

    /// The request context.
    pub fn context(&self) -> &'a RequestContext {
        self.ctx
    }

    /// Turns an untrusted value into an [`AuthorizedId`] of `kind`, or says why not.
    ///
    /// Order: the syntactic checks of [`IdRejection`] (first failing one reported), then
    /// [`PermissionStore::permits`] ([`IdRejection::NotPermitted`]), then the provenance
    /// rule ([`IdRejection::Unsourced`]): a value whose source is not
    /// [`Source::UserRequest`] is accepted only if the user supplied the same id of the same
    /// kind in this request, or the principal owns it.
    pub fn authorize<T: AsRef<str>>(
        &self,
        kind: &ResourceKind,
        value: Untrusted<T>,
    ) -> Result<AuthorizedId, IdError> {
        let source = value.source;
        let id = value.value.as_ref();
        let fail = |reason| IdError::new(reason, kind, source, id);
        check_syntax(id, kind).map_err(fail)?;
        let principal = self.ctx.principal();
        if !self.store.permits(principal, kind, id) {
            return Err(fail(IdRejection::NotPermitted));
        }
        let basis = if source == Source::UserRequest {
            Basis::UserRequest
        } else if self.ctx.is_supplied(kind, id) {
            Basis::UserSupplied
        } else if self.store.owns(principal, kind, id) {
            Basis::Owned
        } else {
            return Err(fail(IdRejection::Unsourced));
        };
        Ok(AuthorizedId {
            kind: kind.name.clone(),
            id: id.to_owned(),
            source,
            basis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_round_trip() {
        for r in IdRejection::ALL {
            assert_eq!(IdRejection::from_name(r.as_str()), Some(r));
        }
    }

    #[test]
    fn percent_helpers() {
        assert!(has_escape(b"%2e"));
        assert!(!has_escape(b"%2"));
        assert!(!has_escape(b"%zz"));
        assert_eq!(percent_decode_once(b"%252f"), b"%2f");
        assert_eq!(percent_decode_once(b"a%2"), b"a%2");
    }
}
