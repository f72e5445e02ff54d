//! One case, end to end: arm the fake model and the sink, send the request, collect what the
//! target did (model calls, downstream requests, log lines, late ones included), and judge it.

use super::fake_llm::Script;
use super::logs::CaseMaterial;
use super::run::{Run, Transport};
use super::sink::SinkCase;
use crate::generators::case::{CasePlan, CaseRecipe, CaseWorld};
use crate::generators::output::OutputContext;
use crate::generators::token::{Expected, TokenCase, TokenFamily, TokenRecipe};
use crate::guard::{Authenticated, Rejection, ScopeSet, unix_now};
use crate::observation::{Differential, Observation};
use crate::oracle::{self, CaseFacts, RunFacts, Violation};
use crate::spec::template::{Place, Vars, form_encode};
use crate::triage::{Aggregate, Triaged};
use axum::body::Body;
use axum::http::Request;
use confab_target::TargetService;
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

/// Marks a case whose headers no HTTP client can send (a line break inside a value).
const UNSENDABLE: &str = "header value cannot be sent over HTTP";

/// Largest response body read from the target.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How a case authenticates: the headers and cookie it sends, and what the guard is asked
/// (or the verdict itself, where no bearer token is under test).
pub(super) struct ClientAuth {
    /// `Authorization` values, and a non-bearer credential's headers.
    headers: Vec<(String, String)>,
    /// The token sent in `[auth] cookie`.
    cookie: Option<String>,
    /// The `Authorization` values the guard decides on.
    guard_headers: Vec<String>,
    /// The verdict when it is not the guard's to give (`bearer = false` endpoints).
    verdict: Option<Result<Authenticated, Rejection>>,
}

impl ClientAuth {
    fn credential_values(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n != "authorization")
            .map(|(_, v)| v.clone())
            .filter(|v| v.len() >= 8)
            .collect()
    }
}

