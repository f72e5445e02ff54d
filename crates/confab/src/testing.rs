//! confab inside your own tests: in-process campaigns against any `tower::Service` (an axum
//! `Router` is one), without ports, processes or a spec file.
//!
//! Three steps:
//! 1. **Describe** principals, endpoints and capabilities with [`Spec::builder`] (the same
//!    model a TOML spec loads into; [`Spec::parse`] works too).
//! 2. **Build** your service from the [`TargetContext`] confab hands you: its
//!    [`Outbound`](TargetContext::outbound) reaches the fake model and the recording sink as a
//!    function call, [`TargetContext::guard`] verifies the tokens confab mints, and
//!    [`TargetContext::llm_base_url`] / [`TargetContext::downstream_url`] are the URLs to call.
//!    Your production code takes an `Outbound` built with [`Outbound::http`] (or wraps its own
//!    client the same way), so tests and production share one code path.
//! 3. **Run** a [`Campaign`] (many generated cases, grouped and shrunk findings, a readable
//!    failure) or drive single cases from `proptest!` with a [`Harness`].
//!
//! ```
//! use axum::extract::{Path, State};
//! use axum::http::{HeaderMap, StatusCode};
//! use axum::response::{IntoResponse, Response};
//! use axum::{Router, routing::get};
//! use confab::guard::{Guard, ScopeSet, unix_now};
//! use confab::spec::{Endpoint, Principal, Spec};
//! use confab::testing::{Campaign, TargetContext, Outbound};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! // The service: GET /docs/{id} checks the bearer token, reads the document from the
//! // downstream API with the caller's token, and serves it only to its owner.
//! #[derive(Clone)]
//! struct App { guard: Arc<Guard>, outbound: Outbound, docs: String }
//!
//! async fn read(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
//!     let needed = ScopeSet::parse("docs:read");
//!     let values: Vec<&[u8]> = headers.get_all("authorization").iter().map(|v| v.as_bytes()).collect();
//!     let who = match app.guard.decide(&values, &needed, unix_now()) {
//!         Ok(who) => who,
//!         Err(r) => {
//!             let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
//!             let challenge = app.guard.challenge(r, Some(&needed));
//!             return (status, [("www-authenticate", challenge)]).into_response();
//!         }
//!     };
//!     let url = format!("{}/docs/{}", app.docs, confab::spec::encode_path_segment(&id));
//!     let mut req = axum::http::Request::get(url);
//!     if let Some(auth) = headers.get("authorization") {
//!         req = req.header("authorization", auth);
//!     }
//!     let Ok(req) = req.body(Default::default()) else { return StatusCode::NOT_FOUND.into_response() };
//!     let Ok(answer) = app.outbound.send(req, 1 << 20, Duration::from_secs(5)).await else {
//!         return StatusCode::BAD_GATEWAY.into_response();
//!     };
//!     let doc: serde_json::Value = serde_json::from_slice(answer.body()).unwrap_or_default();
//!     // The downstream serves any id: ownership is this service's job.
//!     if !answer.status().is_success() || doc["owner"] != who.sub.as_str() {
//!         return StatusCode::NOT_FOUND.into_response();
//!     }
//!     axum::Json(doc).into_response()
//! }
//!
//! fn app(ctx: &TargetContext) -> Router {
//!     let guard = Arc::new(ctx.guard().expect("the spec's [auth] builds a guard"));
//!     let state = App { guard, outbound: ctx.outbound.clone(), docs: ctx.downstream_url.clone() };
//!     Router::new().route("/docs/{id}", get(read)).with_state(state)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let spec = Spec::builder()
//!     .issuer("https://auth.example")
//!     .audience("docs-api")
//!     .principal(Principal::new("alice").scope("docs:read").owns(["doc-a1"]))
//!     .principal(Principal::new("bob").scope("docs:read").owns(["doc-b1"]))
//!     .endpoint(Endpoint::get("read", "/docs/{resource}").scope("docs:read").capability("GET /docs/{id}"))
//!     .downstream("/docs/{id}")
//!     .build()
//!     .expect("a valid spec");
//! let report = Campaign::new(spec).cases(200).seed(7).run(app).await.expect("the campaign runs");
//! // Every forged or overscoped token refused as RFC 6750 says, no other tenant's document
//! // served, nothing echoed, nothing crashed: or the test fails with the shrunk case.
//! confab::testing::assert_holds(&report);
//! # }
//! ```
//!
//! A flawed service fails the test with the shrunk case, what was observed, and the finding's
//! fingerprint; the `examples/axum_tool_call.rs` example shows a service with a model tool
//! call, tested both ways.

