//! Exact registered secrets and their encodings, as byte patterns for one Aho-Corasick
//! automaton.

use super::runs::{ByteClass, each_run};
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::Serialize;

/// How a registered secret appears in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The bytes as registered.
    Raw,
    /// Standard base64, padded or not, at any of the three byte alignments inside a blob.
    Base64,
    /// URL-safe base64 (RFC 4648 §5), any alignment.
    Base64Url,
    /// Lowercase hex.
    HexLower,
    /// Uppercase hex.
    HexUpper,
    /// Percent-encoding of every byte outside RFC 3986 "unreserved", `%XX` upper or lower.
    Percent,
}

impl Encoding {
    /// The name used in descriptions, e.g. `base64url`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "base64url",
            Encoding::HexLower => "hex",
            Encoding::HexUpper => "hex_upper",
            Encoding::Percent => "percent",
        }
    }

    /// True for the two base64 alphabets.
    pub fn is_base64(self) -> bool {
        matches!(self, Encoding::Base64 | Encoding::Base64Url)
    }
}

/// The base64 characters that depend only on the secret when it sits at byte offset
/// `offset` (0, 1 or 2) of a longer base64-encoded stream: the standard trick for finding a
/// known value inside a base64 blob. Character `i` covers bits `[6i, 6i+6)`; it is stable when
/// that range lies within the secret's bits `[8·offset, 8·(offset+n))`. `shifted` is the
/// secret behind two zero bytes, shared by the three offsets.
fn base64_core(shifted: &[u8], offset: usize, url: bool) -> Vec<u8> {
    let input = &shifted[2 - offset..];
    let n = input.len() - offset;
    let mut out = vec![0u8; (input.len() * 4).div_ceil(3)];
    let engine = if url {
        &URL_SAFE_NO_PAD
    } else {
        &STANDARD_NO_PAD
    };
    // The buffer has the exact unpadded length, so this cannot fail.
    let written = engine.encode_slice(input, &mut out).unwrap_or(0);
    out.truncate(written.min((8 * (offset + n)) / 6));
    let first = (8 * offset).div_ceil(6).min(out.len());
    out.drain(..first);
    out
}

fn hex(secret: &[u8], upper: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(secret.len() * 2);
    for b in secret {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 15)]);
    }
    out
}

