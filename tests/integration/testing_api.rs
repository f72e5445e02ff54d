//! `confab::testing` as a user meets it: specs built in Rust, services that misbehave in each
//! way the oracle must see in-process as it does over HTTP (accepting forged tokens,
//! panicking, hanging, refusing everyone), the proptest harness failing and shrinking, and the
//! in-process upstream's routing.

use axum::Router;
use axum::routing::get;
use confab::generators::token::TokenFamily;
use confab::oracle::Invariant;
use confab::spec::{Endpoint, Limits, Principal, Spec};
use confab::testing::{CampaignError, CaseRecipe, Harness, TargetContext};
use proptest::test_runner::{Config, TestError, TestRunner};
use std::time::Duration;

fn spec_with(limits: Limits) -> Spec {
    Spec::builder()
        .issuer("https://auth.example")
        .audience("jobs-api")
        .principal(Principal::new("alice").scope("jobs:read").owns(["job-a1"]))
        .principal(Principal::new("bob").scope("jobs:read").owns(["job-b1"]))
        .endpoint(Endpoint::get("status", "/jobs/{resource}").scope("jobs:read"))
        .downstream("/jobs/{id}")
        .limits(limits)
        .build()
        .expect("a valid spec")
}

fn spec() -> Spec {
    spec_with(Limits::default())
}

/// Answers 200 to everyone: never looks at the token.
fn careless(_: &TargetContext) -> Router {
    Router::new().route("/jobs/{id}", get(|| async { "queued" }))
}

#[test]
fn builder_errors_name_the_key_and_where_the_spec_was_built() {
    let err = Spec::builder()
        .endpoint(Endpoint::new("x", "FETCH", "/x"))
        .build()
        .expect_err("FETCH is no method");
    let text = err.to_string();
    assert!(text.contains("endpoint[0].method"), "{text}");
    assert!(text.contains("tests/integration/testing_api.rs"), "{text}");
    let err = Spec::builder()
        .endpoint(Endpoint::post("x", "/x").body(serde_json::json!(["not", "an", "object"])))
        .build()
        .expect_err("a body must be an object");
    assert!(err.to_string().contains("endpoint[0].body"), "{err}");
}

#[test]
fn a_careless_service_is_caught_and_the_report_says_how_to_rerun() {
    let report = confab::testing::Campaign::new(spec())
        .cases(120)
        .seed(4)
        .run_blocking(careless)
        .expect("the campaign runs");
    assert_eq!(report.target, confab::harness::IN_PROCESS_LABEL);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.invariant == Invariant::Authn && f.kind.starts_with("accepted_")),
        "{}",
        report.render_text(true)
    );
    let failure = std::panic::catch_unwind(|| confab::testing::assert_holds(&report))
        .expect_err("assert_holds fails on findings");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("CONFAB_SEED=4"), "{message}");
    assert!(message.contains("AUTHN"), "{message}");
}

#[test]
fn a_panicking_handler_is_a_robustness_finding_not_a_crash_of_the_test() {
    fn panics(_: &TargetContext) -> Router {
        Router::new().route(
            "/jobs/{id}",
            get(|headers: axum::http::HeaderMap| async move {
                // Valid baselines pass; a request without a token takes the handler down.
                if headers.get("authorization").is_none() {
                    panic!("unwrap on a missing header");
                }
                "queued"
            }),
        )
    }
    let report = confab::testing::Campaign::new(spec())
        .cases(150)
        .run_blocking(panics)
        .expect("the campaign runs");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.invariant == Invariant::Robust && f.kind == "no_response"),
        "{}",
        report.render_text(true)
    );
}

#[test]
fn a_hanging_handler_is_cut_at_the_request_timeout() {
    fn hangs(_: &TargetContext) -> Router {
        Router::new().route(
            "/jobs/{id}",
            get(|headers: axum::http::HeaderMap| async move {
                if headers.get("authorization").is_none() {
                    std::future::pending::<()>().await;
                }
                "queued"
            }),
        )
    }
    let limits = Limits {
        request_timeout_ms: 200,
        ..Limits::default()
    };
    let report = confab::testing::Campaign::new(spec_with(limits))
        // About one case in a hundred carries no token at all.
        .cases(400)
        .shrink_budget(1)
        .run_blocking(hangs)
        .expect("the campaign runs");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.invariant == Invariant::Robust && f.kind == "hang"),
        "{}",
        report.render_text(true)
    );
}

#[test]
fn a_service_that_refuses_everyone_stops_the_run_with_the_reason() {
    fn refuses(_: &TargetContext) -> Router {
        Router::new().route(
            "/jobs/{id}",
            get(|| async { axum::http::StatusCode::UNAUTHORIZED }),
        )
    }
    match Harness::new(spec(), refuses) {
        Err(CampaignError::RefusesValid { tried, first }) => {
            assert_eq!(tried, 2);
            assert!(first.contains("401"), "{first}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a service refusing every valid request must not start"),
    }
}

#[test]
fn the_harness_fails_a_property_and_shrinks_to_a_simple_case() {
    let harness = Harness::new(spec(), careless).expect("serves valid requests");
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&harness.cases(), |case| harness.check(&case).map(|_| ()));
    let Err(TestError::Fail(reason, minimal)) = outcome else {
        panic!("a service that ignores tokens must fail the property: {outcome:?}");
    };
    assert!(reason.to_string().contains("AUTHN"), "{reason}");
    // The shrunk case still fails, and is no more complex than needed for it.
    assert!(harness.check(&minimal).is_err());
    assert_ne!(minimal.token.family, TokenFamily::Valid);
}

