//! Just enough JSON for JOSE headers and claims sets: the members a guard reads, each kept
//! as its raw JSON type so the guard (not serde) decides what a wrong type means, and a flag
//! for duplicate member names (RFC 7515 §4 and RFC 7519 §4 let a parser reject them; a strict
//! guard must, because two parsers that pick different duplicates disagree on what was signed).

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value reduced to what claim checks need.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
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
pub struct Header<'a> {
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
pub struct Claims<'a> {
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
                    let slot = match name {
                        "exp" => &mut c.exp,
                        "nbf" => &mut c.nbf,
                        "iat" => &mut c.iat,
                        "iss" => &mut c.iss,
                        "sub" => &mut c.sub,
                        "aud" => &mut c.aud,
                        "scope" => &mut c.scope,
                        "scp" => &mut c.scp,
                        "jti" => &mut c.jti,
                        "client_id" => &mut c.client_id,
                        _ => return Ok(false),
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
pub fn parse<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
