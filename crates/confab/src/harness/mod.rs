//! The harness: the only part of confab with sockets and processes. It owns three loopback
//! servers (the client side, the fake model, the sink), starts and stops the target, and runs
//! cases against it (docs/ARCHITECTURE.md §2–§3).

//! The stages of a run, in order: [`plan`] (which cases, pure), [`run`](mod@run) (start the fake model,
//! the sink and the target; stop them), [`campaign`] (baselines, then cases in batches),
//! [`exchange`] (one case: send, collect, judge), [`shrink`] (group findings, shrink their
//! examples), [`replay`](mod@replay) (rerun one finding), and [`session`] (cases one at a time, for
//! property tests). [`fake_llm`] and [`sink`] are the two servers confab plays; [`process`]
//! and [`logs`] run a target process and share out what it prints.

pub mod campaign;
pub mod exchange;
pub mod fake_llm;
pub mod logs;
pub mod plan;
pub mod process;
pub mod replay;
pub mod run;
pub mod session;
pub(crate) mod setup;
pub mod shrink;
pub mod sink;

pub use exchange::Exchange;
pub use plan::{Options, Progress, Status, planned, planned_count};
pub use replay::{ReplayFile, replay};
pub use run::{CampaignError, IN_PROCESS_LABEL, run, run_called};
pub use session::Session;

use axum::Router;
use axum::http::HeaderMap;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An axum server on an ephemeral loopback port that stops when told (or dropped).
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `router` on an ephemeral loopback port.
    pub async fn start(router: Router) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            // A serve error ends the server; the harness notices through failed requests.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (at most two seconds), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(std::time::Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            // Still draining after the grace period: stop it here (the handle was taken out
            // of `self`, so `Drop` would no longer see it).
            task.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Takes a lock whose holder panicked too: the fake model's and the sink's maps are only ever
/// updated whole, so what a panicking holder left is still consistent.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The armed case a request made by the target belongs to: the one `is_case` recognises (by
/// its token or nonce); failing that, the only case armed, which must be the one although the
/// request hid what ties it. Such a guess is counted in `guessed`: the target then has to run
/// one case at a time. Shared by the fake model and the sink.
pub(crate) fn attribute<K: Clone, V>(
    armed: &std::collections::HashMap<K, V>,
    guessed: &std::sync::atomic::AtomicU64,
    is_case: impl Fn(&K, &V) -> bool,
) -> Option<K> {
    if let Some((key, _)) = armed.iter().find(|(k, v)| is_case(k, v)) {
        return Some(key.clone());
    }
    let mut keys = armed.keys();
    let only = match (keys.next(), keys.next()) {
        (Some(only), None) => only.clone(),
        _ => return None,
    };
    guessed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(only)
}

/// A request as the fake model and the sink record it.
pub(crate) fn record(
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> crate::observation::RecordedRequest {
    crate::observation::RecordedRequest {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: header_pairs(&parts.headers),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

/// Header pairs with lower-case names and lossily decoded values.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
