//! The guard's full decision per token, next to its floors and a library baseline.
//!
//! Each criterion group holds, side by side on the same token:
//!
//! * `confab_decide`: `Guard::decide` (bearer header, structure, JOSE header policy, signature,
//!   iss/aud/exp/nbf/sub, scope), configured from the example spec of that algorithm;
//! * `floor_*`: the bare signature check with a pre-built aws-lc-rs key over the same signing
//!   input (HMAC-SHA256 for HS256, a `ParsedPublicKey` verify otherwise): what no guard can
//!   beat; for public keys also `aws_lc_verify_key_parsed_per_call`, the same check through
//!   `UnparsedPublicKey`, which parses the key on every call as `jsonwebtoken` does;
//! * `jsonwebtoken_decode`: plain `jsonwebtoken::decode` with the equivalent `Validation`
//!   (pinned algorithm, iss, aud, exp, nbf, leeway, required claims) plus the same scope check;
//! * `reject_*` (HS256 only): refusals, which should cost no more than an acceptance.
//!
//! Throughput is in elements: one element is one token decided.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use confab::guard::{Guard, ScopeSet};
use confab::spec::Spec;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "docs-api";
const SCOPE: &str = "docs:read";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Real time: `jsonwebtoken` validates against the system clock, so the tokens must be valid
/// now for the baseline to accept them; the guard is given the same instant.
fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A realistic access token's claims (RFC 9068 shape, ~270 bytes once signed with HS256).
fn claims_json(now: u64) -> String {
    format!(
        concat!(
            r#"{{"iss":"{iss}","sub":"u-48213","aud":"{aud}","exp":{exp},"nbf":{nbf},"#,
            r#""iat":{iat},"jti":"7f3a91","scope":"{scope}"}}"#
        ),
        iss = ISSUER,
        aud = AUDIENCE,
        exp = now + 3600,
        nbf = now - 5,
        iat = now,
        scope = SCOPE,
    )
}

/// A guard, the spec's signing key and the verification floor for one algorithm.
struct Case {
    name: &'static str,
    alg: Algorithm,
    guard: Guard,
    token: String,
    header: String,
    floor: Floor,
    decoding: DecodingKey,
    validation: Validation,
}

enum Floor {
    Hmac(Box<aws_lc_rs::hmac::Key>),
    /// The key parsed once (`ParsedPublicKey`): the true floor. The second key is the same
    /// key unparsed, which aws-lc-rs parses again on every call, as `jsonwebtoken` does.
    Public(
        aws_lc_rs::signature::ParsedPublicKey,
        aws_lc_rs::signature::UnparsedPublicKey<Vec<u8>>,
    ),
}

impl Floor {
    fn verify(&self, input: &[u8], sig: &[u8]) -> bool {
        match self {
            Floor::Hmac(k) => aws_lc_rs::hmac::verify(k, input, sig).is_ok(),
            Floor::Public(k, _) => k.verify_sig(input, sig).is_ok(),
        }
    }

    /// The same check with the key parsed on each call; `None` for HMAC.
    fn verify_unparsed(&self, input: &[u8], sig: &[u8]) -> Option<bool> {
        match self {
            Floor::Hmac(_) => None,
            Floor::Public(_, k) => Some(k.verify(input, sig).is_ok()),
        }
    }
}

fn sign(spec: &Spec, header_json: &str, claims: &str) -> String {
    let key = spec
        .auth
        .signing_key(&spec.base_dir)
        .expect("signing key loads")
        .expect("spec has private key material");
    let mut input = URL_SAFE_NO_PAD.encode(header_json);
    input.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut input);
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, key.alg).expect("signs");
    format!("{input}.{sig}")
}

