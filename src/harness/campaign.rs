//! A campaign: start the sink, the fake model and the target; check that valid requests are
//! served; run the cases concurrently; check every exchange with the oracle; shrink and group
//! what fails; stop everything that was started, whatever happens.

use super::fake_llm::{FakeLlm, Script};
use super::sink::{Resource, Sink, SinkCase};
use super::target::{
    CaseMaterial, LogFlush, SharedLog, TargetError, TargetProcess, free_port, wait_ready,
};
use super::upstream::Upstream;
use crate::generators::case::{CasePlan, CaseRecipe, CaseWorld, nth_case};
use crate::generators::output::OutputContext;
use crate::generators::token::MintContext;
use crate::guard::{Authenticated, Guard, Rejection, ScopeSet, Secret, unix_now};
use crate::observation::Observation;
use crate::oracle::{self, CaseFacts, RunFacts, Violation};
use crate::report::{Example, Finding, Report, Reproduce, Stats};
use crate::spec::{Spec, SpecError};
use axum::body::Body;
use axum::http::{Request, Response};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Called after each case with (cases done, cases planned, violations so far).
pub type Progress = Arc<dyn Fn(u64, u64, u64) + Send + Sync>;

/// How to run a campaign.
#[derive(Clone)]
pub struct Options {
    /// Cases after the baselines (the budget).
    pub cases: u64,
    pub seed: u64,
    pub concurrency: usize,
    /// Only these endpoints (by name); empty for all.
    pub endpoints: Vec<String>,
    /// Run only the cases with `index % n == i`.
    pub shard: Option<(u64, u64)>,
    /// Where replay files go; `None` writes none.
    pub replay_dir: Option<PathBuf>,
    /// Cap on re-runs spent shrinking each finding.
    pub shrink_budget: u32,
    pub progress: Option<Progress>,
    /// Run exactly these cases (id, recipe) instead of generating them (replay).
    pub explicit: Vec<(u64, CaseRecipe)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: 200,
            seed: 0,
            concurrency: 4,
            endpoints: Vec::new(),
            shard: None,
            replay_dir: None,
            shrink_budget: 12,
            progress: None,
            explicit: Vec::new(),
        }
    }
}

/// What a target built inside confab is handed: the filled-in `[target.env]`, a log whose
/// lines reach the oracle as a process's stdout would, and the client through which it must
/// reach the model and the downstream API.
pub struct TargetContext {
    /// `[target.env]` with its placeholders filled in (empty for a spec built in Rust).
    pub env: BTreeMap<String, String>,
    /// Where the target's log lines go; the oracle reads them (ECHO in logs).
    pub log: SharedLog,
    /// The client for the model and the downstream: in-process or HTTP.
    pub upstream: Upstream,
    /// The model's base URL, ending in `/v1` (`{llm_base_url}`).
    pub llm_base_url: String,
    /// The key the model expects (`{llm_api_key}`); the oracle watches for it leaking.
    pub llm_api_key: Secret,
    /// The downstream API's base URL (`{downstream_url}`).
    pub downstream_url: String,
    /// `[auth]` with the run's generated secret filled in: how the service must verify tokens.
    pub auth: crate::guard::AuthConfig,
    /// The folder `[auth]` key files are read from.
    pub base_dir: PathBuf,
}

impl TargetContext {
    /// A reference guard for `[auth]`: the verifier a Rust service can put in front of its
    /// handlers.
    pub fn guard(&self) -> Result<Guard, crate::guard::ConfigError> {
        Guard::from_config(&self.auth, &self.base_dir)
    }

    /// A log writer for the service (e.g. for `tracing_subscriber`'s `with_writer`): its
    /// lines reach the oracle.
    pub fn log_writer(&self) -> super::target::LogWriter {
        super::target::LogWriter::new(self.log.clone())
    }

    /// A `[target.env]` variable, or an error naming it.
    pub fn var(&self, name: &str) -> Result<&str, String> {
        self.env
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("{name} is not in [target.env]"))
    }
}

/// A target that runs inside confab (the embedded reference target): given its context, it
/// returns the router to serve on a loopback port.
pub type InProcessTarget = Box<dyn FnOnce(TargetContext) -> Result<axum::Router, String> + Send>;

/// A target called as a function, without a socket: given its context, it returns the service.
pub type ServiceTarget = Box<dyn FnOnce(TargetContext) -> Result<TargetService, String> + Send>;

type ServiceCall =
    dyn Fn(Request<Body>) -> BoxFuture<'static, Result<Response<Body>, String>> + Send + Sync;

/// Any `tower::Service` over HTTP requests (an axum `Router` is one), boxed for campaigns.
#[derive(Clone)]
pub struct TargetService(Arc<ServiceCall>);

impl TargetService {
    pub fn new<S>(service: S) -> TargetService
    where
        S: tower::Service<Request<Body>> + Clone + Send + 'static,
        S::Response: axum::response::IntoResponse,
        S::Error: std::fmt::Display,
        S::Future: Send + 'static,
    {
        use tower::ServiceExt;
        // A Mutex makes any Send service shareable; it is held only to clone the service.
        let service = std::sync::Mutex::new(service);
        TargetService(Arc::new(move |req| {
            let svc = super::lock(&service).clone();
            Box::pin(async move {
                svc.oneshot(req)
                    .await
                    .map(axum::response::IntoResponse::into_response)
                    .map_err(|e| e.to_string())
            })
        }))
    }

    async fn call(&self, req: Request<Body>) -> Result<Response<Body>, String> {
        (self.0)(req).await
    }
}

impl From<axum::Router> for TargetService {
    fn from(router: axum::Router) -> TargetService {
        TargetService::new(router)
    }
}

/// How the campaign reaches the target.
enum Transport {
    /// Over loopback HTTP.
    Http {
        client: reqwest::Client,
        base_url: String,
    },
    /// As a function call.
    Service(TargetService),
}

/// Where the target comes from.
enum Mode {
    /// `[target]`: a command confab starts, or a target already running.
    Process,
    /// Built inside confab and served on a loopback port.
    Served(InProcessTarget),
    /// Built inside confab and called without a socket.
    Direct(ServiceTarget),
}

