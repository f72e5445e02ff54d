//! The output scrubber: finds and redacts secrets, credentials, system-prompt spans and PII in
//! text on its way out (responses, logs, prompts going upstream). docs/ARCHITECTURE.md §4 ECHO, §6.
//!
//! One pass per detector family, each linear in the text and independent of the rule count:
//!
//! * **registered secrets** ([`ScrubberBuilder::secret`]): the raw bytes and their base64 (std
//!   and URL-safe, padded or not, at all three byte alignments inside a longer blob), hex (lower
//!   and upper) and percent encodings, all in one Aho-Corasick automaton;
//! * **credential and PII patterns** ([`rule_ids`]): one multi-pattern ASCII regex (a lazy DFA
//!   with a large cache), candidates then checked in code (word boundaries, Luhn, SSN ranges);
//! * **high-entropy tokens**: see the `entropy` module for the exact rule;
//! * **system-prompt spans** ([`ScrubberBuilder::system_prompt`]): see the `prompt` module.
//!
//! Each match is replaced by `[REDACTED:<rule>]`; overlapping or touching matches merge into
//! one redaction. The result is re-scanned until nothing matches (a redaction can change a
//! neighbour's context, e.g. create a word boundary), so [`Scrubber::scrub`] is idempotent.
//! Input is `&[u8]`: invalid UTF-8 is scanned like any other bytes.
//!
//! [`scrub_stream`] does the same over any `Read` in bounded memory.

mod entropy;
mod literal;
mod prompt;
mod rules;
mod runs;
mod stream;

pub use literal::{Encoding, encodings};
pub use rules::{PEM_CAP, luhn, ssn_valid};
pub use stream::{
    DEFAULT_CHUNK, DEFAULT_OVERLAP, MIN_OVERLAP, StreamOptions, Summary, scrub_stream,
    scrub_stream_with,
};

use crate::secret::Secret;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
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
    RegisteredSecret,
    Credential,
    SystemPrompt,
    Pii,
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
pub enum ScrubError {
    #[error("secret {label:?} is shorter than {MIN_SECRET_LEN} bytes")]
    SecretTooShort { label: String },
    #[error("secret {label:?} is longer than {MAX_SECRET_LEN} bytes")]
    SecretTooLong { label: String },
    #[error(
        "secret {label:?} (or one of its encodings) occurs in a redaction marker or can be completed by one"
    )]
    CollidesWithMarker { label: String },
    #[error("system prompt {label:?} has {words} words, fewer than the span length {min}")]
    PromptTooShort {
        label: String,
        words: usize,
        min: usize,
    },
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

/// A match before merging, in the coordinates of the scanned text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    /// First byte the match depended on: before `start` when a rule redacts only the value
    /// of `key = value` or `Bearer <token>`. The stream scanner never cuts between the two.
    pub ctx: usize,
    pub rule: &'static str,
    pub kind: RedactionKind,
    pub detail: HitDetail,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum HitDetail {
    None,
    /// Registered secret index and the encoding found.
    Secret(u32, Encoding),
    /// Registered prompt index.
    Prompt(u32),
}

/// A merged redaction in input coordinates, with the highest-priority hit that formed it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub start: usize,
    pub end: usize,
    /// Smallest `ctx` of the merged hits.
    pub ctx: usize,
    pub rep: Hit,
}

struct Registered {
    label: String,
    kind: SecretKind,
}

/// Collects secrets and prompts, then builds a [`Scrubber`]. Its `Debug` shows counts only.
#[derive(Default)]
pub struct ScrubberBuilder {
    config: ScrubConfig,
    secrets: Vec<Registered>,
    /// (pattern, secret index, encoding). Held as [`Secret`] so they are wiped on drop.
    patterns: Vec<(Secret, u32, Encoding)>,
    prompts: Vec<(String, Secret)>,
}

impl fmt::Debug for ScrubberBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrubberBuilder")
            .field("config", &self.config)
            .field("secrets", &self.secrets.len())
            .field("prompts", &self.prompts.len())
            .finish()
    }
}

impl ScrubberBuilder {
    pub fn new() -> Self {
        ScrubberBuilder::default()
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: ScrubConfig) -> Self {
        self.config = config;
        self
    }

