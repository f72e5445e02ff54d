//! Shared by the integration tests: the example specs, their guards and mint contexts.
#![allow(dead_code)]

use confab::generators::token::MintContext;
use confab::guard::{Guard, ScopeSet};
use confab::spec::Spec;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A fixed "now" (2026-11-29T00:00:00Z) so that every run mints the same times.
pub(crate) const NOW: u64 = 1_796_169_600;

pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub(crate) struct Fixture {
    pub name: &'static str,
    pub spec: Spec,
    pub guard: Guard,
    pub mint: MintContext,
}

/// The example specs: one per algorithm family, plus `typ` and `kid`-map policies.
pub(crate) const SPECS: [&str; 6] = [
    "examples/specs/docs-hs256.toml",
    "examples/specs/docs-hs512.toml",
    "examples/specs/docs-rs256.toml",
    "examples/specs/docs-ps256.toml",
    "examples/specs/docs-es256.toml",
    "examples/specs/docs-eddsa-kid.toml",
];

pub(crate) fn fixtures() -> &'static [Fixture] {
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
pub(crate) fn reference_endpoints() -> Vec<confab::report::EndpointInfo> {
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

/// A tool some tests need beyond Rust: the one skip policy of the suite. Missing, a test
/// skips with a note saying how to install it; with `CONFAB_REQUIRE_TOOLS=1` (set by
/// `scripts/test.sh`, so in CI) a missing tool fails the test instead, so CI never passes by
/// skipping.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tool {
    /// `python3` on PATH.
    Python3,
    /// python3 with PyJWT (tests/requirements.txt).
    PyJwt,
    /// python3 with the Flask example's packages (examples/flask/requirements.txt).
    Flask,
    /// python3 with the model APIs' official client libraries: openai, anthropic, ollama
    /// (tests/requirements.txt).
    ModelSdks,
    /// python3 with the web-app example's packages (examples/webapp/requirements.txt).
    WebApp,
    /// A headless Chromium (`CONFAB_CHROMIUM`, or chromium / google-chrome on PATH).
    Chromium,
    /// The precision targets (examples/precision/): python3 with the Flask and FastAPI
    /// targets' packages, and node with the Express target's `npm ci` done.
    Precision,
}

impl Tool {
    fn available(self) -> bool {
        let python = |code: &str| {
            std::process::Command::new("python3")
                .args(["-c", code])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        match self {
            Tool::Python3 => python("pass"),
            Tool::PyJwt => python("import jwt"),
            Tool::Flask => python("import flask, jwt, openai, requests"),
            Tool::ModelSdks => python("import openai, anthropic, ollama"),
            Tool::WebApp => python("import fastapi, uvicorn, jwt, openai, cryptography"),
            Tool::Chromium => chromium_path().is_some(),
            Tool::Precision => {
                python("import flask, jwt, openai, requests, fastapi, uvicorn, httpx")
                    && std::process::Command::new("node")
                        .arg("--version")
                        .output()
                        .is_ok_and(|o| o.status.success())
                    && repo_path(
                        "examples/precision/express_jsonwebtoken/node_modules/jsonwebtoken",
                    )
                    .is_dir()
            }
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Tool::Python3 => "install python3",
            Tool::PyJwt | Tool::ModelSdks => "pip install -r tests/requirements.txt",
            Tool::Flask => "pip install -r examples/flask/requirements.txt",
            Tool::WebApp => "pip install -r examples/webapp/requirements.txt",
            Tool::Precision => {
                "pip install -r examples/precision/flask_pyjwt/requirements.txt \
                 -r examples/precision/fastapi_pyjwt/requirements.txt; \
                 (cd examples/precision/express_jsonwebtoken && npm ci)"
            }
            Tool::Chromium => {
                "install chromium (Debian: scripts/ensure-apt.sh chromium) or point \
                 CONFAB_CHROMIUM at a Chromium or Chrome binary"
            }
        }
    }
}

/// Whether `tool` is there; see [`Tool`] for what happens when it is not.
pub(crate) fn require(tool: Tool) -> bool {
    if tool.available() {
        return true;
    }
    let required = std::env::var("CONFAB_REQUIRE_TOOLS").as_deref() == Ok("1");
    assert!(
        !required,
        "{tool:?} is missing and CONFAB_REQUIRE_TOOLS=1: {}",
        tool.install_hint()
    );
    eprintln!("skipped: {tool:?} is missing ({})", tool.install_hint());
    false
}

/// The Flask example's packages: [`require`]`(Tool::Flask)`.
pub(crate) fn flask_available() -> bool {
    require(Tool::Flask)
}

/// The headless browser the HTML report tests render in, if there is one.
pub(crate) fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CONFAB_CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The resource kind `doc` with the default id pattern.
pub(crate) fn doc() -> confab::guard::ResourceKind {
    confab::guard::ResourceKind::with_default_pattern("doc").expect("constant kind")
}

/// alice owns doc-a1 and doc-a2 and may read the shared doc-pub; bob owns doc-b1.
pub(crate) fn store() -> confab::guard::MemoryPermissions {
    let mut s = confab::guard::MemoryPermissions::new();
    s.own("alice", "doc", "doc-a1")
        .own("alice", "doc", "doc-a2")
        .share("alice", "doc", "doc-pub")
        .own("bob", "doc", "doc-b1");
    s
}

/// Run statistics for hand-made reports.
pub(crate) fn sample_stats() -> confab::report::Stats {
    confab::report::Stats {
        cases: 64,
        requests: 100,
        model_calls: 30,
        downstream_requests: 20,
        duration_ms: 1234,
        seed: 7,
        one_at_a_time: false,
        ..Default::default()
    }
}