/// The DER body of a PEM file.
fn pem_der(pem: &[u8]) -> Vec<u8> {
    let body: String = String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

/// The raw public key aws-lc-rs verifies with, from a SubjectPublicKeyInfo: the contents of
/// its BIT STRING (PKCS#1 for RSA, the point for EC, the 32 bytes for Ed25519).
fn spki_key(der: &[u8]) -> Vec<u8> {
    // SEQUENCE { SEQUENCE { algorithm }, BIT STRING { 0x00, key } }
    fn len_at(d: &[u8], i: usize) -> (usize, usize) {
        let b = d[i];
        if b < 0x80 {
            (usize::from(b), i + 1)
        } else {
            let n = usize::from(b & 0x7f);
            let l = d[i + 1..i + 1 + n]
                .iter()
                .fold(0usize, |a, x| a << 8 | usize::from(*x));
            (l, i + 1 + n)
        }
    }
    let (_, body) = len_at(der, 1);
    let (alg_len, alg_body) = len_at(der, body + 1);
    let bit = alg_body + alg_len;
    assert_eq!(der[bit], 0x03, "BIT STRING");
    let (bit_len, bit_body) = len_at(der, bit + 1);
    der[bit_body + 1..bit_body + bit_len].to_vec()
}

fn case(name: &'static str, spec_rel: &str, now: u64) -> Case {
    let spec = Spec::load(&repo(spec_rel)).unwrap_or_else(|e| panic!("{e}"));
    let guard = spec.guard().unwrap_or_else(|e| panic!("{e}"));
    let key = spec
        .auth
        .signing_key(&spec.base_dir)
        .expect("key")
        .expect("private key");
    let alg = key.alg;
    let mut header = format!(r#"{{"alg":"{}""#, confab::guard::token::alg_name(alg));
    header.push_str(&format!(
        r#","typ":"{}""#,
        spec.auth.typ.as_deref().unwrap_or("JWT")
    ));
    if let Some(kid) = &key.kid {
        header.push_str(&format!(r#","kid":"{kid}""#));
    }
    header.push('}');
    let token = sign(&spec, &header, &claims_json(now));
    let (floor, decoding) = match alg {
        Algorithm::HS256 => {
            let secret = key.hmac_secret.as_ref().expect("HS256 secret");
            (
                Floor::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    secret.expose(),
                ))),
                DecodingKey::from_secret(secret.expose()).expect("non-empty secret"),
            )
        }
        _ => {
            let pem = key.public_pem.as_ref().expect("public key file");
            let raw = spki_key(&pem_der(pem));
            let (verify_alg, decoding): (
                &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
                _,
            ) = match alg {
                Algorithm::RS256 => (
                    &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    DecodingKey::from_rsa_pem(pem),
                ),
                Algorithm::PS256 => (
                    &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
                    DecodingKey::from_rsa_pem(pem),
                ),
                Algorithm::ES256 => (
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                    DecodingKey::from_ec_pem(pem),
                ),
                Algorithm::EdDSA => (
                    &aws_lc_rs::signature::ED25519,
                    DecodingKey::from_ed_pem(pem),
                ),
                other => panic!("no floor for {other:?}"),
            };
            let parsed = aws_lc_rs::signature::ParsedPublicKey::new(verify_alg, &raw)
                .expect("public key parses");
            (
                Floor::Public(
                    parsed,
                    aws_lc_rs::signature::UnparsedPublicKey::new(verify_alg, raw),
                ),
                decoding.expect("public key PEM"),
            )
        }
    };
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_nbf = true;
    validation.leeway = spec.auth.leeway_s;
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    Case {
        name,
        alg,
        guard,
        header: format!("Bearer {token}"),
        token,
        floor,
        decoding,
        validation,
    }
}

/// What the baseline deserializes: the claims a handler needs.
#[derive(Deserialize)]
#[allow(dead_code)]
struct BaselineClaims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    scope: String,
}

fn baseline_decide(c: &Case, bearer: &str) -> bool {
    let Some(token) = bearer.strip_prefix("Bearer ") else {
        return false;
    };
    match jsonwebtoken::decode::<BaselineClaims>(token, &c.decoding, &c.validation) {
        Ok(data) => data.claims.scope.split(' ').any(|s| s == SCOPE),
        Err(_) => false,
    }
}

fn split(token: &str) -> (&[u8], Vec<u8>) {
    let dot = token.rfind('.').expect("three segments");
    let sig = URL_SAFE_NO_PAD
        .decode(&token[dot + 1..])
        .expect("signature b64");
    (&token.as_bytes()[..dot], sig)
}