    /// Registers an exact secret and all its encodings. `label` names it in redactions (it must
    /// not itself be secret).
    pub fn secret(
        &mut self,
        kind: SecretKind,
        label: impl Into<String>,
        secret: &Secret,
    ) -> Result<&mut Self, ScrubError> {
        let label = label.into();
        let raw = secret.expose();
        if raw.len() < MIN_SECRET_LEN {
            return Err(ScrubError::SecretTooShort { label });
        }
        if raw.len() > MAX_SECRET_LEN {
            return Err(ScrubError::SecretTooLong { label });
        }
        let encs = literal::encodings(raw);
        // A pattern inside a marker would make the scrubber's own output match again. Markers
        // are short: most patterns are longer than any and need no search (the oracle
        // registers secrets for every case, so this runs often).
        let markers = &*MARKERS;
        // A pattern that a marker could start or end (it begins with a marker's tail, `…]`, or
        // ends with a marker's head, `[…`) would be re-formed by the marker and the text next
        // to it after every redaction, one byte at a time. Only patterns holding `[` or `]`
        // can, so only raw secrets with brackets are refused.
        let straddles = |p: &[u8], m: &[u8]| {
            (1..=m.len().min(p.len()))
                .any(|k| p.starts_with(&m[m.len() - k..]) || p.ends_with(&m[..k]))
        };
        let collides = encs.iter().any(|(_, p)| {
            let bracket = p.contains(&b'[') || p.contains(&b']');
            markers.iter().any(|m| {
                let m = m.as_bytes();
                (p.len() <= m.len() && memchr::memmem::find(m, p).is_some())
                    || (bracket && straddles(p, m))
            })
        });
        if collides {
            return Err(ScrubError::CollidesWithMarker { label });
        }
        let index = u32::try_from(self.secrets.len())
            .map_err(|_| ScrubError::Build("too many secrets".into()))?;
        self.secrets.push(Registered { label, kind });
        for (enc, p) in encs {
            self.patterns.push((Secret::new(p), index, enc));
        }
        Ok(self)
    }

    /// Registers a bearer token: the whole token and, for a three-segment JWS, its signature
    /// segment on its own (docs/ARCHITECTURE.md §4 ECHO: "whole, signature part").
    pub fn bearer_token(
        &mut self,
        label: impl Into<String>,
        token: &Secret,
    ) -> Result<&mut Self, ScrubError> {
        let label = label.into();
        self.secret(SecretKind::BearerToken, label.clone(), token)?;
        let parts: Vec<&[u8]> = token.expose().split(|b| *b == b'.').collect();
        if let [_, _, sig] = parts.as_slice()
            && sig.len() >= MIN_SECRET_LEN
        {
            let sig = Secret::new(sig.to_vec());
            self.secret(
                SecretKind::TokenSignature,
                format!("{label}.signature"),
                &sig,
            )?;
        }
        Ok(self)
    }

    /// Registers a system prompt whose long verbatim spans must not leave.
    pub fn system_prompt(
        &mut self,
        label: impl Into<String>,
        prompt: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, ScrubError> {
        let label = label.into();
        let prompt = Secret::new(prompt);
        let mut probe = prompt::PromptIndex::new(self.config.prompt_span_words);
        let words = probe.add(prompt.expose(), 0);
        if words < self.config.prompt_span_words {
            return Err(ScrubError::PromptTooShort {
                label,
                words,
                min: self.config.prompt_span_words,
            });
        }
        self.prompts.push((label, prompt));
        Ok(self)
    }

    /// Builds the scrubber. The pattern rules are compiled once per process and shared.
    pub fn build(self) -> Result<Scrubber, ScrubError> {
        let patterns = rules::Patterns::get().map_err(ScrubError::Build)?;
        let literals = if self.patterns.is_empty() {
            None
        } else {
            let pats: Vec<&[u8]> = self.patterns.iter().map(|(p, _, _)| p.expose()).collect();
            Some(
                literal::Literals::new(&pats, self.config.quick_build)
                    .map_err(ScrubError::Build)?,
            )
        };
        let max_literal = self
            .patterns
            .iter()
            .map(|(p, _, _)| p.len())
            .max()
            .unwrap_or(0);
        let literal_meta = self.patterns.iter().map(|(_, i, e)| (*i, *e)).collect();
        let literal_multiline = self
            .patterns
            .iter()
            .any(|(p, _, _)| p.expose().contains(&b'\n'));
        let mut prompts = prompt::PromptIndex::new(self.config.prompt_span_words);
        let mut prompt_labels = Vec::new();
        for (i, (label, text)) in self.prompts.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| ScrubError::Build("too many prompts".into()))?;
            prompts.add(text.expose(), i);
            prompt_labels.push(label.clone());
        }
        Ok(Scrubber {
            config: self.config,
            literals,
            literal_meta,
            literal_multiline,
            max_literal,
            secrets: self.secrets,
            patterns,
            prompts,
            prompt_labels,
        })
    }
}

