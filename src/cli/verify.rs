//! `confab verify`: the reference guard over a stream of `Authorization` header values.
//!
//! One value per line on stdin (an empty line means the request had no header); one JSON
//! object per line on stdout:
//! `{"accepted": bool, "status": 200|400|401|403, "error": code|null, "reason": name|null}`,
//! plus `sub` and `scopes` when accepted. `error` is the RFC 6750 error code, `null` where the
//! RFC sends none (no credentials); `reason` is the guard's stable rejection name.

use confab::guard::{Guard, Rejection, ScopeSet, unix_now};
use confab::spec::Spec;
use serde::Serialize;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The options of `confab verify`.
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The target spec; its `[auth]` section configures the guard.
    #[arg(long, help = "Target spec whose [auth] section configures the guard.")]
    spec: PathBuf,
    /// Scope the endpoint requires, space-delimited (RFC 8693); empty requires none.
    #[arg(long, default_value = "")]
    scope: String,
    /// Current time as seconds since the epoch (default: the system clock).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Serialize)]
struct Line<'a> {
    accepted: bool,
    status: u16,
    error: Option<&'static str>,
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<&'a str>>,
}

/// Exit 0 when every header was accepted, 1 when any was refused, 2 when confab could not run.
pub(crate) fn run(args: VerifyArgs) -> ExitCode {
    let guard = match Spec::load(&args.spec).and_then(|s| s.guard()) {
        Ok(g) => g,
        Err(e) => return super::fail("verify", &e),
    };
    let required = ScopeSet::parse(&args.scope);
    let now = args.now.unwrap_or_else(unix_now);
    let stdin = io::stdin().lock();
    let stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match verify_stream(&guard, &required, now, stdin, stdout) {
        Ok(Summary { rejected: 0, .. }) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => super::fail("verify", &e),
    }
}

struct Summary {
    rejected: u64,
}

fn verify_stream(
    guard: &Guard,
    required: &ScopeSet,
    now: u64,
    mut input: impl BufRead,
    mut out: impl Write,
) -> io::Result<Summary> {
    let mut line = Vec::with_capacity(1024);
    let mut rejected = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let value = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(&line);
        let headers: &[&[u8]] = if value.is_empty() { &[] } else { &[value] };
        let decision = guard.decide(headers, required, now);
        let record = match &decision {
            Ok(who) => Line {
                accepted: true,
                status: 200,
                error: None,
                reason: None,
                sub: Some(&who.sub),
                scopes: Some(who.scopes.iter().collect()),
            },
            Err(r) => {
                rejected += 1;
                rejection_line(*r)
            }
        };
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Summary { rejected })
}

fn rejection_line(r: Rejection) -> Line<'static> {
    Line {
        accepted: false,
        status: r.status(),
        error: r.error_code(),
        reason: Some(r.as_str()),
        sub: None,
        scopes: None,
    }
}
