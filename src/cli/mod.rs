//! One module per subcommand. Each returns the process exit code (0/1/2, like ripgrep).

pub mod demo;
pub mod init;
pub mod reference_target;
pub mod scan;
pub mod scrub;
pub mod tokens;
pub mod verify;

use std::process::ExitCode;

/// Prints an error the way every subcommand does and returns exit code 2.
pub fn fail(context: &str, err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("confab: {context}: {err}");
    ExitCode::from(2)
}