/// Why a campaign could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("cannot start confab's {what} on loopback: {source}")]
    Bind {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the spec has no {0}; `confab scan` needs it (see README: writing a spec)")]
    Missing(&'static str),
    #[error("--endpoint {0:?} is not an endpoint of the spec")]
    UnknownEndpoint(String),
    #[error(
        "the target refused every valid request ({tried} tried; first: {first}). \
         Check that [auth] matches how the target verifies tokens (alg, secret or keys, iss, aud) \
         and that [[principal]] scopes cover the endpoints' scopes."
    )]
    RefusesValid { tried: usize, first: String },
    #[error("interrupted")]
    Interrupted,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything that lives for the run.
struct Run {
    spec: Spec,
    guard: Guard,
    mint: Vec<MintContext>,
    sink: Sink,
    llm: FakeLlm,
    transport: Transport,
    /// What the report names as the target.
    target_label: String,
    log: Option<SharedLog>,
    /// A process's log, whose lines come through pumps and can arrive late.
    log_flush: Option<LogFlush>,
    llm_key: Secret,
    signing_secret: Option<Secret>,
    resources: Vec<(String, String, String)>,
    seed: u64,
    requests: AtomicU64,
    /// Run cases one at a time: the target hides the nonce and the token.
    serial: std::sync::atomic::AtomicBool,
    echo: oracle::EchoFinders,
}

/// The outcome of one case.
#[derive(Clone)]
pub struct Exchange {
    pub plan: CasePlan,
    pub verdict: Result<Authenticated, Rejection>,
    pub observation: Observation,
    pub violations: Vec<Violation>,
    pub curl: String,
}

/// Names the case, its status and what it broke; leaves out the tokens, the model key and the
/// bodies, which `Debug` output must never carry.
impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("case", &self.plan.id)
            .field("token_family", &self.plan.token.family)
            .field("status", &self.observation.status)
            .field(
                "violations",
                &self
                    .violations
                    .iter()
                    .map(|v| format!("{}/{}", v.invariant.id(), v.kind))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG failing leaves zeros: still unique enough per run for markers, and
    // secrets generated here are test values only.
    let _ = aws_lc_rs::rand::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a campaign against the spec's target (or `in_process`, served on a loopback port)
/// and returns the report.
pub async fn run(
    spec: Spec,
    options: Options,
    in_process: Option<InProcessTarget>,
) -> Result<Report, CampaignError> {
    let mode = match in_process {
        Some(build) => Mode::Served(build),
        None => Mode::Process,
    };
    execute(spec, options, mode).await
}

/// Runs a campaign against a service called as a function: no socket, no process. The fake
/// model and the sink are reached through the [`Upstream`] in the target's context.
pub async fn run_in_process(
    spec: Spec,
    options: Options,
    target: ServiceTarget,
) -> Result<Report, CampaignError> {
    execute(spec, options, Mode::Direct(target)).await
}

async fn execute(spec: Spec, options: Options, mode: Mode) -> Result<Report, CampaignError> {
    let started = Instant::now();
    let Started {
        run,
        mut process,
        served,
        target,
    } = start(spec, &options, mode).await?;
    let run = Arc::new(run);
    let outcome = async {
        if let (Transport::Http { client, base_url }, Some(target)) = (&run.transport, &target) {
            wait_ready(
                client,
                base_url,
                &target.ready,
                Duration::from_secs(target.startup_timeout_s),
                process.as_mut(),
            )
            .await?;
        }
        tokio::select! {
            r = campaign(&run, &options, started) => r,
            _ = tokio::signal::ctrl_c() => Err(CampaignError::Interrupted),
        }
    }
    .await;
    // Stop everything that was started, whatever the outcome.
    if let Some(p) = process {
        p.stop(Duration::from_secs(3)).await;
    }
    if let Some(s) = served {
        s.shutdown().await;
    }
    // Every case task has ended with the campaign; after an interrupt one may still hold
    // the run, and its servers then stop when it drops.
    if let Some(run) = Arc::into_inner(run) {
        run.llm.shutdown().await;
        run.sink.shutdown().await;
    }
    outcome
}

/// What [`start`] started: the run, and what must be stopped after it.
struct Started {
    run: Run,
    process: Option<TargetProcess>,
    served: Option<super::Server>,
    target: Option<crate::spec::Target>,
}

/// Checks the spec, makes the run's secrets, starts the sink, the fake model and the target.
async fn start(mut spec: Spec, options: &Options, mode: Mode) -> Result<Started, CampaignError> {
    let direct = matches!(mode, Mode::Direct(_));
    // An in-process service needs no [target]: it is handed over in code.
    let target = match (&spec.target, direct) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => return Err(CampaignError::Missing("[target]")),
    };
    let downstream = spec
        .downstream
        .clone()
        .ok_or(CampaignError::Missing("[downstream]"))?;
    if spec.endpoints.is_empty() {
        return Err(CampaignError::Missing("[[endpoint]]"));
    }
    if spec.principals.is_empty() {
        return Err(CampaignError::Missing("[[principal]]"));
    }
    for name in &options.endpoints {
        if !spec.endpoints.iter().any(|e| &e.name == name) {
            return Err(CampaignError::UnknownEndpoint(name.clone()));
        }
    }

    let jwt_secret = random_hex(32);
    spec.fill_jwt_secret(&Secret::from(jwt_secret.clone()));
    let guard = spec.guard()?;
    let llm_key = Secret::from(format!("sk-confab-{}", random_hex(16)));
    let signing_secret = spec
        .auth
        .signing_key(&spec.base_dir)
        .ok()
        .flatten()
        .and_then(|k| k.hmac_secret);

    // Mint contexts first: a spec without private material fails before anything starts.
    let mut mint = spec
        .endpoints
        .iter()
        .map(|e| spec.mint_context(ScopeSet::parse(&e.scope)))
        .collect::<Result<Vec<_>, SpecError>>()?;

    let run_tag = random_hex(4);
    let resources: Vec<Resource> = spec
        .principals
        .iter()
        .flat_map(|p| {
            p.owns.iter().map(|id| Resource {
                id: id.clone(),
                owner: p.name.clone(),
                marker: format!("cfbmark-{run_tag}-{}", random_hex(6)),
            })
        })
        .collect();
    let resource_facts = resources
        .iter()
        .map(|r| (r.id.clone(), r.owner.clone(), r.marker.clone()))
        .collect();
    let bind = |what: &'static str| move |source| CampaignError::Bind { what, source };
    let (sink, llm) = if direct {
        (
            Sink::in_process(&downstream.resource, resources),
            FakeLlm::in_process(llm_key.clone(), spec.limits.llm_calls_per_request),
        )
    } else {
        (
            Sink::start(&downstream.resource, resources)
                .await
                .map_err(bind("sink"))?,
            FakeLlm::start(llm_key.clone(), spec.limits.llm_calls_per_request)
                .await
                .map_err(bind("fake model"))?,
        )
    };
    let upstream = if direct {
        Upstream::in_process(llm.router(), sink.router())
    } else {
        Upstream::http().map_err(|e| CampaignError::Bind {
            what: "HTTP client",
            source: std::io::Error::other(e),
        })?
    };

    let port = if direct {
        0
    } else {
        free_port().map_err(bind("target port"))?
    };
    let fill = |s: &str| {
        s.replace("{port}", &port.to_string())
            .replace("{llm_base_url}", &llm.base_url())
            .replace("{llm_api_key}", &String::from_utf8_lossy(llm_key.expose()))
            .replace("{downstream_url}", &sink.base_url())
            .replace("{jwt_secret}", &jwt_secret)
    };
    let mut env: BTreeMap<String, String> = target
        .iter()
        .flat_map(|t| t.env.iter())
        .map(|(k, v)| (k.clone(), fill(v)))
        .collect();
    if !direct {
        // Defense in depth: a target that follows some URL confab did not rewrite still
        // only reaches the sink, used as its HTTP proxy.
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
            env.entry(var.to_owned()).or_insert_with(|| sink.base_url());
        }
        for var in ["NO_PROXY", "no_proxy"] {
            env.entry(var.to_owned())
                .or_insert_with(|| "127.0.0.1,localhost,::1".to_owned());
        }
    }

    let mut process = None;
    let mut served = None;
    let built_log = SharedLog::default();
    let context = TargetContext {
        env,
        log: built_log.clone(),
        upstream,
        llm_base_url: llm.base_url(),
        llm_api_key: llm_key.clone(),
        downstream_url: sink.base_url(),
        auth: spec.auth.clone(),
        base_dir: spec.base_dir.clone(),
    };
    let build_error = |e: String| CampaignError::Bind {
        what: "in-process target",
        source: std::io::Error::other(e),
    };
    let mut log_flush = None;
    let (transport, target_label, log) = match mode {
        Mode::Direct(build) => (
            Transport::Service(build(context).map_err(build_error)?),
            IN_PROCESS_LABEL.to_owned(),
            Some(built_log),
        ),
        Mode::Served(build) => {
            let router = build(context).map_err(build_error)?;
            let server = super::Server::start(router)
                .await
                .map_err(bind("in-process target"))?;
            let url = format!("http://{}", server.addr());
            served = Some(server);
            (http_transport(&url)?, url, Some(built_log))
        }
        Mode::Process => {
            let target = target.as_ref().ok_or(CampaignError::Missing("[target]"))?;
            if let Some(cmd) = &target.command {
                let exe = std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "confab".to_owned());
                let cmd: Vec<String> = cmd
                    .iter()
                    .map(|c| fill(c).replace("{confab}", &exe))
                    .collect();
                process = Some(TargetProcess::spawn(&cmd, &context.env)?);
            }
            let url = fill(&target.base_url);
            let log = process.as_ref().map(|p: &TargetProcess| p.log.clone());
            log_flush = process.as_ref().map(TargetProcess::log_flush);
            (http_transport(&url)?, url, log)
        }
    };

    for m in &mut mint {
        m.attacker_base = format!("{}/jwks", sink.attacker_url());
    }
    let run = Run {
        spec,
        guard,
        mint,
        sink,
        llm,
        transport,
        target_label,
        log,
        log_flush,
        llm_key,
        signing_secret,
        resources: resource_facts,
        seed: options.seed,
        requests: AtomicU64::new(0),
        serial: std::sync::atomic::AtomicBool::new(false),
        echo: oracle::EchoFinders::default(),
    };
    Ok(Started {
        run,
        process,
        served,
        target,
    })
}