/// `%XX` for every byte outside "unreserved", or for every byte when `all` (`%61%62` decodes
/// to `ab` as well, and a model asked to hide a secret may write it that way).
fn percent(secret: &[u8], upper: bool, all: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(secret.len() * 3);
    for &b in secret {
        if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

/// Every pattern to search for one secret, deduplicated, raw first.
pub fn encodings(secret: &[u8]) -> Vec<(Encoding, Vec<u8>)> {
    let mut out: Vec<(Encoding, Vec<u8>)> = vec![(Encoding::Raw, secret.to_vec())];
    let mut shifted = vec![0u8; 2];
    shifted.extend_from_slice(secret);
    for offset in 0..3 {
        out.push((Encoding::Base64, base64_core(&shifted, offset, false)));
        out.push((Encoding::Base64Url, base64_core(&shifted, offset, true)));
    }
    // Best effort: the scratch copy held the secret.
    shifted.iter_mut().for_each(|b| *b = 0);
    out.push((Encoding::HexLower, hex(secret, false)));
    out.push((Encoding::HexUpper, hex(secret, true)));
    for all in [false, true] {
        out.push((Encoding::Percent, percent(secret, true, all)));
        out.push((Encoding::Percent, percent(secret, false, all)));
    }
    // A dozen short patterns: comparing with the kept ones beats hashing, and nothing is
    // copied (this runs for every case's token).
    let mut kept: Vec<(Encoding, Vec<u8>)> = Vec::with_capacity(out.len());
    for (enc, p) in out {
        if !p.is_empty() && !kept.iter().any(|(_, q)| *q == p) {
            kept.push((enc, p));
        }
    }
    kept
}

fn is_b64(b: u8, url: bool) -> bool {
    b.is_ascii_alphanumeric()
        || if url {
            b == b'-' || b == b'_'
        } else {
            b == b'+' || b == b'/'
        }
}

/// Widens a base64 core match over the partial characters around it (at most two, which mix
/// secret bits with neighbouring bytes) and any `=` padding, so no secret bit is left behind.
pub(super) fn widen_base64(hay: &[u8], start: usize, end: usize, url: bool) -> (usize, usize) {
    let mut s = start;
    while s > 0 && start - s < 2 && is_b64(hay[s - 1], url) {
        s -= 1;
    }
    let mut e = end;
    while e < hay.len() && e - end < 2 && is_b64(hay[e], url) {
        e += 1;
    }
    let pad_from = e;
    while e < hay.len() && e - pad_from < 2 && hay[e] == b'=' {
        e += 1;
    }
    (s, e)
}

/// Most patterns aho-corasick's packed (Teddy) searcher takes (its heuristic limit): it scans
/// ~10× faster than an automaton without a prefilter.
const PACKED_LIMIT: usize = 64;

/// Up to this many automata of [`PACKED_LIMIT`] patterns each beat one automaton without a
/// prefilter; past it the single automaton is faster.
const MAX_PARTS: usize = 4;

/// One group of patterns: a packed (Teddy) searcher when the CPU has it and the group is small
/// enough, else an automaton. aho-corasick picks its own prefilter, and on these patterns
/// (base64, hex, `%XX`) it picks a rare-byte one that is slower than no prefilter at all.
enum Part {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Part {
    fn find(&self, hay: &[u8], span: std::ops::Range<usize>) -> Option<(usize, usize, usize)> {
        match self {
            Part::Packed(p) => p
                .find_in(hay, aho_corasick::Span::from(span))
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
            Part::Automaton(ac) => ac
                .find(Input::new(hay).span(span))
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
        }
    }
}

/// The literal patterns as one or a few leftmost-longest searchers (see [`PACKED_LIMIT`]).
/// Searching them together finds what one automaton over all the patterns finds.
pub(super) struct Literals {
    /// (searcher, index of its first pattern).
    parts: Vec<(Part, usize)>,
    /// For one large automaton: the bytes any pattern holds and the shortest pattern. A match
    /// lies inside a run of such bytes at least that long, so the automaton only scans those
    /// runs (most words of prose are shorter than any encoding of a secret).
    runs: Option<(ByteClass, usize)>,
}

impl Literals {
    pub(super) fn new(patterns: &[&[u8]], quick_build: bool) -> Result<Literals, String> {
        let per = if patterns.len() <= PACKED_LIMIT * MAX_PARTS {
            PACKED_LIMIT
        } else {
            patterns.len().max(1)
        };
        Literals::with_part_size(patterns, quick_build, per)
    }

    fn with_part_size(
        patterns: &[&[u8]],
        quick_build: bool,
        per: usize,
    ) -> Result<Literals, String> {
        let kind = quick_build.then_some(AhoCorasickKind::ContiguousNFA);
        let mut parts = Vec::new();
        for (k, chunk) in patterns.chunks(per.max(1)).enumerate() {
            let packed = (chunk.len() <= PACKED_LIMIT)
                .then(|| {
                    aho_corasick::packed::Config::new()
                        .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                        .only_teddy(true)
                        .builder()
                        .extend(chunk)
                        .build()
                })
                .flatten();
            let part = match packed {
                Some(p) => Part::Packed(p),
                None => Part::Automaton(
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .kind(kind)
                        .build(chunk)
                        .map_err(|e| e.to_string())?,
                ),
            };
            parts.push((part, k * per.max(1)));
        }
        let runs = (parts.len() == 1 && patterns.len() > PACKED_LIMIT * MAX_PARTS).then(|| {
            let mut alphabet = [false; 256];
            for p in patterns {
                for &b in *p {
                    alphabet[usize::from(b)] = true;
                }
            }
            let min = patterns.iter().map(|p| p.len()).min().unwrap_or(1).max(1);
            (alphabet, min)
        });
        Ok(Literals { parts, runs })
    }

    /// Calls `f(start, end, pattern)` for each leftmost-longest match in `span` of `hay`, in
    /// order, as one automaton over all the patterns would report them: the leftmost start,
    /// then the longest, then the lowest pattern index.
    pub(super) fn for_each(
        &self,
        hay: &[u8],
        span: std::ops::Range<usize>,
        mut f: impl FnMut(usize, usize, usize),
    ) {
        if let [(Part::Automaton(ac), base)] = self.parts.as_slice() {
            let mut search = |span: std::ops::Range<usize>| {
                for m in ac.find_iter(Input::new(hay).span(span)) {
                    f(m.start(), m.end(), base + m.pattern().as_usize());
                }
            };
            match &self.runs {
                Some((alphabet, min)) => each_run(hay, span, alphabet, *min, search),
                None => search(span),
            }
            return;
        }
        // Each part's next match from `pos`; `None` once a part has no more.
        let mut next: Vec<Option<Option<(usize, usize, usize)>>> = vec![None; self.parts.len()];
        let mut pos = span.start;
        while pos <= span.end {
            for (slot, (part, base)) in next.iter_mut().zip(&self.parts) {
                if slot.is_none_or(|n| n.is_some_and(|(s, _, _)| s < pos)) {
                    *slot = Some(
                        part.find(hay, pos..span.end)
                            .map(|(s, e, p)| (s, e, base + p)),
                    );
                }
            }
            let Some((s, e, p)) = next
                .iter()
                .filter_map(|n| n.flatten())
                .min_by_key(|&(s, e, p)| (s, std::cmp::Reverse(e), p))
            else {
                return;
            };
            f(s, e, p);
            // Patterns are never empty, so the scan moves on.
            pos = e.max(s + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_find_what_one_automaton_finds() {
        let secrets: [&[u8]; 6] = [
            b"hunter2hunter2",
            b"hunter2hunter2",
            b"abcdefgh",
            b"abcdefghij",
            b"bcdefghi",
            b"s3cr3t value!",
        ];
        let mut pats: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            pats.extend(encodings(s).into_iter().map(|(_, p)| p));
        }
        let refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&refs)
            .expect("builds");
        let one = Literals {
            parts: vec![(Part::Automaton(ac), 0)],
            runs: None,
        };
        // The same automaton scanning only the runs of pattern bytes.
        let ac2 = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&refs)
            .expect("builds");
        let mut alphabet = [false; 256];
        refs.iter()
            .flat_map(|p| p.iter())
            .for_each(|&b| alphabet[usize::from(b)] = true);
        let min = refs.iter().map(|p| p.len()).min().unwrap_or(1);
        let by_runs = Literals {
            parts: vec![(Part::Automaton(ac2), 0)],
            runs: Some((alphabet, min)),
        };
        let frags: Vec<&[u8]> = refs
            .iter()
            .copied()
            .chain([&b" "[..], b"x", b"ab", b"\n", b"=="])
            .collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut t = Vec::new();
            for _ in 0..1 + seed % 12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let f = frags[(seed % frags.len() as u64) as usize];
                // Parts of patterns too, so matches overlap and nest.
                t.extend_from_slice(&f[..f.len() - (seed >> 8) as usize % f.len().max(1) / 2]);
            }
            let collect = |l: &Literals, span: std::ops::Range<usize>| {
                let mut v = Vec::new();
                l.for_each(&t, span, |s, e, p| v.push((s, e, refs[p].to_vec())));
                v
            };
            let want = collect(&one, 0..t.len());
            assert_eq!(collect(&by_runs, 0..t.len()), want, "runs");
            let mid = t.len() / 3;
            assert_eq!(
                collect(&by_runs, mid..t.len()),
                collect(&one, mid..t.len()),
                "runs, mid"
            );
            for per in [1, 5, 13, 64, refs.len()] {
                let parts = Literals::with_part_size(&refs, false, per).expect("builds");
                assert_eq!(collect(&parts, 0..t.len()), want, "part size {per}");
                let mid = t.len() / 2;
                assert_eq!(collect(&parts, mid..t.len()), collect(&one, mid..t.len()));
            }
        }
    }
    use base64::engine::general_purpose::STANDARD;

    /// The in-place core equals the slice of a plain encoding of `offset` zero bytes and the
    /// secret, for every length (short secrets leave an empty or one-character core).
    #[test]
    fn base64_core_is_the_stable_slice() {
        for len in 0..40usize {
            let secret: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut shifted = vec![0u8; 2];
            shifted.extend_from_slice(&secret);
            for offset in 0..3 {
                for url in [false, true] {
                    let mut buf = vec![0u8; offset];
                    buf.extend_from_slice(&secret);
                    let enc = if url {
                        URL_SAFE_NO_PAD.encode(&buf)
                    } else {
                        STANDARD_NO_PAD.encode(&buf)
                    };
                    let first = (8 * offset).div_ceil(6);
                    let last = (8 * (offset + len)) / 6;
                    let want = enc.as_bytes().get(first..last).unwrap_or_default();
                    assert_eq!(
                        base64_core(&shifted, offset, url),
                        want,
                        "len {len}, offset {offset}, url {url}"
                    );
                }
            }
        }
    }

    #[test]
    fn cores_are_found_at_every_alignment() {
        let secret = b"correct horse battery staple";
        let cores = encodings(secret);
        for prefix_len in 0..6 {
            let mut blob = vec![b'x'; prefix_len];
            blob.extend_from_slice(secret);
            blob.extend_from_slice(b"trailing bytes");
            let enc = STANDARD.encode(&blob);
            assert!(
                cores.iter().any(|(e, c)| *e == Encoding::Base64
                    && memchr::memmem::find(enc.as_bytes(), c).is_some()),
                "prefix {prefix_len}"
            );
        }
    }

    #[test]
    fn hex_and_percent() {
        assert_eq!(hex(b"\x01\xab", false), b"01ab");
        assert_eq!(hex(b"\x01\xab", true), b"01AB");
        assert_eq!(percent(b"a b/~", true, false), b"a%20b%2F~");
        assert_eq!(percent(b"a b", false, true), b"%61%20%62");
    }
}