use crate::generators::case::case_recipe;
use crate::harness::{self, Options, Session};
use crate::oracle::Severity;
use crate::report::Gate;
use proptest::strategy::{BoxedStrategy, Strategy};
use proptest::test_runner::TestCaseError;

pub use crate::generators::case::CaseRecipe;
pub use crate::harness::{CampaignError, Exchange};
pub use crate::spec::{Endpoint, Limits, Principal, Spec, SpecBuilder};
pub use crate::triage::{Finding, Report};
pub use confab_target::{
    BuildService, DOWNSTREAM_URL, MODEL_BASE_URL, Outbound, OutboundError, TargetContext,
    TargetService,
};
pub use tokio_util::sync::CancellationToken;

/// What confab can test in-process: any cloneable `tower::Service` over HTTP requests whose
/// response converts into one (an axum `Router`, a `MethodRouter`, a `ServiceBuilder` stack).
pub trait Service:
    tower::Service<
        axum::http::Request<axum::body::Body>,
        Response: axum::response::IntoResponse,
        Error: std::fmt::Display,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Service for S where
    S: tower::Service<
            axum::http::Request<axum::body::Body>,
            Response: axum::response::IntoResponse,
            Error: std::fmt::Display,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Wraps a service builder as the campaign's target.
fn service_target<F, S>(build: F) -> BuildService
where
    F: FnOnce(&TargetContext) -> S + Send + 'static,
    S: Service,
{
    Box::new(move |ctx| Ok(TargetService::new(build(&ctx))))
}

/// An in-process campaign: `cases` generated cases against the service, each checked against
/// every invariant; findings grouped and shrunk as `confab scan` does.
#[must_use]
pub struct Campaign {
    spec: Spec,
    options: Options,
}

impl Campaign {
    /// 256 cases, seed `CONFAB_SEED` (or 0), 4 cases at a time.
    pub fn new(spec: Spec) -> Campaign {
        let seed = seed_from_env();
        Campaign {
            spec,
            options: Options {
                cases: 256,
                seed,
                concurrency: 4,
                shrink_budget: 8,
                ..Options::default()
            },
        }
    }

    /// How many generated cases (after the baselines).
    pub fn cases(mut self, cases: u64) -> Campaign {
        self.options.cases = cases;
        self
    }

    /// The seed: the same seed runs the same cases.
    pub fn seed(mut self, seed: u64) -> Campaign {
        self.options.seed = seed;
        self
    }

    /// Cases in flight at once.
    pub fn concurrency(mut self, concurrency: usize) -> Campaign {
        self.options.concurrency = concurrency.max(1);
        self
    }

    /// Only these endpoints (by name).
    pub fn endpoints<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Campaign {
        self.options.endpoints = names.into_iter().map(Into::into).collect();
        self
    }

    /// Re-runs spent shrinking each finding's example.
    pub fn shrink_budget(mut self, budget: u32) -> Campaign {
        self.options.shrink_budget = budget;
        self
    }

    /// Stops the campaign when `token` is cancelled (it then ends with
    /// [`CampaignError::Interrupted`], everything it started stopped). Without one a campaign
    /// runs to its end: confab never installs a signal handler in your process.
    pub fn cancel_on(mut self, token: CancellationToken) -> Campaign {
        self.options.cancel = Some(token);
        self
    }

    /// Builds the service with `build` and runs the campaign against it.
    pub async fn run<F, S>(self, build: F) -> Result<Report, CampaignError>
    where
        F: FnOnce(&TargetContext) -> S + Send + 'static,
        S: Service,
    {
        harness::run_called(self.spec, self.options, service_target(build)).await
    }

    /// [`Campaign::run`] for a plain `#[test]`: runs on a runtime of its own.
    pub fn run_blocking<F, S>(self, build: F) -> Result<Report, CampaignError>
    where
        F: FnOnce(&TargetContext) -> S + Send + 'static,
        S: Service,
    {
        runtime()?.block_on(self.run(build))
    }
}

/// `CONFAB_SEED`, or 0: how a failure's report says to rerun the same cases.
fn seed_from_env() -> u64 {
    std::env::var("CONFAB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn runtime() -> Result<tokio::runtime::Runtime, CampaignError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CampaignError::Bind {
            what: "async runtime",
            source,
        })
}

/// Panics with the report (every finding with its shrunk example) unless it has no finding
/// at all.
#[track_caller]
pub fn assert_holds(report: &Report) {
    assert_holds_at(report, Severity::Low);
}

