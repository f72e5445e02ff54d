//! Starting a run: check the spec, make the run's secrets, start the fake model, the sink and
//! the target (a process, or a Rust target served or called), and stop all of it afterwards.

use super::Server;
use super::campaign::campaign;
use super::fake_llm::FakeLlm;
use super::logs::{SharedLog, push_line};
use super::process::{LogFlush, TargetError, TargetProcess, free_port, wait_ready};
use super::sink::{Resource, Sink};
use crate::generators::token::MintContext;
use crate::guard::{Guard, ScopeSet, Secret};
use crate::oracle;
use crate::spec::{Spec, SpecError};
use crate::triage::Report;
use confab_target::{BuildRouter, BuildService, Outbound, TargetContext, TargetLog, TargetService};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::plan::Options;

/// How the campaign reaches the target.
pub(super) enum Transport {
    /// Over loopback HTTP.
    Http {
        client: reqwest::Client,
        base_url: String,
    },
    /// As a function call.
    Service(TargetService),
}

/// Where the target comes from.
pub(super) enum Mode {
    /// `[target]`: a command confab starts, or a target already running.
    Process,
    /// Built inside confab and served on a loopback port.
    Served(BuildRouter),
    /// Built inside confab and called without a socket.
    Direct(BuildService),
}

/// Why a campaign could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The spec is invalid, or lacks what this run needs; names the key and its line.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// The target could not be started, exited, or never answered its `ready` path.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// One of confab's own parts could not start: a loopback server (the fake model, the
    /// sink), a free port for the target, its HTTP client, the async runtime, or a Rust
    /// target's builder.
    #[error("cannot start confab's {what} on loopback: {source}")]
    Bind {
        /// Which part (`"fake model"`, `"HTTP client"`, `"in-process target"`, …).
        what: &'static str,
        /// The I/O error, or the builder's message wrapped as one.
        source: std::io::Error,
    },
    /// A section `confab scan` needs is missing from the spec.
    #[error("the spec has no {0}; `confab scan` needs it (see README: writing a spec)")]
    Missing(&'static str),
    /// `--endpoint` named an endpoint the spec does not have.
    #[error("--endpoint {0:?} is not an endpoint of the spec")]
    UnknownEndpoint(String),
    /// A login or a `[[setup]]` step failed: names the key (`setup[3]`, `principal[1].login`)
    /// and what the target answered (tokens and secrets masked).
    #[error("{key}: {message}")]
    Setup {
        /// The spec key of the failing step or login.
        key: String,
        /// What went wrong: a `{setup.NAME}` no step saves, an unknown principal, or the
        /// expected status and what the target answered (status and a body excerpt).
        message: String,
    },
    /// Every baseline was refused: the spec does not describe how the target authenticates.
    #[error(
        "the target refused every valid request ({tried} tried; first: {first}). \
         Check that [auth] matches how the target verifies tokens (alg, secret or keys, iss, aud), \
         that subject_claim names the claim it finds the caller by, that [auth.claims] and the \
         principals' claims hold what it requires (or give each principal a login, so its \
         tokens start from the app's own), and that [[principal]] scopes cover the endpoints' scopes."
    )]
    RefusesValid {
        /// How many baselines (valid requests) were sent.
        tried: usize,
        /// The first refusal: the request and the target's status and body excerpt.
        first: String,
    },
    /// Cancelled (Ctrl-C): everything confab started was stopped.
    #[error("interrupted")]
    Interrupted,
    /// A replay file or report could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything that lives for the run.