/// The compiled scrubber: cheap to share (`&Scrubber` is `Sync`), never prints what it holds.
pub struct Scrubber {
    config: ScrubConfig,
    literals: Option<literal::Literals>,
    literal_meta: Vec<(u32, Encoding)>,
    /// A literal pattern holds a line break: re-scans after a redaction cannot stay within
    /// the marker's lines (see `detect_near_markers`).
    literal_multiline: bool,
    max_literal: usize,
    secrets: Vec<Registered>,
    patterns: &'static rules::Patterns,
    prompts: prompt::PromptIndex,
    prompt_labels: Vec<String>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("config", &self.config)
            .field("secrets", &self.secrets.len())
            .field("literal_patterns", &self.literal_meta.len())
            .field("prompts", &self.prompt_labels.len())
            .finish()
    }
}

/// The result of [`Scrubber::scrub`].
#[derive(Debug)]
pub struct Scrubbed<'a> {
    /// The redacted text (borrowed when nothing was found).
    pub text: Cow<'a, [u8]>,
    pub redactions: Vec<Redaction>,
}

impl Scrubber {
    pub fn builder() -> ScrubberBuilder {
        ScrubberBuilder::new()
    }

    /// A scrubber with the default pattern rules and nothing registered.
    pub fn with_defaults() -> Result<Scrubber, ScrubError> {
        ScrubberBuilder::new().build()
    }

    pub fn config(&self) -> &ScrubConfig {
        &self.config
    }

    /// Length of the longest literal pattern (registered secrets and their encodings).
    pub fn max_literal_len(&self) -> usize {
        self.max_literal
    }

