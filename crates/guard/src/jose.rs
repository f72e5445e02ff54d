//! Just enough JSON for JOSE headers and claims sets: the members a guard reads, each kept
//! as its raw JSON type so the guard (not serde) decides what a wrong type means, and a flag
//! for duplicate member names (RFC 7515 §4 and RFC 7519 §4 let a parser reject them; a strict
//! guard must, because two parsers that pick different duplicates disagree on what was signed).

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value reduced to what claim checks need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw<'a> {
    Num(f64),
    Str(Cow<'a, str>),
    /// An array whose members are all strings.
    Strs(Vec<Cow<'a, str>>),
    /// Anything else: objects, booleans, null, mixed arrays.
    Other,
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Raw<'de>, E> {
        Ok(Raw::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw<'de>, E> {
        Ok(Raw::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw<'de>, E> {
        Ok(Raw::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw<'de>, E> {
        Ok(Raw::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
        let mut strs = Vec::new();
        let mut all_strings = true;
        while let Some(item) = seq.next_element::<Raw<'de>>()? {
            match item {
                Raw::Str(s) if all_strings => strs.push(s),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings {
            Raw::Strs(strs)
        } else {
            Raw::Other
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Other)
    }
}

impl<'de> serde::Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads a JSON object, handing each member the caller cares about to `pick` and skipping the
/// rest. Returns whether a member name appeared twice.
fn read_object<'de, A, F>(mut map: A, mut pick: F) -> Result<bool, A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    // Names seen so far: on the stack for the usual dozen members; past that, all of them in
    // a vector checked by sorting, so thousands of members cost n log n, not n².
    const INLINE: usize = 16;
    let mut inline: [Option<Cow<'de, str>>; INLINE] = [const { None }; INLINE];
    let mut overflow: Vec<Cow<'de, str>> = Vec::new();
    let mut count = 0;
    let mut duplicate = false;
    while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
        if !pick(&name, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
        if count < INLINE {
            duplicate |= inline[..count].iter().flatten().any(|n| *n == name);
            inline[count] = Some(name);
        } else {
            if overflow.is_empty() {
                overflow.extend(inline.iter_mut().filter_map(Option::take));
            }
            overflow.push(name);
        }
        count += 1;
    }
    if !overflow.is_empty() && !duplicate {
        overflow.sort_unstable();
        duplicate = overflow.windows(2).any(|w| w[0] == w[1]);
    }
    Ok(duplicate)
}

/// The JOSE header members the guard looks at.
#[derive(Debug, Default)]
pub(crate) struct Header<'a> {
    pub alg: Option<Raw<'a>>,
    pub typ: Option<Raw<'a>>,
    pub kid: Option<Raw<'a>>,
    pub crit: bool,
    /// `jwk`, `jku`, `x5u` or `x5c` present.
    pub key_reference: bool,
    pub duplicate: bool,
}

impl<'de> serde::Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Header<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Header<'de>, A::Error> {
                let mut h = Header::default();
                h.duplicate = read_object(map, |name, map| {
                    let slot = match name {
                        "alg" => &mut h.alg,
                        "typ" => &mut h.typ,
                        "kid" => &mut h.kid,
                        "crit" => {
                            h.crit = true;
                            return Ok(false);
                        }
                        "jwk" | "jku" | "x5u" | "x5c" => {
                            h.key_reference = true;
                            return Ok(false);
                        }
                        _ => return Ok(false),
                    };
                    *slot = Some(map.next_value::<Raw<'de>>()?);
                    Ok(true)
                })?;
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// The claims the guard checks (RFC 7519 §4.1, RFC 8693 §4.2, RFC 9068 §2.2).
#[derive(Debug, Default)]
pub(crate) struct Claims<'a> {
    pub exp: Option<Raw<'a>>,
    pub nbf: Option<Raw<'a>>,
    pub iat: Option<Raw<'a>>,
    pub iss: Option<Raw<'a>>,
    pub sub: Option<Raw<'a>>,
    pub aud: Option<Raw<'a>>,
    pub scope: Option<Raw<'a>>,
    pub scp: Option<Raw<'a>>,
    pub jti: Option<Raw<'a>>,
    pub client_id: Option<Raw<'a>>,
    pub duplicate: bool,
}

impl<'a> Claims<'a> {
    /// The slot of a member the guard reads; `None` for any other (ignored) member. Shared
    /// by the serde path and the flat scanner, so both read the same members.
    fn member(&mut self, name: &str) -> Option<&mut Option<Raw<'a>>> {
        Some(match name {
            "exp" => &mut self.exp,
            "nbf" => &mut self.nbf,
            "iat" => &mut self.iat,
            "iss" => &mut self.iss,
            "sub" => &mut self.sub,
            "aud" => &mut self.aud,
            "scope" => &mut self.scope,
            "scp" => &mut self.scp,
            "jti" => &mut self.jti,
            "client_id" => &mut self.client_id,
            _ => return None,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Claims<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claims<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JWT claims set object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Claims<'de>, A::Error> {
                let mut c = Claims::default();
                c.duplicate = read_object(map, |name, map| {
                    let Some(slot) = c.member(name) else {
                        return Ok(false);
                    };
                    *slot = Some(map.next_value::<Raw<'de>>()?);
                    Ok(true)
                })?;
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

/// Keeps serde's error type out of the guard's API.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    serde_json::from_slice(json).ok()
}

/// [`parse`] of a JOSE header: the flat scanner when it can, else serde.
pub(crate) fn parse_header(json: &[u8]) -> Option<Header<'_>> {
    match flat::header(json) {
        Some(h) => Some(h),
        None => parse(json),
    }
}

/// [`parse`] of a claims set: the flat scanner when it can, else serde.
pub(crate) fn parse_claims(json: &[u8]) -> Option<Claims<'_>> {
    match flat::claims(json) {
        Some(c) => Some(c),
        None => parse(json),
    }
}

/// A scanner for the JSON that real tokens carry: one object whose names and string values
/// have no escapes, whose numbers are non-negative integers of at most 15 digits, and whose
/// values are strings, such numbers, `true`/`false`/`null` or arrays of strings. On anything
/// else (or anything malformed) it gives up with `None` and the caller asks serde, so its
/// answer is serde's answer whenever it gives one (`tests::flat_agrees_with_serde`, and the
/// `jose_flat` fuzz target). It saves serde's visitor machinery on the hot path.
mod flat {
    use super::{Claims, Header, Raw};
    use std::borrow::Cow;

    struct Scan<'a> {
        /// The input, checked to be UTF-8 once (serde refuses invalid UTF-8 in strings; the
        /// scanner leaves any input that is not UTF-8 to it).
        s: &'a str,
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Scan<'a> {
        fn new(json: &'a [u8]) -> Option<Scan<'a>> {
            let s = std::str::from_utf8(json).ok()?;
            Some(Scan { s, b: json, i: 0 })
        }
    }

    impl<'a> Scan<'a> {
        fn ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
        }

        /// A string without escapes or control characters, valid UTF-8.
        fn string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.i;
            // Names and values are short: a plain loop beats memchr's set-up here.
            loop {
                match *self.b.get(self.i)? {
                    b'"' => break,
                    b'\\' | 0..=0x1f => return None,
                    _ => self.i += 1,
                }
            }
            // The input was checked to be UTF-8 as a whole, and `"` is ASCII.
            let s = self.s.get(start..self.i)?;
            self.i += 1;
            Some(s)
        }

        fn value(&mut self) -> Option<Raw<'a>> {
            match *self.b.get(self.i)? {
                b'"' => self.string().map(|s| Raw::Str(Cow::Borrowed(s))),
                b'0'..=b'9' => {
                    let start = self.i;
                    let mut n: u64 = 0;
                    while let Some(&d @ b'0'..=b'9') = self.b.get(self.i) {
                        n = n * 10 + u64::from(d - b'0');
                        self.i += 1;
                        // 15 digits: exact as an f64 and far from u64 overflow.
                        if self.i - start > 15 {
                            return None;
                        }
                    }
                    let leading_zero = self.b[start] == b'0' && self.i - start > 1;
                    let fraction = matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E'));
                    if leading_zero || fraction {
                        return None;
                    }
                    Some(Raw::Num(n as f64))
                }
                b't' | b'f' | b'n' => {
                    let rest = &self.b[self.i..];
                    let len = [&b"true"[..], b"false", b"null"]
                        .iter()
                        .find(|w| rest.starts_with(w))?
                        .len();
                    self.i += len;
                    Some(Raw::Other)
                }
                b'[' => {
                    self.i += 1;
                    self.ws();
                    let mut items = Vec::new();
                    if self.eat(b']').is_some() {
                        return Some(Raw::Strs(items));
                    }
                    loop {
                        items.push(Cow::Borrowed(self.string()?));
                        self.ws();
                        if self.eat(b']').is_some() {
                            return Some(Raw::Strs(items));
                        }
                        self.eat(b',')?;
                        self.ws();
                    }
                }
                _ => None,
            }
        }

        /// The whole input as one object: `pick(name, value)` for each member; returns
        /// whether a name repeats.
        fn object(&mut self, mut pick: impl FnMut(&'a str, Raw<'a>)) -> Option<bool> {
            // As many names as serde's path keeps inline; more goes to serde.
            const INLINE: usize = 16;
            let mut names: [&[u8]; INLINE] = [b""; INLINE];
            // Names packed with their length, so most comparisons are one integer compare;
            // equal keys of names longer than 7 bytes are compared in full.
            let mut keys = [0u64; INLINE];
            let mut count = 0;
            let mut duplicate = false;
            self.ws();
            self.eat(b'{')?;
            self.ws();
            if self.eat(b'}').is_none() {
                loop {
                    let name = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    let value = self.value()?;
                    if count == INLINE {
                        return None;
                    }
                    let name_bytes = name.as_bytes();
                    let mut key = (name_bytes.len() as u64) << 56;
                    for (k, &c) in name_bytes.iter().take(7).enumerate() {
                        key |= u64::from(c) << (8 * k);
                    }
                    duplicate |= keys[..count]
                        .iter()
                        .zip(&names[..count])
                        .any(|(&k, &n)| k == key && (name_bytes.len() <= 7 || n == name_bytes));
                    keys[count] = key;
                    names[count] = name_bytes;
                    count += 1;
                    pick(name, value);
                    self.ws();
                    if self.eat(b'}').is_some() {
                        break;
                    }
                    self.eat(b',')?;
                    self.ws();
                }
            }
            self.ws();
            (self.i == self.b.len()).then_some(duplicate)
        }
    }

    pub(super) fn header(json: &[u8]) -> Option<Header<'_>> {
        let mut h = Header::default();
        let mut scan = Scan::new(json)?;
        h.duplicate = scan.object(|name, value| match name {
            "alg" => h.alg = Some(value),
            "typ" => h.typ = Some(value),
            "kid" => h.kid = Some(value),
            "crit" => h.crit = true,
            "jwk" | "jku" | "x5u" | "x5c" => h.key_reference = true,
            _ => {}
        })?;
        Some(h)
    }

    pub(super) fn claims(json: &[u8]) -> Option<Claims<'_>> {
        let mut c = Claims::default();
        let mut scan = Scan::new(json)?;
        c.duplicate = scan.object(|name, value| {
            let Some(slot) = c.member(name) else {
                return;
            };
            *slot = Some(value);
        })?;
        Some(c)
    }

    /// For the fuzz target: `None` when the scanner gave up, else whether it agreed with
    /// serde on both readings (header and claims).
    pub(crate) fn agrees_with_serde(json: &[u8]) -> Option<bool> {
        let h = header(json)?;
        let c = claims(json)?;
        let hs: Option<Header> = super::parse(json);
        let cs: Option<Claims> = super::parse(json);
        Some(
            hs.is_some_and(|hs| format!("{hs:?}") == format!("{h:?}"))
                && cs.is_some_and(|cs| format!("{cs:?}") == format!("{c:?}")),
        )
    }
}

pub(crate) use flat::agrees_with_serde;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// JSON-ish text from fragments: members the guard reads, escapes, odd numbers, nesting,
    /// whitespace, and broken syntax.
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        let frags = prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\n",
            "\t",
            "\"alg\"",
            "\"typ\"",
            "\"kid\"",
            "\"crit\"",
            "\"jwk\"",
            "\"x5c\"",
            "\"exp\"",
            "\"nbf\"",
            "\"iat\"",
            "\"iss\"",
            "\"sub\"",
            "\"aud\"",
            "\"scope\"",
            "\"scp\"",
            "\"jti\"",
            "\"client_id\"",
            "\"x\"",
            "\"\\u0061lg\"",
            "\"HS256\"",
            "\"a b\"",
            "\"\"",
            "\"é\"",
            "\"\\n\"",
            "0",
            "1",
            "01",
            "-0",
            "-1",
            "1796169600",
            "1796169600.5",
            "1e3",
            "1E3",
            "123456789012345",
            "1234567890123456",
            "99999999999999999999",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "{\"y\":1}",
            "[1]",
            "[\"a\",1]",
            "[\"a\",\"b\"]",
            "[]",
            "[[]]",
            "\u{1}",
            "\"\u{1f}\"",
        ]);
        prop_oneof![
            prop::collection::vec(frags, 0..24).prop_map(|v| v.concat().into_bytes()),
            // Well-formed objects with random members, so the flat path is taken often.
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "alg",
                        "typ",
                        "kid",
                        "crit",
                        "jku",
                        "exp",
                        "nbf",
                        "iat",
                        "iss",
                        "sub",
                        "aud",
                        "scope",
                        "scp",
                        "jti",
                        "client_id",
                        "x",
                        "y"
                    ]),
                    prop::sample::select(vec![
                        "\"HS256\"",
                        "1796169600",
                        "0",
                        "true",
                        "null",
                        "[]",
                        "[\"a\",\"b\"]",
                        "\"docs:read docs:write\"",
                        "\"ü\"",
                        "1.5",
                        "{}"
                    ]),
                ),
                0..20,
            )
            .prop_map(|members| {
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\" : {v}"))
                    .collect();
                format!(" {{{}}} ", body.join(",")).into_bytes()
            }),
            prop::collection::vec(any::<u8>(), 0..40),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn flat_agrees_with_serde(json in jsonish()) {
            if let Some(agree) = agrees_with_serde(&json) {
                prop_assert!(agree, "{:?}", String::from_utf8_lossy(&json));
            }
            // The entry points give serde's answer either way.
            let h: Option<Header> = parse(&json);
            prop_assert_eq!(format!("{:?}", parse_header(&json)), format!("{h:?}"));
            let c: Option<Claims> = parse(&json);
            prop_assert_eq!(format!("{:?}", parse_claims(&json)), format!("{c:?}"));
        }
    }

    #[test]
    fn flat_path_takes_real_tokens() {
        let h = br#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#;
        assert!(agrees_with_serde(h).expect("flat"));
        let c = br#"{"iss":"https://issuer.example","sub":"user-1","aud":"api","exp":1796169900,"nbf":1796169600,"iat":1796169600,"jti":"0b9f","scope":"docs:read docs:write","client_id":"c"}"#;
        assert!(agrees_with_serde(c).expect("flat"));
        assert!(agrees_with_serde(br#"{"aud":["a","b"],"scp":[]}"#).expect("flat"));
        // Outside the subset: serde decides.
        for other in [
            &br#"{"exp":1.5}"#[..],
            br#"{"\u0061lg":"x"}"#,
            br#"{"x":{"y":1}}"#,
            br#"{"exp":-1}"#,
        ] {
            assert_eq!(agrees_with_serde(other), None);
        }
    }

    #[test]
    fn duplicates_are_flagged_at_top_level_only() {
        let c: Claims = parse(br#"{"sub":"a","sub":"b"}"#).expect("json");
        assert!(c.duplicate);
        let c: Claims = parse(br#"{"sub":"a","x":{"y":1,"y":2}}"#).expect("json");
        assert!(!c.duplicate);
        let h: Header = parse(br#"{"alg":"HS256","\u0061lg":"none"}"#).expect("json");
        assert!(h.duplicate, "escaped names are compared after unescaping");
    }

    #[test]
    fn types_are_kept() {
        let c: Claims = parse(br#"{"exp":"1","aud":["a","b"],"scp":["x",1]}"#).expect("json");
        assert_eq!(c.exp, Some(Raw::Str("1".into())));
        assert_eq!(c.aud, Some(Raw::Strs(vec!["a".into(), "b".into()])));
        assert_eq!(c.scp, Some(Raw::Other));
        assert!(parse::<Claims>(b"[1]").is_none());
        assert!(parse::<Claims>(b"{} x").is_none());
    }
}
