//! The output scrubber: finds and redacts secrets, credentials, system-prompt spans and PII in
//! text on its way out (responses, logs, prompts going upstream). docs/ARCHITECTURE.md §4 ECHO, §6.
//!
//! One pass per detector family, each linear in the text and independent of the rule count:
//!
//! * **registered secrets** ([`ScrubberBuilder::secret`]): the raw bytes and their base64 (std
//!   and URL-safe, padded or not, at all three byte alignments inside a longer blob), hex (lower
//!   and upper) and percent encodings, all in one Aho-Corasick automaton;
//! * **credential and PII patterns** ([`rule_ids`]): ASCII regexes in three groups, each run
//!   only where one of its matches can start (a keyword rule's prefix literal, a long enough run
//!   of digits, an `@`), candidates then checked in code (word boundaries, Luhn, SSN ranges);
//! * **high-entropy tokens**: see the `entropy` module for the exact rule;
//! * **system-prompt spans** ([`ScrubberBuilder::system_prompt`]): see the `prompt` module.
//!
//! Each match is replaced by `[REDACTED:<rule>]`; overlapping or touching matches merge into
//! one redaction. The result is re-scanned until nothing matches (a redaction can change a
//! neighbour's context, e.g. create a word boundary), so [`Scrubber::scrub`] is idempotent.
//! Input is `&[u8]`: invalid UTF-8 is scanned like any other bytes.
//!
//! [`scrub_stream`] does the same over any `Read` in bounded memory.
//!
//! The module is split by stage: this file holds the vocabulary (secret and redaction kinds,
//! [`Redaction`], [`ScrubConfig`], [`ScrubError`]); `builder` registers secrets and prompts;
//! `scan` runs the detectors and merges their matches; `literal`, `rules`, `entropy` and
//! `prompt` are the detector families; `stream` scrubs a `Read` in bounded memory.

mod builder;
mod entropy;
mod literal;
mod prompt;
mod rules;
mod runs;
mod scan;
mod stream;

pub(crate) use builder::Registered;
pub use builder::ScrubberBuilder;
pub use literal::{Encoding, encodings};
pub use rules::{PEM_CAP, luhn, ssn_valid};
pub(crate) use scan::{Hit, HitDetail, Region};
pub use scan::{Scrubbed, Scrubber};
pub use stream::{
    DEFAULT_CHUNK, DEFAULT_OVERLAP, MIN_OVERLAP, StreamOptions, Summary, scrub_stream,
    scrub_stream_with,
};

use serde::Serialize;
use std::ops::Range;

/// Every redaction marker starts with this.
pub const MARKER_PREFIX: &[u8] = b"[REDACTED:";

/// Shortest secret accepted for registration: shorter values match ordinary text, and their
/// base64 cores would be too short to be specific.
pub const MIN_SECRET_LEN: usize = 8;

/// Longest secret accepted for registration. Its longest encoding (percent, 3×) bounds the
/// overlap the stream scanner keeps between chunks.
pub const MAX_SECRET_LEN: usize = 4096;

/// Most re-scans after a redaction; two are enough in practice.
const MAX_ROUNDS: usize = 6;

/// Every marker the scrubber can write, built once.
static MARKERS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| rule_ids().into_iter().map(marker).collect());

/// The redaction marker for a rule.
pub fn marker(rule: &str) -> String {
    format!("[REDACTED:{rule}]")
}

/// What a registered secret is. Its snake_case name is the rule id of its redactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A whole bearer token (JWT).
    BearerToken,
    /// The signature segment of a JWS.
    TokenSignature,
    /// Key material that signs or verifies tokens.
    SigningKey,
    /// The API key the target uses for its LLM.
    LlmApiKey,
    /// Anything else the caller wants kept out of the output.
    Custom,
}

impl SecretKind {
    /// Every kind except [`SecretKind::Custom`], in rule-id order.
    pub const ALL: [SecretKind; 5] = [
        SecretKind::BearerToken,
        SecretKind::TokenSignature,
        SecretKind::SigningKey,
        SecretKind::LlmApiKey,
        SecretKind::Custom,
    ];

