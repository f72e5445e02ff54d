//! Resource kinds ([`ResourceKind`]: a name, an anchored pattern, a length cap) and the
//! syntactic checks an id must pass, in the order of [`IdRejection`].

use std::fmt;
use std::sync::Arc;

use super::untrusted::IdRejection;
use regex::Regex;
use serde::Deserialize;

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
    pub(super) name: Arc<str>,
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
pub(super) fn check_syntax(id: &str, kind: &ResourceKind) -> Result<(), IdRejection> {
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