/// Panics with the report unless it has no finding at or above `fail_on`.
#[track_caller]
pub fn assert_holds_at(report: &Report, fail_on: Severity) {
    let gate = Gate {
        fail_on,
        ..Gate::default()
    };
    if !gate.passes(report) {
        panic!(
            "confab found what the service must not do (rerun with CONFAB_SEED={}):\n{}",
            report.stats.seed,
            report.render_text_gated(true, &gate)
        );
    }
}

/// The service kept running for `proptest!`: each [`Harness::check`] runs one case in-process
/// and checks it against every invariant. Use it from a plain `#[test]` (it runs its own
/// runtime). Failures shrink like any proptest failure and persist in `proptest-regressions/`.
///
/// ```
/// use axum::{Router, routing::get};
/// use confab::generators::token::TokenFamily;
/// use confab::spec::{Endpoint, Principal, Spec};
/// use confab::testing::{CaseRecipe, Harness, TargetContext};
///
/// // A service that never looks at the token.
/// fn careless(_: &TargetContext) -> Router {
///     Router::new().route("/status/{id}", get(|| async { "all good" }))
/// }
///
/// let spec = Spec::builder()
///     .principal(Principal::new("alice").scope("status:read").owns(["job-1"]))
///     .endpoint(Endpoint::get("status", "/status/{resource}").scope("status:read"))
///     .downstream("/jobs/{id}")
///     .build()
///     .expect("a valid spec");
/// let harness = Harness::new(spec, careless).expect("it serves valid requests");
///
/// // One hand-made case: an expired token must be refused.
/// let mut expired = CaseRecipe::baseline(0, 0);
/// expired.token.family = TokenFamily::Expired;
/// let failure = harness.check(&expired).expect_err("an expired token is accepted");
/// assert!(failure.to_string().contains("accepted_expired"));
///
/// // The same check over generated cases, composed with proptest as usual.
/// fn property(harness: &Harness) {
///     proptest::proptest!(|(case in harness.cases())| {
///         harness.check(&case)?;
///     });
/// }
/// # let _ = property;
/// ```
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    session: Session,
    fail_on: Severity,
}

impl Harness {
    /// Builds the service and checks that it serves valid requests (each principal on each
    /// endpoint its scope covers); a service that refuses them all is misconfigured.
    pub fn new<F, S>(spec: Spec, build: F) -> Result<Harness, CampaignError>
    where
        F: FnOnce(&TargetContext) -> S + Send + 'static,
        S: Service,
    {
        let runtime = runtime()?;
        let seed = seed_from_env();
        let session = runtime.block_on(Session::start(spec, seed, service_target(build)))?;
        Ok(Harness {
            runtime,
            session,
            fail_on: Severity::Low,
        })
    }

    /// Findings below this severity do not fail [`Harness::check`] (default: all fail).
    pub fn fail_on(mut self, severity: Severity) -> Harness {
        self.fail_on = severity;
        self
    }

    /// Every kind of case, on every endpoint: tokens of all 49 families, hostile prompts,
    /// fabricated model outputs, mutated bodies. Compose it with your own strategies.
    pub fn cases(&self) -> BoxedStrategy<CaseRecipe> {
        case_recipe().boxed()
    }

    /// Cases on one endpoint only.
    pub fn cases_on(&self, endpoint: &str) -> Result<BoxedStrategy<CaseRecipe>, CampaignError> {
        let index = self
            .session
            .spec()
            .endpoints
            .iter()
            .position(|e| e.name == endpoint)
            .ok_or_else(|| CampaignError::UnknownEndpoint(endpoint.to_owned()))?;
        let index = index as u32;
        Ok(case_recipe()
            .prop_map(move |mut c| {
                c.endpoint = index;
                c
            })
            .boxed())
    }

    /// Runs one case; returns what happened and what it broke.
    pub fn run(&self, case: &CaseRecipe) -> Exchange {
        self.runtime.block_on(self.session.run_case(case))
    }

    /// Runs one case and fails (for `proptest!`, with the readable report) if it broke an
    /// invariant at or above the harness's severity.
    pub fn check(&self, case: &CaseRecipe) -> Result<Exchange, TestCaseError> {
        let ex = self.run(case);
        let report = self.session.report(&ex);
        let gate = Gate {
            fail_on: self.fail_on,
            ..Gate::default()
        };
        if gate.passes(&report) {
            Ok(ex)
        } else {
            Err(TestCaseError::fail(report.render_text_gated(true, &gate)))
        }
    }

    /// One exchange as a report (a finding per violation).
    pub fn report(&self, ex: &Exchange) -> Report {
        self.session.report(ex)
    }
}
