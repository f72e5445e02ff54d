//! One module per subcommand. Each returns the process exit code (0/1/2, like ripgrep).

pub(crate) mod demo;
pub(crate) mod init;
pub(crate) mod reference_target;
pub(crate) mod scan;
pub(crate) mod scrub;
pub(crate) mod tokens;
pub(crate) mod verify;

use std::process::ExitCode;

/// Prints an error the way every subcommand does and returns exit code 2.
pub(crate) fn fail(context: &str, err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("confab: {context}: {err}");
    ExitCode::from(2)
}

/// A token cancelled on the first Ctrl-C: the campaign then stops everything it started and
/// ends with "interrupted". The library never installs a signal handler; the command does.
pub(crate) fn cancel_on_ctrl_c(
    rt: &tokio::runtime::Runtime,
) -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let cancel = token.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    token
}
