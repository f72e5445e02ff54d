//! The guard's configuration: the spec's `[auth]` section (docs/ARCHITECTURE.md §3), and the keys it names.

use super::secret::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Longest clock skew a spec may allow. RFC 7519 asks for "no more than a few minutes".
pub const MAX_LEEWAY_S: u64 = 300;
/// Default cap on the credential's length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The `[auth]` section of a target spec: how tokens are verified (and, given private
/// material, minted). Unknown keys are refused so that a typo never silently weakens a check.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The algorithm pinned to the default key: HS256/384/512, RS256/384/512, PS256/384/512,
    /// ES256/384 or EdDSA.
    pub alg: String,
    /// HMAC secret (UTF-8 text). `{jwt_secret}` is replaced per run by the spec loader.
    pub secret: Option<Secret>,
    /// HMAC secret as base64url, for keys that are not text (e.g. RFC 7515 A.1's key).
    pub secret_base64url: Option<Secret>,
    /// PEM public key (SPKI, or PKCS#1 for RSA) for asymmetric algorithms.
    pub public_key_file: Option<PathBuf>,
    /// PEM private key (PKCS#8): only needed to mint tokens, never by the guard.
    pub private_key_file: Option<PathBuf>,
    /// Required `iss`, compared exactly.
    pub issuer: Option<String>,
    /// Required member of `aud`, compared exactly.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, at most [`MAX_LEEWAY_S`].
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// Required `typ` header (e.g. `at+jwt` for RFC 9068 access tokens); `application/`
    /// prefixed forms match too.
    pub typ: Option<String>,
    /// Cap on the credential's length in bytes (default 8 KiB).
    pub max_token_bytes: Option<usize>,
    /// The realm named in `WWW-Authenticate` challenges.
    pub realm: Option<String>,
    /// Optional `kid` → key map. When present, a token's `kid` selects its key from here and
    /// from nowhere else; a token without `kid` uses the default key if one is configured.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    /// The claim that names the caller (default `sub`): apps that issue their own tokens often
    /// use another (`id`, `user_id`, `uid`). A missing or empty one is `missing_sub`.
    pub subject_claim: Option<String>,
    /// Claims every token confab mints carries (`[auth.claims]`); the guard does not read them.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Claims of a login's token that the app binds to the session (`session_stamp`, say): a
    /// token for that caller whose value differs from the login's is refused
    /// (`session_mismatch`). Set per caller with [`crate::Guard::bind_session`].
    #[serde(default)]
    pub bound_claims: Vec<String>,
    /// How confab generates `{jwt_secret}`: `hex` (default), `base64` or `base64url` (both
    /// `=`-padded). The guard does not read it.
    pub secret_encoding: Option<String>,
    /// How many random bytes `{jwt_secret}` holds (default 32). The guard does not read it.
    pub secret_bytes: Option<usize>,
    /// A cookie the target also reads the token from. The guard does not read it.
    pub cookie: Option<String>,
}

/// One entry of the `kid` map: `[[auth.keys]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The `kid` a token names to select this key.
    pub kid: String,
    /// The algorithm pinned to this key (a token's `alg` must equal it).
    pub alg: String,
    /// An HMAC secret, as text.
    pub secret: Option<Secret>,
    /// An HMAC secret, base64url-encoded (for secrets that are not text).
    pub secret_base64url: Option<Secret>,
    /// A PEM public key file (RS, PS, ES, EdDSA), relative to the configuration's folder.
    pub public_key_file: Option<PathBuf>,
    /// A PEM private key file: what confab signs valid tokens with (not needed to verify).
    pub private_key_file: Option<PathBuf>,
}

fn default_leeway() -> u64 {
    30
}

/// A problem with the `[auth]` configuration. Names the key; never shows key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is missing, malformed or unsafe (an unknown or `none` algorithm, a short HMAC
    /// secret, a key that does not parse).
    #[error("auth.{key}: {problem}")]
    Invalid {
        /// The configuration key, e.g. `alg` or `keys[2].key_file`.
        key: String,
        /// What is wrong with it, without its value.
        problem: String,
    },
    /// A key file named in the configuration could not be read.
    #[error("auth.{key}: cannot read {path}: {source}")]
    Read {
        /// The configuration key that named the file.
        key: String,
        /// The file, as resolved against the configuration's folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The configuration key the error is about, e.g. `alg` or `keys[2].key_file`.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Invalid { key, .. } | ConfigError::Read { key, .. } => key,
        }
    }
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Parses an algorithm name; `none` and unknown names are configuration errors.
pub fn parse_alg(key: &str, name: &str) -> Result<Algorithm, ConfigError> {
    name.parse::<Algorithm>().map_err(|_| {
        invalid(
            key,
            format!(
                "unsupported algorithm {name:?} (use HS256/384/512, RS256/384/512, \
                 PS256/384/512, ES256/384 or EdDSA)"
            ),
        )
    })
}

