//! The contract between confab and a target built in Rust.
//!
//! A service that confab tests without a process of its own (an axum `Router`, any
//! `tower::Service`) is built from a [`TargetContext`]: the filled-in `[target.env]`, a
//! [`TargetLog`] whose lines the oracle reads as it reads a process's stdout, the `[auth]`
//! configuration its guard must enforce, and an [`Outbound`] client through which it must
//! reach the model and its downstream API. The same `Outbound` type wraps a real HTTP client in
//! production ([`Outbound::http`]), so a service and its tests share one code path.
//!
//! confab runs such a target in one of two ways:
//!
//! * **served**: [`BuildRouter`] returns a router, which confab serves on a loopback port and
//!   reaches over HTTP, exactly as it reaches a process;
//! * **called**: [`BuildService`] returns a [`TargetService`], which confab calls as a
//!   function, with no socket; the service's outbound calls go to the fake model and the sink
//!   as function calls too ([`Outbound::in_process`]).
//!
//! It also defines [`Invariant`], the ids of what confab checks, so that a target can name the
//! invariants it means to break without the harness (confab re-exports it from its oracle).
//!
//! This crate depends only on the guard, the HTTP types and serde: a target (such as
//! `confab-reference-target`) depends on it and never on the harness.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod invariant;
mod log;
mod outbound;

pub use invariant::Invariant;
pub use log::{LogWriter, TargetLog};
pub use outbound::{
    DOWNSTREAM_PORT, DOWNSTREAM_URL, MODEL_BASE_URL, Outbound, OutboundError, as_on_the_wire,
};

use axum::body::Body;
use axum::http::{Request, Response};
use confab_guard::{AuthConfig, ConfigError, Guard, Secret};
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What a target built inside confab is handed: the filled-in `[target.env]`, a log whose
/// lines reach the oracle as a process's stdout would, and the client through which it must
/// reach the model and the downstream API.
pub struct TargetContext {
    /// `[target.env]` with its placeholders filled in (empty for a spec built in Rust).
    pub env: BTreeMap<String, String>,
    /// Where the target's log lines go; the oracle reads them (ECHO in logs).
    pub log: TargetLog,
    /// The client for the model and the downstream: a function call or HTTP.
    pub outbound: Outbound,
    /// The model's base URL, ending in `/v1` (`{llm_base_url}`).
    pub llm_base_url: String,
    /// The key the model expects (`{llm_api_key}`); the oracle watches for it leaking.
    pub llm_api_key: Secret,
    /// The downstream API's base URL (`{downstream_url}`).
    pub downstream_url: String,
    /// `[auth]` with the run's generated secret filled in: how the service must verify tokens.
    pub auth: AuthConfig,
    /// The folder `[auth]` key files are read from.
    pub base_dir: PathBuf,
}

impl TargetContext {
    /// A reference guard for `[auth]`: the verifier a Rust service can put in front of its
    /// handlers.
    pub fn guard(&self) -> Result<Guard, ConfigError> {
        Guard::from_config(&self.auth, &self.base_dir)
    }

    /// A log writer for the service (e.g. for `tracing_subscriber`'s `with_writer`): its
    /// lines reach the oracle.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter::new(self.log.clone())
    }

    /// A `[target.env]` variable, or an error naming it.
    pub fn var(&self, name: &str) -> Result<&str, String> {
        self.env
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("{name} is not in [target.env]"))
    }
}

/// Builds a target that confab serves on a loopback port and reaches over HTTP.
pub type BuildRouter = Box<dyn FnOnce(TargetContext) -> Result<axum::Router, String> + Send>;

/// Builds a target that confab calls as a function, without a socket.
pub type BuildService = Box<dyn FnOnce(TargetContext) -> Result<TargetService, String> + Send>;

type ServiceCall =
    dyn Fn(Request<Body>) -> BoxFuture<'static, Result<Response<Body>, String>> + Send + Sync;

/// Any `tower::Service` over HTTP requests (an axum `Router` is one), boxed so confab can call
/// it. Cheap to clone.
#[derive(Clone)]
pub struct TargetService(Arc<ServiceCall>);

impl TargetService {
    /// Boxes `service`; its errors become the text of a transport error.
    pub fn new<S>(service: S) -> TargetService
    where
        S: tower::Service<Request<Body>> + Clone + Send + 'static,
        S::Response: axum::response::IntoResponse,
        S::Error: std::fmt::Display,
        S::Future: Send + 'static,
    {
        use tower::ServiceExt;
        // A Mutex makes any Send service shareable; it is held only to clone the service.
        let service = std::sync::Mutex::new(service);
        TargetService(Arc::new(move |req| {
            let svc = service
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            Box::pin(async move {
                svc.oneshot(req)
                    .await
                    .map(axum::response::IntoResponse::into_response)
                    .map_err(|e| e.to_string())
            })
        }))
    }

    /// Calls the service with one request.
    pub async fn call(&self, req: Request<Body>) -> Result<Response<Body>, String> {
        (self.0)(req).await
    }
}

impl From<axum::Router> for TargetService {
    fn from(router: axum::Router) -> TargetService {
        TargetService::new(router)
    }
}

impl std::fmt::Debug for TargetService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetService")
    }
}

/// Percent-encodes what may not stand in one path segment; `/`, `%`, `?` and `#` included, so
/// a hostile id stays one segment on the wire and the target sees what the case chose.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