/// What the case sends to authenticate. On a `bearer = false` endpoint: no bearer token, but
/// the principal's credential; valid families send it, the families without credentials send
/// none, a forged key sends another principal's (the case then acts as that principal), and
/// every other family a mangled one. With `[auth] cookie`, a third of the single-token cases
/// send their token in the cookie instead, and another scheme's `Authorization` header goes
/// beside a valid cookie (the cookie then decides).
fn client_auth(run: &Run, plan: &mut CasePlan, now: u64) -> ClientAuth {
    use crate::generators::token::TokenFamily as F;
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let family = plan.token.family;
    if !endpoint.bearer {
        let mut p = plan.principal;
        let n = run.spec.principals.len();
        let (send, verdict) = match family {
            F::Valid | F::ValidAudienceArray | F::ValidHeaderVariant | F::ValidScpArray => {
                (Some(false), None)
            }
            F::MissingHeader | F::OtherScheme | F::EmptyCredential | F::TokenInQuery => {
                (None, Some(Rejection::MissingCredentials))
            }
            F::WrongKey if n > 1 => {
                p = (p + 1 + plan.recipe.token.variant as usize % (n - 1)) % n;
                (Some(false), None)
            }
            _ => (Some(true), Some(Rejection::BadSignature)),
        };
        plan.principal = p;
        let principal = &run.spec.principals[p];
        let headers = match send {
            None => Vec::new(),
            Some(mangle) => principal
                .credential
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        if mangle {
                            mangled(v, plan.recipe.token.variant)
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
        };
        let sub = run.mint[plan.endpoint]
            .principals()
            .get(p)
            .map_or_else(|| principal.name.clone(), |t| t.sub.clone());
        plan.token = crate::generators::token::TokenCase {
            authorization: Vec::new(),
            query_token: None,
            token: None,
            ..plan.token.clone()
        };
        return ClientAuth {
            headers,
            cookie: None,
            guard_headers: Vec::new(),
            verdict: Some(match verdict {
                Some(r) => Err(r),
                None => Ok(Authenticated {
                    sub,
                    scopes: ScopeSet::parse(&principal.scope),
                    expires_at: (now + 900) as f64,
                    kid: None,
                    jti: None,
                }),
            }),
        };
    }
    let authorization = plan.token.authorization.clone();
    let headers = |v: &[String]| -> Vec<(String, String)> {
        v.iter()
            .map(|h| ("authorization".to_owned(), h.clone()))
            .collect()
    };
    let by_cookie = run.spec.auth.cookie.is_some() && plan.recipe.token.jti.is_multiple_of(3);
    if by_cookie {
        if let (Some(t), [one]) = (&plan.token.token, authorization.as_slice())
            && one == &format!("Bearer {t}")
        {
            return ClientAuth {
                headers: Vec::new(),
                cookie: Some(t.clone()),
                guard_headers: authorization.clone(),
                verdict: None,
            };
        }
        if family == F::OtherScheme {
            let valid = crate::generators::token::TokenRecipe {
                family: F::Valid,
                ..plan.recipe.token
            }
            .mint(&run.mint[plan.endpoint], now);
            if let Some(t) = valid.token {
                return ClientAuth {
                    headers: headers(&authorization),
                    guard_headers: vec![format!("Bearer {t}")],
                    cookie: Some(t),
                    verdict: None,
                };
            }
        }
    }
    ClientAuth {
        headers: headers(&authorization),
        cookie: None,
        guard_headers: authorization,
        verdict: None,
    }
}

/// A credential with one character changed, cut short, or with a suffix.
fn mangled(v: &str, variant: u8) -> String {
    match variant % 3 {
        0 => {
            let mut chars: Vec<char> = v.chars().collect();
            if let Some(last) = chars.last_mut() {
                *last = if *last == 'x' { 'y' } else { 'x' };
            }
            chars.into_iter().collect()
        }
        1 => v.chars().take(v.chars().count() / 2).collect(),
        _ => format!("{v}0"),
    }
}

/// One request to the target.
pub(super) struct HttpRequest {
    pub(super) method: axum::http::Method,
    /// Path and query, placeholders filled.
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Option<Vec<u8>>,
}

/// Sends one request (setup steps, logins, cases); counts it in the run's requests.
pub(super) async fn send_request(run: &Run, req: HttpRequest) -> Observation {
    let base = match &run.transport {
        Transport::Http { base_url, .. } => base_url.trim_end_matches('/'),
        Transport::Service(_) => IN_PROCESS_BASE,
    };
    let url = format!("{base}{}", req.path);
    let mut headers = axum::http::HeaderMap::new();
    for (n, v) in &req.headers {
        match (
            axum::http::HeaderName::from_bytes(n.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            _ => {
                return Observation {
                    transport_error: Some(UNSENDABLE.to_owned()),
                    ..Observation::default()
                };
            }
        }
    }
    let timeout = Duration::from_millis(run.spec.limits.request_timeout_ms);
    run.requests.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let mut obs = match &run.transport {
        Transport::Http { client, .. } => {
            send_http(client, req.method, &url, headers, req.body, timeout).await
        }
        Transport::Service(service) => {
            send_service(service, req.method, &url, headers, req.body, timeout).await
        }
    };
    obs.elapsed_ms = start.elapsed().as_millis() as u64;
    obs
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The case's request as `curl`.
fn curl_line(run: &Run, req: &HttpRequest) -> String {
    let base = match &run.transport {
        Transport::Http { base_url, .. } => base_url.trim_end_matches('/'),
        Transport::Service(_) => IN_PROCESS_BASE,
    };
    let mut curl = format!(
        "curl -i -X {} {}",
        req.method,
        shell_quote(&format!("{base}{}", req.path))
    );
    for (n, v) in &req.headers {
        let name = if n == "authorization" {
            "Authorization"
        } else if n == "content-type" {
            "Content-Type"
        } else {
            n
        };
        curl.push_str(&format!(" -H {}", shell_quote(&format!("{name}: {v}"))));
    }
    if let Some(b) = &req.body {
        curl.push_str(&format!(
            " --data-raw {}",
            shell_quote(&String::from_utf8_lossy(b))
        ));
    }
    curl
}

/// Sends the case's request (and its `follow`); returns what came back and a `curl` line.
async fn send(run: &Run, plan: &CasePlan, auth: &ClientAuth) -> (Observation, String) {
    let endpoint = &run.spec.endpoints[plan.endpoint];
    let principal = &run.spec.principals[plan.principal];
    let vars = Vars {
        run: Some(&run.vars),
        prompt: Some(&plan.prompt),
        resource: Some(&plan.resource),
        ..Vars::default()
    };
    let mut missing = Vec::new();
    let mut path = vars.fill_path(&endpoint.path, &mut missing);
    if let Some(t) = &plan.token.query_token {
        path.push_str(if path.contains('?') { "&" } else { "?" });
        path.push_str("access_token=");
        path.push_str(t);
    }
    // Who the case is, then what the endpoint adds, then how it authenticates.
    let mut common: Vec<(String, String)> = Vec::new();
    for (k, v) in principal.headers.iter().chain(endpoint.headers.iter()) {
        common.push((
            k.to_ascii_lowercase(),
            vars.fill(v, Place::Text, &mut missing),
        ));
    }
    common.extend(auth.headers.iter().cloned());
    if let (Some(name), Some(t)) = (&run.spec.auth.cookie, &auth.cookie) {
        common.push(("cookie".to_owned(), format!("{name}={t}")));
    }
    let mut headers = common.clone();
    let mut body = None;
    if let Some(b) = endpoint.render_body_with(&vars, &mut missing) {
        if endpoint.form.is_some() {
            headers.push((
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ));
            if plan.recipe.body != crate::generators::case::BodyMutation::Empty {
                body = Some(form_encode(&b).into_bytes());
            }
        } else {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
            body = plan.recipe.body.apply(&b);
        }
    }
    let first = HttpRequest {
        method: endpoint.method.http(),
        path,
        headers,
        body,
    };
    let mut curl = curl_line(run, &first);
    let mut obs = send_request(run, first).await;
    let Some(follow) = &endpoint.follow else {
        return (obs, curl);
    };
    // `follow`: only after a 2xx whose JSON holds every pointer the second request reads;
    // otherwise the case is judged on the first response alone.
    if !obs.status.is_some_and(|s| (200..300).contains(&s)) {
        return (obs, curl);
    }
    let Ok(response) = serde_json::from_str::<serde_json::Value>(&obs.response_body) else {
        return (obs, curl);
    };
    let vars = Vars {
        response: Some(&response),
        ..vars
    };
    let mut unresolved = Vec::new();
    let path = vars.fill_path(&follow.path, &mut unresolved);
    let mut headers = common;
    for (k, v) in &follow.headers {
        headers.push((
            k.to_ascii_lowercase(),
            vars.fill(v, Place::Text, &mut unresolved),
        ));
    }
    let mut body = None;
    if let Some(b) = &follow.body {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        body = Some(vars.fill_toml(b, &mut unresolved).to_string().into_bytes());
    } else if let Some(f) = &follow.form {
        headers.push((
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ));
        body = Some(form_encode(&vars.fill_toml(f, &mut unresolved)).into_bytes());
    }
    if unresolved.iter().any(|u| u.0.starts_with("response.")) {
        return (obs, curl);
    }
    let second = HttpRequest {
        method: follow.method.http(),
        path,
        headers,
        body,
    };
    curl.push_str(" && ");
    curl.push_str(&curl_line(run, &second));
    let then = send_request(run, second).await;
    combine(&mut obs, then);
    (obs, curl)
}

/// The pair as one observation: both bodies and headers; the status is the first's unless
/// the second failed (a 5xx, a hang, no answer).
fn combine(first: &mut Observation, then: Observation) {
    first.response_body.push('\n');
    first.response_body.push_str(&then.response_body);
    first.response_headers.extend(then.response_headers);
    first.elapsed_ms += then.elapsed_ms;
    if then.status.is_none_or(|s| s >= 500) {
        first.status = then.status;
        first.timed_out = then.timed_out;
        first.transport_error = then.transport_error;
    }
}

/// True on a multi-threaded runtime, where work spawned as tasks runs on every core; on one
/// thread a task only costs.
pub(super) fn multi_threaded() -> bool {
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
    let attempt = |client: &reqwest::Client| {
        let mut req = client
            .request(method.clone(), url)
            .headers(headers.clone())
            .timeout(timeout);
        if let Some(b) = &body {
            req = req.body(b.clone());
        }
        req.send()
    };
    let mut sent = attempt(client).await;
    // A pooled keep-alive connection the target closed (uvicorn does after a 500) fails
    // before any response: that is no answer to this request. Once more on a fresh
    // connection; only if that also gets nothing is it "no response".
    if let Err(e) = &sent
        && !e.is_timeout()
        && !e.is_connect()
        && let Ok(fresh) = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
    {
        sent = attempt(&fresh).await;
    }
    let mut obs = Observation::default();
    match sent {
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
    confab_target::as_on_the_wire(&mut headers);
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
