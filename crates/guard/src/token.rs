//! The guard's decision: bearer header → verified, policy-checked claims → scope check.

use super::bearer::extract_token;
use super::config::{AuthConfig, ConfigError, DEFAULT_MAX_TOKEN_BYTES, is_hmac};
use super::error::Rejection;
use super::jose::{self, Claims, Header, Raw};
use super::scope::ScopeSet;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use std::fmt;
use std::path::Path;

/// How a key checks signatures.
enum Verifier {
    /// HMAC keys are expanded once (inner and outer pads), not on every request; this is
    /// what `jsonwebtoken`'s aws-lc provider does per call.
    Hmac(Box<aws_lc_rs::hmac::Key>),
    /// Asymmetric keys parsed once: `jsonwebtoken` (like aws-lc-rs's `UnparsedPublicKey`)
    /// parses the key again for every signature, ~15% of an RS256 verification.
    Parsed(Box<aws_lc_rs::signature::ParsedPublicKey>),
    /// Keys aws-lc-rs would not parse up front go through `jsonwebtoken`'s verifier, which
    /// then refuses every signature exactly as before.
    Jwt(DecodingKey),
}

/// A verification key with its one pinned algorithm (RFC 8725 §3.1).
struct PinnedKey {
    kid: Option<String>,
    alg: Algorithm,
    verifier: Verifier,
}

impl PinnedKey {
    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Hmac(key) => aws_lc_rs::hmac::verify(key, signing_input, signature).is_ok(),
            Verifier::Parsed(key) => key.verify_sig(signing_input, signature).is_ok(),
            Verifier::Jwt(key) => {
                // jsonwebtoken takes the signature in its base64url form.
                let sig = URL_SAFE_NO_PAD.encode(signature);
                jsonwebtoken::crypto::verify(&sig, signing_input, key, self.alg).unwrap_or(false)
            }
        }
    }
}

/// What the guard learned from a token it accepted. Holds no part of the token itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Authenticated {
    /// The token's `sub`: the authenticated principal.
    pub sub: String,
    /// The token's scopes (`scope`, RFC 8693 §4.2; `scp` as an array).
    pub scopes: ScopeSet,
    /// `exp`, seconds since the epoch.
    pub expires_at: f64,
    /// The `kid` of the key that verified the token (map entries only).
    pub kid: Option<String>,
    /// `jti`, when present: what a service keys replay detection on.
    pub jti: Option<String>,
}

