//! `confab scan` and `confab replay`: campaigns against a live target.

use confab::harness::campaign::{self, CampaignError, Options, ReplayFile};
use confab::report::Report;
use confab::spec::Spec;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct ScanArgs {
    /// The target spec (TOML; see README: writing a spec).
    #[arg(long)]
    pub spec: PathBuf,
    /// Cases to run after the baselines (the budget).
    #[arg(long, default_value_t = 200)]
    pub cases: u64,
    /// Same seed, same cases, same findings.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Only this endpoint (repeatable).
    #[arg(long = "endpoint")]
    pub endpoints: Vec<String>,
    /// Output format written to --out (or stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where replay files of findings go.
    #[arg(long, default_value = ".confab/replays")]
    pub replay_dir: PathBuf,
    /// Show each finding's case and curl line.
    #[arg(short, long)]
    pub verbose: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// A replay file written by `confab scan`.
    pub file: PathBuf,
    /// The spec to run it against (default: the one recorded in the file).
    #[arg(long)]
    pub spec: Option<PathBuf>,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

pub fn scan(args: ScanArgs) -> ExitCode {
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return super::fail("scan", &e),
    };
    let progress: Option<campaign::Progress> = if args.quiet {
        None
    } else {
        let tty = std::io::stderr().is_terminal();
        Some(Arc::new(move |done, total, found| {
            // A line per tenth in CI logs; an updating line on a terminal.
            if tty {
                eprint!("\r{done}/{total} cases, {found} violation(s)   ");
                if done == total {
                    eprintln!();
                }
            } else if total >= 10 && done % (total / 10) == 0 || done == total {
                eprintln!("{done}/{total} cases, {found} violation(s)");
            }
        }))
    };
    let options = Options {
        cases: args.cases,
        seed: args.seed,
        concurrency: args.concurrency,
        endpoints: args.endpoints.clone(),
        replay_dir: Some(args.replay_dir.clone()),
        progress,
        ..Options::default()
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail("scan", &e),
    };
    match rt.block_on(campaign::run(spec, options, None)) {
        Ok(report) => emit(&report, args.format, args.out.as_ref(), args.verbose),
        Err(e) => fail_campaign(&e),
    }
}

pub fn fail_campaign(e: &CampaignError) -> ExitCode {
    super::fail("scan", e)
}

/// Writes the report and returns 0 (nothing found) or 1 (findings).
pub fn emit(report: &Report, format: Format, out: Option<&PathBuf>, verbose: bool) -> ExitCode {
    let text = match format {
        Format::Text => report.render_text(verbose),
        Format::Json => match serde_json::to_string_pretty(report) {
            Ok(t) => t + "\n",
            Err(e) => return super::fail("scan: json", &e),
        },
    };
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                return super::fail(&format!("scan: {}", path.display()), &e);
            }
            if format != Format::Text {
                eprint!("{}", report.render_text(verbose));
            }
        }
        None => print!("{text}"),
    }
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn replay(args: ReplayArgs) -> ExitCode {
    let file: ReplayFile = match std::fs::read_to_string(&args.file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => return super::fail(&format!("replay: {}", args.file.display()), &e),
    };
    let spec_path = args
        .spec
        .clone()
        .unwrap_or_else(|| PathBuf::from(&file.spec));
    let spec = match Spec::load(&spec_path) {
        Ok(s) => s,
        Err(e) => return super::fail("replay", &e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail("replay", &e),
    };
    match rt.block_on(campaign::replay(spec, &file, None)) {
        Ok(report) => {
            let still = report
                .findings
                .iter()
                .any(|f| f.fingerprint == file.fingerprint);
            if still {
                println!("{}: still fails", file.fingerprint);
                print!("{}", report.render_text(true));
                ExitCode::from(1)
            } else {
                println!("{}: no longer reproduces", file.fingerprint);
                ExitCode::SUCCESS
            }
        }
        Err(e) => super::fail("replay", &e),
    }
}
