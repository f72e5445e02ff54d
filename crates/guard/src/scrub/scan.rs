//! Scanning: the compiled [`Scrubber`], one detection pass per family, the merge of
//! overlapping matches into regions and the re-scan that makes [`Scrubber::scrub`] idempotent.

use super::{
    Encoding, MAX_ROUNDS, Redaction, RedactionKind, Registered, ScrubConfig, ScrubError,
    ScrubberBuilder, SecretKind, entropy, literal, marker, prompt, rules,
};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

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

/// The compiled scrubber: cheap to share (`&Scrubber` is `Sync`), never prints what it holds.
pub struct Scrubber {
    pub(super) config: ScrubConfig,
    pub(super) literals: Option<literal::Literals>,
    pub(super) literal_meta: Vec<(u32, Encoding)>,
    /// A literal pattern holds a line break: re-scans after a redaction cannot stay within
    /// the marker's lines (see `detect_near_markers`).
    pub(super) literal_multiline: bool,
    pub(super) max_literal: usize,
    pub(super) secrets: Vec<Registered>,
    pub(super) patterns: &'static rules::Patterns,
    pub(super) prompts: prompt::PromptIndex,
    pub(super) prompt_labels: Vec<String>,
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
    /// The redactions, in `text`'s coordinates and in order.
    pub redactions: Vec<Redaction>,
}

impl Scrubber {
    /// A [`ScrubberBuilder`] with the default configuration.
    pub fn builder() -> ScrubberBuilder {
        ScrubberBuilder::new()
    }

    /// A scrubber with the default pattern rules and nothing registered.
    pub fn with_defaults() -> Result<Scrubber, ScrubError> {
        ScrubberBuilder::new().build()
    }

    /// The configuration it was built with.
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

    pub(super) fn redaction(&self, r: &Region, base: u64) -> Redaction {
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
    use crate::secret::Secret;

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