/// The reference guard. Build it once from the spec's `[auth]` section (or in code), then
/// share it: every method takes `&self` and the current time, so decisions are pure.
pub struct Guard {
    default_key: Option<PinnedKey>,
    kid_map: Vec<PinnedKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_s: f64,
    typ: Option<String>,
    max_token_bytes: usize,
    realm: String,
    /// The claim naming the caller when it is not `sub`.
    subject_claim: Option<String>,
    /// Per caller (subject value), the bound claims its login was issued: `[auth]
    /// bound_claims`, filled in by [`Guard::bind_session`].
    sessions: std::collections::HashMap<String, Vec<(String, Option<serde_json::Value>)>>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("default_alg", &self.default_key.as_ref().map(|k| k.alg))
            .field(
                "kids",
                &self.kid_map.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_s", &self.leeway_s)
            .field("typ", &self.typ)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Builds the guard from `[auth]`; key files are read relative to `base_dir` (the spec's
    /// folder).
    pub fn from_config(cfg: &AuthConfig, base_dir: &Path) -> Result<Guard, ConfigError> {
        cfg.validate_policy()?;
        let mut default_key = None;
        let mut kid_map = Vec::new();
        for src in cfg.key_sources() {
            let alg = src.alg()?;
            let (decoding, secret) = src.decoding_key(alg, base_dir)?;
            let verifier = match (is_hmac(alg), secret) {
                (true, Some(secret)) => Verifier::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                    hmac_algorithm(alg),
                    secret.expose(),
                ))),
                _ => match parsed_public_key(alg, &decoding) {
                    Some(key) => Verifier::Parsed(Box::new(key)),
                    None => Verifier::Jwt(decoding),
                },
            };
            let key = PinnedKey {
                kid: src.kid.map(str::to_owned),
                alg,
                verifier,
            };
            match src.kid {
                None => default_key = Some(key),
                Some(_) => kid_map.push(key),
            }
        }
        Ok(Guard {
            default_key,
            kid_map,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            leeway_s: cfg.leeway_s as f64,
            typ: cfg.typ.clone(),
            max_token_bytes: cfg.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES),
            realm: cfg.realm.clone().unwrap_or_else(|| "api".to_owned()),
            subject_claim: cfg.subject_claim.clone().filter(|c| c != "sub"),
            sessions: std::collections::HashMap::new(),
        })
    }

    /// Binds a caller's session: from now on a token whose subject is `subject` must carry
    /// exactly these claims (`None`: must not carry it), as the login gave them; any other is
    /// refused with [`Rejection::SessionMismatch`]. For apps that keep a per-session value
    /// (`session_stamp`) and check it against their database.
    pub fn bind_session(
        &mut self,
        subject: &str,
        claims: Vec<(String, Option<serde_json::Value>)>,
    ) {
        if !claims.is_empty() {
            self.sessions.insert(subject.to_owned(), claims);
        }
    }

    /// The cap on a credential's length.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// The full decision for one request: header syntax, token, then the endpoint's scope.
    ///
    /// `authorization` holds every `Authorization` header value of the request (none, one,
    /// or several); `required` is the endpoint's scope; `now` is seconds since the epoch.
    pub fn decide(
        &self,
        authorization: &[&[u8]],
        required: &ScopeSet,
        now: u64,
    ) -> Result<Authenticated, Rejection> {
        let who = self.authenticate(authorization, now)?;
        self.authorize(&who, required)?;
        Ok(who)
    }

    /// Authentication alone: the bearer header and the token.
    pub fn authenticate(
        &self,
        authorization: &[&[u8]],
        now: u64,
    ) -> Result<Authenticated, Rejection> {
        let token = extract_token(authorization, self.max_token_bytes)?;
        self.verify_token(token, now)
    }

    /// Scope check (RFC 6750 §3.1 `insufficient_scope`): every required token must be granted.
    pub fn authorize(&self, who: &Authenticated, required: &ScopeSet) -> Result<(), Rejection> {
        if who.scopes.includes(required) {
            Ok(())
        } else {
            Err(Rejection::InsufficientScope)
        }
    }

    /// The `WWW-Authenticate` challenge for a rejection.
    pub fn challenge(&self, rejection: Rejection, required: Option<&ScopeSet>) -> String {
        let scope = required.map(ScopeSet::to_string);
        rejection.www_authenticate(&self.realm, scope.as_deref())
    }

    /// Verifies a compact JWS access token (without the `Bearer ` prefix).
    pub fn verify_token(&self, token: &str, now: u64) -> Result<Authenticated, Rejection> {
        if token.len() > self.max_token_bytes {
            return Err(Rejection::Oversized);
        }
        // Structure: exactly three base64url segments, no padding, canonical trailing bits.
        let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
        let (Some(d1), Some(d2), None) = (dots.next(), dots.next(), dots.next()) else {
            return Err(Rejection::MalformedToken);
        };
        // '.' is ASCII, so these are char boundaries.
        let (h64, p64, s64) = (&token[..d1], &token[d1 + 1..d2], &token[d2 + 1..]);
        if h64.is_empty() || p64.is_empty() {
            return Err(Rejection::MalformedToken);
        }
        // Decoding into stack buffers: a token is at most `max_token_bytes` long, and the
        // common one is a few hundred bytes, so no heap is needed on the hot path. Only the
        // buffer used is zeroed: the small ones (taken only where every base64 length estimate
        // fits them) keep a typical token from clearing 4 KiB per decision.
        let (mut header_tiny, mut header_small, header_big);
        let header_json: &[u8] = if h64.len() <= 336 {
            header_tiny = [0u8; 256];
            b64_into(h64, &mut header_tiny)?
        } else if h64.len() <= 1024 * 4 / 3 {
            header_small = [0u8; 1024];
            b64_into(h64, &mut header_small)?
        } else {
            header_big = b64(h64)?;
            &header_big
        };
        let (mut payload_tiny, mut payload_small, payload_big);
        let payload_json: &[u8] = if p64.len() <= 680 {
            payload_tiny = [0u8; 512];
            b64_into(p64, &mut payload_tiny)?
        } else if p64.len() <= 2048 * 4 / 3 {
            payload_small = [0u8; 2048];
            b64_into(p64, &mut payload_small)?
        } else {
            payload_big = b64(p64)?;
            &payload_big
        };
        let (mut sig_tiny, mut sig_buf);
        let signature = if s64.len() <= 168 {
            sig_tiny = [0u8; 128];
            b64_into(s64, &mut sig_tiny)?
        } else {
            sig_buf = [0u8; 1024];
            b64_into(s64, &mut sig_buf)?
        };
        let header: Header = jose::parse_header(header_json).ok_or(Rejection::MalformedToken)?;
        if header.duplicate {
            return Err(Rejection::DuplicateMember);
        }
        let alg = match &header.alg {
            Some(Raw::Str(a)) => a,
            _ => return Err(Rejection::MalformedToken),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(Rejection::AlgNone);
        }
        if header.crit {
            return Err(Rejection::UnsupportedCrit);
        }
        if header.key_reference {
            return Err(Rejection::KeyInHeader);
        }
        let kid = match &header.kid {
            None => None,
            Some(Raw::Str(k)) => Some(k.as_ref()),
            Some(_) => return Err(Rejection::MalformedToken),
        };
        let key = self.select_key(kid)?;
        if alg.as_ref() != alg_name(key.alg) {
            return Err(Rejection::AlgMismatch);
        }
        let typ = match &header.typ {
            None => None,
            Some(Raw::Str(t)) => Some(t.as_ref()),
            // RFC 7515 §4.1.9: `typ` is a string.
            Some(_) => return Err(Rejection::MalformedToken),
        };
        if let Some(required) = &self.typ
            && !typ.is_some_and(|t| typ_matches(t, required))
        {
            return Err(Rejection::TypMismatch);
        }
        let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];
        if !key.verify(signing_input, signature) {
            return Err(Rejection::BadSignature);
        }

        // The issuer signed these bytes; now check what it said.
        let claims: Claims = jose::parse_claims(payload_json).ok_or(Rejection::MalformedToken)?;
        if claims.duplicate {
            return Err(Rejection::DuplicateMember);
        }
        if self.subject_claim.is_none() && self.sessions.is_empty() {
            return self.check_claims(&claims, now as f64, key, None);
        }
        // A subject under another name, or bound claims: read the claims set whole.
        let all: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(payload_json).map_err(|_| Rejection::MalformedToken)?;
        let subject = match &self.subject_claim {
            None => None,
            Some(name) => Some(match all.get(name) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v @ serde_json::Value::Number(_)) => v.to_string(),
                None | Some(serde_json::Value::Null) => String::new(),
                Some(_) => return Err(Rejection::ClaimType),
            }),
        };
        let who = self.check_claims(&claims, now as f64, key, subject)?;
        if let Some(bound) = self.sessions.get(&who.sub)
            && bound
                .iter()
                .any(|(name, want)| all.get(name) != want.as_ref())
        {
            return Err(Rejection::SessionMismatch);
        }
        Ok(who)
    }

    fn select_key(&self, kid: Option<&str>) -> Result<&PinnedKey, Rejection> {
        match kid {
            Some(kid) if !self.kid_map.is_empty() => self
                .kid_map
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or(Rejection::UnknownKid),
            // Without a map, `kid` is only a hint; the one configured key is used.
            _ => self.default_key.as_ref().ok_or(Rejection::UnknownKid),
        }
    }

    fn check_claims(
        &self,
        c: &Claims<'_>,
        now: f64,
        key: &PinnedKey,
        subject: Option<String>,
    ) -> Result<Authenticated, Rejection> {
        let exp = numeric_date(&c.exp)?;
        let nbf = numeric_date(&c.nbf)?;
        numeric_date(&c.iat)?;
        let iss = opt_str(&c.iss)?;
        let sub = opt_str(&c.sub)?;
        let jti = opt_str(&c.jti)?;
        opt_str(&c.client_id)?;
        let has_audience = |want: &str| match &c.aud {
            Some(Raw::Str(s)) => s == want,
            Some(Raw::Strs(v)) => v.iter().any(|s| s == want),
            _ => false,
        };
        if matches!(&c.aud, Some(Raw::Num(_) | Raw::Other)) {
            return Err(Rejection::ClaimType);
        }
        let mut scopes = match &c.scope {
            None => ScopeSet::new(),
            Some(Raw::Str(s)) => ScopeSet::parse(s),
            Some(_) => return Err(Rejection::ClaimType),
        };
        match &c.scp {
            None => {}
            Some(Raw::Str(s)) => ScopeSet::parse(s).iter().for_each(|t| scopes.insert(t)),
            Some(Raw::Strs(v)) => v.iter().for_each(|t| scopes.insert(t)),
            Some(_) => return Err(Rejection::ClaimType),
        }

        // RFC 7519 §4.1.4: the current time MUST be before `exp`.
        let exp = exp.ok_or(Rejection::MissingExp)?;
        if now >= exp + self.leeway_s {
            return Err(Rejection::Expired);
        }
        if let Some(nbf) = nbf
            && now + self.leeway_s < nbf
        {
            return Err(Rejection::NotYetValid);
        }
        if let Some(want) = &self.issuer
            && iss != Some(want.as_str())
        {
            return Err(Rejection::IssuerMismatch);
        }
        if let Some(want) = &self.audience
            && !has_audience(want)
        {
            return Err(Rejection::AudienceMismatch);
        }
        let sub = match subject.as_deref().or(sub) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => return Err(Rejection::MissingSub),
        };
        Ok(Authenticated {
            sub,
            scopes,
            expires_at: exp,
            kid: key.kid.clone(),
            jti: jti.map(str::to_owned),
        })
    }
}