#[test]
fn a_hand_made_case_checks_one_exchange() {
    let harness = Harness::new(spec(), careless).expect("serves valid requests");
    let ok = harness
        .check(&CaseRecipe::baseline(0, 0))
        .expect("a valid request is fine");
    assert_eq!(ok.observation.status, Some(200));
    let mut alg_none = CaseRecipe::baseline(0, 1);
    alg_none.token.family = TokenFamily::AlgNone;
    let ex = harness.run(&alg_none);
    assert!(
        ex.violations.iter().any(|v| v.kind == "accepted_alg_none"),
        "{ex:?}"
    );
    // The exchange's Debug names the case, never the token.
    let debug = format!("{ex:?}");
    assert!(!debug.contains("eyJ"), "{debug}");
}

#[test]
fn the_in_process_upstream_routes_model_downstream_and_anything_else() {
    use confab::target::{DOWNSTREAM_URL, MODEL_BASE_URL};
    use std::sync::{Arc, Mutex};

    // The service records what each upstream call answered.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(String, u16)>>>);
    let seen = Seen::default();
    let probe = seen.clone();
    let build = move |ctx: &TargetContext| {
        let upstream = ctx.outbound.clone();
        let key = ctx.llm_api_key.clone();
        let seen = probe.clone();
        assert_eq!(ctx.llm_base_url, MODEL_BASE_URL);
        assert_eq!(ctx.downstream_url, DOWNSTREAM_URL);
        Router::new().route(
            "/jobs/{id}",
            get(move || {
                let (upstream, key, seen) = (upstream.clone(), key.clone(), seen.clone());
                async move {
                    let calls = [
                        (format!("{DOWNSTREAM_URL}/jobs/job-a1"), None),
                        (
                            format!("{MODEL_BASE_URL}/models"),
                            Some(String::from_utf8_lossy(key.expose()).into_owned()),
                        ),
                        ("http://169.254.169.254/latest/meta-data".to_owned(), None),
                    ];
                    for (url, bearer) in calls {
                        let mut req = axum::http::Request::get(&url);
                        if let Some(b) = bearer {
                            req = req.header("authorization", format!("Bearer {b}"));
                        }
                        let Ok(req) = req.body(Default::default()) else {
                            continue;
                        };
                        let status = upstream
                            .send(req, 1 << 20, Duration::from_secs(2))
                            .await
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0);
                        seen.0
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((url, status));
                    }
                    "queued"
                }
            }),
        )
    };
    let harness = Harness::new(spec(), build).expect("serves valid requests");
    let ex = harness.run(&CaseRecipe::baseline(0, 0));
    let seen = seen.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // The sink serves alice's job; the fake model lists its models at /models (reached, with
    // the key); the metadata address reached the sink's attacker host, recorded as such.
    assert!(
        seen.iter()
            .any(|(u, s)| u.ends_with("/jobs/job-a1") && *s == 200),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(u, s)| u.ends_with("/models") && *s == 200),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(u, s)| u.contains("169.254") && *s == 200),
        "{seen:?}"
    );
    assert!(
        ex.observation
            .sink_requests
            .iter()
            .any(|r| r.host == confab::observation::SinkHost::Attacker
                && r.request.uri.contains("169.254.169.254")),
        "{ex:?}"
    );
}

#[test]
fn reports_never_carry_the_runs_model_key_or_signing_secret() {
    // A service that answers with both of the run's secrets.
    fn leaks(ctx: &TargetContext) -> Router {
        let key = String::from_utf8_lossy(ctx.llm_api_key.expose()).into_owned();
        let signing = ctx
            .auth
            .secret
            .as_ref()
            .map(|s| String::from_utf8_lossy(s.expose()).into_owned())
            .unwrap_or_default();
        let body = format!("debug: model key {key}, jwt secret {signing}");
        Router::new().route("/jobs/{id}", get(move || async move { body }))
    }
    let report = confab::testing::Campaign::new(spec())
        .cases(20)
        .run_blocking(leaks)
        .expect("the campaign runs");
    let kinds: Vec<&str> = report.findings.iter().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"llm_api_key_in_response_body"), "{kinds:?}");
    assert!(kinds.contains(&"signing_key_in_response_body"), "{kinds:?}");
    let json = serde_json::to_string(&report).expect("the report serializes");
    // The model key is `sk-confab-` and 32 hex digits; the signing secret 64 hex digits.
    assert!(
        !json.contains("sk-confab-"),
        "the model key is in the report"
    );
    let longest_hex_run = json
        .as_bytes()
        .split(|b| !b.is_ascii_hexdigit())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest_hex_run < 64, "the signing secret is in the report");
    assert!(json.contains("[REDACTED:"), "{json}");
}
