//! `confab reference-target` (hidden): runs the embedded reference target, the documents API
//! of docs/ARCHITECTURE.md §3, as a process, so specs can start it like any other target
//! (`command = ["{confab}", "reference-target"]`).
//!
//! Configuration comes from the environment of the spec's `[target.env]` (see
//! `ReferenceConfig::from_env`); it listens on `127.0.0.1:$PORT`, logs plain lines to stderr
//! and stops cleanly on SIGTERM or Ctrl-C. Exit codes: 0 stopped, 2 could not start.

use confab_reference_target::{Flaws, Mode, ReferenceConfig, try_router};
use std::process::ExitCode;

/// The options of `confab reference-target`; each overrides its environment variable.
#[derive(clap::Args)]
pub(crate) struct ReferenceTargetArgs {
    /// The port to listen on (on 127.0.0.1); default: $PORT.
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// `hardened` or `vulnerable`; default: $CONFAB_REFERENCE_MODE, else hardened.
    #[arg(long)]
    pub(crate) mode: Option<String>,
    /// Comma-separated flaws to plant instead of the mode's (e.g. `idor_read,log_token`).
    #[arg(long)]
    pub(crate) flaws: Option<String>,
}

/// Serves the reference target until SIGTERM or Ctrl-C.
pub(crate) fn run(args: ReferenceTargetArgs) -> ExitCode {
    let mut cfg = match ReferenceConfig::from_env() {
        Ok(c) => c,
        Err(e) => return super::fail("reference-target", &e),
    };
    if let Some(m) = &args.mode {
        match Mode::parse(m) {
            Some(mode) => cfg.flaws = mode.flaws(),
            None => {
                return super::fail(
                    "reference-target",
                    &format!("--mode {m:?}: use hardened or vulnerable"),
                );
            }
        }
    }
    if let Some(list) = &args.flaws {
        match Flaws::parse_list(list) {
            Ok(f) => cfg.flaws = f,
            Err(e) => return super::fail("reference-target", &e),
        }
    }
    let port = match args.port {
        Some(p) => p,
        None => match std::env::var("PORT").ok().map(|p| p.parse::<u16>()) {
            Some(Ok(p)) => p,
            Some(Err(_)) => return super::fail("reference-target", &"PORT is not a port number"),
            None => return super::fail("reference-target", &"PORT is not set (or pass --port)"),
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return super::fail("reference-target: tokio runtime", &e),
    };
    runtime.block_on(serve(cfg, port))
}

async fn serve(cfg: ReferenceConfig, port: u16) -> ExitCode {
    let flaws = cfg.flaws;
    let router = match try_router(cfg) {
        Ok(r) => r,
        Err(e) => return super::fail("reference-target", &e),
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => return super::fail(&format!("reference-target: bind 127.0.0.1:{port}"), &e),
    };
    let mode = if flaws.is_none() {
        "hardened".to_owned()
    } else if flaws == Flaws::all() {
        "vulnerable".to_owned()
    } else {
        format!("flaws {flaws}")
    };
    eprintln!("reference-target: listening on http://127.0.0.1:{port} ({mode})");
    match axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        Ok(()) => {
            eprintln!("reference-target: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail("reference-target: serve", &e),
    }
}

/// Resolves on Ctrl-C or SIGTERM (what confab sends when it stops a target).
async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait on SIGTERM alone.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