    /// The stable name, used as rule id and in markers.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::BearerToken => "bearer_token",
            SecretKind::TokenSignature => "token_signature",
            SecretKind::SigningKey => "signing_key",
            SecretKind::LlmApiKey => "llm_api_key",
            SecretKind::Custom => "custom_secret",
        }
    }

    /// Parses [`SecretKind::as_str`] names (and `custom`).
    pub fn from_name(name: &str) -> Option<SecretKind> {
        if name == "custom" {
            return Some(SecretKind::Custom);
        }
        SecretKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Which family a redaction comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionKind {
    /// A value registered with [`ScrubberBuilder::secret`], in any of its encodings.
    RegisteredSecret,
    /// A credential pattern: JWT, cloud and SaaS keys, PEM blocks, `Bearer` values.
    Credential,
    /// A verbatim span of a registered system prompt.
    SystemPrompt,
    /// Personal data: emails, phone numbers, payment cards, US SSNs.
    Pii,
    /// A high-entropy base64 run that matched no other rule.
    HighEntropy,
}

impl RedactionKind {
    /// Lower wins when matches of several families merge.
    fn priority(self) -> u8 {
        match self {
            RedactionKind::RegisteredSecret => 0,
            RedactionKind::Credential => 1,
            RedactionKind::SystemPrompt => 2,
            RedactionKind::Pii => 3,
            RedactionKind::HighEntropy => 4,
        }
    }
}

/// Every rule id a marker can carry: registered-secret kinds, pattern rules, `high_entropy`
/// and `system_prompt`.
pub fn rule_ids() -> Vec<&'static str> {
    let mut ids = rules::rule_ids();
    ids.extend(SecretKind::ALL.iter().map(|k| k.as_str()));
    ids.extend(["high_entropy", "system_prompt"]);
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One redaction. It never holds the redacted bytes: only where they were, which rule matched
/// and a description (length, encoding, label).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// Rule id, as in the marker `[REDACTED:<rule>]`.
    pub rule: &'static str,
    /// Which detector family found it.
    pub kind: RedactionKind,
    /// Byte offset of the first redacted byte in the input (the whole stream for
    /// [`scrub_stream`]).
    pub start: u64,
    /// Byte offset one past the last redacted byte.
    pub end: u64,
    /// The registration label of a registered secret or system prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How a registered secret was encoded where it was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// What was replaced, without any of it: e.g. "40 bytes (github_token)".
    pub description: String,
}

impl Redaction {
    /// The redacted byte range.
    pub fn range(&self) -> Range<u64> {
        self.start..self.end
    }
}

/// Why a scrubber could not be built. Messages name labels, never secret bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScrubError {
    /// A secret shorter than [`MIN_SECRET_LEN`]: it would match ordinary text.
    #[error("secret {label:?} is shorter than {MIN_SECRET_LEN} bytes")]
    SecretTooShort {
        /// The secret's registration label.
        label: String,
    },
    /// A secret longer than [`MAX_SECRET_LEN`]: its encodings would bound the stream overlap.
    #[error("secret {label:?} is longer than {MAX_SECRET_LEN} bytes")]
    SecretTooLong {
        /// The secret's registration label.
        label: String,
    },
    /// The secret, or one of its encodings, occurs in a redaction marker or can be completed
    /// by one: redacting would then never terminate, or the output would still hold it.
    #[error(
        "secret {label:?} (or one of its encodings) occurs in a redaction marker or can be completed by one"
    )]
    CollidesWithMarker {
        /// The secret's registration label.
        label: String,
    },
    /// A system prompt with fewer words than [`ScrubConfig::prompt_span_words`]: no span of it
    /// could ever be detected.
    #[error("system prompt {label:?} has {words} words, fewer than the span length {min}")]
    PromptTooShort {
        /// The prompt's registration label.
        label: String,
        /// How many words it has.
        words: usize,
        /// The configured span length.
        min: usize,
    },
    /// The literal automaton or a pattern failed to compile (a size limit, say).
    #[error("scrubber rules failed to build: {0}")]
    Build(String),
}

/// What the scrubber looks for besides registered values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubConfig {
    /// How many consecutive normalized words of a system prompt make a leak (default 8).
    pub prompt_span_words: usize,
    /// Credential patterns (JWT, cloud and SaaS keys, PEM, `Bearer`).
    pub credentials: bool,
    /// Emails, phone numbers, payment cards, US SSNs.
    pub pii: bool,
    /// High-entropy base64 runs.
    pub high_entropy: bool,
    /// Build the literal automaton quickly (a contiguous NFA) rather than for the fastest
    /// scan (a DFA): right for a scrubber made per request and used on a few kilobytes, as
    /// the oracle does for every case; a long-lived scrubber keeps the default.
    pub quick_build: bool,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            prompt_span_words: 8,
            credentials: true,
            pii: true,
            high_entropy: true,
            quick_build: false,
        }
    }
}

impl ScrubConfig {
    /// Registered literals (secrets, system prompts) only, built quickly: for a short-lived
    /// scrubber that watches known values in a few kilobytes (the oracle, report masking).
    pub fn literals_only() -> ScrubConfig {
        ScrubConfig {
            credentials: false,
            pii: false,
            high_entropy: false,
            quick_build: true,
            ..ScrubConfig::default()
        }
    }
}
