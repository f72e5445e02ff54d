//! Harness throughput (cases/s): a whole campaign against the embedded reference target
//! (hardened, so no finding is shrunk), called in-process as a function versus served on a
//! loopback port, on the endpoint that never reaches the model (`read`) and on the one that
//! does (`assist`). Each iteration is one campaign of `CASES` cases after the baselines.

use confab::harness::{self as campaign, Options};
use confab::spec::Spec;
use confab_reference_target::{Flaws, served_target, service_target};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use std::time::Duration;

const SPEC: &str = include_str!("../examples/reference/hardened.toml");
const CASES: u64 = 2_000;

fn options(endpoint: &str) -> Options {
    Options {
        cases: CASES,
        seed: 3,
        concurrency: 8,
        shrink_budget: 0,
        endpoints: vec![endpoint.to_owned()],
        ..Options::default()
    }
}

fn spec() -> Spec {
    Spec::parse(SPEC, "hardened.toml", Path::new(".")).expect("the example spec parses")
}

fn campaigns(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("campaign");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(CASES));
    for endpoint in ["read", "assist"] {
        group.bench_function(format!("in_process/{endpoint}"), |b| {
            b.iter(|| {
                let report = rt
                    .block_on(campaign::run_called(
                        spec(),
                        options(endpoint),
                        service_target(Some(Flaws::none())),
                    ))
                    .expect("campaign runs");
                assert_eq!(report.stats.cases as usize, CASES as usize + 2);
            })
        });
        group.bench_function(format!("loopback_http/{endpoint}"), |b| {
            b.iter(|| {
                rt.block_on(campaign::run(
                    spec(),
                    options(endpoint),
                    Some(served_target(Some(Flaws::none()))),
                ))
                .expect("campaign runs")
            })
        });
    }
    group.finish();
}

/// `GET /docs/{id}`: the reference guard, then a fixed answer.
fn minimal_service(ctx: confab::target::TargetContext) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let guard = std::sync::Arc::new(ctx.guard().expect("guard"));
    let needed = confab::guard::ScopeSet::parse("docs:read");
    axum::Router::new().route(
        "/docs/{id}",
        axum::routing::get(move |headers: HeaderMap| {
            let (guard, needed) = (guard.clone(), needed.clone());
            async move {
                let values: Vec<&[u8]> = headers
                    .get_all("authorization")
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                match guard.decide(&values, &needed, confab::guard::unix_now()) {
                    Ok(_) => (StatusCode::OK, "{}").into_response(),
                    Err(r) => {
                        let status =
                            StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                        let challenge = guard.challenge(r, Some(&needed));
                        (status, [("www-authenticate", challenge)]).into_response()
                    }
                }
            }
        }),
    )
}

/// Cases checked one after another on one thread, as `confab::testing::Harness` runs them in
/// a property test: the per-core cost of a case (minting, the service, the oracle).
fn per_case(c: &mut Criterion) {
    use confab::generators::case::nth_case;
    use confab::harness::Session;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("per_case_one_core");
    group.throughput(Throughput::Elements(1));
    for (name, endpoint) in [("read", 0u32), ("assist", 1u32)] {
        let session = rt
            .block_on(Session::start(
                spec(),
                3,
                service_target(Some(Flaws::none())),
            ))
            .expect("session starts");
        assert_eq!(session.spec().endpoints[endpoint as usize].name, name);
        let recipes: Vec<_> = (0..1024)
            .map(|i| {
                let mut r = nth_case(3, i);
                r.endpoint = endpoint;
                r
            })
            .collect();
        let mut next = 0;
        group.bench_function(format!("in_process/{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % recipes.len();
                rt.block_on(session.run_case(&recipes[next]))
            })
        });
    }
    // The harness's own cost: a service that only runs the guard and answers.
    let session = rt
        .block_on(Session::start(
            spec(),
            3,
            Box::new(|ctx| Ok(minimal_service(ctx).into())),
        ))
        .expect("session starts");
    let recipes: Vec<_> = (0..1024)
        .map(|i| {
            let mut r = nth_case(3, i);
            r.endpoint = 0;
            r
        })
        .collect();
    let mut next = 0;
    group.bench_function("in_process/guard_only_service", |b| {
        b.iter(|| {
            next = (next + 1) % recipes.len();
            rt.block_on(session.run_case(&recipes[next]))
        })
    });
    group.finish();
}

criterion_group!(benches, campaigns, per_case);
criterion_main!(benches);
