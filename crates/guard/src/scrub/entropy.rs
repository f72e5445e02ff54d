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

/// Shannon entropy in bits per byte over the string's own byte frequencies.
pub(super) fn shannon(s: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The rule of the module docs, on one run.
pub(super) fn looks_random(s: &[u8]) -> bool {
    let (mut up, mut low, mut digit) = (false, false, false);
    for b in s {
        up |= b.is_ascii_uppercase();
        low |= b.is_ascii_lowercase();
        digit |= b.is_ascii_digit();
    }
    if !(up && low && digit) {
        return false;
    }
    let dense = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let pairs = s
        .windows(2)
        .filter(|w| dense(&w[0]) && dense(&w[1]))
        .count();
    if pairs * 8 < s.len() {
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
