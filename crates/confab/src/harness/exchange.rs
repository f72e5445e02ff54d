//! One case, end to end: arm the fake model and the sink, send the request, collect what the
//! target did (model calls, downstream requests, log lines, late ones included), and judge it.

use super::fake_llm::Script;
use super::logs::CaseMaterial;
use super::request::{UNSENDABLE, client_auth, send};
use super::run::Run;
use super::sink::SinkCase;
use crate::generators::case::{CasePlan, CaseRecipe, CaseWorld};
use crate::generators::output::OutputContext;
use crate::generators::token::{Expected, TokenCase, TokenFamily, TokenRecipe};
use crate::guard::{Authenticated, Rejection, ScopeSet, unix_now};
use crate::observation::{Differential, Observation};
use crate::oracle::{self, CaseFacts, RunFacts, Violation};
use crate::triage::{Aggregate, Triaged};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The outcome of one case.
#[derive(Clone)]
pub struct Exchange {
    /// What the case was: endpoint, principal, token, prompt, scripted model output.
    pub plan: CasePlan,
    /// The reference guard's decision on the case's credential.
    pub verdict: Result<Authenticated, Rejection>,
    /// What the harness saw: the response, model calls, downstream requests, log lines.
    pub observation: Observation,
    /// What the oracle found in it (empty when every invariant held).
    pub violations: Vec<Violation>,
    /// A `curl` command that resends the request, with secrets replaced by placeholders.
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

impl Triaged for Exchange {
    fn case_id(&self) -> u64 {
        self.plan.id
    }

    fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn calls(&self) -> (u64, u64) {
        (
            self.observation.llm_calls.len() as u64,
            self.observation.sink_requests.len() as u64,
        )
    }
}

/// A case checked, whose late log lines (a process's) may still come.
pub(super) struct OpenCase {
    pub(super) exchange: Exchange,
    /// Its share of the log, still collecting late lines.
    ticket: Option<u64>,
}

/// Runs one case and checks it, late log lines included.
pub(super) async fn run_case(run: &Run, recipe: &CaseRecipe, id: u64) -> Exchange {
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
pub(super) async fn wait_for_quiet_log(run: &Run) {
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
pub(super) async fn settle(run: &Run, cases: &mut [OpenCase], grace: Duration) {
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
pub(super) async fn settle_into(
    run: &Run,
    agg: &mut Aggregate<Exchange>,
    found: &AtomicU64,
    mut cases: Vec<OpenCase>,
    grace: Duration,
) {
    let before: usize = cases.iter().map(|c| c.exchange.violations.len()).sum();
    settle(run, &mut cases, grace).await;
    let after: usize = cases.iter().map(|c| c.exchange.violations.len()).sum();
    found.fetch_add(after.saturating_sub(before) as u64, Ordering::Relaxed);
    for case in cases {
        agg.add(
            &run.spec.endpoints[case.exchange.plan.endpoint].name,
            case.exchange,
        );
    }
}

/// Runs one case and checks it; its log lines are those that arrived until its response
/// was in (see [`settle`]). `alone`: no other case is in flight.
pub(super) async fn open_case(run: &Run, recipe: &CaseRecipe, id: u64, alone: bool) -> OpenCase {
    let now = unix_now();
    let world = CaseWorld {
        endpoints: &run.spec.endpoints,
        principals: &run.spec.principals,
        mint: &run.mint,
        attacker_base_url: run.sink.attacker_url(),
        seed: run.seed,
        now,
    };
    let mut plan = recipe.plan(id, &world);
    let auth = client_auth(run, &mut plan, now);
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let principal = &run.spec.principals[plan.principal];

    let mut extra: Vec<String> = auth.cookie.iter().cloned().collect();
    extra.extend(auth.credential_values());
    arm(run, recipe, &plan, id, extra);
    // The lines that carry the case's nonce or token are its own, whenever they arrive.
    let ticket = run
        .log
        .as_ref()
        .map(|l| super::lock(l).open(CaseMaterial::new(&plan.nonce, plan.token.token.as_deref())));

    let (observation_base, curl) = send(run, &plan, &auth).await;
    let (llm_calls, outputs) = run.llm.take(&plan.nonce);
    let mut model_ids: Vec<String> = Vec::new();
    for id in outputs.iter().flat_map(|o| o.invented.ids.iter()) {
        if !model_ids.contains(id) {
            model_ids.push(id.clone());
        }
    }
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
    let mut observation = Observation {
        llm_calls,
        sink_requests,
        logs,
        model_ids,
        ..observation_base
    };
    let required = ScopeSet::parse(&endpoint.scope);
    let verdict = match auth.verdict {
        Some(v) => v,
        None => {
            let headers: Vec<&[u8]> = auth.guard_headers.iter().map(|h| h.as_bytes()).collect();
            run.guard.decide(&headers, &required, now)
        }
    };
    // `allow`: every other principal must be refused, as if it lacked a scope.
    let verdict = match verdict {
        Ok(_) if !endpoint.allows(&principal.name) => Err(Rejection::InsufficientScope),
        v => v,
    };
    if observation.transport_error.as_deref() != Some(UNSENDABLE)
        && oracle::needs_differential(&case_facts(run, &plan), &verdict, &observation)
    {
        observation.differential = Some(differential(run, recipe, &plan, id, now).await);
    }
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

/// What the oracle knows about a planned case.
fn case_facts<'a>(run: &'a Run, plan: &'a CasePlan) -> CaseFacts<'a> {
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let principal = &run.spec.principals[plan.principal];
    let recipe = &plan.recipe;
    CaseFacts {
        endpoint_name: &endpoint.name,
        llm: endpoint.llm,
        capabilities: &endpoint.capabilities,
        token_family: plan.token.family,
        token: plan.token.token.as_deref(),
        token_in_query: plan.token.query_token.is_some(),
        principal: &principal.name,
        owned: &principal.owns,
        resource: &plan.resource,
        model_fails: recipe.model_fails,
        body_mutated: recipe.body != crate::generators::case::BodyMutation::Intact
            && (endpoint.has_json_body() || endpoint.form.is_some()),
        allow_listed: !endpoint.allow.is_empty(),
    }
}

/// Arms the fake model and the sink for a request of case `id` (the case's own, or one of
/// its differential twins).
fn arm(run: &Run, recipe: &CaseRecipe, plan: &CasePlan, id: u64, extra_watched: Vec<String>) {
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
    watched.extend(extra_watched);
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
}

/// Differential statuses, cached per (endpoint, principal, resource, body mutation): what
/// they depend on, so a campaign sends each pair once (docs/ARCHITECTURE.md §4).
#[derive(Default)]
pub(super) struct DifferentialCache {
    seen: std::sync::Mutex<std::collections::HashMap<(usize, usize, String, String), Differential>>,
}

/// Sends the case's request again under the principal's valid token and under none, and
/// returns their statuses; what the twins caused (model calls, downstream requests) is
/// discarded, they are not the case.
async fn differential(
    run: &Run,
    recipe: &CaseRecipe,
    plan: &CasePlan,
    id: u64,
    now: u64,
) -> Differential {
    let key = (
        plan.endpoint,
        plan.principal,
        plan.resource.clone(),
        format!("{:?}", plan.recipe.body),
    );
    if let Some(d) = super::lock(&run.differentials.seen).get(&key) {
        return *d;
    }
    let valid = TokenRecipe {
        family: TokenFamily::Valid,
        principal: plan.principal as u32,
        variant: 0,
        skew_s: 0,
        jti: 0,
    }
    .mint(&run.mint[plan.endpoint], now);
    let none = TokenCase {
        family: TokenFamily::MissingHeader,
        authorization: Vec::new(),
        query_token: None,
        token: None,
        expect: Expected::Reject(Rejection::MissingCredentials),
    };
    let mut statuses = [None, None];
    for (slot, token) in statuses.iter_mut().zip([valid, none]) {
        let mut twin = CasePlan {
            token,
            ..plan.clone()
        };
        let auth = client_auth(run, &mut twin, now);
        arm(run, recipe, &twin, id, Vec::new());
        let (obs, _) = send(run, &twin, &auth).await;
        let _ = run.llm.take(&twin.nonce);
        let _ = run.sink.take(id);
        *slot = obs.status;
    }
    let d = Differential {
        valid: statuses[0],
        none: statuses[1],
    };
    super::lock(&run.differentials.seen).insert(key, d);
    d
}

/// Every invariant over one exchange (none for a request no client could send).
pub(super) fn judge(
    run: &Run,
    plan: &CasePlan,
    verdict: &Result<Authenticated, Rejection>,
    observation: &Observation,
) -> Vec<Violation> {
    if observation.transport_error.as_deref() == Some(UNSENDABLE) {
        return Vec::new();
    }
    let facts = case_facts(run, plan);
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
