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

/// Tools are required (a missing one fails the test instead of skipping it) under
/// `CONFAB_REQUIRE_TOOLS=1` and in CI.
pub fn tools_required() -> bool {
    std::env::var_os("CONFAB_REQUIRE_TOOLS").is_some_and(|v| v == "1")
        || std::env::var_os("CI").is_some()
}

/// Whether `python3` (the first on PATH) imports these modules.
fn python_imports(modules: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The Flask example needs its Python packages (scripts/test.sh installs them into .venv):
/// skipped locally without them (with a note), a failure in CI.
pub fn flask_available() -> bool {
    let ok = python_imports("flask, jwt, openai, requests");
    assert!(
        ok || !tools_required(),
        "CI must install examples/flask/requirements.txt"
    );
    if !ok {
        eprintln!("skipped: pip install -r examples/flask/requirements.txt to run this test");
    }
    ok
}

/// The precision targets (examples/precision/) need Flask, FastAPI and uvicorn, PyJWT, the
/// OpenAI SDK, and node with the Express target's `npm ci` done: skipped locally without them
/// (with a note), a failure under `CONFAB_REQUIRE_TOOLS=1` or in CI.
pub fn precision_available() -> bool {
    let python = python_imports("flask, jwt, openai, requests, fastapi, uvicorn, httpx");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let modules =
        repo_path("examples/precision/express_jsonwebtoken/node_modules/jsonwebtoken").is_dir();
    let ok = python && node && modules;
    let how = "pip install -r examples/precision/flask_pyjwt/requirements.txt \
               -r examples/precision/fastapi_pyjwt/requirements.txt; \
               (cd examples/precision/express_jsonwebtoken && npm ci)";
    assert!(
        ok || !tools_required(),
        "the precision suite's tools are missing (python packages: {python}, node: {node}, \
         npm ci done: {modules}); install them: {how}"
    );
    if !ok {
        eprintln!("skipped: the precision suite needs: {how}");
    }
    ok
}
