//! Oracle throughput (checks/s) over recorded observations: every invariant of docs/ARCHITECTURE.md §4
//! judged on exchanges recorded once from the embedded reference target, called in-process.
//!
//! Exchanges are recorded before timing (1,024 cases per group, drawn as a campaign draws
//! them with `nth_case`, seed 3), then `Session::judge` re-checks them one after another: the
//! case and run facts, then `oracle::check`. Nothing is sent while timing. Groups:
//!
//! * `oracle/hardened/{read,assist}`: a target that refuses what it must, so almost every
//!   check ends with no violation (the common case of a CI run);
//! * `oracle/vulnerable/{read,assist}`: every flaw of the reference target on, so checks find
//!   echoes, bypasses and crashes and build their violations.
//!
//! `read` never reaches the model; `assist` does (model calls, downstream calls and the
//! prompt sent upstream are checked too).

use confab::generators::case::nth_case;
use confab::harness::{Exchange, Session};
use confab::spec::Spec;
use confab_reference_target::{Flaws, service_target};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

const SEED: u64 = 3;
const RECORDED: u64 = 1024;

fn spec(text: &str, name: &str) -> Spec {
    Spec::parse(text, name, Path::new(".")).expect("the example spec parses")
}

fn oracle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let targets = [
        (
            "hardened",
            spec(
                include_str!("../examples/reference/hardened.toml"),
                "hardened.toml",
            ),
            Flaws::none(),
        ),
        (
            "vulnerable",
            spec(
                include_str!("../examples/reference/vulnerable.toml"),
                "vulnerable.toml",
            ),
            Flaws::all(),
        ),
    ];
    for (name, spec, flaws) in targets {
        let session = rt
            .block_on(Session::start(spec, SEED, service_target(Some(flaws))))
            .expect("session starts");
        let mut group = c.benchmark_group(format!("oracle/{name}"));
        group.throughput(Throughput::Elements(1));
        for (endpoint_name, endpoint) in [("read", 0u32), ("assist", 1u32)] {
            assert_eq!(
                session.spec().endpoints[endpoint as usize].name,
                endpoint_name
            );
            let recorded: Vec<Exchange> = (0..RECORDED)
                .map(|i| {
                    let mut recipe = nth_case(SEED, i);
                    recipe.endpoint = endpoint;
                    rt.block_on(session.run_case(&recipe))
                })
                .collect();
            // The recording is judged as the campaign judged it, and the vulnerable target
            // gives the oracle something to find.
            let mut violations = 0;
            for ex in &recorded {
                let again = session.judge(ex);
                assert_eq!(again.len(), ex.violations.len(), "{ex:?}");
                violations += again.len();
            }
            assert_eq!(
                violations == 0,
                name == "hardened",
                "{name}/{endpoint_name}"
            );
            eprintln!(
                "oracle/{name}/{endpoint_name}: {RECORDED} recorded exchanges, {violations} violations"
            );
            let mut next = 0;
            group.bench_function(endpoint_name, |b| {
                b.iter(|| {
                    next = (next + 1) % recorded.len();
                    black_box(session.judge(&recorded[next]))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, oracle);
criterion_main!(benches);
