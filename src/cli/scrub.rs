//! `confab scrub`: redacts secrets, credentials, system-prompt spans and PII from stdin to
//! stdout, streaming in bounded memory. Findings go as JSON lines to `--findings` (default
//! stderr). Exit codes: 0 nothing found, 1 something redacted, 2 error.

use confab::guard::Secret;
use confab::guard::scrub::{
    Redaction, ScrubConfig, ScrubError, Scrubber, ScrubberBuilder, SecretKind, scrub_stream,
};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The options of `confab scrub`: what to redact besides the built-in credential and PII
/// rules.
#[derive(clap::Args)]
pub(crate) struct ScrubArgs {
    /// Target spec whose registered secrets (LLM API key, JWT secret, ...) are redacted.
    #[arg(long, value_name = "SPEC.toml")]
    pub(crate) spec: Option<PathBuf>,
    /// A secret to redact with its encodings (repeatable). A three-segment JWT also registers
    /// its signature. Note that command lines are visible to other local users; prefer
    /// --secret-env.
    #[arg(long = "secret", value_name = "VALUE")]
    pub(crate) secrets: Vec<String>,
    /// Name of an environment variable holding a secret to redact (repeatable).
    #[arg(long = "secret-env", value_name = "NAME")]
    pub(crate) secret_envs: Vec<String>,
    /// A file holding a system prompt whose long verbatim spans are redacted (repeatable).
    #[arg(long = "system-prompt", value_name = "FILE")]
    pub(crate) system_prompts: Vec<PathBuf>,
    /// How many consecutive words of a system prompt count as a leak.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub(crate) prompt_words: usize,
    /// Where to write findings, one JSON object per line (default: stderr).
    #[arg(long, value_name = "FILE")]
    pub(crate) findings: Option<PathBuf>,
}

/// Scrubs stdin to stdout (exit codes in the module doc).
pub(crate) fn run(args: ScrubArgs) -> ExitCode {
    let scrubber = match build(&args) {
        Ok(s) => s,
        Err(e) => return super::fail("scrub", &e),
    };
    let sink: Box<dyn Write> = match &args.findings {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => return super::fail("scrub", &format!("{}: {e}", path.display())),
        },
        None => Box::new(io::stderr().lock()),
    };
    match stream(&scrubber, sink) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => super::fail("scrub", &e),
    }
}

/// Streams stdin to stdout; returns how many findings were written.
fn stream(scrubber: &Scrubber, mut sink: Box<dyn Write>) -> io::Result<u64> {
    let stdin = io::stdin().lock();
    let stdout = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    // Each finding is serialized into one reused line, then written at once: serde_json's many
    // small writes straight into the boxed sink cost more than the line itself.
    let mut line = Vec::with_capacity(256);
    let write_finding = |f: Redaction| -> io::Result<()> {
        line.clear();
        serde_json::to_writer(&mut line, &f).map_err(io::Error::other)?;
        line.push(b'\n');
        sink.write_all(&line)
    };
    let summary = scrub_stream(scrubber, stdin, stdout, write_finding)?;
    sink.flush()?;
    Ok(summary.redactions)
}

fn build(args: &ScrubArgs) -> Result<Scrubber, String> {
    let config = ScrubConfig {
        prompt_span_words: args.prompt_words.max(1),
        ..ScrubConfig::default()
    };
    let mut b = ScrubberBuilder::new().config(config);
    if let Some(spec) = &args.spec {
        for (label, secret) in spec_secrets(spec)? {
            b.secret(SecretKind::SigningKey, &label, &secret)
                .map_err(|e| e.to_string())?;
        }
    }
    for (i, value) in args.secrets.iter().enumerate() {
        let secret = Secret::from(value.as_str());
        register(&mut b, &format!("cli-secret-{}", i + 1), &secret).map_err(|e| e.to_string())?;
    }
    for name in &args.secret_envs {
        let value = std::env::var_os(name)
            .ok_or_else(|| format!("--secret-env {name}: variable is not set"))?;
        let secret = Secret::new(value.into_encoded_bytes());
        register(&mut b, name, &secret).map_err(|e| e.to_string())?;
    }
    for path in &args.system_prompts {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        b.system_prompt(path.display().to_string(), text)
            .map_err(|e| e.to_string())?;
    }
    b.build().map_err(|e| e.to_string())
}

/// A JWT-shaped value is registered as a bearer token (adding its signature segment).
fn register(b: &mut ScrubberBuilder, label: &str, secret: &Secret) -> Result<(), ScrubError> {
    let segments = secret.expose().split(|c| *c == b'.').count();
    if segments == 3 && secret.expose().starts_with(b"eyJ") {
        b.bearer_token(label, secret)?;
    } else {
        b.secret(SecretKind::Custom, label, secret)?;
    }
    Ok(())
}

/// The secrets a target spec registers: its signing secrets and private keys.
fn spec_secrets(path: &Path) -> Result<Vec<(String, Secret)>, String> {
    let spec = confab::spec::Spec::load(path).map_err(|e| e.to_string())?;
    Ok(spec.registered_secrets())
}
