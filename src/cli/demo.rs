//! `confab demo`: confab's main job on an embedded default, with nothing to set up.
//!
//! It runs a short campaign against the embedded reference target (served in-process on a
//! loopback port) in its hardened and its vulnerable form, and prints what it found in each.
//! `--tokens` shows instead how the reference guard decides every token family.

use confab::generators::token::{Expected, MintContext, TokenFamily, TokenRecipe};
use confab::guard::{ScopeSet, unix_now};
use confab::harness::{self as campaign, Options};
use confab::spec::Spec;
use confab_reference_target as reference;
use std::path::Path;
use std::process::ExitCode;

/// The spec the demo runs on (also in the repository as examples/specs/docs-hs256.toml).
const EMBEDDED_SPEC: &str = include_str!("../../examples/specs/docs-hs256.toml");

/// The options of `confab demo`.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Cases per form of the target.
    #[arg(long, default_value_t = 400)]
    cases: u64,
    /// Same seed, same cases, same findings.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Show each finding's case and curl line.
    #[arg(short, long)]
    verbose: bool,
    /// Instead: every token family against the reference guard.
    #[arg(long)]
    tokens: bool,
    /// Variants minted per family (with --tokens).
    #[arg(long, default_value_t = 4)]
    variants: u8,
}

const HARDENED: &str = include_str!("../../examples/reference/hardened.toml");
const VULNERABLE: &str = include_str!("../../examples/reference/vulnerable.toml");

/// Runs the demo: exit 0 when the hardened target has nothing above low and the vulnerable
/// one has findings (with `--tokens`: when the guard agrees with every label), 1 when not, 2
/// when confab could not run.
pub(crate) fn run(args: DemoArgs) -> ExitCode {
    if args.tokens {
        return token_table(args.variants);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail("demo", &e),
    };
    println!(
        "confab demo: {} cases against the embedded reference target (a documents API whose \
         /assist endpoint lets a model call tools), first hardened, then with planted flaws.\n",
        args.cases
    );
    let mut reports = Vec::new();
    for (name, text) in [("hardened", HARDENED), ("vulnerable", VULNERABLE)] {
        let spec = match Spec::parse(
            text,
            &format!("examples/reference/{name}.toml"),
            Path::new("."),
        ) {
            Ok(s) => s,
            Err(e) => return super::fail("demo", &e),
        };
        let options = Options {
            cancel: Some(super::cancel_on_ctrl_c(&rt)),
            cases: args.cases,
            seed: args.seed,
            concurrency: 4,
            shrink_budget: 6,
            ..Options::default()
        };
        let target = reference::served_target(None);
        println!("== {name} ==");
        match rt.block_on(campaign::run(spec, options, Some(target))) {
            Ok(report) => {
                print!("{}", report.render_text(args.verbose));
                println!();
                reports.push(report);
            }
            Err(e) => return super::fail("demo", &e),
        }
    }
    let as_expected = reports.len() == 2 && reports[0].hardened() && !reports[1].hardened();
    println!(
        "{}",
        if as_expected {
            "As expected: the hardened form holds every invariant; the vulnerable one breaks them. \
             Point confab at your own API with `confab scan --spec your.toml` (README: writing a spec)."
        } else {
            "Unexpected: the hardened form should have no finding above low, the vulnerable one several."
        }
    );
    if as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn token_table(variants: u8) -> ExitCode {
    let built =
        Spec::parse(EMBEDDED_SPEC, "embedded docs-hs256.toml", Path::new(".")).and_then(|spec| {
            let guard = spec.guard()?;
            let mint = MintContext::for_spec(&spec, ScopeSet::parse("docs:read"))?;
            Ok((guard, mint))
        });
    let (guard, mint) = match built {
        Ok(b) => b,
        Err(e) => return super::fail("demo", &e),
    };
    let now = unix_now();
    println!("confab demo: every token family against the reference guard");
    println!(
        "spec: embedded documents API (HS256, iss and aud checked, endpoint scope docs:read)\n"
    );
    println!(
        "{:<26} {:>5}  {:<34} agrees",
        "family", "cases", "a correct guard decides"
    );
    let (mut cases, mut disagreements) = (0u32, 0u32);
    for family in TokenFamily::ALL {
        let mut outcomes = Vec::new();
        let mut agree = true;
        for variant in 0..variants.max(1) {
            let recipe = TokenRecipe {
                family,
                principal: u32::from(variant),
                variant,
                skew_s: u16::from(variant),
                jti: u32::from(variant),
            };
            let case = recipe.mint(&mint, now);
            let decided = guard.decide(&case.header_bytes(), &mint.required_scope, now);
            let (label, ok) = match (&case.expect, &decided) {
                (Expected::Accept { sub, .. }, Ok(who)) => {
                    (format!("accept ({sub})"), &who.sub == sub)
                }
                (Expected::Accept { .. }, Err(r)) => (format!("accept, guard: {r}"), false),
                (Expected::Reject(want), Err(got)) => {
                    (format!("{} {}", want.status(), want.as_str()), want == got)
                }
                (Expected::Reject(want), Ok(_)) => (format!("{want}, guard: accept"), false),
            };
            if !outcomes.contains(&label) {
                outcomes.push(label);
            }
            agree &= ok;
            cases += 1;
            disagreements += u32::from(!ok);
        }
        println!(
            "{:<26} {:>5}  {:<34} {}",
            family.name(),
            variants.max(1),
            outcomes.join(", "),
            if agree { "yes" } else { "NO" }
        );
    }
    println!(
        "\n{cases} cases in {} families; the guard disagreed with the label on {disagreements}.",
        TokenFamily::ALL.len()
    );
    if disagreements == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
