//! The harness: the only part of confab with sockets and processes. It owns three loopback
//! servers (the client side, the fake model, the sink), starts and stops the target, and runs
//! cases against it (docs/ARCHITECTURE.md §2–§3).

//! The stages of a run, in order: [`plan`] (which cases, pure), [`run`](mod@run) (start the fake model,
//! the sink and the target; stop them), [`campaign`] (baselines, then cases in batches),
//! [`exchange`] (one case: send, collect, judge; the request itself is built and sent in
//! `request`), [`shrink`] (group findings, shrink their
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
mod request;
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

    /// Stops accepting, lets in-flight requests finish (at most two seconds), then aborts the
    /// server task and returns. axum serves each connection in a task of its own, which the
    /// abort does not reach: a handler that never returns keeps its connection open.
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::sync::Notify;

    /// Counts its live copies. axum clones a handler into the router it serves and into each
    /// connection's router, so the count falls when a holder of the router is dropped.
    struct Live(Arc<AtomicUsize>);

    impl Live {
        fn new(count: Arc<AtomicUsize>) -> Live {
            count.fetch_add(1, Ordering::SeqCst);
            Live(count)
        }
    }

    impl Clone for Live {
        fn clone(&self) -> Self {
            Live::new(self.0.clone())
        }
    }

    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Sets its flag when dropped: lives inside the request's handler future.
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A request whose handler never returns keeps graceful shutdown from ever completing:
    /// `shutdown` must then stop the server task itself rather than leave it running,
    /// detached, for the rest of the process (one such task per run would pile up in a
    /// long property-test session).
    #[tokio::test]
    async fn shutdown_aborts_a_server_whose_graceful_shutdown_never_completes() {
        let live = Arc::new(AtomicUsize::new(0));
        let copy = Live::new(live.clone());
        let entered = Arc::new(Notify::new());
        let handler_dropped = Arc::new(AtomicBool::new(false));
        let router = {
            let entered = entered.clone();
            let handler_dropped = handler_dropped.clone();
            Router::new().route(
                "/",
                get(move || {
                    let _ = &copy;
                    let entered = entered.clone();
                    let guard = SetOnDrop(handler_dropped.clone());
                    async move {
                        let _guard = guard;
                        entered.notify_one();
                        std::future::pending::<()>().await;
                    }
                }),
            )
        };
        let Ok(server) = Server::start(router).await else {
            panic!("the server starts on loopback");
        };
        let Ok(mut client) = tokio::net::TcpStream::connect(server.addr()).await else {
            panic!("the server accepts");
        };
        let sent = client
            .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await;
        assert!(sent.is_ok(), "the request is sent");
        assert!(
            tokio::time::timeout(Duration::from_secs(5), entered.notified())
                .await
                .is_ok(),
            "the handler runs"
        );
        // Held now by the server task's router, the connection's and the request in flight.
        let before = live.load(Ordering::SeqCst);

        // Waits out the two-second grace period: the request is still in flight.
        assert!(
            tokio::time::timeout(Duration::from_secs(10), server.shutdown())
                .await
                .is_ok(),
            "shutdown returns after its grace period"
        );
        // An abort takes effect when the scheduler next reaches the task.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while live.load(Ordering::SeqCst) >= before && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            live.load(Ordering::SeqCst) < before,
            "the server task still holds its router after shutdown: it was left running"
        );
        // Still pending: graceful shutdown cannot have completed, so only the abort could
        // have ended the server task.
        assert!(!handler_dropped.load(Ordering::SeqCst));
        drop(client);
    }
}
