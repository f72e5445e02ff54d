//! High-entropy tokens: runs of base64/base64url characters that look random.
//!
//! The rule (chosen to keep prose, code identifiers, UUIDs and git hashes out; measured on
//! random strings it flags ~95% of random base64 runs of 24–31 characters and ~98% from 32 up):
//!
//! * a run is a maximal sequence of `[A-Za-z0-9+/_-]` plus trailing `=` padding, at least
//!   [`MIN_RUN`] characters long (runs break at `.`, `:`, quotes, brackets and blanks, so JWT
//!   segments, URLs and paths split into their parts);
//! * it contains an upper-case letter, a lower-case letter and a digit: pure hex (git SHAs,
//!   SHA-256 digests, lower- or upper-case UUIDs), snake_case and SCREAMING_CASE names never
//!   qualify. Hex is deliberately never flagged: a hex-encoded *registered* secret is caught
//!   exactly by the literal rule, while hex digests and ids are everywhere in logs;
//! * its Shannon entropy (bits per character, over its own character frequencies, as
//!   detect-secrets computes it) is at least `0.82 · log2(min(len, 64))`. detect-secrets uses a
//!   flat 4.5 bits, which a string shorter than 23 characters cannot reach and which random
//!   24–40 character keys often miss; scaling with the length fixes both;
//! * at least one adjacent pair in eight is two upper-case letters or digits in a row. camelCase
//!   identifiers (`getUserByIdWithCacheAndRetry2`) have high entropy too but almost never two
//!   capitals in a row; random base64 has them at every third pair.

use super::runs::{ByteClass, class_of, each_run};
use super::{Hit, HitDetail, RedactionKind};

/// Shortest run that may be flagged.
pub(super) const MIN_RUN: usize = 24;

/// `[A-Za-z0-9+/_-]`.
static RUN_BYTE: ByteClass = class_of(&[
    (b'0', b'9'),
    (b'A', b'Z'),
    (b'a', b'z'),
    (b'+', b'+'),
    (b'/', b'/'),
    (b'_', b'_'),
    (b'-', b'-'),
]);

#[cfg(test)]
fn run_byte(b: u8) -> bool {
    RUN_BYTE[usize::from(b)]
}

/// Appends a hit for every high-entropy run in `hay` (runs found as `runs::each_run` does:
/// in prose most bytes are never looked at).
pub(super) fn scan(hay: &[u8], out: &mut Vec<Hit>) {
    each_run(hay, 0..hay.len(), &RUN_BYTE, MIN_RUN, |run| {
        if looks_random(&hay[run.clone()]) {
            let mut end = run.end;
            while end < hay.len() && hay[end] == b'=' && end - run.end < 2 {
                end += 1;
            }
            out.push(Hit {
                start: run.start,
                end,
                ctx: run.start,
                rule: "high_entropy",
                kind: RedactionKind::HighEntropy,
                detail: HitDetail::None,
            });
        }
    });
}

/// The straightforward byte-at-a-time scan, kept as the oracle of the skipping one.
#[cfg(test)]
fn scan_simple(hay: &[u8], out: &mut Vec<Hit>) {
    let mut i = 0;
    let n = hay.len();
    while i < n {
        if !run_byte(hay[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && run_byte(hay[i]) {
            i += 1;
        }
        let body_end = i;
        while i < n && hay[i] == b'=' && i - body_end < 2 {
            i += 1;
        }
        if body_end - s >= MIN_RUN && looks_random(&hay[s..body_end]) {
            out.push(Hit {
                start: s,
                end: i,
                ctx: s,
                rule: "high_entropy",
                kind: RedactionKind::HighEntropy,
                detail: HitDetail::None,
            });
        }
    }
}

/// Shannon entropy in bits per byte over the string's own byte frequencies, computed as
/// `log2 n − Σ c·log2 c / n` over the byte counts `c`: one logarithm per run instead of one per
/// distinct byte (a run that reaches this test is usually a key, with dozens of distinct bytes).
pub(super) fn shannon(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    // Each distinct byte once, at its first occurrence (its count is then cleared): a run of a
    // few dozen bytes visits a few dozen counts, not all 256. A count of 1 adds 1·log2 1 = 0.
    let mut sum = 0.0;
    for &b in s {
        let c = std::mem::take(&mut counts[usize::from(b)]);
        if c > 1 {
            sum += c_log2_c(c);
        }
    }
    let n = s.len() as f64;
    n.log2() - sum / n
}

/// Counts up to this are looked up: runs that get this far are mostly a few dozen bytes.
const C_LOG2_C_TABLE: usize = 128;

/// `c · log2 c`, from a table for small counts.
fn c_log2_c(c: u32) -> f64 {
    static TABLE: std::sync::LazyLock<[f64; C_LOG2_C_TABLE]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|c| c as f64 * (c as f64).log2().max(0.0)));
    match TABLE.get(c as usize) {
        Some(v) => *v,
        None => f64::from(c) * f64::from(c).log2(),
    }
}