    /// Redacts `text`; redactions are in `text`'s coordinates, in order.
    pub fn scrub<'a>(&self, text: &'a [u8]) -> Scrubbed<'a> {
        let regions = self.regions(text);
        if regions.is_empty() {
            return Scrubbed {
                text: Cow::Borrowed(text),
                redactions: Vec::new(),
            };
        }
        let (out, _) = render(text, &regions);
        let redactions = regions.iter().map(|r| self.redaction(r, 0)).collect();
        Scrubbed {
            text: Cow::Owned(out),
            redactions,
        }
    }

    /// [`Scrubber::scrub`] for UTF-8 text. A registered binary secret may end inside a UTF-8
    /// sequence; such split characters come out as U+FFFD.
    pub fn scrub_str(&self, text: &str) -> (String, Vec<Redaction>) {
        let s = self.scrub(text.as_bytes());
        let out = match s.text {
            Cow::Borrowed(_) => text.to_owned(),
            Cow::Owned(v) => String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        };
        (out, s.redactions)
    }

    /// The redactions [`Scrubber::scrub`] would report, without building the output.
    pub fn find(&self, text: &[u8]) -> Vec<Redaction> {
        self.regions(text)
            .iter()
            .map(|r| self.redaction(r, 0))
            .collect()
    }

    /// True if `text` holds nothing to redact.
    pub fn is_clean(&self, text: &[u8]) -> bool {
        self.detect(text).is_empty()
    }

    /// All matches of one pass, unmerged.
    fn detect(&self, text: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(ac) = &self.literals {
            self.literal_hits(ac, text, 0..text.len(), &mut hits);
        }
        if self.config.credentials || self.config.pii {
            let mut pat = Vec::new();
            self.patterns.scan(text, &mut pat);
            hits.extend(pat.into_iter().filter(|h| match h.kind {
                RedactionKind::Pii => self.config.pii,
                _ => self.config.credentials,
            }));
        }
        if self.config.high_entropy {
            entropy::scan(text, &mut hits);
        }
        self.prompts.scan(text, &mut hits);
        hits
    }

    /// What [`Scrubber::detect`] finds in `out` (a rendering of a text whose every match was
    /// redacted), scanning only the lines that hold a marker.
    ///
    /// Why that is the same: no credential/PII regex, high-entropy run or (checked at build)
    /// literal pattern matches a line break, and each of those scans restarts at every line,
    /// so what a scan finds on a line depends on that line's bytes alone (PEM ends and
    /// neighbour checks read outside it, from all of `out`). A line without a marker is
    /// byte-identical to a line of the original text, where nothing was found outside the
    /// redacted regions, so nothing is found on it now. System-prompt spans cross lines and are
    /// re-scanned in full.
    fn detect_near_markers(&self, out: &[u8], segs: &Segments) -> Vec<Hit> {
        let mut windows: Vec<Range<usize>> = Vec::new();
        for &(os, oe, _, _, is_marker) in &segs.segs {
            if !is_marker || windows.last().is_some_and(|w| os < w.end) {
                continue;
            }
            let start = memchr::memrchr(b'\n', &out[..os]).map_or(0, |p| p + 1);
            let end = memchr::memchr(b'\n', &out[oe..]).map_or(out.len(), |p| oe + p);
            windows.push(start..end);
        }
        let mut hits = Vec::new();
        if let Some(ac) = &self.literals {
            if self.literal_multiline {
                self.literal_hits(ac, out, 0..out.len(), &mut hits);
            } else {
                for w in &windows {
                    self.literal_hits(ac, out, w.clone(), &mut hits);
                }
            }
        }
        if self.config.credentials || self.config.pii {
            let mut pat = Vec::new();
            let mut pos = 0;
            for w in &windows {
                pos = self
                    .patterns
                    .scan_window(out, pos.max(w.start), w.end, &mut pat);
            }
            hits.extend(pat.into_iter().filter(|h| match h.kind {
                RedactionKind::Pii => self.config.pii,
                _ => self.config.credentials,
            }));
        }
        if self.config.high_entropy {
            let mut ent = Vec::new();
            for w in &windows {
                let from = ent.len();
                entropy::scan(&out[w.clone()], &mut ent);
                for h in &mut ent[from..] {
                    h.start += w.start;
                    h.end += w.start;
                    h.ctx += w.start;
                }
            }
            hits.extend(ent);
        }
        self.prompts.scan(out, &mut hits);
        hits
    }

    /// Registered-secret matches in `span` of `text`.
    fn literal_hits(
        &self,
        ac: &literal::Literals,
        text: &[u8],
        span: Range<usize>,
        hits: &mut Vec<Hit>,
    ) {
        ac.for_each(text, span, |start, end, pattern| {
            let Some(&(idx, enc)) = self.literal_meta.get(pattern) else {
                return;
            };
            let (s, e) = if enc.is_base64() {
                literal::widen_base64(text, start, end, enc == Encoding::Base64Url)
            } else {
                (start, end)
            };
            let kind = self
                .secrets
                .get(idx as usize)
                .map_or(SecretKind::Custom, |r| r.kind);
            hits.push(Hit {
                start: s,
                end: e,
                ctx: s,
                rule: kind.as_str(),
                kind: RedactionKind::RegisteredSecret,
                detail: HitDetail::Secret(idx, enc),
            });
        });
    }

    /// Merged regions of `text` after re-scanning the redacted result until it is clean.
    pub(crate) fn regions(&self, text: &[u8]) -> Vec<Region> {
        self.regions_rescanning(text, |out, segs| self.detect_near_markers(out, segs))
    }

    /// Detects, redacts, and re-scans the rendering with `rescan` until nothing new appears
    /// (a redaction can join two halves of a secret).
    fn regions_rescanning(
        &self,
        text: &[u8],
        rescan: impl Fn(&[u8], &Segments) -> Vec<Hit>,
    ) -> Vec<Region> {
        let mut regions = merge(self.detect(text));
        for _ in 0..MAX_ROUNDS {
            if regions.is_empty() {
                break;
            }
            let (out, segs) = render(text, &regions);
            let extra = rescan(&out, &segs);
            if extra.is_empty() {
                break;
            }
            let before: usize = regions.iter().map(|r| r.end - r.start).sum();
            let mut hits: Vec<Hit> = regions
                .iter()
                .map(|r| Hit {
                    start: r.start,
                    end: r.end,
                    ctx: r.ctx,
                    ..r.rep
                })
                .collect();
            hits.extend(extra.into_iter().map(|h| Hit {
                start: segs.to_input(h.start, false),
                end: segs.to_input(h.end, true),
                ctx: segs.to_input(h.ctx, false),
                ..h
            }));
            regions = merge(hits);
            let after: usize = regions.iter().map(|r| r.end - r.start).sum();
            if after == before {
                // Only a marker matched itself; cannot happen with the rule set (tested).
                break;
            }
        }
        regions
    }

    fn redaction(&self, r: &Region, base: u64) -> Redaction {
        let len = r.end - r.start;
        let (label, encoding, description) = match r.rep.detail {
            HitDetail::Secret(i, enc) => {
                let label = self.secrets.get(i as usize).map(|s| s.label.clone());
                let d = format!(
                    "{len} bytes: registered {} {:?} ({})",
                    r.rep.rule,
                    label.as_deref().unwrap_or(""),
                    enc.as_str()
                );
                (label, Some(enc), d)
            }
            HitDetail::Prompt(i) => {
                let label = self.prompt_labels.get(i as usize).cloned();
                let d = format!(
                    "{len} bytes: verbatim span of system prompt {:?}",
                    label.as_deref().unwrap_or("")
                );
                (label, None, d)
            }
            HitDetail::None => (None, None, format!("{len} bytes ({})", r.rep.rule)),
        };
        Redaction {
            rule: r.rep.rule,
            kind: r.rep.kind,
            start: base + r.start as u64,
            end: base + r.end as u64,
            label,
            encoding,
            description,
        }
    }
}