fn bench_algorithms(c: &mut Criterion) {
    let now = wall_now();
    let required = ScopeSet::parse(SCOPE);
    let cases = [
        case("hs256", "examples/specs/docs-hs256.toml", now),
        case("rs256", "examples/specs/docs-rs256.toml", now),
        case("ps256", "examples/specs/docs-ps256.toml", now),
        case("es256", "examples/specs/docs-es256.toml", now),
        case("eddsa", "examples/specs/docs-eddsa-kid.toml", now),
    ];
    for k in &cases {
        let (input, sig) = split(&k.token);
        // Sanity: every contender accepts before it is timed.
        assert!(
            k.guard
                .decide(&[k.header.as_bytes()], &required, now)
                .is_ok(),
            "{}: guard refuses the benchmark token",
            k.name
        );
        assert!(k.floor.verify(input, &sig), "{}: floor refuses", k.name);
        assert!(
            baseline_decide(k, &k.header),
            "{}: baseline refuses",
            k.name
        );
        eprintln!(
            "guard_token/{}: token {} bytes, signing input {} bytes, alg {:?}",
            k.name,
            k.token.len(),
            input.len(),
            k.alg
        );

        let mut g = c.benchmark_group(format!("guard_token/{}", k.name));
        g.throughput(Throughput::Elements(1));
        g.bench_function("confab_decide", |b| {
            let headers: [&[u8]; 1] = [k.header.as_bytes()];
            b.iter(|| black_box(k.guard.decide(black_box(&headers), &required, now)).is_ok())
        });
        let floor_name = if k.alg == Algorithm::HS256 {
            "floor_hmac_sha256"
        } else {
            "floor_aws_lc_verify"
        };
        g.bench_function(floor_name, |b| {
            b.iter(|| k.floor.verify(black_box(input), black_box(&sig)))
        });
        if k.floor.verify_unparsed(input, &sig).is_some() {
            g.bench_function("aws_lc_verify_key_parsed_per_call", |b| {
                b.iter(|| k.floor.verify_unparsed(black_box(input), black_box(&sig)))
            });
        }
        g.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| baseline_decide(k, black_box(&k.header)))
        });

        if k.alg == Algorithm::HS256 {
            bench_rejections(&mut g, k, &required, now);
        }
        g.finish();
    }
}

fn bench_rejections(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    k: &Case,
    required: &ScopeSet,
    now: u64,
) {
    let (h64, rest) = k.token.split_once('.').expect("segments");
    let (p64, s64) = rest.split_once('.').expect("segments");
    // Bad signature: one character in the middle of the signature changed (canonical base64).
    let mut bad_sig = s64.as_bytes().to_vec();
    bad_sig[10] = if bad_sig[10] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!(
        "Bearer {h64}.{p64}.{}",
        String::from_utf8(bad_sig).expect("ascii")
    );
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("Bearer {none_header}.{p64}.");
    // A header segment that is base64url but not JSON, followed by the real payload and
    // signature: refused at the header, before any cryptography.
    let garbage = URL_SAFE_NO_PAD.encode("\u{1}garbage-not-a-jose-header\u{2}");
    let garbage = format!("Bearer {garbage}.{p64}.{s64}");
    let expired_now = now + 3600 + 60;
    let rejects: [(&str, String, u64); 4] = [
        ("reject_bad_signature", bad_sig, now),
        ("reject_alg_none", alg_none, now),
        ("reject_garbage_header", garbage, now),
        // Signed by the issuer, but refused at the claims: costs a full verification.
        ("reject_expired", k.header.clone(), expired_now),
    ];
    for (name, header, at) in &rejects {
        assert!(
            k.guard.decide(&[header.as_bytes()], required, *at).is_err(),
            "{name}: accepted"
        );
        g.bench_function(*name, |b| {
            let headers: [&[u8]; 1] = [header.as_bytes()];
            b.iter(|| black_box(k.guard.decide(black_box(&headers), required, *at)).is_err())
        });
    }
}

criterion_group!(benches, bench_algorithms);
criterion_main!(benches);