pub(super) struct Run {
    pub(super) spec: Spec,
    pub(super) guard: Guard,
    pub(super) mint: Vec<MintContext>,
    pub(super) sink: Sink,
    pub(super) llm: FakeLlm,
    pub(super) transport: Transport,
    /// What the report names as the target.
    pub(super) target_label: String,
    pub(super) log: Option<SharedLog>,
    /// A process's log, whose lines come through pumps and can arrive late.
    pub(super) log_flush: Option<LogFlush>,
    pub(super) llm_key: Secret,
    pub(super) signing_secret: Option<Secret>,
    /// `(id, owner, marker)`: the sink's resources and the app's own data stored by setup
    /// steps with a `{marker}`.
    pub(super) resources: Vec<(String, String, String)>,
    /// The run's placeholder values: `port`, `llm_base_url`, `llm_api_key`,
    /// `downstream_url`, `jwt_secret`, and `setup.NAME` once saved.
    pub(super) vars: BTreeMap<String, String>,
    /// Per principal, the token its login gave (once it logged in).
    pub(super) logins: Vec<Option<String>>,
    /// A tag shared by the run's markers.
    pub(super) run_tag: String,
    pub(super) seed: u64,
    pub(super) requests: AtomicU64,
    /// Run cases one at a time: the target hides the nonce and the token.
    pub(super) serial: std::sync::atomic::AtomicBool,
    pub(super) echo: oracle::EchoFinders,
    /// Differential statuses already measured (issue 14, item 3).
    pub(super) differentials: super::exchange::DifferentialCache,
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG failing leaves zeros: still unique enough per run for markers, and
    // secrets generated here are test values only.
    let _ = aws_lc_rs::rand::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a campaign against the spec's target (or `served`, a Rust target served on a loopback
/// port) and returns the report.
pub async fn run(
    spec: Spec,
    options: Options,
    served: Option<BuildRouter>,
) -> Result<Report, CampaignError> {
    let mode = match served {
        Some(build) => Mode::Served(build),
        None => Mode::Process,
    };
    execute(spec, options, mode).await
}

/// Runs a campaign against a service called as a function: no socket, no process. The fake
/// model and the sink are reached through the [`Outbound`] in the target's context.
pub async fn run_called(
    spec: Spec,
    options: Options,
    target: BuildService,
) -> Result<Report, CampaignError> {
    execute(spec, options, Mode::Direct(target)).await
}

async fn execute(spec: Spec, options: Options, mode: Mode) -> Result<Report, CampaignError> {
    let started = Instant::now();
    let Started {
        mut run,
        mut process,
        served,
        target,
    } = start(spec, &options, mode).await?;
    let cancelled = || async {
        match &options.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let prepared = async {
        if let (Transport::Http { client, base_url }, Some(target)) = (&run.transport, &target) {
            let ready = wait_ready(
                client,
                base_url,
                &target.ready,
                Duration::from_secs(target.startup_timeout_s),
                process.as_mut(),
            );
            waiting_line(ready, &options, target).await?;
        }
        super::setup::prepare(&mut run).await
    };
    let prepared = tokio::select! {
        r = prepared => r,
        () = cancelled() => Err(CampaignError::Interrupted),
    };
    let run = Arc::new(run);
    let outcome = match prepared {
        Err(e) => Err(e),
        Ok(()) => tokio::select! {
            r = campaign(&run, &options, started) => r,
            () = cancelled() => Err(CampaignError::Interrupted),
        },
    };
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

/// Waits for `ready`, telling `options.status` every few seconds while a slow target starts.
async fn waiting_line(
    ready: impl std::future::Future<Output = Result<(), TargetError>>,
    options: &Options,
    target: &crate::spec::Target,
) -> Result<(), TargetError> {
    let Some(status) = options.status.clone() else {
        return ready.await;
    };
    tokio::pin!(ready);
    let begun = Instant::now();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(3),
        Duration::from_secs(5),
    );
    loop {
        tokio::select! {
            r = &mut ready => return r,
            _ = tick.tick() => status(&format!(
                "waiting for the target to answer {} ({} s of {} s)",
                target.ready,
                begun.elapsed().as_secs(),
                target.startup_timeout_s
            )),
        }
    }
}

/// What [`start`] started: the run, and what must be stopped after it.
pub(super) struct Started {
    pub(super) run: Run,
    pub(super) process: Option<TargetProcess>,
    pub(super) served: Option<Server>,
    pub(super) target: Option<crate::spec::Target>,
}

/// Checks the spec, makes the run's secrets, starts the sink, the fake model and the target.
pub(super) async fn start(
    mut spec: Spec,
    options: &Options,
    mode: Mode,
) -> Result<Started, CampaignError> {
    let direct = matches!(mode, Mode::Direct(_));
    // An in-process service needs no [target]: it is handed over in code.
    let target = match (&spec.target, direct) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => return Err(CampaignError::Missing("[target]")),
    };
    // Without [downstream] the sink serves no resource; it still records what the target
    // requests (PROVENANCE and AGENCY judge that) and plays the attacker host.
    let resource_template = spec.downstream.as_ref().map_or_else(
        || "/confab-no-downstream/{id}".to_owned(),
        |d| d.resource.clone(),
    );
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

    let jwt_secret = spec.generate_secret();
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
        .map(|e| MintContext::for_spec(&spec, ScopeSet::parse(&e.scope)))
        .collect::<Result<Vec<_>, SpecError>>()?;

    let run_tag = random_hex(4);
    let resources: Vec<Resource> = spec
        .principals
        .iter()
        .filter(|_| spec.downstream.is_some())
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
            Sink::in_process(&resource_template, resources),
            FakeLlm::in_process(
                llm_key.clone(),
                spec.limits.llm_calls_per_request,
                spec.llm.listed(),
            ),
        )
    } else {
        (
            Sink::start(&resource_template, resources)
                .await
                .map_err(bind("sink"))?,
            FakeLlm::start(
                llm_key.clone(),
                spec.limits.llm_calls_per_request,
                spec.llm.listed(),
            )
            .await
            .map_err(bind("fake model"))?,
        )
    };
    let outbound = if direct {
        Outbound::in_process(llm.router(), sink.router())
    } else {
        Outbound::http().map_err(|e| CampaignError::Bind {
            what: "HTTP client",
            source: std::io::Error::other(e),
        })?
    };

    let port = if direct {
        0
    } else {
        free_port().map_err(bind("target port"))?
    };
    let vars: BTreeMap<String, String> = BTreeMap::from([
        ("port".to_owned(), port.to_string()),
        ("llm_base_url".to_owned(), llm.base_url()),
        ("anthropic_base_url".to_owned(), llm.anthropic_base_url()),
        ("ollama_base_url".to_owned(), llm.ollama_base_url()),
        (
            "llm_api_key".to_owned(),
            String::from_utf8_lossy(llm_key.expose()).into_owned(),
        ),
        ("downstream_url".to_owned(), sink.base_url()),
        ("jwt_secret".to_owned(), jwt_secret.clone()),
    ]);
    let fill = |s: &str| {
        crate::spec::template::Vars {
            run: Some(&vars),
            ..Default::default()
        }
        .fill(s, crate::spec::template::Place::Text, &mut Vec::new())
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
        log: {
            let log = built_log.clone();
            TargetLog::new(move |line| push_line(&log, line))
        },
        outbound,
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
            let server = Server::start(router)
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
    let spec_principals = spec.principals.len();
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
        logins: vec![None; spec_principals],
        vars,
        run_tag,
        seed: options.seed,
        requests: AtomicU64::new(0),
        serial: std::sync::atomic::AtomicBool::new(false),
        echo: oracle::EchoFinders::default(),
        differentials: Default::default(),
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
