//! `confab scan` and `confab replay`: campaigns against a live target, and the outputs CI
//! and people read (text, JSON, SARIF, JUnit, HTML), the gate (`--fail-on`, baselines) and sharding.

use confab::generators::case::CaseRecipe;
use confab::harness::{self as campaign, CampaignError, Options, ReplayFile};
use confab::oracle::Severity;
use confab::report::html::Masking;
use confab::report::{Baseline, Gate, Report, SpecContext};
use confab::spec::Spec;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// `--format`: the main output's format (the library's [`confab::report::Format`], as a
/// command-line value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// The terminal summary.
    Text,
    /// `{"findings": [...], "stats": {...}, "gate": {...}}`.
    Json,
    /// SARIF 2.1.0, for code scanning (GitHub, GitLab, Azure DevOps).
    Sarif,
    /// JUnit XML: a suite per endpoint, a test case per invariant.
    Junit,
    /// One self-contained HTML page: summary, charts, findings, remediation.
    Html,
}

impl Format {
    fn name(self) -> &'static str {
        confab::report::Format::from(self).name()
    }
}

impl From<Format> for confab::report::Format {
    fn from(f: Format) -> confab::report::Format {
        match f {
            Format::Text => confab::report::Format::Text,
            Format::Json => confab::report::Format::Json,
            Format::Sarif => confab::report::Format::Sarif,
            Format::Junit => confab::report::Format::Junit,
            Format::Html => confab::report::Format::Html,
        }
    }
}

/// `--fail-on`: the lowest severity that fails the run (`low`, `medium`, `high`: the
/// [`Severity`] of the same name). The variants carry no doc comments on purpose: clap would
/// print them as the values' help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    Low,
    Medium,
    High,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
        }
    }
}

