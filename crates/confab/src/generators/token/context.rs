//! What minting needs: the issuer's key, the target's policy and the callers, read from a
//! spec; and the header and claims every token starts from.

use super::keys::{AttackerKeys, PreparedKey, Signer, attacker, rsa_modulus_b64, sign_with};
use crate::guard::ScopeSet;
use crate::guard::config::SigningKey;
use crate::guard::token::alg_name;
use crate::spec::{Spec, SpecError};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

/// The attacker host that `jku`/`x5u` point at (the harness maps it onto its sink).
pub const ATTACKER_BASE: &str = "http://attacker.test";

/// A caller confab mints tokens for.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    /// The value of its subject claim.
    pub sub: String,
    /// The scopes its valid tokens carry.
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
    /// The issuer's key.
    pub(super) key: SigningKey,
    /// `key`, parsed once for signing.
    pub(super) trusted: PreparedKey,
    pub(super) attacker: AttackerKeys,
    /// The `iss` valid tokens carry (`[auth] issuer`); `None`: the guard checks no issuer, so
    /// a wrong or missing one is accepted.
    pub issuer: Option<String>,
    /// The `aud` valid tokens carry (`[auth] audience`); `None`: the guard checks no
    /// audience, so a wrong or missing one is accepted.
    pub audience: Option<String>,
    /// The `typ` header the guard requires (`[auth] typ`, e.g. `at+jwt`); `None`: tokens say
    /// `JWT` and any type is accepted.
    pub typ: Option<String>,
    /// The clock leeway the guard allows, in seconds: expired and not-yet-valid tokens are
    /// minted past it, so a correct guard refuses them.
    pub leeway_s: u64,
    /// The guard's size cap, in bytes: oversized tokens are minted just past it.
    pub max_token_bytes: usize,
    /// True when the guard has a `kid` map (then unknown `kid`s are refused outright).
    pub has_kid_map: bool,
    /// Never empty ([`MintContext::new`] refuses an empty list): a recipe's principal index is
    /// taken modulo its length.
    pub(super) principals: Vec<TokenPrincipal>,
    /// The scope of the endpoint the tokens are aimed at.
    pub required_scope: ScopeSet,
    /// Where `jku`/`x5u` point: [`ATTACKER_BASE`] unless the harness sets its sink's.
    pub attacker_base: String,
    /// The claim naming the caller (`sub` unless `[auth] subject_claim` says otherwise).
    pub subject_claim: String,
    /// Claims bound to a login's session (`[auth] bound_claims`).
    pub bound_claims: Vec<String>,
}

/// A problem building a [`MintContext`].
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// No caller to mint for: the spec names no principal.
    #[error("no principals: give at least one [[principal]]")]
    NoPrincipals,
    /// A key embedded in confab did not parse: a build bug, not a spec problem.
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

    pub(super) fn base_header(&self) -> serde_json::Value {
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
    pub(super) fn base_claims(
        &self,
        principal: &TokenPrincipal,
        now: u64,
        jti: u32,
    ) -> serde_json::Value {
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

    pub(super) fn sign_trusted(&self, header: &str, payload: &str) -> String {
        sign_with(header, payload, Signer::Key(&self.trusted, self.key.alg))
    }
}

impl MintContext {
    /// The callers tokens are minted for (at least one).
    pub(crate) fn principals(&self) -> &[TokenPrincipal] {
        &self.principals
    }

    /// Replaces caller `i` (after its login: its tokens then start from the login's claims).
    pub(crate) fn set_principal(&mut self, i: usize, principal: TokenPrincipal) {
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

/// Segment `index` of a compact JWT, decoded as JSON (0: the header, 1: the payload).
#[cfg(test)]
fn segment_json(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine as _;
    let segment = token.split('.').nth(index).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// A spec parsed from `src`, and the minting context for it.
#[cfg(test)]
fn spec_and_context(src: &str) -> (Spec, MintContext) {
    let spec = Spec::parse(src, "t.toml", std::path::Path::new(".")).expect("spec");
    let ctx = MintContext::for_spec(&spec, ScopeSet::new()).expect("ctx");
    (spec, ctx)
}

#[cfg(test)]
mod login_minting_tests {
    use super::*;
    use crate::generators::token::{Expected, TokenFamily, TokenRecipe};
    use crate::guard::Rejection;

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
        let (spec, mut ctx) = spec_and_context(src);
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
        let payload = segment_json(&token, 1);
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

#[cfg(test)]
mod attacker_base_tests {
    use super::*;
    use crate::generators::token::{TokenFamily, TokenRecipe};

    /// `jku`/`x5u` point at the attacker host the harness set (its sink), so a target that
    /// fetches the key is seen doing it; without one, at [`ATTACKER_BASE`].
    #[test]
    fn remote_key_urls_point_at_the_harness_attacker_host() {
        let src = r#"
[auth]
alg = "HS256"
secret = "a-secret-a-secret-a-secret-a-secret"
[[principal]]
name = "alice"
"#;
        let (_, mut ctx) = spec_and_context(src);
        let header_url = |ctx: &MintContext, variant| -> String {
            let recipe = TokenRecipe {
                family: TokenFamily::RemoteKeyUrl,
                principal: 0,
                variant,
                skew_s: 0,
                jti: 7,
            };
            let token = recipe.mint(ctx, 1_800_000_000).token.expect("a token");
            let header = segment_json(&token, 0);
            let member = if variant % 2 == 0 { "jku" } else { "x5u" };
            header[member].as_str().expect("a URL").to_owned()
        };
        assert!(header_url(&ctx, 0).starts_with(ATTACKER_BASE));
        ctx.attacker_base = "http://127.0.0.1:9/attacker/jwks/".to_owned();
        for variant in 0..2 {
            assert_eq!(
                header_url(&ctx, variant),
                "http://127.0.0.1:9/attacker/jwks/.well-known/jwks-7.json"
            );
        }
    }
}
