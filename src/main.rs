//! The `confab` command line: thin glue over the library.
#![forbid(unsafe_code)]

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// confab: proof, in CI, that a hallucinating or prompt-injected model cannot make your API
/// act outside the caller's token and request, or leak a secret.
///
/// Exit codes: 0 nothing found, 1 findings (or rejected/redacted input), 2 confab could not run.
#[derive(Parser)]
#[command(name = "confab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run confab's main job on an embedded example (nothing to set up).
    Demo(cli::demo::DemoArgs),
    /// Run a campaign against a live target described by a spec.
    Scan(cli::scan::ScanArgs),
    /// Rerun one finding's exchange from its replay file.
    Replay(cli::scan::ReplayArgs),
    /// Write a commented spec skeleton (optionally filled from an OpenAPI document).
    Init(cli::init::InitArgs),
    /// Check a spec: everything that keeps `confab scan` from running, with file:line: key.
    CheckSpec(cli::init::CheckSpecArgs),
    /// The embedded reference target (documents API with an LLM assistant), hardened or with
    /// planted flaws; started by specs as `{confab} reference-target`.
    #[command(hide = true)]
    ReferenceTarget(cli::reference_target::ReferenceTargetArgs),
    /// Mint generated token cases for a spec, one Authorization value per line.
    Tokens(cli::tokens::TokensArgs),
    /// Check Authorization header values (one per line on stdin) with the reference guard.
    Verify(cli::verify::VerifyArgs),
    /// Redact secrets, credentials, system-prompt spans and PII from text on stdin.
    Scrub(cli::scrub::ScrubArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Tokens(args) => cli::tokens::run(args),
        Command::Scan(args) => cli::scan::scan(args),
        Command::Replay(args) => cli::scan::replay(args),
        Command::Init(args) => cli::init::init(args),
        Command::CheckSpec(args) => cli::init::check_spec(args),
        Command::ReferenceTarget(args) => cli::reference_target::run(args),
        Command::Verify(args) => cli::verify::run(args),
        Command::Scrub(args) => cli::scrub::run(args),
    }
}
