//! Published vectors (RFC 7515, RFC 7519) and tokens minted by another library (PyJWT).

use crate::common::repo_path;
use confab::guard::ScopeSet;
use confab::spec::Spec;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    vector: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    auth: String,
    header: String,
    now: u64,
    expect: String,
}

fn read_toml<T: for<'de> Deserialize<'de>>(rel: &str) -> T {
    let text = std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn rfc_vectors_are_decided_as_published() {
    let vectors: Vectors = read_toml("tests/data/jws_vectors.toml");
    assert!(vectors.vector.len() >= 6);
    for v in vectors.vector {
        let spec = Spec::parse(&format!("[auth]\n{}", v.auth), &v.name, &repo_path("."))
            .unwrap_or_else(|e| panic!("{e}"));
        let guard = spec.guard().unwrap_or_else(|e| panic!("{e}"));
        let got = guard.decide(&[v.header.as_bytes()], &ScopeSet::new(), v.now);
        let got = match got {
            Ok(_) => "accept".to_owned(),
            Err(r) => r.as_str().to_owned(),
        };
        assert_eq!(got, v.expect, "{}", v.name);
    }
}

#[derive(Deserialize)]
struct PyJwtTokens {
    token: Vec<PyJwtToken>,
}

#[derive(Deserialize)]
struct PyJwtToken {
    spec: String,
    alg: String,
    token: String,
}

fn assert_pyjwt_tokens_accepted(tokens: &PyJwtTokens) {
    assert!(tokens.token.len() >= 5);
    for t in &tokens.token {
        let spec = Spec::load(&repo_path(&t.spec)).unwrap_or_else(|e| panic!("{e}"));
        let guard = spec.guard().unwrap_or_else(|e| panic!("{e}"));
        let header = format!("Bearer {}", t.token);
        let who = guard
            .decide(
                &[header.as_bytes()],
                &ScopeSet::parse("docs:read"),
                crate::common::NOW,
            )
            .unwrap_or_else(|r| panic!("PyJWT {} token for {} refused: {r}", t.alg, t.spec));
        assert_eq!(who.sub, "alice");
        assert!(who.scopes.contains("docs:read"));
    }
}

#[test]
fn tokens_minted_by_pyjwt_round_trip() {
    assert_pyjwt_tokens_accepted(&read_toml("tests/data/pyjwt_tokens.toml"));
}

/// Mints afresh with the installed PyJWT (CI installs it); elsewhere the committed tokens
/// above stand in.
#[test]
fn tokens_minted_now_by_pyjwt_round_trip() {
    if !crate::common::require(crate::common::Tool::PyJwt) {
        return;
    }
    let script = repo_path("tests/data/mint_pyjwt.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let tokens: PyJwtTokens = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_pyjwt_tokens_accepted(&tokens);
}

#[test]
fn nothing_secret_in_debug_output() {
    for fx in crate::common::fixtures() {
        let shown = format!("{:?} {:?}", fx.spec, fx.guard);
        for (label, secret) in fx.spec.registered_secrets() {
            let text = String::from_utf8_lossy(secret.expose()).into_owned();
            assert!(
                !shown.contains(&text),
                "{label} of {} in Debug output",
                fx.name
            );
            // The PEM body lines as well, not just the whole file.
            for line in text
                .lines()
                .filter(|l| l.len() > 20 && !l.starts_with("-----"))
            {
                assert!(
                    !shown.contains(line),
                    "{label} of {} in Debug output",
                    fx.name
                );
            }
        }
        let key = fx.spec.auth.signing_key(&fx.spec.base_dir).ok().flatten();
        let shown = format!("{key:?}");
        assert!(!shown.contains("BEGIN") && !shown.contains("example-hs256"));
    }
}