/// Sorts hits and merges overlapping or touching ones; the merged region keeps the
/// highest-priority (then earliest) hit as its representative.
pub(crate) fn merge(mut hits: Vec<Hit>) -> Vec<Region> {
    hits.retain(|h| h.end > h.start);
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let mut out: Vec<Region> = Vec::with_capacity(hits.len());
    for h in hits {
        match out.last_mut() {
            Some(r) if h.start <= r.end => {
                r.end = r.end.max(h.end);
                r.ctx = r.ctx.min(h.ctx);
                if h.kind.priority() < r.rep.kind.priority() {
                    r.rep = h;
                }
            }
            _ => out.push(Region {
                start: h.start,
                end: h.end,
                ctx: h.ctx.min(h.start),
                rep: h,
            }),
        }
    }
    out
}

/// Where each output piece came from, to map a re-scan's matches back onto the input.
pub(crate) struct Segments {
    /// (output start, output end, input start, input end, is marker).
    segs: Vec<(usize, usize, usize, usize, bool)>,
}

impl Segments {
    fn to_input(&self, pos: usize, is_end: bool) -> usize {
        // For an end offset, the byte that matters is the one before it.
        let probe = if is_end { pos.saturating_sub(1) } else { pos };
        let i = self.segs.partition_point(|s| s.1 <= probe);
        let Some(&(os, oe, is, ie, is_marker)) = self.segs.get(i) else {
            return self.segs.last().map_or(pos, |s| s.3);
        };
        debug_assert!(probe >= os && probe < oe);
        if is_marker {
            if is_end { ie } else { is }
        } else {
            is + (pos - os)
        }
    }
}

