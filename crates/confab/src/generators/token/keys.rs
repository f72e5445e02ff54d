//! Signing: the keys a forger holds, and keys parsed once so each signature costs only the
//! signing itself.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};

/// Keys a forger holds: published test keys, embedded so generation needs no I/O.
pub(super) mod attacker {
    pub(crate) const RSA: &[u8] = include_bytes!("../../../keys/attacker-rsa.key.pem");
    pub(crate) const RSA_PUB: &[u8] = include_bytes!("../../../keys/attacker-rsa.pub.pem");
    pub(crate) const EC: &[u8] = include_bytes!("../../../keys/attacker-ec.key.pem");
    pub(crate) const ED25519: &[u8] = include_bytes!("../../../keys/attacker-ed25519.key.pem");
    pub(crate) const HMAC: &[u8] = b"attacker-chosen-secret-attacker-chosen";
}

/// The forger's keys, parsed once per [`super::MintContext`].
pub(super) struct AttackerKeys {
    pub(super) rsa: PreparedKey,
    /// The modulus of `rsa`'s public key, for an embedded `jwk`.
    pub(super) rsa_pub_jwk_n: String,
    pub(super) ec: PreparedKey,
    pub(super) ed: PreparedKey,
    pub(super) hmac: PreparedKey,
}

/// A signing key whose asymmetric key pair is parsed once. `jsonwebtoken::crypto::sign`
/// parses the DER on every call, and for RSA also checks the key and computes fresh blinding
/// values: about two thirds of an RSA signature, and RS256 forgeries were a third of a
/// campaign case's cost.
pub(super) struct PreparedKey {
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
    pub(super) fn new(encoding: EncodingKey, alg: Algorithm) -> PreparedKey {
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
    pub(super) fn sign(&self, msg: &[u8], alg: Algorithm) -> String {
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

/// What signs a token: a prepared key, a raw HMAC secret, or nothing but fixed bytes.
pub(super) enum Signer<'a> {
    Key(&'a PreparedKey, Algorithm),
    /// HMAC with raw bytes, including the empty key `EncodingKey` refuses.
    RawHmac(&'a [u8]),
    /// A fixed signature.
    Fixed(Vec<u8>),
}

/// The compact JWS of `header` and `payload` (JSON text, base64url-encoded here) under `signer`.
pub(super) fn sign_with(header: &str, payload: &str, signer: Signer<'_>) -> String {
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
pub(super) fn rsa_modulus_b64(pem: &[u8]) -> String {
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
        let ec_pub = DecodingKey::from_ec_pem(include_bytes!("../../../keys/attacker-ec.pub.pem"))
            .expect("ec pub");
        let ed_pub =
            DecodingKey::from_ed_pem(include_bytes!("../../../keys/attacker-ed25519.pub.pem"))
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