/// True for the HMAC algorithms, whose key is a shared secret.
pub fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Key material as read from the configuration, before it becomes a verifier or a signer.
pub struct KeySource<'a> {
    /// Where in the config this key sits, for error messages (`""` or `keys[2].`).
    pub prefix: String,
    /// The `kid`, for a key-map entry.
    pub kid: Option<&'a str>,
    /// The algorithm name, as written.
    pub alg_name: &'a str,
    /// An HMAC secret, as text.
    pub secret: Option<&'a Secret>,
    /// An HMAC secret, base64url-encoded.
    pub secret_base64url: Option<&'a Secret>,
    /// A PEM public key file.
    pub public_key_file: Option<&'a Path>,
    /// A PEM private key file.
    pub private_key_file: Option<&'a Path>,
}

impl AuthConfig {
    /// Checks the policy values that need no key material.
    pub fn validate_policy(&self) -> Result<(), ConfigError> {
        if self.leeway_s > MAX_LEEWAY_S {
            return Err(invalid(
                "leeway_s",
                format!(
                    "{} s is more than the {MAX_LEEWAY_S} s allowed",
                    self.leeway_s
                ),
            ));
        }
        if let Some(0) = self.max_token_bytes {
            return Err(invalid("max_token_bytes", "must be at least 1"));
        }
        if self.issuer.as_deref() == Some("") {
            return Err(invalid("issuer", "empty; omit the key to skip the check"));
        }
        if self.audience.as_deref() == Some("") {
            return Err(invalid("audience", "empty; omit the key to skip the check"));
        }
        if self.subject_claim.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("subject_claim", "empty; omit the key for `sub`"));
        }
        if let Some(e) = &self.secret_encoding
            && !["hex", "base64", "base64url"].contains(&e.as_str())
        {
            return Err(invalid(
                "secret_encoding",
                format!("{e:?}: use hex, base64 or base64url"),
            ));
        }
        if let Some(n) = self.secret_bytes
            && !(16..=1024).contains(&n)
        {
            return Err(invalid("secret_bytes", "must be between 16 and 1024"));
        }
        if self.cookie.as_deref().is_some_and(|c| {
            c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        }) {
            return Err(invalid(
                "cookie",
                "must be a cookie name (letters, digits, '-', '_', '.')",
            ));
        }
        let mut kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        kids.sort_unstable();
        if let Some(w) = kids.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid("keys", format!("kid {:?} appears twice", w[0])));
        }
        Ok(())
    }

    /// The default key first (if the top-level section names key material), then the map.
    pub fn key_sources(&self) -> Vec<KeySource<'_>> {
        let mut out = Vec::with_capacity(1 + self.keys.len());
        let top_has_key = self.secret.is_some()
            || self.secret_base64url.is_some()
            || self.public_key_file.is_some()
            || self.private_key_file.is_some();
        if top_has_key || self.keys.is_empty() {
            out.push(KeySource {
                prefix: String::new(),
                kid: None,
                alg_name: &self.alg,
                secret: self.secret.as_ref(),
                secret_base64url: self.secret_base64url.as_ref(),
                public_key_file: self.public_key_file.as_deref(),
                private_key_file: self.private_key_file.as_deref(),
            });
        }
        for (i, k) in self.keys.iter().enumerate() {
            out.push(KeySource {
                prefix: format!("keys[{i}]."),
                kid: Some(&k.kid),
                alg_name: &k.alg,
                secret: k.secret.as_ref(),
                secret_base64url: k.secret_base64url.as_ref(),
                public_key_file: k.public_key_file.as_deref(),
                private_key_file: k.private_key_file.as_deref(),
            });
        }
        out
    }

    /// Every value a scrubber should treat as secret: HMAC keys and private key files' text.
    pub fn secret_values(&self, base_dir: &Path) -> Vec<(String, Secret)> {
        let mut out = Vec::new();
        for src in self.key_sources() {
            if let Ok(Some(s)) = src.hmac_secret() {
                out.push((format!("auth.{}secret", src.prefix), s));
            }
            if let Some(p) = src.private_key_file
                && let Ok(bytes) = std::fs::read(base_dir.join(p))
            {
                out.push((
                    format!("auth.{}private_key_file", src.prefix),
                    Secret::new(bytes),
                ));
            }
        }
        out
    }
}