/// What the report names as the target of an in-process campaign.
pub const IN_PROCESS_LABEL: &str = "in-process service";

fn http_transport(base_url: &str) -> Result<Transport, CampaignError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CampaignError::Bind {
            what: "HTTP client",
            source: std::io::Error::other(e),
        })?;
    Ok(Transport::Http {
        client,
        base_url: base_url.to_owned(),
    })
}

/// The cases a campaign runs, in order: `(case id, recipe)` for the ids of this shard, each
/// aimed at one of the selected endpoints. A function of the spec and the options alone, so
/// `--dry-run` and sharded runs see exactly what the campaign will run.
pub fn planned(spec: &Spec, options: &Options) -> Vec<(u64, CaseRecipe)> {
    plan(spec, options).collect()
}

/// How many cases [`planned`] holds, without generating them.
pub fn planned_count(spec: &Spec, options: &Options) -> u64 {
    plan(spec, options).len() as u64
}

/// [`planned`] one case at a time, with the number of cases: a campaign of a million cases
/// never holds a million recipes.
fn plan<'a>(
    spec: &Spec,
    options: &'a Options,
) -> impl ExactSizeIterator<Item = (u64, CaseRecipe)> + 'a {
    let endpoints = selected_endpoints(spec, options);
    let explicit = (!options.explicit.is_empty()).then(|| options.explicit.clone());
    let in_shard = move |i: &u64| options.shard.is_none_or(|(k, n)| n > 0 && i % n == k);
    let count = match &explicit {
        Some(e) => e.len() as u64,
        None if endpoints.is_empty() => 0,
        None => match options.shard {
            None => options.cases,
            Some((k, n)) if n > 0 && k < n => options.cases / n + u64::from(options.cases % n > k),
            Some(_) => 0,
        },
    };
    let generated = (0..options.cases).filter(in_shard).map(move |i| {
        let mut recipe = nth_case(options.seed, i);
        recipe.endpoint = endpoints[recipe.endpoint as usize % endpoints.len()] as u8;
        (i, recipe)
    });
    let cases: Box<dyn Iterator<Item = (u64, CaseRecipe)> + 'a> = match explicit {
        Some(e) => Box::new(e.into_iter()),
        None if count == 0 => Box::new(std::iter::empty()),
        None => Box::new(generated),
    };
    Counted { cases, left: count }
}

/// An iterator that knows how many items it has left.
struct Counted<I> {
    cases: I,
    left: u64,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.cases.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.left).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

