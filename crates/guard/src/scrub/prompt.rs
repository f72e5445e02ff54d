//! Long verbatim spans of a registered system prompt, matched case- and
//! whitespace-insensitively.
//!
//! The rule: text and prompt are split into *words*, maximal runs of ASCII letters and digits
//! and non-ASCII bytes (so punctuation, markdown and line breaks between words are ignored and
//! ASCII letters compare case-insensitively). Every run of `n` consecutive words (a shingle,
//! `n` = [`super::ScrubConfig::prompt_span_words`], default 8) of every registered prompt is
//! hashed into a set. In the text, any `n` consecutive words whose shingle is in the set are
//! redacted, from the first byte of the first word to the last byte of the last; overlapping
//! and adjacent shingles merge into one span. A prompt with fewer than `n` words is never
//! matched (too short to tell apart from ordinary text). A redaction marker breaks word runs.
//! Hashes are 64-bit FNV-1a; a collision could only over-redact.

use super::{Hit, HitDetail, MARKER_PREFIX, RedactionKind};
use std::collections::HashMap;

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

fn word_hash(w: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in w {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn shingle_hash(words: impl Iterator<Item = u64>) -> u64 {
    words.fold(0x9e37_79b9_7f4a_7c15u64, |acc, w| {
        (acc ^ w)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(29)
    })
}

/// Calls `f(start, end, hash)` for each word of `hay`, and `f(.., .., BREAK)` at each
/// redaction marker.
fn words(hay: &[u8], mut f: impl FnMut(usize, usize, Option<u64>)) {
    let mut i = 0;
    let n = hay.len();
    while i < n {
        let b = hay[i];
        if word_byte(b) {
            let s = i;
            while i < n && word_byte(hay[i]) {
                i += 1;
            }
            f(s, i, Some(word_hash(&hay[s..i])));
        } else {
            if b == b'['
                && hay[i..].starts_with(MARKER_PREFIX)
                && let Some(close) = hay[i..].iter().position(|c| *c == b']')
            {
                f(i, i + close + 1, None);
                i += close + 1;
                continue;
            }
            i += 1;
        }
    }
}

/// The registered prompts' shingles.
#[derive(Default)]
pub(super) struct PromptIndex {
    n: usize,
    /// Shingle hash → index of the prompt it came from.
    shingles: HashMap<u64, u32>,
    /// A 64 Ki-bit filter of the prompts' word hashes: most words of ordinary text miss it, so
    /// shingles are hashed only inside runs of prompt words.
    words: Vec<u64>,
}

const FILTER_BITS: u64 = 1 << 16;

impl PromptIndex {
    pub(super) fn new(n: usize) -> Self {
        PromptIndex {
            n: n.max(1),
            shingles: HashMap::new(),
            words: vec![0; (FILTER_BITS / 64) as usize],
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.shingles.is_empty()
    }

    /// Adds a prompt; returns how many words it has.
    pub(super) fn add(&mut self, prompt: &[u8], index: u32) -> usize {
        let mut hashes = Vec::new();
        words(prompt, |_, _, h| {
            if let Some(h) = h {
                hashes.push(h);
            }
        });
        for h in &hashes {
            let bit = h % FILTER_BITS;
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        for w in hashes.windows(self.n) {
            self.shingles
                .entry(shingle_hash(w.iter().copied()))
                .or_insert(index);
        }
        hashes.len()
    }

    fn maybe_prompt_word(&self, h: u64) -> bool {
        let bit = h % FILTER_BITS;
        self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    /// Appends one hit per maximal redacted span.
    pub(super) fn scan(&self, hay: &[u8], out: &mut Vec<Hit>) {
        if self.is_empty() {
            return;
        }
        let n = self.n;
        // The last `n` words in a ring: (start, end, hash).
        let mut ring: Vec<(usize, usize, u64)> = vec![(0, 0, 0); n];
        let mut count = 0usize; // consecutive candidate words ending at the current one
        let mut total = 0usize;
        let mut open: Option<(usize, usize, u32)> = None;
        let flush = |open: &mut Option<(usize, usize, u32)>, out: &mut Vec<Hit>| {
            if let Some((s, e, p)) = open.take() {
                out.push(Hit {
                    start: s,
                    end: e,
                    ctx: s,
                    rule: "system_prompt",
                    kind: RedactionKind::SystemPrompt,
                    detail: HitDetail::Prompt(p),
                });
            }
        };
        words(hay, |s, e, h| {
            let Some(h) = h.filter(|h| self.maybe_prompt_word(*h)) else {
                count = 0;
                flush(&mut open, out);
                return;
            };
            ring[total % n] = (s, e, h);
            total += 1;
            count += 1;
            if count < n {
                return;
            }
            let first = total - n;
            let sh = shingle_hash((first..total).map(|k| ring[k % n].2));
            match self.shingles.get(&sh) {
                Some(&p) => {
                    let start = ring[first % n].0;
                    match &mut open {
                        Some((_, end, _)) => *end = e,
                        None => open = Some((start, e, p)),
                    }
                }
                None => {
                    // A span ends once a window misses; the words still in the window belong
                    // to the span only if a later window matches again.
                    flush(&mut open, out);
                }
            }
        });
        flush(&mut open, out);
    }
}
