//! `confab tokens`: mint generated token cases for a spec, one `Authorization` value per line,
//! ready to pipe into `confab verify` or any other validator.

use confab::generators::token::{Expected, MintContext, TokenFamily, TokenRecipe, token_recipe};
use confab::guard::{ScopeSet, unix_now};
use confab::spec::Spec;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The options of `confab tokens`.
#[derive(clap::Args)]
pub(crate) struct TokensArgs {
    /// The target spec; its `[auth]` section holds the private key material.
    #[arg(long, help = "Target spec with private key material in [auth].")]
    spec: PathBuf,
    /// Scope of the endpoint the tokens are aimed at.
    #[arg(long, default_value = "")]
    scope: String,
    /// How many lines to write. Cases that cannot be written as one line (several headers, an
    /// empty header, a line break inside one) are skipped and others generated in their place.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Same seed, same cases (given the same --now).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only this family (snake_case name, e.g. `alg_none`); repeatable.
    #[arg(long = "family")]
    families: Vec<String>,
    /// Mint for this time (seconds since the epoch; default: now).
    #[arg(long)]
    now: Option<u64>,
    /// Also write what a correct guard decides, one JSON object per line, to this file.
    #[arg(long)]
    labels: Option<PathBuf>,
}

/// Writes the token lines to stdout (and the labels to `--labels`): exit 0, or 2 when the
/// spec cannot mint, a `--family` is unknown or an output cannot be written.
pub(crate) fn run(args: TokensArgs) -> ExitCode {
    let required = ScopeSet::parse(&args.scope);
    let ctx = match Spec::load(&args.spec).and_then(|s| MintContext::for_spec(&s, required)) {
        Ok(c) => c,
        Err(e) => return super::fail("tokens", &e),
    };
    let mut families = Vec::new();
    for name in &args.families {
        match TokenFamily::ALL.into_iter().find(|f| f.name() == *name) {
            Some(f) => families.push(f),
            None => {
                let known: Vec<String> = TokenFamily::ALL.iter().map(|f| f.name()).collect();
                return super::fail(
                    "tokens",
                    &format!("unknown --family {name:?}; known: {}", known.join(", ")),
                );
            }
        }
    }
    let now = args.now.unwrap_or_else(unix_now);
    let mut labels = match args.labels.as_ref().map(std::fs::File::create).transpose() {
        Ok(f) => f.map(BufWriter::new),
        Err(e) => return super::fail("tokens: --labels", &e),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&args.seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let strategy = token_recipe();
    // Unwritable cases are replaced by new ones, up to a bound: a --family whose every case
    // needs two headers must not loop forever.
    let max_attempts = args.count.saturating_mul(4).max(64);
    let (mut written, mut skipped) = (0u64, 0u64);
    let result = (|| -> io::Result<()> {
        for i in 0..max_attempts {
            if written == args.count {
                break;
            }
            let mut recipe: TokenRecipe = match strategy.new_tree(&mut runner) {
                Ok(tree) => tree.current(),
                Err(e) => return Err(io::Error::other(e.to_string())),
            };
            if !families.is_empty() {
                recipe.family = families[(i as usize) % families.len()];
            }
            let case = recipe.mint(&ctx, now);
            // One header per line, an empty line for none: several headers, an empty header
            // or a line break inside one cannot be written that way, so those are left out.
            let line = case.authorization.first().map_or("", String::as_str);
            let representable = match case.authorization.as_slice() {
                [] => true,
                [one] => !one.is_empty() && !one.contains(['\n', '\r']),
                _ => false,
            };
            if !representable {
                skipped += 1;
                continue;
            }
            writeln!(out, "{line}")?;
            written += 1;
            if let Some(l) = labels.as_mut() {
                let label = match &case.expect {
                    Expected::Accept { sub, .. } => {
                        serde_json::json!({"family": case.family.name(), "accepted": true, "sub": sub})
                    }
                    Expected::Reject(r) => serde_json::json!({
                        "family": case.family.name(), "accepted": false, "reason": r.as_str(),
                    }),
                };
                serde_json::to_writer(&mut *l, &label)?;
                l.write_all(b"\n")?;
            }
        }
        out.flush()?;
        if let Some(l) = labels.as_mut() {
            l.flush()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        return super::fail("tokens", &e);
    }
    if written < args.count {
        eprintln!(
            "confab tokens: wrote {written} of {} lines; {skipped} generated cases cannot be \
             written one header per line (several headers, an empty header, a line break) and \
             the families asked for yield too few others",
            args.count
        );
    }
    ExitCode::SUCCESS
}
