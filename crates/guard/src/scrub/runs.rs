//! Long runs of one byte class, found while looking at as few bytes as possible: the shared
//! first step of the high-entropy scan and of the large literal automaton.
//!
//! A run at least `min` bytes long that starts at or after `i` covers byte `i + min - 1`, so
//! when that byte is outside the class the whole stretch is skipped; in prose (short words)
//! most bytes are never looked at. When it is inside, the run through it is measured eight
//! bytes per step (a mask of class bits, then a count of ones), so the data-dependent branch
//! is taken once per word rather than once per byte.

use std::ops::Range;

/// A set of bytes, as a lookup table.
pub(super) type ByteClass = [bool; 256];

/// The class of the bytes in the given inclusive ranges, built at compile time in a `static`.
pub(super) const fn class_of(ranges: &[(u8, u8)]) -> ByteClass {
    let mut t = [false; 256];
    let mut r = 0;
    while r < ranges.len() {
        let (lo, hi) = ranges[r];
        let mut b = lo as usize;
        while b <= hi as usize {
            t[b] = true;
            b += 1;
        }
        r += 1;
    }
    t
}

/// Bit `k` set when `bytes[k]` is in `class`.
#[inline(always)]
fn mask8(bytes: &[u8; 8], class: &ByteClass) -> u8 {
    let mut m = 0u8;
    for (k, &b) in bytes.iter().enumerate() {
        m |= u8::from(class[usize::from(b)]) << k;
    }
    m
}

/// The first position at or after `from` (and before `end`) whose byte is outside `class`, or
/// `end`.
#[inline]
fn run_end(hay: &[u8], mut from: usize, end: usize, class: &ByteClass) -> usize {
    while from + 8 <= end {
        let Some(w) = hay
            .get(from..from + 8)
            .and_then(|w| <&[u8; 8]>::try_from(w).ok())
        else {
            break;
        };
        let ones = (!mask8(w, class)).trailing_zeros() as usize;
        from += ones;
        if ones < 8 {
            return from;
        }
    }
    while from < end && class[usize::from(hay[from])] {
        from += 1;
    }
    from
}

/// The first position of the run of `class` bytes that ends at `to` (exclusive), not before
/// `floor`.
#[inline]
fn run_start(hay: &[u8], floor: usize, mut to: usize, class: &ByteClass) -> usize {
    while to >= floor + 8 {
        let Some(w) = hay
            .get(to - 8..to)
            .and_then(|w| <&[u8; 8]>::try_from(w).ok())
        else {
            break;
        };
        let ones = (!mask8(w, class)).leading_zeros() as usize;
        to -= ones;
        if ones < 8 {
            return to;
        }
    }
    while to > floor && class[usize::from(hay[to - 1])] {
        to -= 1;
    }
    to
}

/// Calls `f(run)` for each maximal run of `class` bytes in `span` at least `min` long, in
/// order. A run is cut at the span's ends.
#[inline]
pub(super) fn each_run(
    hay: &[u8],
    span: Range<usize>,
    class: &ByteClass,
    min: usize,
    mut f: impl FnMut(Range<usize>),
) {
    let min = min.max(1);
    let end = span.end.min(hay.len());
    let mut i = span.start;
    // Invariant: `i == span.start` or `hay[i - 1]` is outside the class, and every run that
    // starts before `i` has been reported.
    while i + min <= end {
        let p = i + min - 1;
        if !class[usize::from(hay[p])] {
            i = p + 1;
            continue;
        }
        // The run through `p`: by the invariant it starts at or after `i`.
        let s = run_start(hay, i, p, class);
        let e = run_end(hay, p + 1, end, class);
        if e - s >= min {
            f(s..e);
        }
        // `hay[e]` is outside the class (or the span ends there).
        i = e + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One byte at a time: the oracle of [`each_run`].
    fn each_run_simple(
        hay: &[u8],
        span: Range<usize>,
        class: &ByteClass,
        min: usize,
    ) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut i = span.start;
        while i < span.end {
            if !class[usize::from(hay[i])] {
                i += 1;
                continue;
            }
            let s = i;
            while i < span.end && class[usize::from(hay[i])] {
                i += 1;
            }
            if i - s >= min.max(1) {
                out.push(s..i);
            }
        }
        out
    }

    #[test]
    fn finds_what_a_byte_at_a_time_scan_finds() {
        static WORD: ByteClass = class_of(&[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z')]);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..4000 {
            let len = (round % 97) + (round % 7) * 13;
            let mut hay = Vec::with_capacity(len);
            // Runs of every length around the thresholds, separated by 1-3 other bytes.
            while hay.len() < len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let run = (seed % 40) as usize;
                hay.extend(std::iter::repeat_n(b'a', run));
                hay.extend(std::iter::repeat_n(b' ', 1 + (seed >> 8) as usize % 3));
            }
            hay.truncate(len);
            for min in [1, 2, 7, 8, 9, 16, 24, 33] {
                for start in [0, 1, len / 3, len.saturating_sub(1)] {
                    for end in [len, len.saturating_sub(1), len / 2] {
                        let span = start.min(end)..end;
                        let mut got = Vec::new();
                        each_run(&hay, span.clone(), &WORD, min, |r| got.push(r));
                        assert_eq!(
                            got,
                            each_run_simple(&hay, span.clone(), &WORD, min),
                            "min {min}, span {span:?}, hay {:?}",
                            String::from_utf8_lossy(&hay)
                        );
                    }
                }
            }
        }
    }
}
