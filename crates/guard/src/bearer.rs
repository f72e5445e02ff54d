//! RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`.

use super::error::Rejection;

/// Extracts the bearer token from the request's `Authorization` header values.
///
/// `values` holds every `Authorization` field value the request carried (an HTTP request may
/// repeat the header). Leading and trailing whitespace (RFC 9110 OWS) is ignored; the scheme
/// is case-insensitive; one or more spaces separate it from a b64token, and nothing else may
/// follow. A credential longer than `max_len` is refused before its bytes are examined.
pub fn extract_token<'a>(values: &[&'a [u8]], max_len: usize) -> Result<&'a str, Rejection> {
    let value = match values {
        [] => return Err(Rejection::MissingCredentials),
        [one] => trim_ows(one),
        _ => return Err(Rejection::MultipleCredentials),
    };
    if value.is_empty() {
        return Err(Rejection::MalformedHeader);
    }
    // The common case, `Bearer <token>`, is checked in one pass over the credential; anything
    // else takes the slower path that tells the reasons apart.
    let scheme_end = value
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return Err(if value.iter().any(|&b| is_ctl(b)) {
            Rejection::MalformedHeader
        } else {
            Rejection::UnsupportedScheme
        });
    }
    // 1*SP: at least one space, and only spaces (a tab is not SP).
    let credential_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    if credential_start == 0 {
        return Err(Rejection::MalformedHeader);
    }
    let credential = &rest[credential_start..];
    if credential.is_empty() {
        return Err(Rejection::MalformedHeader);
    }
    if credential.len() > max_len {
        return Err(Rejection::Oversized);
    }
    if !is_b64token(credential) {
        return Err(Rejection::MalformedHeader);
    }
    // A b64token is ASCII, hence UTF-8.
    std::str::from_utf8(credential).map_err(|_| Rejection::MalformedHeader)
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// RFC 9110 field values may not hold control characters other than HTAB.
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Bytes allowed in a b64token body: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
const B64TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    t
};

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`, in one pass.
pub fn is_b64token(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() && B64TOKEN[s[i] as usize] {
        i += 1;
    }
    i > 0 && s[i..].iter().all(|&b| b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Result<&str, Rejection> {
        extract_token(&[v.as_bytes()], 64)
    }

    #[test]
    fn accepts_rfc_6750_forms() {
        assert_eq!(one("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(one("bearer abc"), Ok("abc"));
        assert_eq!(one("BEARER   abc=="), Ok("abc=="));
        assert_eq!(one("  Bearer abc \t"), Ok("abc"));
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(extract_token(&[], 64), Err(Rejection::MissingCredentials));
        assert_eq!(
            extract_token(&[b"Bearer a", b"Bearer b"], 64),
            Err(Rejection::MultipleCredentials)
        );
        assert_eq!(one("Basic dXNlcjpwYXNz"), Err(Rejection::UnsupportedScheme));
        assert_eq!(one("Bearerabc"), Err(Rejection::UnsupportedScheme));
        assert_eq!(one(""), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer"), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer\tabc"), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer a b"), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer a,Bearer b"), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer ="), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer a=b"), Err(Rejection::MalformedHeader));
        assert_eq!(one("Bearer a\r\nX: y"), Err(Rejection::MalformedHeader));
        assert_eq!(
            one(&format!("Bearer {}", "a".repeat(65))),
            Err(Rejection::Oversized)
        );
        assert_eq!(
            extract_token(&[b"Bearer \xc3\xa9"], 64),
            Err(Rejection::MalformedHeader)
        );
    }
}