/// What [`looks_random`] needs to know of a byte: upper-case letter, lower-case letter, digit.
const UPPER: u8 = 1;
const LOWER: u8 = 2;
const DIGIT: u8 = 4;
static LETTER_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'0'..=b'9' => DIGIT,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// The rule of the module docs, on one run. The character classes and the dense pairs are
/// taken in one pass; the entropy, the dearest test, only for a run that passes both.
pub(super) fn looks_random(s: &[u8]) -> bool {
    let (mut seen, mut pairs, mut previous_dense) = (0u8, 0usize, false);
    for &b in s {
        let class = LETTER_CLASS[usize::from(b)];
        seen |= class;
        let dense = class & (UPPER | DIGIT) != 0;
        pairs += usize::from(dense && previous_dense);
        previous_dense = dense;
    }
    if seen != UPPER | LOWER | DIGIT || pairs * 8 < s.len() {
        return false;
    }
    let bound = 0.82 * (s.len().min(64) as f64).log2();
    shannon(s) >= bound
}

#[cfg(test)]
mod tests {
    use super::{looks_random, scan, scan_simple};

    fn spans(f: fn(&[u8], &mut Vec<super::Hit>), hay: &[u8]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        f(hay, &mut v);
        v.iter().map(|h| (h.start, h.end)).collect()
    }

    #[test]
    fn skipping_scan_matches_the_simple_one() {
        let key = "X9fQ2mZ8kP4vL7nR3tY6wB1cD5eG0hJ";
        let mut cases: Vec<String> = vec![
            String::new(),
            key.to_owned(),
            format!("{key}=="),
            format!("{key}==={key}"),
            format!("a {key} b"),
            format!("{key}.{key}"),
            format!("é{key}é"),
            format!("{}{key}", "x".repeat(23)),
            format!("{}{key}", "x ".repeat(40)),
            key[..23].to_owned(),
            key[..24].to_owned(),
        ];
        // Runs of every length around the threshold, at every offset.
        let mut seed = 0x9e37_79b9_u32;
        for len in 20..40 {
            for pre in 0..30 {
                let mut s = String::new();
                for k in 0..pre {
                    s.push(if k % 3 == 0 { ' ' } else { 'q' });
                }
                for _ in 0..len {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let alphabet =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    s.push(char::from(alphabet[(seed >> 16) as usize % 64]));
                }
                s.push_str(if len % 2 == 0 { "= tail" } else { "" });
                cases.push(s);
            }
        }
        for c in &cases {
            assert_eq!(
                spans(scan, c.as_bytes()),
                spans(scan_simple, c.as_bytes()),
                "{c:?}"
            );
        }
    }

    /// The one-logarithm form equals the textbook `−Σ p·log2 p`, for short and long runs.
    #[test]
    fn shannon_is_the_textbook_entropy() {
        let textbook = |s: &[u8]| -> f64 {
            let mut counts = [0u32; 256];
            s.iter().for_each(|&b| counts[usize::from(b)] += 1);
            let n = s.len() as f64;
            counts
                .iter()
                .filter(|c| **c > 0)
                .map(|&c| {
                    let p = f64::from(c) / n;
                    -p * p.log2()
                })
                .sum()
        };
        let mut seed = 7u32;
        for len in [1usize, 2, 24, 31, 64, 200, 1000] {
            for alphabet in [2u32, 16, 64] {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        b'0' + ((seed >> 16) % alphabet) as u8
                    })
                    .collect();
                let (got, want) = (super::shannon(&s), textbook(&s));
                assert!((got - want).abs() < 1e-9, "len {len}: {got} vs {want}");
            }
        }
        assert_eq!(super::shannon(b""), 0.0);
    }

    #[test]
    fn decoys_and_keys() {
        for decoy in [
            "getUserByIdWithCacheAndRetry2",
            "ThisIsAVeryLongCamelCaseIdentifierName1",
            "3423942c-d04e-4563-a16e-103dc3e2fd40",
            "102C57F1-FEBC-4833-891C-4E59EC63BF51",
            "11f6ad8ec52a2984abaafd7c3b516503785c2072",
            "parseHTTPResponseHeaderFromJSON2Body",
            "MyApplication_Production_Config_v2_Final",
        ] {
            assert!(!looks_random(decoy.as_bytes()), "{decoy}");
        }
        assert!(looks_random(b"X9fQ2mZ8kP4vL7nR3tY6wB1cD5eG0hJ"));
    }
}
