//! Target log lines reach the case that caused them, whatever runs beside it: a service that
//! logs each request's credentials and prompt (with the model key beside the prompt) after a
//! delay, so that concurrent cases' lines interleave, gets each log finding once, on its own
//! case, and the same findings at concurrency 1 and 8; so do a process whose lines come
//! through a pipe, and one that logs only after it has answered.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use confab::guard::{Guard, ScopeSet, unix_now};
use confab::report::Report;
use confab::spec::{Endpoint, Principal, Spec};
use confab::testing::{Campaign, TargetContext};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn spec() -> Spec {
    Spec::builder()
        .issuer("https://auth.example")
        .audience("notes-api")
        .principal(
            Principal::new("alice")
                .scope("notes:read")
                .owns(["note-a1"]),
        )
        .principal(Principal::new("bob").scope("notes:read").owns(["note-b1"]))
        .endpoint(
            Endpoint::post("ask", "/ask")
                .scope("notes:read")
                .body(serde_json::json!({"prompt": "{prompt}", "note": "{resource}"})),
        )
        .downstream("/notes/{id}")
        .build()
        .expect("a valid spec")
}

/// What the service logged the model key beside: the nonce of each such request.
type Logged = Arc<Mutex<BTreeSet<String>>>;

#[derive(Clone)]
struct App {
    guard: Arc<Guard>,
    log: Arc<Mutex<confab::target::LogWriter>>,
    key: String,
    logged: Logged,
}

/// The nonce confab puts in every prompt: `(request cfb` and 16 hex digits.
fn nonce(body: &str) -> Option<String> {
    let at = body.find("(request cfb")? + "(request ".len();
    body.get(at..at + 19).map(str::to_owned)
}

async fn ask(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let auth: Vec<String> = headers
        .get_all("authorization")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    // A delay that differs from request to request, so neighbours' lines interleave.
    let spread = body
        .bytes()
        .chain(auth.concat().bytes())
        .map(u64::from)
        .sum::<u64>();
    tokio::time::sleep(Duration::from_millis(1 + spread % 7)).await;
    {
        let mut log = app.log.lock().unwrap_or_else(|p| p.into_inner());
        // The flaws: the credentials go to the log, and the prompt with the model key.
        for a in &auth {
            let _ = writeln!(log, "ask: authorization {a}");
        }
        if let Some(n) = nonce(&body) {
            let _ = writeln!(log, "ask: prompt {body:?} sent with key {}", app.key);
            app.logged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(n);
        }
    }
    tokio::time::sleep(Duration::from_millis(spread % 3)).await;
    let needed = ScopeSet::parse("notes:read");
    let values: Vec<&[u8]> = headers
        .get_all("authorization")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    match app.guard.decide(&values, &needed, unix_now()) {
        Ok(_) => (StatusCode::OK, "{}").into_response(),
        Err(r) => {
            let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let challenge = app.guard.challenge(r, Some(&needed));
            (status, [("www-authenticate", challenge)]).into_response()
        }
    }
}

fn service(ctx: &TargetContext, logged: Logged) -> Router {
    let app = App {
        guard: Arc::new(ctx.guard().expect("the spec's [auth] builds a guard")),
        log: Arc::new(Mutex::new(ctx.log_writer())),
        key: String::from_utf8_lossy(ctx.llm_api_key.expose()).into_owned(),
        logged,
    };
    Router::new().route("/ask", post(ask)).with_state(app)
}

const CASES: u64 = 160;
const SEED: u64 = 21;

async fn campaign(concurrency: usize) -> (Report, BTreeSet<String>) {
    let logged = Logged::default();
    let for_service = logged.clone();
    let report = Campaign::new(spec())
        .cases(CASES)
        .seed(SEED)
        .concurrency(concurrency)
        .shrink_budget(0)
        .run(move |ctx| service(ctx, for_service))
        .await
        .expect("the campaign runs");
    let logged = logged.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (report, logged)
}

