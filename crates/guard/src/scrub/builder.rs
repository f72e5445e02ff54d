//! Registration: [`ScrubberBuilder`] collects secrets (with every encoding of each) and system
//! prompts, checks them against the markers, and compiles a [`Scrubber`].

use super::{
    Encoding, MARKERS, MAX_SECRET_LEN, MIN_SECRET_LEN, ScrubConfig, ScrubError, Scrubber,
    SecretKind, literal, prompt, rules,
};
use crate::secret::Secret;
use std::fmt;

pub(crate) struct Registered {
    pub(super) label: String,
    pub(super) kind: SecretKind,
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
    /// A builder with the default configuration and nothing registered.
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