impl KeySource<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The pinned algorithm; `none` and unknown names are errors.
    pub fn alg(&self) -> Result<Algorithm, ConfigError> {
        parse_alg(&self.key("alg"), self.alg_name)
    }

    /// The HMAC secret, decoded from whichever form was given.
    pub fn hmac_secret(&self) -> Result<Option<Secret>, ConfigError> {
        use base64::Engine as _;
        match (self.secret, self.secret_base64url) {
            (Some(_), Some(_)) => Err(invalid(
                self.key("secret"),
                "give either secret or secret_base64url, not both",
            )),
            (Some(s), None) => Ok(Some(s.clone())),
            (None, Some(b)) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b.expose())
                .map(|v| Some(Secret::new(v)))
                .map_err(|_| invalid(self.key("secret_base64url"), "not unpadded base64url")),
            (None, None) => Ok(None),
        }
    }

    fn read(&self, name: &str, path: &Path, base_dir: &Path) -> Result<Vec<u8>, ConfigError> {
        let full = base_dir.join(path);
        std::fs::read(&full).map_err(|source| ConfigError::Read {
            key: self.key(name),
            path: full,
            source,
        })
    }

    /// The verification half of this key.
    pub fn decoding_key(
        &self,
        alg: Algorithm,
        base_dir: &Path,
    ) -> Result<(DecodingKey, Option<Secret>), ConfigError> {
        if is_hmac(alg) {
            let secret = self.hmac_secret()?.ok_or_else(|| {
                invalid(self.key("secret"), format!("{alg:?} needs a shared secret"))
            })?;
            // RFC 7518 §3.2 wants a key at least the hash's size; a short key is a real
            // target's mistake worth testing, so it is allowed, but never an empty one.
            if secret.is_empty() {
                return Err(invalid(self.key("secret"), "empty"));
            }
            let key = DecodingKey::from_secret(secret.expose())
                .map_err(|e| invalid(self.key("secret"), e.to_string()))?;
            return Ok((key, Some(secret)));
        }
        if self.secret.is_some() || self.secret_base64url.is_some() {
            return Err(invalid(
                self.key("secret"),
                format!("{alg:?} uses public_key_file, not a shared secret"),
            ));
        }
        let path = self.public_key_file.ok_or_else(|| {
            invalid(
                self.key("public_key_file"),
                format!("{alg:?} needs a PEM public key"),
            )
        })?;
        let pem = self.read("public_key_file", path, base_dir)?;
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
            _ => DecodingKey::from_rsa_pem(&pem),
        }
        .map_err(|e| {
            invalid(
                self.key("public_key_file"),
                format!("{}: not a {alg:?} PEM public key ({e})", path.display()),
            )
        })?;
        Ok((key, None))
    }

    /// The signing half of this key, when private material is configured.
    pub fn encoding_key(
        &self,
        alg: Algorithm,
        base_dir: &Path,
    ) -> Result<Option<EncodingKey>, ConfigError> {
        if is_hmac(alg) {
            return match self.hmac_secret()? {
                Some(s) if !s.is_empty() => EncodingKey::from_secret(s.expose())
                    .map(Some)
                    .map_err(|e| invalid(self.key("secret"), e.to_string())),
                _ => Ok(None),
            };
        }
        let Some(path) = self.private_key_file else {
            return Ok(None);
        };
        let pem = self.read("private_key_file", path, base_dir)?;
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .map_err(|e| {
            invalid(
                self.key("private_key_file"),
                format!("{}: not a {alg:?} PEM private key ({e})", path.display()),
            )
        })?;
        Ok(Some(key))
    }

    /// The public key file's bytes (for the RS→HS confusion generator).
    pub fn public_pem(&self, base_dir: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
        self.public_key_file
            .map(|p| self.read("public_key_file", p, base_dir))
            .transpose()
    }
}

impl fmt::Debug for KeySource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySource")
            .field("prefix", &self.prefix)
            .field("kid", &self.kid)
            .field("alg", &self.alg_name)
            .field("public_key_file", &self.public_key_file)
            .field("private_key_file", &self.private_key_file)
            .finish_non_exhaustive()
    }
}

/// A key confab signs with: the trusted issuer's key, to mint valid tokens and the
/// forgeries that need its public half. Only the generators and the harness use it.
pub struct SigningKey {
    /// The `kid` to put in the JOSE header, for a key-map entry.
    pub kid: Option<String>,
    /// The algorithm to sign with.
    pub alg: Algorithm,
    /// The signing key.
    pub encoding: EncodingKey,
    /// The HMAC secret, for HS algorithms.
    pub hmac_secret: Option<Secret>,
    /// The public key file's bytes, for asymmetric algorithms (RS→HS confusion uses them).
    pub public_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// The key confab mints with: the default key if it has private material, else the first
    /// map entry that does. `Ok(None)` when the spec gives no private material at all.
    pub fn signing_key(&self, base_dir: &Path) -> Result<Option<SigningKey>, ConfigError> {
        for src in self.key_sources() {
            let alg = src.alg()?;
            if let Some(encoding) = src.encoding_key(alg, base_dir)? {
                return Ok(Some(SigningKey {
                    kid: src.kid.map(str::to_owned),
                    alg,
                    encoding,
                    hmac_secret: src.hmac_secret()?,
                    public_pem: src.public_pem(base_dir)?,
                }));
            }
        }
        Ok(None)
    }
}