/// fingerprint → cases that hit it.
fn findings(report: &Report) -> BTreeMap<String, u64> {
    report
        .findings
        .iter()
        .map(|f| (f.fingerprint.clone(), f.cases))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_log_finding_goes_to_its_own_case_at_any_concurrency() {
    let (serial, serial_logged) = campaign(1).await;
    let (concurrent, concurrent_logged) = campaign(8).await;
    assert!(
        !concurrent.stats.one_at_a_time,
        "the cases ran concurrently"
    );
    // The same requests were made: the same prompts logged.
    assert_eq!(serial_logged, concurrent_logged);
    let serial = findings(&serial);
    let concurrent = findings(&concurrent);
    // Each prompt line with the key belongs to exactly the case whose nonce it carries: as
    // many cases with the finding as prompts logged (the baselines' included), none more.
    let key_in_logs = "ECHO/ask/llm_api_key_in_target_logs";
    assert_eq!(
        concurrent.get(key_in_logs).copied(),
        Some(concurrent_logged.len() as u64),
        "{concurrent:#?}"
    );
    assert!(
        concurrent
            .get("ECHO/ask/bearer_token_in_target_logs")
            .is_some_and(|&n| n > 0),
        "{concurrent:#?}"
    );
    assert_eq!(serial, concurrent);
}

/// The embedded reference target run as a process with the flaw that logs the caller's
/// credentials: its stderr comes through a pump, so a line can arrive after the response.
async fn process_campaign(concurrency: usize) -> Report {
    let source = include_str!("../../examples/reference/vulnerable.toml")
        .replace(
            "\"{confab}\"",
            &format!("{:?}", env!("CARGO_BIN_EXE_confab")),
        )
        .replace(
            "CONFAB_REFERENCE_MODE = \"vulnerable\"",
            "CONFAB_REFERENCE_FLAWS = \"log_token\"",
        );
    process_campaign_of(&source, 200, 9, concurrency).await
}

/// A campaign (`confab scan`'s) against the process target of the spec `source`.
async fn process_campaign_of(source: &str, cases: u64, seed: u64, concurrency: usize) -> Report {
    let spec = Spec::parse(source, "spec.toml", std::path::Path::new(".")).expect("spec");
    let options = confab::harness::Options {
        cases,
        seed,
        concurrency,
        shrink_budget: 0,
        ..Default::default()
    };
    tokio::time::timeout(
        Duration::from_secs(240),
        confab::harness::run(spec, options, None),
    )
    .await
    .expect("the campaign ends in time")
    .expect("the campaign runs")
}

/// The concurrent run really ran cases together, found the caller's token in the target's
/// logs, and found exactly what the one-at-a-time run found.
fn same_token_log_findings(serial: &Report, concurrent: &Report) {
    assert!(
        !concurrent.stats.one_at_a_time,
        "the cases ran concurrently"
    );
    let concurrent = findings(concurrent);
    assert!(
        concurrent
            .get("ECHO/read/bearer_token_in_target_logs")
            .is_some_and(|&n| n > 0),
        "{concurrent:#?}"
    );
    assert_eq!(findings(serial), concurrent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_logs_reach_their_case_at_any_concurrency() {
    same_token_log_findings(&process_campaign(1).await, &process_campaign(8).await);
}

/// A target (Python's standard HTTP server) that logs the caller's credentials only after it
/// has answered: its lines always come after the response, through the pump.
const LOGS_AFTER_ANSWERING: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        for value in self.headers.get_all("Authorization") or []:
            print("answered; authorization " + value, flush=True)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const LATE_SPEC: &str = r#"
[target]
command = ["python3", "-u", "{script}"]
base_url = "http://127.0.0.1:{port}"
ready = "/healthz"
[target.env]
PORT = "{port}"

[auth]
alg = "HS256"
secret = "{jwt_secret}"
issuer = "https://issuer.test"
audience = "docs-api"

[[principal]]
name = "alice"
scope = "docs:read"
owns = ["doc-a1"]

[[principal]]
name = "bob"
scope = "docs:read"
owns = ["doc-b1"]

[[endpoint]]
name = "read"
method = "GET"
path = "/docs/{resource}"
scope = "docs:read"
capabilities = ["GET /docs/{id}"]

[downstream]
resource = "/docs/{id}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_logged_after_the_answer_still_reach_their_case() {
    if !crate::common::require(crate::common::Tool::Python3) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("target.py");
    std::fs::write(&script, LOGS_AFTER_ANSWERING).expect("script written");
    let source = LATE_SPEC.replace("{script}", &script.display().to_string());
    let serial = process_campaign_of(&source, 150, 17, 1).await;
    let concurrent = process_campaign_of(&source, 150, 17, 8).await;
    same_token_log_findings(&serial, &concurrent);
}
