//! `confab verify` (being built).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct VerifyArgs {}

pub fn run(_args: VerifyArgs) -> ExitCode {
    super::fail("verify", &"not built yet")
}
