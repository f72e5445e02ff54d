//! Exact registered secrets and their encodings, as byte patterns for one Aho-Corasick
//! automaton.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::Serialize;

/// How a registered secret appears in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Raw,
    /// Standard base64, padded or not, at any of the three byte alignments inside a blob.
    Base64,
    /// URL-safe base64 (RFC 4648 §5), any alignment.
    Base64Url,
    HexLower,
    HexUpper,
    /// Percent-encoding of every byte outside RFC 3986 "unreserved", `%XX` upper or lower.
    Percent,
}

impl Encoding {
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

    pub fn is_base64(self) -> bool {
        matches!(self, Encoding::Base64 | Encoding::Base64Url)
    }
}

/// The base64 characters that depend only on the secret when it sits at byte offset
/// `offset` (0, 1 or 2) of a longer base64-encoded stream: the standard trick for finding a
/// known value inside a base64 blob. Character `i` covers bits `[6i, 6i+6)`; it is stable when
/// that range lies within the secret's bits `[8·offset, 8·(offset+n))`.
fn base64_core(secret: &[u8], offset: usize, url: bool) -> Vec<u8> {
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(secret);
    let enc = if url {
        URL_SAFE_NO_PAD.encode(&buf)
    } else {
        STANDARD_NO_PAD.encode(&buf)
    };
    let first = (8 * offset).div_ceil(6);
    let last = (8 * (offset + secret.len())) / 6;
    let core = enc.as_bytes().get(first..last).unwrap_or_default().to_vec();
    // Best effort: the scratch copy held the secret.
    buf.iter_mut().for_each(|b| *b = 0);
    core
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
    for offset in 0..3 {
        out.push((Encoding::Base64, base64_core(secret, offset, false)));
        out.push((Encoding::Base64Url, base64_core(secret, offset, true)));
    }
    out.push((Encoding::HexLower, hex(secret, false)));
    out.push((Encoding::HexUpper, hex(secret, true)));
    for all in [false, true] {
        out.push((Encoding::Percent, percent(secret, true, all)));
        out.push((Encoding::Percent, percent(secret, false, all)));
    }
    let mut seen: Vec<Vec<u8>> = Vec::new();
    out.retain(|(_, p)| {
        if p.is_empty() || seen.contains(p) {
            false
        } else {
            seen.push(p.clone());
            true
        }
    });
    out
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
pub fn widen_base64(hay: &[u8], start: usize, end: usize, url: bool) -> (usize, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

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