/// `--shard i/n`: this run takes the cases whose index is `i` modulo `n` (0 ≤ i < n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    /// `i`: which shard this run is, from 0.
    pub(crate) index: u64,
    /// `n`: how many shards the campaign is split into (at least 1).
    pub(crate) count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = "use i/n with 0 <= i < n, e.g. --shard 0/4 … --shard 3/4";
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not i/n: {usage}"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("{i:?} is not a shard index: {usage}"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a shard count: {usage}"))?;
        if count == 0 {
            return Err(format!("the shard count is 0: {usage}"));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range for {count} shard(s) (indices start at 0): {usage}"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// The options of `confab scan`.
#[derive(clap::Args)]
pub(crate) struct ScanArgs {
    /// The target spec (TOML; see README: writing a spec).
    #[arg(long)]
    pub(crate) spec: PathBuf,
    /// Cases to run after the baselines (the budget; with --shard, of the whole campaign).
    #[arg(long, default_value_t = 200)]
    pub(crate) cases: u64,
    /// Same seed, same cases, same findings.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// Only this endpoint (repeatable).
    #[arg(long = "endpoint")]
    pub(crate) endpoints: Vec<String>,
    /// Format of the main output, written to --out (or stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Write the main output here instead of stdout.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Also write the JSON report here (any combination of --out-* in one run).
    #[arg(long, value_name = "PATH")]
    pub(crate) out_json: Option<PathBuf>,
    /// Also write SARIF 2.1.0 here.
    #[arg(long, value_name = "PATH")]
    pub(crate) out_sarif: Option<PathBuf>,
    /// Also write JUnit XML here.
    #[arg(long, value_name = "PATH")]
    pub(crate) out_junit: Option<PathBuf>,
    /// Also write the HTML report here (one self-contained file).
    #[arg(long, value_name = "PATH")]
    pub(crate) out_html: Option<PathBuf>,
    /// Exit 1 only for findings at or above this severity (default: any finding).
    #[arg(long, value_enum, default_value_t = FailOn::Low)]
    pub(crate) fail_on: FailOn,
    /// Known findings (a file written by --write-baseline, or a JSON report): reported as
    /// baselined, never failing the run (repeatable).
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Vec<PathBuf>,
    /// Write the fingerprints of this run's findings here, as a baseline.
    #[arg(long, value_name = "FILE")]
    pub(crate) write_baseline: Option<PathBuf>,
    /// Run only shard i of n (0-based): the cases whose index is i modulo n. The n shards of
    /// one --seed and --cases together run exactly the cases of the unsharded campaign.
    #[arg(long, value_name = "i/n")]
    pub(crate) shard: Option<Shard>,
    /// Print the planned cases (one JSON object per line) and exit without running anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Where replay files of findings go.
    #[arg(long, default_value = ".confab/replays")]
    pub(crate) replay_dir: PathBuf,
    /// Show each finding's case and curl line.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// No progress output, no summary on stderr.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Run to the end even when an `llm = true` endpoint never calls the model (otherwise the
    /// reports are written, with the warning, and confab exits 2).
    #[arg(long)]
    pub(crate) allow_no_model: bool,
}

/// The options of `confab replay`.
#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// A replay file written by `confab scan`.
    pub(crate) file: PathBuf,
    /// The spec to run it against (default: the one recorded in the file).
    #[arg(long)]
    pub(crate) spec: Option<PathBuf>,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default: warnings and errors;
/// `-q`: errors only). E.g. `RUST_LOG=confab=debug confab scan ...`.
pub(crate) fn init_logging(quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "error" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The cases a campaign with these options runs, in order: `(case index, recipe)`, with each
/// recipe's endpoint mapped onto the endpoints the campaign covers. The harness plans the
/// same way; sharding keeps the indices `i % n == k`.
pub(crate) fn planned_cases(spec: &Spec, options: &Options) -> Vec<(u64, CaseRecipe)> {
    campaign::planned(spec, options)
}

/// What SARIF and JUnit need from the spec: its path and the covered endpoints' lines.
pub(crate) fn spec_context(spec: &Spec, path: &Path, only: &[String]) -> SpecContext {
    SpecContext::from_spec(spec, path, only)
}

/// Where the outputs of a scan go (from [`ScanArgs`]).
pub(crate) struct Outputs {
    /// `--format`: the main output's format.
    pub(crate) format: Format,
    /// `--out`: the main output's file; `None`: stdout.
    pub(crate) out: Option<PathBuf>,
    /// `--out-json`: also the JSON report here.
    pub(crate) json: Option<PathBuf>,
    /// `--out-sarif`: also SARIF 2.1.0 here.
    pub(crate) sarif: Option<PathBuf>,
    /// `--out-junit`: also JUnit XML here.
    pub(crate) junit: Option<PathBuf>,
    /// `--out-html`: also the HTML page here.
    pub(crate) html: Option<PathBuf>,
    /// `--write-baseline`: the findings' fingerprints here.
    pub(crate) write_baseline: Option<PathBuf>,
    /// `--verbose`: each finding's case and curl line in the text output.
    pub(crate) verbose: bool,
    /// `--quiet`: no summary on stderr.
    pub(crate) quiet: bool,
    /// What the HTML report masks besides its built-in patterns: the spec's literal secrets.
    pub(crate) masking: Masking,
}

impl Outputs {
    fn files(&self) -> Vec<&PathBuf> {
        [
            &self.out,
            &self.json,
            &self.sarif,
            &self.junit,
            &self.html,
            &self.write_baseline,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Creates the folders the outputs go to, before a campaign spends minutes.
fn prepare(outputs: &Outputs) -> Result<(), (PathBuf, std::io::Error)> {
    for path in outputs.files() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
        }
    }
    Ok(())
}

fn load_baselines(paths: &[PathBuf]) -> Result<Option<Baseline>, confab::report::BaselineError> {
    let mut merged: Option<Baseline> = None;
    for p in paths {
        let b = Baseline::load(p)?;
        tracing::info!(path = %p.display(), fingerprints = b.fingerprints.len(), "baseline loaded");
        match &mut merged {
            Some(m) => m.merge(b),
            None => merged = Some(b),
        }
    }
    Ok(merged)
}

/// Progress on stderr: a bar with cases, requests/s and violations on a terminal, a plain
/// line per tenth otherwise.
fn progress() -> (campaign::Progress, Option<indicatif::ProgressBar>) {
    if std::io::stderr().is_terminal() {
        // Hidden until the first case is done: nothing to show while the target starts.
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::hidden(),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} cases · {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        let b = bar.clone();
        let start = Instant::now();
        let cb: campaign::Progress = Arc::new(move |done, total, found| {
            if b.length() != Some(total) {
                b.set_length(total);
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            b.set_position(done);
            // One request per case while cases run.
            let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001);
            let tail = if done == total {
                "; shrinking findings…"
            } else {
                ""
            };
            b.set_message(format!("{rate:.0} requests/s · {found} violation(s){tail}"));
        });
        (cb, Some(bar))
    } else {
        let start = Instant::now();
        let cb: campaign::Progress = Arc::new(move |done, total, found| {
            if total >= 10 && done % (total / 10) == 0 || done == total {
                let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001);
                eprintln!("{done}/{total} cases, {rate:.0} requests/s, {found} violation(s)");
            }
        });
        (cb, None)
    }
}

/// Runs a campaign and writes its outputs: exit 0 when the gate passes, 1 when findings fail
/// it, 2 when confab could not run (or an `llm = true` endpoint never called the model,
/// without `--allow-no-model`).
pub(crate) fn scan(args: ScanArgs) -> ExitCode {
    init_logging(args.quiet);
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return super::fail("scan", &e),
    };
    for name in &args.endpoints {
        if !spec.endpoints.iter().any(|e| &e.name == name) {
            return super::fail("scan", &CampaignError::UnknownEndpoint(name.clone()));
        }
    }
    let baseline = match load_baselines(&args.baseline) {
        Ok(b) => b,
        Err(e) => return super::fail("scan: --baseline", &e),
    };
    let gate = Gate {
        fail_on: args.fail_on.into(),
        baseline,
    };
    let outputs = Outputs {
        format: args.format,
        out: args.out.clone(),
        json: args.out_json.clone(),
        sarif: args.out_sarif.clone(),
        junit: args.out_junit.clone(),
        html: args.out_html.clone(),
        write_baseline: args.write_baseline.clone(),
        verbose: args.verbose,
        quiet: args.quiet,
        masking: masking(&spec),
    };
    let mut options = Options {
        cases: args.cases,
        seed: args.seed,
        concurrency: args.concurrency,
        endpoints: args.endpoints.clone(),
        shard: args.shard.map(|s| (s.index, s.count)),
        replay_dir: Some(args.replay_dir.clone()),
        status: Some(std::sync::Arc::new(|line: &str| {
            eprintln!("confab: {line}")
        })),
        ..Options::default()
    };
    // Counted, not generated: a million-case plan is generated as the campaign runs.
    let planned = campaign::planned_count(&spec, &options);
    if let Some(s) = args.shard {
        tracing::info!(
            shard = %format!("{}/{}", s.index, s.count),
            cases = planned,
            "shard planned"
        );
    }
    if args.dry_run {
        return dry_run(&spec, &planned_cases(&spec, &options));
    }
    if let Err((dir, e)) = prepare(&outputs) {
        return super::fail(&format!("scan: {}", dir.display()), &e);
    }
    let ctx = spec_context(&spec, &args.spec, &args.endpoints);
    tracing::info!(spec = %args.spec.display(), cases = planned, seed = args.seed, "campaign starts");
    let mut bar = None;
    if !args.quiet {
        let (cb, b) = progress();
        options.progress = Some(cb);
        bar = b;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail("scan", &e),
    };
    options.cancel = Some(super::cancel_on_ctrl_c(&rt));
    let outcome = rt.block_on(campaign::run(spec, options, None));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match outcome {
        Ok(report) => {
            tracing::info!(
                findings = report.findings.len(),
                cases = report.stats.cases,
                duration_ms = report.stats.duration_ms,
                "campaign finished"
            );
            let code = emit(&report, &outputs, &gate, &ctx);
            if !report.stats.warnings.is_empty() && !args.allow_no_model {
                for w in &report.stats.warnings {
                    eprintln!("confab: scan: {w}");
                }
                return ExitCode::from(2);
            }
            code
        }
        Err(e) => fail_campaign(&e),
    }
}

fn dry_run(spec: &Spec, planned: &[(u64, CaseRecipe)]) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for (id, recipe) in planned {
        let endpoint = spec
            .endpoints
            .get(recipe.endpoint as usize)
            .map_or("", |e| e.name.as_str());
        let line = serde_json::json!({
            "id": id,
            "endpoint": endpoint,
            "token": recipe.token.family.name(),
            "recipe": recipe,
        });
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Reports a campaign that could not run, and returns exit code 2.
pub(crate) fn fail_campaign(e: &CampaignError) -> ExitCode {
    super::fail("scan", e)
}

/// What the HTML report masks for this spec (see [`Masking::for_spec`]).
pub(crate) fn masking(spec: &Spec) -> Masking {
    Masking::for_spec(spec)
}

/// Renders the report in one format under the gate.
pub(crate) fn render(
    report: &Report,
    format: Format,
    gate: &Gate,
    ctx: &SpecContext,
    outputs: &Outputs,
) -> Result<String, serde_json::Error> {
    confab::report::render(
        report,
        format.into(),
        gate,
        ctx,
        &outputs.masking,
        outputs.verbose,
    )
}

fn write(path: &Path, text: &str, what: &str) -> Result<(), ExitCode> {
    std::fs::write(path, text)
        .map_err(|e| super::fail(&format!("scan: {}", path.display()), &e))?;
    tracing::info!(path = %path.display(), format = what, bytes = text.len(), "output written");
    Ok(())
}

/// Writes every output and returns 0 (the gate passes), 1 (findings fail it) or 2 (an output
/// could not be written).
pub(crate) fn emit(report: &Report, outputs: &Outputs, gate: &Gate, ctx: &SpecContext) -> ExitCode {
    let main = match render(report, outputs.format, gate, ctx, outputs) {
        Ok(t) => t,
        Err(e) => return super::fail(&format!("scan: {}", outputs.format.name()), &e),
    };
    match &outputs.out {
        Some(path) => {
            if let Err(code) = write(path, &main, outputs.format.name()) {
                return code;
            }
            if outputs.format != Format::Text && !outputs.quiet {
                eprint!("{}", report.render_text_gated(outputs.verbose, gate));
            }
        }
        None => print!("{main}"),
    }
    for (path, format) in [
        (&outputs.json, Format::Json),
        (&outputs.sarif, Format::Sarif),
        (&outputs.junit, Format::Junit),
        (&outputs.html, Format::Html),
    ] {
        let Some(path) = path else { continue };
        let text = match render(report, format, gate, ctx, outputs) {
            Ok(t) => t,
            Err(e) => return super::fail(&format!("scan: {}", format.name()), &e),
        };
        if let Err(code) = write(path, &text, format.name()) {
            return code;
        }
    }
    if gate.baseline.is_some() {
        let failing = gate.failing(report).len();
        tracing::info!(
            baselined = report
                .findings
                .iter()
                .filter(|f| gate.status(f) == confab::report::Status::Baselined)
                .count(),
            stale = gate.stale(report).len(),
            failing,
            "baseline applied"
        );
    }
    if let Some(path) = &outputs.write_baseline {
        let baseline = Baseline::from_report(report);
        if let Err(code) = write(path, &baseline.to_json(), "baseline") {
            return code;
        }
        if !outputs.quiet {
            eprintln!(
                "confab: wrote a baseline of {} finding(s) to {}",
                baseline.fingerprints.len(),
                path.display()
            );
        }
    }
    if gate.passes(report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Reruns one finding's exchange: exit 0 when it no longer reproduces, 1 when it does, 2 when
/// confab could not run.
pub(crate) fn replay(args: ReplayArgs) -> ExitCode {
    init_logging(false);
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
    tracing::info!(file = %args.file.display(), fingerprint = %file.fingerprint, "replaying");
    let cancel = super::cancel_on_ctrl_c(&rt);
    match rt.block_on(campaign::replay(spec, &file, None, Some(cancel))) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_and_explains_bad_values() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2", "1/-2"] {
            let err = bad.parse::<Shard>().expect_err(bad);
            assert!(err.contains("0 <= i < n"), "{bad}: {err}");
        }
        assert!(
            "4/4"
                .parse::<Shard>()
                .expect_err("out of range")
                .contains("out of range")
        );
    }

    fn spec() -> Spec {
        Spec::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/reference/vulnerable.toml"
        )))
        .expect("spec")
    }

    #[test]
    fn shards_partition_the_unsharded_plan_exactly() {
        let spec = spec();
        let base = Options {
            cases: 97,
            seed: 11,
            ..Options::default()
        };
        let whole = planned_cases(&spec, &base);
        assert_eq!(whole.len(), 97);
        for n in [1u64, 2, 3, 7] {
            let mut union: Vec<(u64, CaseRecipe)> = (0..n)
                .flat_map(|k| {
                    let options = Options {
                        shard: Some((k, n)),
                        ..base.clone()
                    };
                    let shard = planned_cases(&spec, &options);
                    assert!(shard.iter().all(|(i, _)| i % n == k));
                    // The count the CLI logs without generating the plan.
                    assert_eq!(campaign::planned_count(&spec, &options), shard.len() as u64);
                    shard
                })
                .collect();
            union.sort_by_key(|(i, _)| *i);
            assert_eq!(union, whole, "{n} shards");
        }
        // Another seed plans other cases: the comparison above is not vacuous.
        let other = planned_cases(
            &spec,
            &Options {
                seed: 12,
                ..base.clone()
            },
        );
        assert_ne!(other, whole);
    }

    #[test]
    fn endpoint_filter_maps_every_case_onto_the_kept_endpoints() {
        let spec = spec();
        let options = Options {
            cases: 40,
            endpoints: vec!["assist".to_owned()],
            ..Options::default()
        };
        let assist = spec
            .endpoints
            .iter()
            .position(|e| e.name == "assist")
            .expect("assist") as u32;
        assert!(
            planned_cases(&spec, &options)
                .iter()
                .all(|(_, r)| r.endpoint == assist)
        );
    }

    #[test]
    fn spec_context_points_at_each_endpoint_entry() {
        let spec = spec();
        let ctx = spec_context(&spec, Path::new("examples/reference/vulnerable.toml"), &[]);
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/reference/vulnerable.toml"
        ))
        .expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(ctx.endpoints.len(), 2);
        for e in &ctx.endpoints {
            let line = e.line.expect("line");
            assert_eq!(lines[line - 1], format!("name = \"{}\"", e.name));
        }
    }
}
