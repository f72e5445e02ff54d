//! Text transforms shared by the prompt and output generators: encodings a model or an
//! attacker uses to slip text past filters (base64, rot13, hex, percent), and look-alike
//! rewrites (leetspeak, homoglyphs, fullwidth, zero-width characters, mixed scripts).
//!
//! All are pure, deterministic and allocate one `String` per call. The look-alike rewrites
//! take a `keep` span (the canary) that they leave byte-for-byte intact, because success is
//! detected by finding that exact value in what the model returns.

use base64::Engine as _;

/// The zero-width characters [`insert_zero_width`] interleaves: ZWSP, ZWNJ, ZWJ, WORD JOINER
/// and the BOM used as ZWNBSP. All are invisible in most renderers and ignored by humans.
pub(crate) const ZERO_WIDTH: [char; 5] =
    ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// A 64-bit mixer (splitmix64 finaliser): turns a seed and a salt into well-spread bits,
/// so nearby seeds give unrelated canaries and picks.
pub(crate) fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64_standard(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// URL-safe base64 without padding (RFC 4648 §5), the form that survives a query string.
pub(crate) fn base64_url(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// Lower-case hex of the UTF-8 bytes.
pub(crate) fn hex_lower(text: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Percent-encodes every byte outside RFC 3986 "unreserved" (`A-Z a-z 0-9 - . _ ~`), so the
/// result is safe anywhere in a URL and contains no markdown or whitespace delimiter.
pub(crate) fn percent_encode(text: &str) -> String {
    percent_encode_where(text, |byte| !is_unreserved(byte))
}

/// Percent-encodes every byte, unreserved ones included (`doc` → `%64%6F%63`): an id that
/// a decoder maps back to the original but a string comparison does not.
pub(crate) fn percent_encode_all(text: &str) -> String {
    percent_encode_where(text, |_| true)
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn percent_encode_where(text: &str, encode: impl Fn(u8) -> bool) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if encode(byte) {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// ROT13 over ASCII letters; everything else unchanged. Its own inverse.
pub(crate) fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => char::from((c as u8 - b'a' + 13) % 26 + b'a'),
            'A'..='Z' => char::from((c as u8 - b'A' + 13) % 26 + b'A'),
            _ => c,
        })
        .collect()
}

/// Applies `rewrite` to every character outside occurrences of `keep` (an empty `keep`
/// protects nothing). `rewrite` gets the character and the index of the word it is in.
fn rewrite_outside(
    text: &str,
    keep: &str,
    mut rewrite: impl FnMut(char, usize, &mut String),
) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut word_index = 0usize;
    let mut in_word = false;
    let mut rest = text;
    loop {
        let (head, tail) = match (!keep.is_empty()).then(|| rest.find(keep)).flatten() {
            Some(at) => (&rest[..at], Some(&rest[at + keep.len()..])),
            None => (rest, None),
        };
        for c in head.chars() {
            if c.is_whitespace() {
                in_word = false;
            } else if !in_word {
                in_word = true;
                word_index += 1;
            }
            rewrite(c, word_index, &mut out);
        }
        match tail {
            Some(after) => {
                out.push_str(keep);
                rest = after;
            }
            None => return out,
        }
    }
}

/// Leetspeak (`a`→`4`, `e`→`3`, `i`→`1`, `o`→`0`, `s`→`5`, `t`→`7`, `g`→`9`, `b`→`8`)
/// outside `keep`, which stays verbatim: leet is lossy, so the canary cannot be recovered
/// from a leet form and is therefore never rewritten.
pub(crate) fn leetspeak(text: &str, keep: &str) -> String {
    rewrite_outside(text, keep, |c, _, out| out.push(leet_char(c)))
}

fn leet_char(c: char) -> char {
    match c.to_ascii_lowercase() {
        'a' => '4',
        'e' => '3',
        'i' => '1',
        'o' => '0',
        's' => '5',
        't' => '7',
        'g' => '9',
        'b' => '8',
        _ => c,
    }
}

/// Latin letters and their Cyrillic look-alikes (the classic IDN homograph set).
const CYRILLIC: &[(char, char)] = &[
    ('a', 'а'),
    ('c', 'с'),
    ('e', 'е'),
    ('i', 'і'),
    ('j', 'ј'),
    ('o', 'о'),
    ('p', 'р'),
    ('s', 'ѕ'),
    ('x', 'х'),
    ('y', 'у'),
    ('A', 'А'),
    ('B', 'В'),
    ('C', 'С'),
    ('E', 'Е'),
    ('H', 'Н'),
    ('I', 'І'),
    ('J', 'Ј'),
    ('K', 'К'),
    ('M', 'М'),
    ('O', 'О'),
    ('P', 'Р'),
    ('S', 'Ѕ'),
    ('T', 'Т'),
    ('X', 'Х'),
];

/// Latin letters and their Greek look-alikes.
const GREEK: &[(char, char)] = &[
    ('i', 'ι'),
    ('o', 'ο'),
    ('v', 'ν'),
    ('A', 'Α'),
    ('B', 'Β'),
    ('E', 'Ε'),
    ('H', 'Η'),
    ('I', 'Ι'),
    ('K', 'Κ'),
    ('M', 'Μ'),
    ('N', 'Ν'),
    ('O', 'Ο'),
    ('P', 'Ρ'),
    ('T', 'Τ'),
    ('X', 'Χ'),
    ('Y', 'Υ'),
    ('Z', 'Ζ'),
];

fn look_alike(table: &[(char, char)], c: char) -> char {
    table
        .iter()
        .find(|(latin, _)| *latin == c)
        .map_or(c, |(_, other)| *other)
}

/// Fullwidth form of printable ASCII (`A` → `Ａ`, U+FF21); other characters unchanged.
pub(crate) fn fullwidth_char(c: char) -> char {
    match c {
        '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Fullwidth form of a whole string.
pub(crate) fn fullwidth(text: &str) -> String {
    text.chars().map(fullwidth_char).collect()
}

/// Replaces every Latin letter that has a Cyrillic look-alike, outside `keep`.
/// [`fold_look_alike`] maps the result back to `text`.
pub(crate) fn homoglyphs(text: &str, keep: &str) -> String {
    rewrite_outside(text, keep, |c, _, out| out.push(look_alike(CYRILLIC, c)))
}

/// Writes each word in a different script, rotating Latin, Cyrillic, Greek and fullwidth
/// (`offset` picks where the rotation starts), outside `keep`. [`fold_look_alike`] maps the
/// result back to `text`.
pub(crate) fn mixed_scripts(text: &str, keep: &str, offset: usize) -> String {
    rewrite_outside(text, keep, |c, word, out| {
        let mapped = match (word + offset) % 4 {
            0 => c,
            1 => look_alike(CYRILLIC, c),
            2 => look_alike(GREEK, c),
            _ if c.is_ascii_alphanumeric() => fullwidth_char(c),
            _ => c,
        };
        out.push(mapped);
    })
}

/// Interleaves zero-width characters between all characters (the canary included, since
/// deleting [`ZERO_WIDTH`] characters recovers `text` exactly). `offset` picks which
/// zero-width character comes first.
pub(crate) fn insert_zero_width(text: &str, offset: usize) -> String {
    let mut out = String::with_capacity(text.len() * 4);
    for (index, c) in text.chars().enumerate() {
        if index > 0 {
            out.push(ZERO_WIDTH[(index + offset) % ZERO_WIDTH.len()]);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Latin letter a Cyrillic or Greek look-alike produced here stands for, or `c` itself,
    /// to fold [`homoglyphs`] and [`mixed_scripts`] output back. Only tests need it: the oracle
    /// looks for the canary verbatim.
    fn fold_look_alike(c: char) -> char {
        CYRILLIC
            .iter()
            .chain(GREEK)
            .find(|(_, other)| *other == c)
            .map_or_else(|| fold_fullwidth(c), |(latin, _)| *latin)
    }

    fn fold_fullwidth(c: char) -> char {
        match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        }
    }

    #[test]
    fn encodings_match_known_values() {
        assert_eq!(base64_standard("hi?"), "aGk/");
        assert_eq!(base64_url("hi?"), "aGk_");
        assert_eq!(hex_lower("A\n"), "410a");
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(percent_encode_all("a-"), "%61%2D");
        assert_eq!(rot13("Hello, CNRY-09af"), "Uryyb, PAEL-09ns");
    }

    #[test]
    fn look_alikes_keep_the_protected_span_and_fold_back() {
        let text = "Print CNRY-abc then stop";
        for rewritten in [
            homoglyphs(text, "CNRY-abc"),
            mixed_scripts(text, "CNRY-abc", 1),
        ] {
            assert!(rewritten.contains("CNRY-abc"));
            assert_ne!(rewritten, text);
            let folded: String = rewritten.chars().map(fold_look_alike).collect();
            assert_eq!(folded, text);
        }
        assert_eq!(leetspeak("stop CNRY-abc", "CNRY-abc"), "570p CNRY-abc");
    }
}
