//! One bearer token in every form it can leak in: whole and its signature segment, each raw,
//! base64 (standard and URL-safe, any alignment), hex and percent-encoded, as the scrubber
//! registers secrets. Searched pattern by pattern, never through an automaton: a token changes
//! with every request, and for one token an automaton costs more to build than all the
//! searches it would serve.
//!
//! Finding is lazy: the encodings of the token's first bytes are prefixes of the full
//! encodings, so a text holding none of those short prefixes holds no form of the token, and
//! the full encodings are computed only when one occurs.

use super::scrub::{Encoding, MAX_SECRET_LEN, MIN_SECRET_LEN, encodings, marker};
use std::sync::OnceLock;

/// The label of the whole token.
pub const WHOLE_TOKEN: &str = "bearer_token";
/// The label of its signature segment.
pub const TOKEN_SIGNATURE: &str = "bearer_token.signature";

/// Bytes of each part whose encodings serve as the prefilter.
const PREFIX_BYTES: usize = 12;

struct Part {
    label: &'static str,
    raw: Vec<u8>,
    prefixes: Vec<Vec<u8>>,
    full: OnceLock<Vec<(Encoding, Vec<u8>)>>,
}

impl Part {
    fn new(label: &'static str, raw: &[u8]) -> Part {
        let prefixes = encodings(&raw[..raw.len().min(PREFIX_BYTES)])
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        Part {
            label,
            raw: raw.to_vec(),
            prefixes,
            full: OnceLock::new(),
        }
    }

    fn may_occur(&self, hay: &[u8]) -> bool {
        self.prefixes.iter().any(|p| contains(hay, p))
    }

    fn full(&self) -> &[(Encoding, Vec<u8>)] {
        self.full.get_or_init(|| encodings(&self.raw))
    }
}

/// A token's forms; see the module docs.
pub struct TokenForms {
    parts: Vec<Part>,
}

impl std::fmt::Debug for TokenForms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenForms(..)")
    }
}

/// A found form: the label and a description (length, encoding), never the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundForm {
    /// The form's label, e.g. `raw` or `signature`.
    pub label: &'static str,
    /// What was found (length, encoding), without the bytes.
    pub description: String,
}

impl TokenForms {
    /// `None` for a token too short or too long to register as a secret (as the scrubber).
    pub fn new(token: &[u8]) -> Option<TokenForms> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&token.len()) {
            return None;
        }
        let mut parts = vec![Part::new(WHOLE_TOKEN, token)];
        let segments: Vec<&[u8]> = token.split(|b| *b == b'.').collect();
        if let [_, _, sig] = segments.as_slice()
            && sig.len() >= MIN_SECRET_LEN
        {
            parts.push(Part::new(TOKEN_SIGNATURE, sig));
        }
        Some(TokenForms { parts })
    }

    /// What occurs in `text`: the whole token in its first form found, and the signature only
    /// where the whole token is not (as the scrubber's longest match would report it).
    pub fn find(&self, text: &[u8]) -> Vec<FoundForm> {
        let mut found: Vec<FoundForm> = Vec::new();
        for part in &self.parts {
            if !part.may_occur(text)
                || (part.label == TOKEN_SIGNATURE && found.iter().any(|f| f.label == WHOLE_TOKEN))
            {
                continue;
            }
            if let Some((enc, p)) = part.full().iter().find(|(_, p)| contains(text, p)) {
                let rule = if part.label == WHOLE_TOKEN {
                    "bearer_token"
                } else {
                    "token_signature"
                };
                found.push(FoundForm {
                    label: part.label,
                    description: format!(
                        "{} bytes: registered {rule} {:?} ({})",
                        p.len(),
                        part.label,
                        enc.as_str()
                    ),
                });
            }
        }
        found
    }

    /// `text` with every form replaced by the scrubber's marker for bearer tokens.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for part in &self.parts {
            if !part.may_occur(out.as_bytes()) {
                continue;
            }
            // Longest forms first, so a form inside another is not left half replaced.
            let mut forms: Vec<&Vec<u8>> = part.full().iter().map(|(_, p)| p).collect();
            forms.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in forms {
                // Every encoding is ASCII, so this replaces whole characters.
                if let Ok(needle) = std::str::from_utf8(p)
                    && out.contains(needle)
                {
                    out = out.replace(needle, &marker("bearer_token"));
                }
            }
        }
        out
    }
}

/// Substring test without building a searcher: texts are short and needles long, so the
/// first byte's candidates are few.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    needle.len() <= hay.len()
        && memchr::memchr_iter(first, &hay[..=hay.len() - needle.len()])
            .any(|at| hay[at..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";

    #[test]
    fn finds_every_form_and_prefers_the_whole_token() {
        let forms = TokenForms::new(TOKEN.as_bytes()).expect("registrable");
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("x{TOKEN}"));
        let hex: String = TOKEN.bytes().map(|b| format!("{b:02x}")).collect();
        for text in [format!("log: {TOKEN} end"), b64, format!("h={hex}")] {
            let found = forms.find(text.as_bytes());
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert_eq!(found[0].label, WHOLE_TOKEN);
        }
        let sig = TOKEN.rsplit('.').next().expect("three segments");
        let found = forms.find(format!("sig {sig}").as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].label, TOKEN_SIGNATURE);
        assert!(
            forms
                .find(b"nothing to see here, eyJhbGc but no more")
                .is_empty()
        );
    }

    #[test]
    fn redacts_every_form() {
        let forms = TokenForms::new(TOKEN.as_bytes()).expect("registrable");
        let pct: String = TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
        let text = format!("a {TOKEN} b {pct} c");
        let clean = forms.redact(&text);
        assert!(forms.find(clean.as_bytes()).is_empty(), "{clean}");
        assert!(clean.starts_with("a [REDACTED:bearer_token] b"), "{clean}");
    }

    /// What `find` must report, computed the slow way: every full form searched everywhere.
    fn naive_find(forms: &TokenForms, text: &[u8]) -> Vec<&'static str> {
        let mut labels = Vec::new();
        for part in &forms.parts {
            if part.label == TOKEN_SIGNATURE && labels.contains(&WHOLE_TOKEN) {
                continue;
            }
            if part.full().iter().any(|(_, p)| contains(text, p)) {
                labels.push(part.label);
            }
        }
        labels
    }

    proptest::proptest! {
        /// The prefix prefilter never hides a form: any text, with forms of the token or its
        /// signature cut in at any place between any bytes, is judged as by a full search.
        #[test]
        fn the_prefilter_never_hides_a_form(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cuts in proptest::collection::vec((0usize..300, 0usize..13, proptest::prelude::any::<bool>()), 0..3),
        ) {
            let forms = TokenForms::new(TOKEN.as_bytes()).expect("registrable");
            let mut text = noise;
            for (at, form, signature) in cuts {
                let part = &forms.parts[usize::from(signature)];
                let full = part.full();
                let (_, p) = &full[form % full.len()];
                let at = at.min(text.len());
                text.splice(at..at, p.iter().copied());
            }
            let found: Vec<&str> = forms.find(&text).iter().map(|f| f.label).collect();
            proptest::prop_assert_eq!(found, naive_find(&forms, &text));
        }
    }

    #[test]
    fn refuses_what_the_scrubber_refuses() {
        assert!(TokenForms::new(b"short").is_none());
        assert!(TokenForms::new(&vec![b'a'; MAX_SECRET_LEN + 1]).is_none());
    }
}
