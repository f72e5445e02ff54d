//! Shared by the integration tests: the example specs, their guards and mint contexts.
#![allow(dead_code)]

use confab::generators::token::MintContext;
use confab::guard::{Guard, ScopeSet};
use confab::spec::Spec;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A fixed "now" (2026-11-29T00:00:00Z) so that every run mints the same times.
pub const NOW: u64 = 1_796_169_600;

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub struct Fixture {
    pub name: &'static str,
    pub spec: Spec,
    pub guard: Guard,
    pub mint: MintContext,
}

/// The example specs: one per algorithm family, plus `typ` and `kid`-map policies.
pub const SPECS: [&str; 6] = [
    "examples/specs/docs-hs256.toml",
    "examples/specs/docs-hs512.toml",
    "examples/specs/docs-rs256.toml",
    "examples/specs/docs-ps256.toml",
    "examples/specs/docs-es256.toml",
    "examples/specs/docs-eddsa-kid.toml",
];

pub fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        SPECS
            .iter()
            .map(|rel| {
                let spec = Spec::load(&repo_path(rel)).unwrap_or_else(|e| panic!("{e}"));
                let guard = spec.guard().unwrap_or_else(|e| panic!("{e}"));
                let mint = MintContext::for_spec(&spec, ScopeSet::parse("docs:read"))
                    .unwrap_or_else(|e| panic!("{e}"));
                Fixture {
                    name: rel,
                    spec,
                    guard,
                    mint,
                }
            })
            .collect()
    })
}

/// The reference target's two endpoints as a report's spec context names them (the lines of
/// `examples/reference/*.toml`), for hand-made reports.
pub fn reference_endpoints() -> Vec<confab::report::EndpointInfo> {
    let endpoint = |name: &str, method: &str, path: &str, llm, line| confab::report::EndpointInfo {
        name: name.to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        llm,
        line: Some(line),
    };
    vec![
        endpoint("read", "GET", "/docs/{resource}", false, 40),
        endpoint("assist", "POST", "/assist", true, 48),
    ]
}

/// The Flask example needs its Python packages (scripts/test.sh installs them into .venv):
/// skipped locally without them (with a note), a failure in CI.
pub fn flask_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import flask, jwt, openai, requests"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must install examples/flask/requirements.txt"
    );
    if !ok {
        eprintln!("skipped: pip install -r examples/flask/requirements.txt to run this test");
    }
    ok
}