fn selected_endpoints(spec: &Spec, options: &Options) -> Vec<usize> {
    spec.endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| options.endpoints.is_empty() || options.endpoints.contains(&e.name))
        .map(|(i, _)| i)
        .collect()
}

async fn campaign(
    run: &Arc<Run>,
    options: &Options,
    started: Instant,
) -> Result<Report, CampaignError> {
    let endpoints = selected_endpoints(&run.spec, options);
    let mut agg = Aggregate::default();
    baselines(run, &endpoints, &mut agg).await?;
    let mut planned = plan(&run.spec, options);
    let total = planned.len() as u64;
    let found = AtomicU64::new(0);
    // The first cases run one at a time: if the target's calls can then only be tied to a
    // case because it was the only one running (no token, no nonce in them), the whole run
    // stays one at a time; otherwise it runs concurrently, in batches, and falls back the
    // moment a call cannot be attributed.
    const WARM_UP: usize = 24;
    let mut serial = run.serial.load(Ordering::Relaxed);
    let mut next = 0;
    // Each batch settles while the next one runs: a process's lines written just after its
    // last answers (an access log, say) then have a whole batch to arrive, and nobody waits.
    let mut settling: Vec<OpenCase> = Vec::new();
    let mut cases_done = 0u64;
    loop {
        let guessed_before = run.llm.guessed_attributions() + run.sink.guessed_attributions();
        let lost_before =
            !run.llm.take_unattributed().is_empty() | !run.sink.take_unattributed().is_empty();
        serial |= lost_before;
        let concurrency = if serial || next < WARM_UP {
            1
        } else {
            options.concurrency.max(1)
        };
        let batch_len = if concurrency == 1 && next < WARM_UP {
            WARM_UP - next
        } else {
            concurrency * 8
        };
        let batch: Vec<(u64, CaseRecipe)> = planned.by_ref().take(batch_len).collect();
        if batch.is_empty() {
            break;
        }
        next += batch.len();
        let parallel = multi_threaded();
        let alone = concurrency == 1;
        let mut stream = futures_util::stream::iter(batch.into_iter().map(|(i, recipe)| {
            let run = Arc::clone(run);
            async move {
                if !parallel {
                    return open_case(&run, &recipe, i, alone).await;
                }
                // Each case on a task of its own: minting and checking use every core.
                match tokio::spawn(async move { open_case(&run, &recipe, i, alone).await }).await {
                    Ok(ex) => ex,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
        }))
        .buffer_unordered(concurrency);
        let mut done = Vec::new();
        while let Some(case) = stream.next().await {
            let n = case.exchange.violations.len() as u64;
            let f = found.fetch_add(n, Ordering::Relaxed) + n;
            done.push(case);
            cases_done += 1;
            if let Some(progress) = &options.progress {
                progress(cases_done, total, f);
            }
        }
        drop(stream);
        let previous = std::mem::replace(&mut settling, done);
        settle_into(run, &mut agg, &found, previous, Duration::ZERO).await;
        if concurrency == 1
            && run.llm.guessed_attributions() + run.sink.guessed_attributions() > guessed_before
        {
            serial = true;
        }
    }
    // The last batch has no next one to settle behind.
    wait_for_quiet_log(run).await;
    settle_into(run, &mut agg, &found, settling, Duration::ZERO).await;
    run.serial.store(serial, Ordering::Relaxed);

    let mut report = group(run, agg, options).await?;
    report.stats.duration_ms = started.elapsed().as_millis() as u64;
    report.stats.requests = run.requests.load(Ordering::Relaxed);
    report.stats.seed = options.seed;
    report.stats.one_at_a_time = run.serial.load(Ordering::Relaxed);
    report.sort();
    Ok(report)
}

/// Baselines: every principal on every endpoint its scope covers, one at a time; a target that
/// serves none of them is misconfigured (or refuses everything), and the run stops. They also
/// tell whether the target's calls can be attributed to concurrent cases. Returns how many ran.
async fn baselines(
    run: &Run,
    endpoints: &[usize],
    agg: &mut Aggregate,
) -> Result<u64, CampaignError> {
    let mut tried = 0;
    let mut served = 0;
    let mut first_refusal = None;
    let mut opened = Vec::new();
    for &e in endpoints {
        let required = ScopeSet::parse(&run.spec.endpoints[e].scope);
        for (p, principal) in run.spec.principals.iter().enumerate() {
            if !ScopeSet::parse(&principal.scope).includes(&required) {
                continue;
            }
            let recipe = CaseRecipe::baseline(e as u8, p as u8);
            let case = open_case(run, &recipe, u64::MAX - tried, true).await;
            let ex = &case.exchange;
            tried += 1;
            let ok = ex
                .observation
                .status
                .is_some_and(|s| (200..300).contains(&s));
            if ok {
                served += 1;
            } else if first_refusal.is_none() {
                first_refusal = Some(format!(
                    "{} {} as {} → {}",
                    run.spec.endpoints[e].method,
                    run.spec.endpoints[e].name,
                    principal.name,
                    ex.observation.status.map_or_else(
                        || {
                            format!(
                                "no response ({})",
                                ex.observation
                                    .transport_error
                                    .as_deref()
                                    .unwrap_or("connection closed")
                            )
                        },
                        |s| s.to_string()
                    )
                ));
            }
            opened.push(case);
        }
    }
    wait_for_quiet_log(run).await;
    settle(run, &mut opened, Duration::ZERO).await;
    for case in opened {
        agg.add(run, case.exchange);
    }
    if tried > 0 && served == 0 {
        return Err(CampaignError::RefusesValid {
            tried: tried as usize,
            first: first_refusal.unwrap_or_default(),
        });
    }
    Ok(tried)
}

/// A case checked, whose late log lines (a process's) may still come.
struct OpenCase {
    exchange: Exchange,
    /// Its share of the log, still collecting late lines.
    ticket: Option<u64>,
}

/// Runs one case and checks it, late log lines included.
async fn run_case(run: &Run, recipe: &CaseRecipe, id: u64) -> Exchange {
    let mut case = [open_case(run, recipe, id, true).await];
    settle(run, &mut case, LATE_LINE_GRACE).await;
    let [case] = case;
    case.exchange
}

/// How long a process's lines written just after its answer (an access log, say) are waited
/// for after a case run alone (shrinking, a property test's session).
const LATE_LINE_GRACE: Duration = Duration::from_millis(2);

/// After the baselines and at the end of a campaign, a process's log counts as quiet when no
/// line came for this long (a Python target's threads take turns every 5 ms).
const QUIET: Duration = Duration::from_millis(10);
const MAX_QUIET_WAIT: Duration = Duration::from_millis(200);

/// Lines a process target has logged so far (only its lines can come late).
fn log_lines(run: &Run) -> u64 {
    match (&run.log, &run.log_flush) {
        (Some(l), Some(_)) => super::lock(l).pushed(),
        _ => 0,
    }
}

/// Waits until a process has logged nothing for [`QUIET`] (at most [`MAX_QUIET_WAIT`]): then
/// the lines it wrote just after its last answers are in.
async fn wait_for_quiet_log(run: &Run) {
    if run.log_flush.is_none() {
        return;
    }
    let (mut seen, waited) = (log_lines(run), Instant::now());
    while waited.elapsed() < MAX_QUIET_WAIT {
        tokio::time::sleep(QUIET).await;
        let now = log_lines(run);
        if now == seen {
            break;
        }
        seen = now;
    }
}

/// Gives each case the log lines carrying its material that arrived after its response (a
/// process's, through the pumps), after `grace` and what the pumps hold, and checks again
/// the cases that got some.
async fn settle(run: &Run, cases: &mut [OpenCase], grace: Duration) {
    let (Some(log), Some(flush)) = (&run.log, &run.log_flush) else {
        return;
    };
    if !grace.is_zero() {
        tokio::time::sleep(grace).await;
    }
    flush.flush().await;
    for case in cases {
        let Some(ticket) = case.ticket.take() else {
            continue;
        };
        let late = super::lock(log).settle(ticket);
        if !late.is_empty() {
            let ex = &mut case.exchange;
            ex.observation.logs.extend(late);
            ex.violations = judge(run, &ex.plan, &ex.verdict, &ex.observation);
        }
    }
}

/// [`settle`]s cases and counts them in the findings.
async fn settle_into(
    run: &Run,
    agg: &mut Aggregate,
    found: &AtomicU64,
    mut cases: Vec<OpenCase>,
    grace: Duration,
) {
    let before: usize = cases.iter().map(|c| c.exchange.violations.len()).sum();
    settle(run, &mut cases, grace).await;
    let after: usize = cases.iter().map(|c| c.exchange.violations.len()).sum();
    found.fetch_add(after.saturating_sub(before) as u64, Ordering::Relaxed);
    for case in cases {
        agg.add(run, case.exchange);
    }
}

/// Runs one case and checks it; its log lines are those that arrived until its response
/// was in (see [`settle`]). `alone`: no other case is in flight.
async fn open_case(run: &Run, recipe: &CaseRecipe, id: u64, alone: bool) -> OpenCase {
    let now = unix_now();
    let world = CaseWorld {
        endpoints: &run.spec.endpoints,
        principals: &run.spec.principals,
        mint: &run.mint,
        attacker_base_url: run.sink.attacker_url(),
        seed: run.seed,
        now,
    };
    let plan = recipe.plan(id, &world);
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let principal = &run.spec.principals[plan.principal];

    run.sink.register(
        id,
        SinkCase {
            token: plan.token.token.clone(),
            nonce: plan.nonce.clone(),
            document_text: plan.document_text.clone(),
        },
    );
    let mut watched: Vec<String> = vec![String::from_utf8_lossy(run.llm_key.expose()).into_owned()];
    watched.extend(plan.token.token.clone());
    if let Some(s) = &run.signing_secret {
        watched.push(String::from_utf8_lossy(s.expose()).into_owned());
    }
    watched.extend(
        run.resources
            .iter()
            .filter(|(_, owner, _)| owner != &principal.name)
            .map(|(_, _, marker)| marker.clone()),
    );
    run.llm.register(
        &plan.nonce,
        Script {
            recipe: recipe.output.clone(),
            base: OutputContext {
                own_ids: principal.owns.clone(),
                other_ids: run
                    .resources
                    .iter()
                    .filter(|(_, owner, _)| owner != &principal.name)
                    .map(|(id, _, _)| id.clone())
                    .collect(),
                tools: Vec::new(),
                attacker_base_url: run.sink.attacker_url(),
                loopback_ports: vec![run.sink.port()],
                sent: Default::default(),
                watched_secrets: watched,
                call_cap: run.spec.limits.llm_calls_per_request,
            },
            attacker_base_url: run.sink.attacker_url(),
            fail: recipe.model_fails,
        },
    );
    // The lines that carry the case's nonce or token are its own, whenever they arrive.
    let ticket = run
        .log
        .as_ref()
        .map(|l| super::lock(l).open(CaseMaterial::new(&plan.nonce, plan.token.token.as_deref())));

    let (observation_base, curl) = send(run, &plan).await;
    let (llm_calls, _outputs) = run.llm.take(&plan.nonce);
    let sink_requests = run.sink.take(id);
    let mut logs = Vec::new();
    if let (Some(log), Some(ticket)) = (&run.log, ticket) {
        // A process's lines written before it answered are read by now, once the pumps
        // have read their pipes dry. Only a case alone needs them now: a line without any
        // case's material is then its own; lines with material reach their case however late
        // (and with others in flight, such a line goes to the earliest open case anyway).
        if let Some(flush) = run.log_flush.as_ref().filter(|_| alone) {
            flush.flush().await;
        }
        logs = super::lock(log).close(ticket);
    }
    let observation = Observation {
        llm_calls,
        sink_requests,
        logs,
        ..observation_base
    };
    let required = ScopeSet::parse(&endpoint.scope);
    let verdict = run.guard.decide(&plan.token.header_bytes(), &required, now);
    let violations = judge(run, &plan, &verdict, &observation);
    OpenCase {
        exchange: Exchange {
            plan,
            verdict,
            observation,
            violations,
            curl,
        },
        // Only a process's closed cases keep collecting lines.
        ticket: ticket.filter(|_| run.log_flush.is_some()),
    }
}

/// Every invariant over one exchange (none for a request no client could send).
fn judge(
    run: &Run,
    plan: &CasePlan,
    verdict: &Result<Authenticated, Rejection>,
    observation: &Observation,
) -> Vec<Violation> {
    if observation.transport_error.as_deref() == Some(UNSENDABLE) {
        return Vec::new();
    }
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let principal = &run.spec.principals[plan.principal];
    let recipe = &plan.recipe;
    let facts = CaseFacts {
        endpoint_name: &endpoint.name,
        llm: endpoint.llm,
        capabilities: &endpoint.capabilities,
        token_family: plan.token.family,
        token: plan.token.token.as_deref(),
        principal: &principal.name,
        owned: &principal.owns,
        resource: &plan.resource,
        model_fails: recipe.model_fails,
        body_mutated: recipe.body != crate::generators::case::BodyMutation::Intact
            && endpoint.body.is_some(),
    };
    let run_facts = RunFacts {
        llm_api_key: &run.llm_key,
        signing_secret: run.signing_secret.as_ref(),
        resources: &run.resources,
        llm_calls_per_request: run.spec.limits.llm_calls_per_request,
        max_tokens: run.spec.limits.max_tokens,
        upstream_prompt_bytes: run.spec.limits.upstream_prompt_bytes,
        echo: &run.echo,
    };
    oracle::check(&facts, verdict, observation, &run_facts)
}

/// Marks a case whose headers no HTTP client can send (a line break inside a value).
const UNSENDABLE: &str = "header value cannot be sent over HTTP";

/// Largest response body read from the target.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Sends the case's request; returns what came back and a `curl` line for it.
async fn send(run: &Run, plan: &CasePlan) -> (Observation, String) {
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let mut path = endpoint.render_path(&plan.resource);
    if let Some(t) = &plan.token.query_token {
        path.push_str(if path.contains('?') { "&" } else { "?" });
        path.push_str("access_token=");
        path.push_str(t);
    }
    let base = match &run.transport {
        Transport::Http { base_url, .. } => base_url.trim_end_matches('/'),
        Transport::Service(_) => IN_PROCESS_BASE,
    };
    let url = format!("{base}{path}");
    let mut curl = format!(
        "curl -i -X {} '{}'",
        endpoint.method,
        url.replace('\'', "'\\''")
    );
    let mut headers = axum::http::HeaderMap::new();
    for value in &plan.token.authorization {
        match axum::http::HeaderValue::from_str(value) {
            Ok(v) => {
                headers.append(axum::http::header::AUTHORIZATION, v);
                curl.push_str(&format!(
                    " -H 'Authorization: {}'",
                    value.replace('\'', "'\\''")
                ));
            }
            Err(_) => {
                return (
                    Observation {
                        transport_error: Some(UNSENDABLE.to_owned()),
                        ..Observation::default()
                    },
                    curl,
                );
            }
        }
    }
    let mut body = None;
    if let Some(b) = endpoint.render_body(&plan.prompt, &plan.resource) {
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        match plan.recipe.body.apply(&b) {
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                curl.push_str(&format!(
                    " -H 'Content-Type: application/json' --data-raw '{}'",
                    text.replace('\'', "'\\''")
                ));
                body = Some(bytes);
            }
            None => curl.push_str(" -H 'Content-Type: application/json'"),
        }
    }
    let method = axum::http::Method::from_bytes(endpoint.method.as_bytes())
        .unwrap_or(axum::http::Method::GET);
    let timeout = Duration::from_millis(run.spec.limits.request_timeout_ms);
    run.requests.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let mut obs = match &run.transport {
        Transport::Http { client, .. } => {
            send_http(client, method, &url, headers, body, timeout).await
        }
        Transport::Service(service) => {
            send_service(service, method, &url, headers, body, timeout).await
        }
    };
    obs.elapsed_ms = start.elapsed().as_millis() as u64;
    (obs, curl)
}

/// True on a multi-threaded runtime, where work spawned as tasks runs on every core; on one
/// thread a task only costs.
fn multi_threaded() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// The base URL requests to an in-process service are written against (in `curl` lines and
/// the `Host` header); nothing resolves it.
const IN_PROCESS_BASE: &str = "http://target.confab.invalid";
/// The `Host` of [`IN_PROCESS_BASE`].
const IN_PROCESS_HOST: &str = "target.confab.invalid";

async fn send_http(
    client: &reqwest::Client,
    method: axum::http::Method,
    url: &str,
    headers: axum::http::HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Observation {
    let mut req = client
        .request(method, url)
        .headers(headers)
        .timeout(timeout);
    if let Some(b) = body {
        req = req.body(b);
    }
    let mut obs = Observation::default();
    match req.send().await {
        Ok(resp) => {
            obs.status = Some(resp.status().as_u16());
            obs.response_headers = super::header_pairs(resp.headers());
            match resp.bytes().await {
                Ok(b) => obs.response_body = String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    obs.timed_out = e.is_timeout();
                    obs.transport_error = Some(e.to_string());
                }
            }
        }
        Err(e) => {
            obs.timed_out = e.is_timeout();
            obs.transport_error = Some(if e.is_connect() {
                "connection refused".to_owned()
            } else {
                e.to_string()
            });
        }
    }
    obs
}

/// Calls an in-process service the way [`send_http`] sends: the URL normalised as reqwest
/// would put it on the wire, a `Host` header, the same timeout. A panic in the service is
/// what a dropped connection is over HTTP: no response.
async fn send_service(
    service: &TargetService,
    method: axum::http::Method,
    url: &str,
    mut headers: axum::http::HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Observation {
    let mut obs = Observation::default();
    let uri = reqwest::Url::parse(url).ok().and_then(|u| {
        let mut pq = u.path().to_owned();
        if let Some(q) = u.query() {
            pq.push('?');
            pq.push_str(q);
        }
        pq.parse::<axum::http::Uri>().ok()
    });
    let Some(uri) = uri else {
        obs.transport_error = Some("invalid URL".to_owned());
        return obs;
    };
    super::upstream::as_on_the_wire(&mut headers);
    headers.insert(
        axum::http::header::HOST,
        axum::http::HeaderValue::from_static(IN_PROCESS_HOST),
    );
    if let Some(b) = &body {
        headers.insert(axum::http::header::CONTENT_LENGTH, b.len().into());
    }
    let mut req = Request::new(Body::from(body.unwrap_or_default()));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let service = service.clone();
    let call = async move {
        let resp = service.call(req).await?;
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        Ok::<_, String>((parts, bytes))
    };
    // On a multi-threaded runtime the call runs as its own task, so concurrent cases use
    // every core; on one thread (a property test's harness) a task would only cost. Either way
    // a panic is caught, and a call past the timeout is dropped, never left running.
    let outcome = if multi_threaded() {
        let mut task = tokio::spawn(call);
        let outcome = tokio::time::timeout(timeout, &mut task).await;
        if outcome.is_err() {
            task.abort();
        }
        outcome.map(|joined| joined.map_err(|e| e.is_panic()))
    } else {
        use futures_util::FutureExt;
        tokio::time::timeout(timeout, std::panic::AssertUnwindSafe(call).catch_unwind())
            .await
            .map(|caught| caught.map_err(|_| true))
    };
    match outcome {
        Err(_) => obs.timed_out = true,
        Ok(Err(panicked)) => {
            obs.transport_error = Some(if panicked {
                "the service panicked".to_owned()
            } else {
                "the service call was cancelled".to_owned()
            });
        }
        Ok(Ok(Err(e))) => obs.transport_error = Some(e),
        Ok(Ok(Ok((parts, bytes)))) => {
            obs.status = Some(parts.status.as_u16());
            obs.response_headers = super::header_pairs(&parts.headers);
            obs.response_body = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    obs
}

type GroupKey = (crate::oracle::Invariant, String, String);

/// Findings as they accumulate: per group a count and one example, the exchange with the
/// lowest case id (so the example does not depend on which concurrent case finished first).
/// Exchanges that open no group are dropped at once: memory grows with findings, not cases.
#[derive(Default)]
struct Aggregate {
    stats: Stats,
    groups: HashMap<GroupKey, (u64, Violation, Exchange)>,
}

impl Aggregate {
    fn add(&mut self, run: &Run, ex: Exchange) {
        self.stats.cases += 1;
        self.stats.model_calls += ex.observation.llm_calls.len() as u64;
        self.stats.downstream_requests += ex.observation.sink_requests.len() as u64;
        let endpoint = &run.spec.endpoints[ex.plan.endpoint].name;
        for v in &ex.violations {
            let key = (v.invariant, endpoint.clone(), v.kind.clone());
            match self.groups.get_mut(&key) {
                Some(g) => {
                    g.0 += 1;
                    if ex.plan.id < g.2.plan.id {
                        g.1 = v.clone();
                        g.2 = ex.clone();
                    }
                }
                None => {
                    self.groups.insert(key, (1, v.clone(), ex.clone()));
                }
            }
        }
    }
}

/// Groups violations into findings, shrinks each group's example, writes replay files.
async fn group(run: &Run, agg: Aggregate, options: &Options) -> Result<Report, CampaignError> {
    let Aggregate { stats, mut groups } = agg;
    let mut findings = Vec::new();
    let mut keys: Vec<GroupKey> = groups.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let Some((count, violation, example)) = groups.remove(&key) else {
            continue;
        };
        let (violation, example) = shrink(run, violation, example, options.shrink_budget).await;
        let fingerprint = format!("{}/{}/{}", key.0.id(), key.1, key.2);
        let replay = match &options.replay_dir {
            Some(dir) => Some(write_replay(run, dir, &fingerprint, &example)?),
            None => None,
        };
        findings.push(finding(
            run,
            key,
            count,
            violation,
            &example,
            fingerprint,
            replay,
        ));
    }
    Ok(Report {
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: run.target_label.clone(),
        spec: run.spec.origin.clone(),
        findings,
        stats,
    })
}

/// Tries simpler versions of the example; keeps each that still shows the same violation.
async fn shrink(
    run: &Run,
    violation: Violation,
    example: Exchange,
    budget: u32,
) -> (Violation, Exchange) {
    let (mut violation, mut example) = (violation, example);
    let mut spent = 0;
    'outer: while spent < budget {
        for simpler in example.plan.recipe.simplifications() {
            if spent >= budget {
                break 'outer;
            }
            spent += 1;
            let ex = run_case(run, &simpler, example.plan.id).await;
            if let Some(v) = ex
                .violations
                .iter()
                .find(|v| v.invariant == violation.invariant && v.kind == violation.kind)
            {
                violation = v.clone();
                example = ex;
                continue 'outer;
            }
        }
        break;
    }
    (violation, example)
}

fn finding(
    run: &Run,
    key: GroupKey,
    count: u64,
    violation: Violation,
    ex: &Exchange,
    fingerprint: String,
    replay: Option<String>,
) -> Finding {
    let world = CaseWorld {
        endpoints: &run.spec.endpoints,
        principals: &run.spec.principals,
        mint: &run.mint,
        attacker_base_url: run.sink.attacker_url(),
        seed: run.seed,
        now: 0,
    };
    let endpoint = &run.spec.endpoints[ex.plan.endpoint];
    let masker = masker(run);
    // Fails closed: text that cannot be masked is not shown.
    let mask = |text: &str| match &masker {
        Some(m) => m.scrub_str(text).0,
        None => "(not shown: confab could not mask it)".to_owned(),
    };
    // Masked whole, then cut: a cut first could leave half a secret unmasked.
    let excerpt: String = mask(&ex.observation.response_body)
        .chars()
        .take(400)
        .collect();
    let mask_json = |v: &serde_json::Value| {
        let text = mask(&v.to_string());
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    Finding {
        invariant: key.0,
        severity: violation.severity,
        cwe: key.0.cwe().iter().map(|s| s.to_string()).collect(),
        owasp: key.0.owasp().iter().map(|s| s.to_string()).collect(),
        endpoint: key.1,
        kind: key.2,
        observed: mask(&violation.observed),
        cases: count,
        fingerprint,
        example: Example {
            case: ex.plan.describe(&world),
            request: format!(
                "{} {}",
                endpoint.method,
                endpoint.render_path(&ex.plan.resource)
            ),
            model_output: ex
                .observation
                .llm_calls
                .iter()
                .map(|c| mask_json(&c.answer))
                .collect(),
            downstream: ex
                .observation
                .sink_requests
                .iter()
                .map(|r| mask(&format!("{} {}", r.request.method, r.request.uri)))
                .collect(),
            response_status: ex.observation.status,
            response_excerpt: excerpt,
        },
        reproduce: Reproduce {
            curl: ex.curl.clone(),
            replay,
        },
    }
}

/// Masks the run's own secrets (the model key, the signing secret) in what a report shows, as
/// the scrubber masks them: reports are shared, and a target that echoes a secret must not make
/// its report carry it. Tokens stay: they are the short-lived test tokens confab minted.
fn masker(run: &Run) -> Option<crate::guard::scrub::Scrubber> {
    use crate::guard::scrub::{ScrubConfig, ScrubberBuilder, SecretKind};
    let mut b = ScrubberBuilder::new().config(ScrubConfig::literals_only());
    b.secret(SecretKind::LlmApiKey, "llm_api_key", &run.llm_key)
        .ok()?;
    if let Some(s) = &run.signing_secret {
        b.secret(SecretKind::SigningKey, "signing_key", s).ok()?;
    }
    b.build().ok()
}

/// A replay file: enough to rerun one exchange against the same spec.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReplayFile {
    pub confab_version: String,
    pub spec: String,
    pub fingerprint: String,
    pub seed: u64,
    pub case_id: u64,
    pub recipe: CaseRecipe,
}

fn write_replay(
    run: &Run,
    dir: &std::path::Path,
    fingerprint: &str,
    ex: &Exchange,
) -> Result<String, CampaignError> {
    let name: String = fingerprint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.json"));
    let file = ReplayFile {
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        spec: run.spec.origin.clone(),
        fingerprint: fingerprint.to_owned(),
        seed: run.seed,
        case_id: ex.plan.id,
        recipe: ex.plan.recipe.clone(),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)
    };
    write().map_err(|source| CampaignError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path.display().to_string())
}

/// Reruns the case of a replay file against the spec's target; the report holds what it
/// shows now (baselines included).
pub async fn replay(
    spec: Spec,
    file: &ReplayFile,
    in_process: Option<InProcessTarget>,
) -> Result<Report, CampaignError> {
    let options = Options {
        cases: 0,
        seed: file.seed,
        concurrency: 1,
        shrink_budget: 0,
        explicit: vec![(file.case_id, file.recipe.clone())],
        ..Options::default()
    };
    run(spec, options, in_process).await
}

/// An in-process target kept running to check cases one at a time, as a property test
/// drives it: the fake model, the sink and the service stay up between cases.
pub struct Session {
    run: Run,
    next_id: AtomicU64,
}

impl Session {
    /// Builds the service and checks that it serves valid requests (the baselines).
    pub async fn start(
        spec: Spec,
        seed: u64,
        target: ServiceTarget,
    ) -> Result<Session, CampaignError> {
        let options = Options {
            seed,
            ..Options::default()
        };
        let Started { run, .. } = start(spec, &options, Mode::Direct(target)).await?;
        let endpoints: Vec<usize> = (0..run.spec.endpoints.len()).collect();
        baselines(&run, &endpoints, &mut Aggregate::default()).await?;
        Ok(Session {
            run,
            next_id: AtomicU64::new(0),
        })
    }

    /// The spec the session runs.
    pub fn spec(&self) -> &Spec {
        &self.run.spec
    }

    /// Runs one case and checks it against every invariant.
    pub async fn run_case(&self, recipe: &CaseRecipe) -> Exchange {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        run_case(&self.run, recipe, id).await
    }

    /// The oracle's verdict on an exchange `run_case` recorded, checked again:
    /// what `benches/oracle.rs` times, and a way to re-judge recorded exchanges after a change
    /// to the oracle.
    pub fn judge(&self, ex: &Exchange) -> Vec<Violation> {
        judge(&self.run, &ex.plan, &ex.verdict, &ex.observation)
    }

    /// One exchange as a report, a finding per violation: what a failing test prints.
    pub fn report(&self, ex: &Exchange) -> Report {
        let endpoint = &self.run.spec.endpoints[ex.plan.endpoint].name;
        let findings = ex
            .violations
            .iter()
            .map(|v| {
                let key = (v.invariant, endpoint.clone(), v.kind.clone());
                let fingerprint = format!("{}/{}/{}", key.0.id(), key.1, key.2);
                finding(&self.run, key, 1, v.clone(), ex, fingerprint, None)
            })
            .collect();
        let mut report = Report {
            confab_version: env!("CARGO_PKG_VERSION").to_owned(),
            target: self.run.target_label.clone(),
            spec: self.run.spec.origin.clone(),
            findings,
            stats: Stats {
                cases: 1,
                requests: 1,
                model_calls: ex.observation.llm_calls.len() as u64,
                downstream_requests: ex.observation.sink_requests.len() as u64,
                seed: self.run.seed,
                ..Stats::default()
            },
        };
        report.sort();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Endpoint, Principal};
    use std::io::Write;

    /// Logs each request's prompt (which carries the case's nonce) after a delay that differs
    /// per request, so that concurrent cases' lines interleave.
    fn echoing_service(ctx: TargetContext) -> Result<TargetService, String> {
        let log = Arc::new(std::sync::Mutex::new(ctx.log_writer()));
        let router = axum::Router::new().route(
            "/ask",
            axum::routing::post(move |body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let delay = body.iter().map(|b| u64::from(*b)).sum::<u64>() % 9;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let text = String::from_utf8_lossy(&body);
                    let _ = writeln!(super::super::lock(&log), "handled {text}");
                    "{}"
                }
            }),
        );
        Ok(TargetService::from(router))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_cases_each_get_exactly_their_own_lines() {
        let spec = Spec::builder()
            .principal(Principal::new("alice").scope("a").owns(["n-1"]))
            .endpoint(
                Endpoint::post("ask", "/ask")
                    .scope("a")
                    .body(serde_json::json!({"prompt": "{prompt}", "note": "{resource}"})),
            )
            .downstream("/n/{id}")
            .build()
            .expect("spec");
        let options = Options::default();
        let Started { run, .. } = start(spec, &options, Mode::Direct(Box::new(echoing_service)))
            .await
            .expect("started");
        let run = Arc::new(run);
        let cases: Vec<_> = (0..24u64)
            .map(|i| {
                let run = run.clone();
                let recipe = CaseRecipe::baseline(0, 0);
                tokio::spawn(async move { run_case(&run, &recipe, i).await })
            })
            .collect();
        for case in cases {
            let ex = case.await.expect("the case ran");
            let own: Vec<&String> = ex
                .observation
                .logs
                .iter()
                .filter(|l| l.contains(&ex.plan.nonce))
                .collect();
            assert_eq!(
                own.len(),
                1,
                "case {}: {:?}",
                ex.plan.id,
                ex.observation.logs
            );
            assert_eq!(ex.observation.logs.len(), 1, "only its own line");
        }
    }
}