/// Writes `text` with each region replaced by its marker.
pub(crate) fn render(text: &[u8], regions: &[Region]) -> (Vec<u8>, Segments) {
    let mut out = Vec::with_capacity(text.len() + regions.len() * 24);
    let mut segs = Vec::with_capacity(regions.len() * 2 + 1);
    let mut at = 0;
    for r in regions {
        if r.start > at {
            segs.push((out.len(), out.len() + r.start - at, at, r.start, false));
            out.extend_from_slice(&text[at..r.start]);
        }
        let m = marker(r.rep.rule);
        segs.push((out.len(), out.len() + m.len(), r.start, r.end, true));
        out.extend_from_slice(m.as_bytes());
        at = r.end;
    }
    if at < text.len() {
        segs.push((
            out.len(),
            out.len() + text.len() - at,
            at,
            text.len(),
            false,
        ));
        out.extend_from_slice(&text[at..]);
    }
    (out, Segments { segs })
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Scrubber {
        /// The re-scan as it was before `detect_near_markers`: the whole rendering each round.
        fn regions_full_rescan(&self, text: &[u8]) -> Vec<Region> {
            self.regions_rescanning(text, |out, _| self.detect(out))
        }
    }

    fn key(regions: &[Region]) -> Vec<(usize, usize, usize, &'static str)> {
        regions
            .iter()
            .map(|r| (r.start, r.end, r.ctx, r.rep.rule))
            .collect()
    }

    /// Texts glued from fragments that match, nearly match, or change a neighbour's context
    /// (secrets touching each other, across line breaks, next to non-ASCII bytes, markers).
    fn texts(seed: u64, count: usize) -> Vec<Vec<u8>> {
        const FRAGS: &[&[u8]] = &[
            b" ",
            b"\n",
            b"\r\n",
            b"-",
            b"=",
            b"/",
            b".",
            b"@",
            b"\xc3\xa9",
            b"\xe2\x80\x94",
            b"\xff",
            b"word",
            b"Bearer ",
            b"bearer\t",
            b"Authorization: Bearer ",
            b"aws_secret_access_key = ",
            b"AKIAIOSFODNN7EXAMPLE",
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            b"ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
            b"sk-proj-a1B2c3D4e5F6g7H8i9J0k1L2",
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            b"X9fQ2mZ8kP4vL7nR3tY6wB1cD5eG0hJ",
            b"hunter2hunter2",
            b"aHVudGVyMmh1bnRlcjI",
            b"68756e746572326875",
            b"jane.doe@example.com",
            b"555-123-4567",
            b"(555) 123-4567",
            b"+44 20 7946 0958",
            b"4111 1111 1111 1111",
            b"123-45-6789",
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n-----END RSA PRIVATE KEY-----",
            b"-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAKj34Gkx",
            b"[REDACTED:jwt]",
            b"[REDACTED:",
            b"0123456789",
            b"Zm9vYmFy",
        ];
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..count)
            .map(|_| {
                let n = 1 + (next() % 24) as usize;
                let mut t = Vec::new();
                for _ in 0..n {
                    t.extend_from_slice(FRAGS[(next() % FRAGS.len() as u64) as usize]);
                }
                t
            })
            .collect()
    }

    #[test]
    fn marker_line_rescan_equals_full_rescan() {
        let mut b = Scrubber::builder();
        b.secret(SecretKind::Custom, "s", &Secret::from("hunter2hunter2"))
            .expect("registers");
        let with_secret = b.build().expect("builds");
        let mut b = Scrubber::builder();
        b.secret(SecretKind::Custom, "m", &Secret::from("line one\nline two"))
            .expect("registers");
        b.system_prompt(
            "p",
            "You are a helpful assistant for word word jane doe example com and nothing else",
        )
        .expect("registers");
        let multiline = b.build().expect("builds");
        assert!(multiline.literal_multiline);
        let plain = Scrubber::with_defaults().expect("builds");
        let mut changed = 0;
        for (i, t) in texts(0x2545_f491_4f6c_dd1d, 20_000).iter().enumerate() {
            for s in [&plain, &with_secret, &multiline] {
                let fast = s.regions(t);
                let full = s.regions_full_rescan(t);
                assert_eq!(
                    key(&fast),
                    key(&full),
                    "text {i}: {:?}",
                    String::from_utf8_lossy(t)
                );
                changed += usize::from(merge(s.detect(t)).len() != fast.len());
            }
        }
        // The texts do exercise the re-scan.
        assert!(changed > 100, "{changed}");
    }
}
