//! `confab demo`: confab's main job on an embedded default, with nothing to set up.
//!
//! For now it runs every token family of the catalogue against the reference guard configured
//! by the embedded documents-API spec, and shows that the guard decides each as labelled.

use confab::generators::token::{Expected, TokenFamily, TokenRecipe};
use confab::guard::{ScopeSet, unix_now};
use confab::spec::Spec;
use std::path::Path;
use std::process::ExitCode;

/// The spec the demo runs on (also in the repository as examples/specs/docs-hs256.toml).
const EMBEDDED_SPEC: &str = include_str!("../../examples/specs/docs-hs256.toml");

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Variants minted per family.
    #[arg(long, default_value_t = 4)]
    variants: u8,
}

pub fn run(args: DemoArgs) -> ExitCode {
    let built =
        Spec::parse(EMBEDDED_SPEC, "embedded docs-hs256.toml", Path::new(".")).and_then(|spec| {
            let guard = spec.guard()?;
            let mint = spec.mint_context(ScopeSet::parse("docs:read"))?;
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
        for variant in 0..args.variants.max(1) {
            let recipe = TokenRecipe {
                family,
                principal: variant,
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
            args.variants.max(1),
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