/// Decodes into `buf` (the caller checked it is large enough).
fn b64_into<'b>(segment: &str, buf: &'b mut [u8]) -> Result<&'b [u8], Rejection> {
    if segment.len() > buf.len() * 4 / 3 {
        return Err(Rejection::MalformedToken);
    }
    let n = URL_SAFE_NO_PAD
        .decode_slice(segment, buf)
        .map_err(|_| Rejection::MalformedToken)?;
    Ok(&buf[..n])
}

fn b64(segment: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::MalformedToken)
}

/// RFC 7519 §2: a NumericDate is a JSON number. Strings (CVE-2026-25537) are refused.
fn numeric_date(v: &Option<Raw<'_>>) -> Result<Option<f64>, Rejection> {
    match v {
        None => Ok(None),
        Some(Raw::Num(n)) if n.is_finite() => Ok(Some(*n)),
        Some(_) => Err(Rejection::ClaimType),
    }
}

fn opt_str<'a>(v: &'a Option<Raw<'_>>) -> Result<Option<&'a str>, Rejection> {
    match v {
        None => Ok(None),
        Some(Raw::Str(s)) => Ok(Some(s)),
        Some(_) => Err(Rejection::ClaimType),
    }
}

/// RFC 9068 §4: `typ` is compared as a media type: case-insensitive, `application/` optional.
fn typ_matches(got: &str, required: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &s[12..],
            _ => s,
        }
    }
    strip(got).eq_ignore_ascii_case(strip(required))
}

/// The key in the form `jsonwebtoken`'s aws-lc verifiers hand to aws-lc-rs (its DER or raw
/// bytes, with the same verification algorithm), parsed once.
fn parsed_public_key(
    alg: Algorithm,
    key: &DecodingKey,
) -> Option<aws_lc_rs::signature::ParsedPublicKey> {
    use aws_lc_rs::signature as sig;
    let verification: &'static dyn sig::VerificationAlgorithm = match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        _ => return None,
    };
    // RSA keys given as modulus and exponent have no DER form here: they keep the old path.
    let bytes = match key.kind() {
        jsonwebtoken::DecodingKeyKind::SecretOrDer(b) => b.as_slice(),
        _ => return None,
    };
    sig::ParsedPublicKey::new(verification, bytes).ok()
}

fn hmac_algorithm(alg: Algorithm) -> aws_lc_rs::hmac::Algorithm {
    match alg {
        Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
        Algorithm::HS512 => aws_lc_rs::hmac::HMAC_SHA512,
        _ => aws_lc_rs::hmac::HMAC_SHA256,
    }
}

/// The JOSE name of an algorithm (RFC 7518 §3.1).
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // `Algorithm` is non-exhaustive; a new variant is simply never matched by a token.
        _ => "unsupported",
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
