//! What an output is: the turns (the wire format's own types), the ground truth of what they
//! invent and echo, and the URL grammar a reader of a script applies.

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};

use super::recipe::{Channel, OutputFamily};
use crate::generators::obfuscate;

pub use crate::wire::{ModelTurn, ToolCall};

/// Which sent text an echo copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoSource {
    /// A span of the system prompt.
    SystemPrompt,
    /// A span of the user prompt.
    UserPrompt,
    /// A span of a tool result.
    ToolResult,
    /// A watched secret found in a sent text.
    Secret,
}

/// How an echo is encoded in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Arbitrary, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoEncoding {
    /// Verbatim.
    Raw,
    /// Standard base64 with padding.
    Base64,
    /// URL-safe base64 without padding.
    Base64Url,
    /// Lower-case hex of the UTF-8 bytes.
    Hex,
    /// Percent-encoding of everything but RFC 3986 unreserved characters.
    Percent,
}

impl EchoEncoding {
    /// Every encoding.
    pub const ALL: [EchoEncoding; 5] = [
        EchoEncoding::Raw,
        EchoEncoding::Base64,
        EchoEncoding::Base64Url,
        EchoEncoding::Hex,
        EchoEncoding::Percent,
    ];

    /// Encodes `value`.
    pub fn encode(self, value: &str) -> String {
        match self {
            EchoEncoding::Raw => value.to_owned(),
            EchoEncoding::Base64 => obfuscate::base64_standard(value),
            EchoEncoding::Base64Url => obfuscate::base64_url(value),
            EchoEncoding::Hex => obfuscate::hex_lower(value),
            EchoEncoding::Percent => obfuscate::percent_encode(value),
        }
    }

    /// The encoding used where the value must sit inside a URL.
    pub(super) fn url_safe(self) -> EchoEncoding {
        match self {
            EchoEncoding::Raw => EchoEncoding::Percent,
            EchoEncoding::Base64 => EchoEncoding::Base64Url,
            other => other,
        }
    }
}

/// One value the model copied from what it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Echo {
    /// Where `value` comes from.
    pub source: EchoSource,
    /// The copied text, verbatim: a substring of a sent text.
    pub value: String,
    /// How it was encoded.
    pub encoding: EchoEncoding,
    /// `encoding.encode(value)`, as it appears in the script.
    pub emitted: String,
}

/// Ground truth of a fabricated output: what the context did not supply, and what was echoed.
/// Each list is without duplicates, in the order the generator met the values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invented {
    /// Invented resource ids (and other non-URL argument values).
    pub ids: Vec<String>,
    /// Invented tool names.
    pub tools: Vec<String>,
    /// Invented URLs.
    pub urls: Vec<String>,
    /// Echoes of sent texts.
    pub echoes: Vec<Echo>,
}

/// A generated script with its labels and ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FabricatedOutput {
    /// Family label.
    pub family: OutputFamily,
    /// Channel label: where the payload was put (after fallbacks, e.g. text when the target
    /// declared no tool).
    pub channel: Channel,
    /// The turns, answering the target's successive calls to the model.
    pub turns: Vec<ModelTurn>,
    /// What the context did not supply, and what was echoed.
    pub invented: Invented,
}

// ---------------------------------------------------------------------------------------------
// The URL grammar of the module doc: what a reader of a script counts as a URL.

fn is_url_terminator(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '"' | '\'' | '(' | ')' | '<' | '>' | '{' | '}' | '|' | '\\' | '^' | '`'
        )
}

fn is_scheme_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.')
}

/// URLs in `text`, by the module's grammar.
pub(super) fn urls_in(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut search_from = 0;
    std::iter::from_fn(move || {
        loop {
            let at = search_from + text.get(search_from..)?.find("://")?;
            let mut start = at;
            while start > 0 && is_scheme_char(bytes[start - 1]) {
                start -= 1;
            }
            let end = text[at..]
                .find(is_url_terminator)
                .map_or(text.len(), |offset| at + offset);
            search_from = at + 3;
            if start < at {
                search_from = end.max(search_from);
                return Some(&text[start..end]);
            }
        }
    })
}

/// Whether `value` is one URL as a whole (not an id with a URL inside).
pub(super) fn is_whole_url(value: &str) -> bool {
    urls_in(value)
        .next()
        .is_some_and(|url| url.len() == value.len())
}
