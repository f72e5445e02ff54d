//! `confab scrub` (placeholder until the scrubber lands; replaced by its implementation).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ScrubArgs {}

pub fn run(_args: ScrubArgs) -> ExitCode {
    super::fail("scrub", &"not built yet")
}
