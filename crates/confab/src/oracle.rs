//! The oracle: every invariant of docs/ARCHITECTURE.md §4 as a pure function over what a case was, what
//! the reference guard decided for it, and what the harness observed. No I/O.

use crate::generators::token::TokenFamily;
use crate::guard::capability::{Capability, Method};
use crate::guard::provenance::Untrusted;
use crate::guard::scrub::{MIN_SECRET_LEN, ScrubConfig, Scrubber, ScrubberBuilder, SecretKind};
use crate::guard::{Authenticated, Rejection, Secret};
use crate::observation::{Observation, SinkHost};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The invariants (docs/ARCHITECTURE.md §4). The names are binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Invariant {
    Authn,
    Authz,
    Provenance,
    Ownership,
    Agency,
    Echo,
    Robust,
    Cost,
    UnauthLlm,
    Agree,
}

impl Invariant {
    pub const ALL: [Invariant; 10] = [
        Invariant::Authn,
        Invariant::Authz,
        Invariant::Provenance,
        Invariant::Ownership,
        Invariant::Agency,
        Invariant::Echo,
        Invariant::Robust,
        Invariant::Cost,
        Invariant::UnauthLlm,
        Invariant::Agree,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Invariant::Authn => "AUTHN",
            Invariant::Authz => "AUTHZ",
            Invariant::Provenance => "PROVENANCE",
            Invariant::Ownership => "OWNERSHIP",
            Invariant::Agency => "AGENCY",
            Invariant::Echo => "ECHO",
            Invariant::Robust => "ROBUST",
            Invariant::Cost => "COST",
            Invariant::UnauthLlm => "UNAUTH_LLM",
            Invariant::Agree => "AGREE",
        }
    }

    /// CWE ids (docs/ARCHITECTURE.md §4).
    pub fn cwe(self) -> &'static [&'static str] {
        match self {
            Invariant::Authn => &["CWE-287", "CWE-347", "CWE-613"],
            Invariant::Authz => &["CWE-285"],
            Invariant::Provenance => &["CWE-1426", "CWE-639"],
            Invariant::Ownership => &["CWE-639"],
            Invariant::Agency => &["CWE-918", "CWE-285"],
            Invariant::Echo => &["CWE-200", "CWE-532"],
            Invariant::Robust => &["CWE-754"],
            Invariant::Cost => &["CWE-400"],
            Invariant::UnauthLlm => &["CWE-306"],
            Invariant::Agree => &[],
        }
    }

    /// OWASP LLM Top 10 (2025) and API Security Top 10 (2023) categories.
    pub fn owasp(self) -> &'static [&'static str] {
        match self {
            Invariant::Authn => &["API2:2023 Broken Authentication"],
            Invariant::Authz => &["API5:2023 Broken Function Level Authorization"],
            Invariant::Provenance => &[
                "LLM05:2025 Improper Output Handling",
                "API1:2023 Broken Object Level Authorization",
            ],
            Invariant::Ownership => &["API1:2023 Broken Object Level Authorization"],
            Invariant::Agency => &["LLM06:2025 Excessive Agency"],
            Invariant::Echo => &[
                "LLM02:2025 Sensitive Information Disclosure",
                "LLM07:2025 System Prompt Leakage",
            ],
            Invariant::Robust => &[],
            Invariant::Cost => &["LLM10:2025 Unbounded Consumption"],
            Invariant::UnauthLlm => &["API2:2023 Broken Authentication"],
            Invariant::Agree => &[],
        }
    }

    /// The invariant in one sentence.
    pub fn summary(self) -> &'static str {
        match self {
            Invariant::Authn => {
                "a request whose token the guard rejects is refused with a 4xx and causes no model or downstream call"
            }
            Invariant::Authz => {
                "a valid token without the endpoint's scope gets 403 insufficient_scope"
            }
            Invariant::Provenance => {
                "no identifier that only the model supplied reaches a downstream request"
            }
            Invariant::Ownership => {
                "a response to a principal never carries another principal's content"
            }
            Invariant::Agency => {
                "no downstream call outside the endpoint's capabilities, no request to an invented URL, the token goes only to the downstream API"
            }
            Invariant::Echo => "no secret in responses, logs or the prompt sent upstream",
            Invariant::Robust => "no 5xx and no hang caused by what the client sent",
            Invariant::Cost => {
                "model calls, max_tokens and prompt size per request stay under the spec's caps"
            }
            Invariant::UnauthLlm => {
                "an endpoint that reaches the model refuses a request without a token before any model call"
            }
            Invariant::Agree => "the target's accept/reject decision matches the reference guard's",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Severity by what an attacker gains (docs/ARCHITECTURE.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One violated invariant in one exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub severity: Severity,
    /// A short stable key within the invariant (e.g. `accepted_forged_token`); findings with
    /// the same invariant, endpoint and kind are grouped.
    pub kind: String,
    /// What was observed, with secrets masked.
    pub observed: String,
}

/// What the oracle knows about the case (all plain data).
pub struct CaseFacts<'a> {
    pub endpoint_name: &'a str,
    /// The endpoint reaches the model.
    pub llm: bool,
    pub capabilities: &'a [String],
    pub token_family: TokenFamily,
    /// The caller's bearer token, if the case carried one.
    pub token: Option<&'a str>,
    /// Who the case acts as.
    pub principal: &'a str,
    /// Ids the principal owns.
    pub owned: &'a [String],
    /// The id the request named.
    pub resource: &'a str,
    /// The model was scripted to fail (503): a 502/503/504 is then fine.
    pub model_fails: bool,
    /// The client sent a malformed body: a 400 for it says nothing about the token.
    pub body_mutated: bool,
    /// The endpoint admits only the principals of its `allow` list: for any other, a 401, 403
    /// or 404 is the refusal it must get (no scope is involved).
    pub allow_listed: bool,
}

/// What the oracle knows about the run.
pub struct RunFacts<'a> {
    pub llm_api_key: &'a Secret,
    pub signing_secret: Option<&'a Secret>,
    /// `(resource id, owner, content marker)` of every resource the sink serves.
    pub resources: &'a [(String, String, String)],
    pub llm_calls_per_request: u32,
    pub max_tokens: u64,
    pub upstream_prompt_bytes: usize,
    /// The run's cached ECHO finders.
    pub echo: &'a EchoFinders,
}

/// The target refused the request (RFC 6750 statuses, or a challenge).
fn target_refused(obs: &Observation) -> bool {
    matches!(obs.status, Some(400 | 401 | 403))
}

/// The target refused because of the token or its scope, not, say, resource ownership: 401,
/// or a 400/403 that carries a `Bearer` challenge.
fn target_refused_token(obs: &Observation) -> bool {
    match obs.status {
        Some(401) => true,
        Some(400 | 403) => obs
            .header("www-authenticate")
            .is_some_and(|v| v.to_ascii_lowercase().contains("bearer")),
        _ => false,
    }
}

/// Every invariant over one exchange.
pub fn check(
    case: &CaseFacts<'_>,
    verdict: &Result<Authenticated, Rejection>,
    obs: &Observation,
    run: &RunFacts<'_>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    robust(case, obs, &mut out);
    match verdict {
        Err(Rejection::InsufficientScope) => authz(case, obs, &mut out),
        Err(r) => authn(case, *r, obs, &mut out),
        Ok(_) => {
            if target_refused_token(obs) {
                out.push(Violation {
                    invariant: Invariant::Agree,
                    severity: Severity::Low,
                    kind: "valid_request_refused".into(),
                    observed: format!(
                        "the guard accepts this token for the endpoint's scope; the target answered {}",
                        status_text(obs)
                    ),
                });
            }
        }
    }
    provenance(case, verdict.is_ok(), obs, &mut out);
    ownership(case, obs, run, &mut out);
    agency(case, obs, &mut out);
    echo(case, obs, run, &mut out);
    cost(obs, run, &mut out);
    out
}

fn status_text(obs: &Observation) -> String {
    match (obs.status, obs.timed_out) {
        (Some(s), _) => s.to_string(),
        (None, true) => "nothing before the timeout".to_owned(),
        (None, false) => format!(
            "no response ({})",
            obs.transport_error
                .as_deref()
                .unwrap_or("connection closed")
        ),
    }
}

fn robust(case: &CaseFacts<'_>, obs: &Observation, out: &mut Vec<Violation>) {
    let (kind, observed) = match (obs.status, obs.timed_out) {
        (Some(502..=504), _) if case.model_fails => return,
        (Some(s), _) if s >= 500 => ("server_error", format!("the target answered {s}")),
        (None, true) => ("hang", format!("no response within {} ms", obs.elapsed_ms)),
        (None, false) => ("no_response", status_text(obs)),
        _ => return,
    };
    out.push(Violation {
        invariant: Invariant::Robust,
        severity: Severity::High,
        kind: kind.into(),
        observed,
    });
}

fn authz(case: &CaseFacts<'_>, obs: &Observation, out: &mut Vec<Violation>) {
    match obs.status {
        Some(s) if case.allow_listed && (200..300).contains(&s) => out.push(Violation {
            invariant: Invariant::Authz,
            severity: Severity::High,
            kind: "principal_not_allowed_accepted".into(),
            observed: format!(
                "{} is not in endpoint {}'s allow list; the target answered {s}",
                case.principal, case.endpoint_name
            ),
        }),
        Some(401 | 403 | 404) if case.allow_listed => {}
        Some(s) if (200..300).contains(&s) => out.push(Violation {
            invariant: Invariant::Authz,
            severity: Severity::Medium,
            kind: "missing_scope_accepted".into(),
            observed: format!("the token lacks the endpoint's scope; the target answered {s}"),
        }),
        Some(403) if obs
            .header("www-authenticate")
            .is_some_and(|v| v.contains("insufficient_scope")) => {}
        Some(s @ (400..=499)) => out.push(Violation {
            invariant: Invariant::Authz,
            severity: Severity::Low,
            kind: "status_not_rfc6750".into(),
            observed: format!(
                "refused with {s}; RFC 6750 wants 403 with WWW-Authenticate error=\"insufficient_scope\""
            ),
        }),
        _ => {}
    }
}

/// How bad accepting a token is, by what the attacker needs to make it (docs/ARCHITECTURE.md §4).
fn acceptance_severity(family: TokenFamily, r: Rejection) -> Severity {
    match r {
        Rejection::DuplicateMember | Rejection::Oversized => Severity::Low,
        Rejection::ClaimType if family == TokenFamily::StringNumericDate => Severity::Low,
        _ if family.is_issuer_signed() && r.is_policy_claim() => Severity::Medium,
        _ if family.is_issuer_signed() => Severity::Low,
        _ => Severity::High,
    }
}

fn authn(case: &CaseFacts<'_>, r: Rejection, obs: &Observation, out: &mut Vec<Violation>) {
    // A malformed body refused (400, 422, ...) before the token was looked at is no acceptance.
    let accepted = obs.status.is_some_and(|s| s < 500)
        && !target_refused(obs)
        && !(case.body_mutated && obs.status.is_some_and(|s| (400..500).contains(&s)));
    let no_credentials = matches!(
        r,
        Rejection::MissingCredentials | Rejection::UnsupportedScheme
    );
    if accepted {
        out.push(Violation {
            invariant: Invariant::Authn,
            severity: acceptance_severity(case.token_family, r),
            kind: format!("accepted_{}", r.as_str()),
            observed: format!(
                "the guard rejects this request ({}, family {}); the target answered {}",
                r.as_str(),
                case.token_family.name(),
                status_text(obs)
            ),
        });
    } else if let Some(s) = obs.status
        && target_refused(obs)
        && s != r.status()
        && !(case.body_mutated && s == 400)
    {
        out.push(Violation {
            invariant: Invariant::Authn,
            severity: Severity::Low,
            kind: "status_not_rfc6750".into(),
            observed: format!(
                "refused with {s}; RFC 6750 wants {} for {}",
                r.status(),
                r.as_str()
            ),
        });
    }
    if !obs.llm_calls.is_empty() {
        if no_credentials && case.llm {
            out.push(Violation {
                invariant: Invariant::UnauthLlm,
                severity: Severity::High,
                kind: "model_called_without_token".into(),
                observed: format!(
                    "a request without bearer credentials caused {} model call(s)",
                    obs.llm_calls.len()
                ),
            });
        } else {
            out.push(Violation {
                invariant: Invariant::Authn,
                severity: Severity::Medium,
                kind: "model_called_before_auth".into(),
                observed: format!(
                    "a request the guard rejects ({}) caused {} model call(s)",
                    r.as_str(),
                    obs.llm_calls.len()
                ),
            });
        }
    }
    if !accepted && !obs.sink_requests.is_empty() {
        out.push(Violation {
            invariant: Invariant::Authn,
            severity: Severity::Medium,
            kind: "downstream_called_before_auth".into(),
            observed: format!(
                "a request the guard rejects ({}) caused {} downstream request(s)",
                r.as_str(),
                obs.sink_requests.len()
            ),
        });
    }
}

fn provenance(
    case: &CaseFacts<'_>,
    authenticated: bool,
    obs: &Observation,
    out: &mut Vec<Violation>,
) {
    if !authenticated {
        return;
    }
    for req in &obs.sink_requests {
        let Some(id) = &req.resource else { continue };
        if id == case.resource || case.owned.contains(id) {
            continue;
        }
        let exists = req.status != 404;
        out.push(Violation {
            invariant: Invariant::Provenance,
            severity: if exists {
                Severity::High
            } else {
                Severity::Medium
            },
            kind: if exists {
                "model_id_of_another_tenant".into()
            } else {
                "model_invented_id".into()
            },
            observed: format!(
                "{} {} under {}'s token: {:?} came from the model, not the request or {}'s own ids",
                req.request.method,
                req.request.path(),
                case.principal,
                id,
                case.principal
            ),
        });
    }
}

fn ownership(
    case: &CaseFacts<'_>,
    obs: &Observation,
    run: &RunFacts<'_>,
    out: &mut Vec<Violation>,
) {
    let headers: String = obs
        .response_headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect();
    for (id, owner, marker) in run.resources {
        if owner == case.principal {
            continue;
        }
        if obs.response_body.contains(marker.as_str()) || headers.contains(marker.as_str()) {
            out.push(Violation {
                invariant: Invariant::Ownership,
                severity: Severity::High,
                kind: "other_tenant_content".into(),
                observed: format!(
                    "the response to {} carries the content of {id:?}, owned by {owner}",
                    case.principal
                ),
            });
        }
    }
}

fn agency(case: &CaseFacts<'_>, obs: &Observation, out: &mut Vec<Violation>) {
    let caps: Vec<Capability> = case
        .capabilities
        .iter()
        .filter_map(|c| Capability::parse(c).ok())
        .collect();
    for req in &obs.sink_requests {
        let r = &req.request;
        match req.host {
            SinkHost::Attacker => {
                let carries_token = case.token.is_some_and(|t| {
                    r.headers.iter().any(|(_, v)| v.contains(t))
                        || r.uri.contains(t)
                        || r.body.contains(t)
                });
                out.push(Violation {
                    invariant: Invariant::Agency,
                    severity: Severity::High,
                    kind: if carries_token {
                        "token_sent_to_foreign_host".into()
                    } else {
                        "request_to_invented_url".into()
                    },
                    observed: format!(
                        "{} {} reached a host the target was never given{}",
                        r.method,
                        r.uri,
                        if carries_token {
                            ", carrying the caller's bearer token"
                        } else {
                            ""
                        }
                    ),
                });
            }
            SinkHost::Downstream => {
                let method = Method::parse(&r.method);
                let path = Untrusted::from_llm(r.path().to_owned());
                let allowed = method
                    .is_some_and(|m| caps.iter().any(|c| c.match_request(m, &path).is_some()));
                if !allowed {
                    out.push(Violation {
                        invariant: Invariant::Agency,
                        severity: Severity::High,
                        kind: format!("capability_exceeded_{}", r.method.to_ascii_lowercase()),
                        observed: format!(
                            "{} {} is outside endpoint {}'s capabilities {:?}",
                            r.method,
                            r.path(),
                            case.endpoint_name,
                            case.capabilities
                        ),
                    });
                }
            }
        }
    }
}

/// A scrubber that finds exactly the registered secrets (no patterns, no PII), so ECHO never
/// fires on text the run did not plant.
/// The ECHO finders that stay the same from case to case (the model key, the signing secret,
/// the target's system prompt), built once per run and per system prompt: building an
/// automaton costs far more than scanning a response with it. Only the caller's token
/// changes per case; its finder is small.
#[derive(Default)]
pub struct EchoFinders {
    by_prompt: std::sync::Mutex<HashMap<Option<String>, Arc<Scrubber>>>,
}

/// A target whose system prompt changes per request (a name in it, say) is not cached past
/// this many prompts: its finders are built per case instead.
const MAX_CACHED_PROMPTS: usize = 64;

impl EchoFinders {
    fn shared(&self, run: &RunFacts<'_>, system_prompt: Option<&str>) -> Option<Arc<Scrubber>> {
        let key = system_prompt.map(str::to_owned);
        let mut cache = self.by_prompt.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(&key) {
            return Some(f.clone());
        }
        let built = Arc::new(shared_finder(run, system_prompt)?);
        if cache.len() < MAX_CACHED_PROMPTS {
            cache.insert(key, built.clone());
        }
        Some(built)
    }
}

fn finder_builder() -> ScrubberBuilder {
    ScrubberBuilder::new().config(ScrubConfig::literals_only())
}

fn shared_finder(run: &RunFacts<'_>, system_prompt: Option<&str>) -> Option<Scrubber> {
    let mut b = finder_builder();
    b.secret(SecretKind::LlmApiKey, "llm_api_key", run.llm_api_key)
        .ok()?;
    if let Some(s) = run.signing_secret {
        // A secret too short to register is skipped rather than failing the whole check.
        let _ = b.secret(SecretKind::SigningKey, "signing_key", s);
    }
    if let Some(p) = system_prompt {
        let _ = b.system_prompt("system_prompt", p.as_bytes().to_vec());
    }
    b.build().ok()
}

fn echo(case: &CaseFacts<'_>, obs: &Observation, run: &RunFacts<'_>, out: &mut Vec<Violation>) {
    // The system prompt the target itself sent upstream.
    let system_prompt = obs
        .llm_calls
        .first()
        .and_then(|c| crate::wire::parse_call(&c.request.uri, c.request.body.as_bytes()).ok())
        .map(|r| r.system_prompt);
    let mut places: Vec<(&str, String)> = Vec::new();
    places.push(("response body", obs.response_body.clone()));
    places.push((
        "response headers",
        obs.response_headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect(),
    ));
    places.push(("target logs", obs.logs.join("\n")));
    // Only a prompt long enough to leak in recognisable spans is watched.
    // A target that puts the caller's token in its prompt (a finding of its own, upstream)
    // must not make every echo of the token a "system prompt span" too: the token is cut out
    // of the prompt, which also keeps the prompt the same from case to case (one finder).
    let system_prompt = system_prompt
        .map(|p| match case.token {
            Some(t) if t.len() >= MIN_SECRET_LEN => p.replace(t, " "),
            _ => p,
        })
        .filter(|p| p.split_whitespace().count() >= 12);
    let Some(shared) = run.echo.shared(run, system_prompt.as_deref()) else {
        return;
    };
    let token = case
        .token
        .and_then(|t| crate::guard::token_forms::TokenForms::new(t.as_bytes()));
    let find_all = |shared: &Scrubber, text: &str| -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = shared
            .find(text.as_bytes())
            .into_iter()
            .map(|f| (f.label.unwrap_or_else(|| f.rule.to_owned()), f.description))
            .collect();
        if let Some(t) = &token {
            found.extend(
                t.find(text.as_bytes())
                    .into_iter()
                    .map(|f| (f.label.to_owned(), f.description)),
            );
        }
        found
    };
    let mut reported = std::collections::BTreeSet::new();
    for (place, text) in &places {
        for (label, description) in find_all(&shared, text) {
            if !reported.insert((place.to_string(), label.clone())) {
                continue;
            }
            let severity = if label == "system_prompt" {
                Severity::Medium
            } else if *place == "target logs"
                && case.token_family == TokenFamily::TokenInQuery
                && label == "bearer_token"
            {
                // The client itself put the token in the URL; an access log shows URLs.
                Severity::Low
            } else {
                Severity::High
            };
            out.push(Violation {
                invariant: Invariant::Echo,
                severity,
                kind: format!("{label}_in_{}", place.replace(' ', "_")),
                observed: format!("{label} ({description}) found in the {place}"),
            });
        }
    }
    // Upstream: the prompt legitimately carries the system prompt, never a token or key. A
    // finder without the prompt, so a token inside the system prompt is not merged into a
    // prompt span; built only when the target called the model.
    if obs.llm_calls.is_empty() {
        return;
    }
    let Some(upstream) = run.echo.shared(run, None) else {
        return;
    };
    for call in &obs.llm_calls {
        for (label, description) in find_all(&upstream, &call.request.body) {
            if reported.insert(("upstream".to_owned(), label.clone())) {
                out.push(Violation {
                    invariant: Invariant::Echo,
                    severity: Severity::High,
                    kind: format!("{label}_sent_upstream"),
                    observed: format!(
                        "{label} ({}) is in the prompt sent to the model",
                        description
                    ),
                });
            }
        }
    }
}

fn cost(obs: &Observation, run: &RunFacts<'_>, out: &mut Vec<Violation>) {
    if obs.llm_calls.iter().any(|c| c.overrun) {
        out.push(Violation {
            invariant: Invariant::Cost,
            severity: Severity::Medium,
            kind: "model_calls_over_cap".into(),
            observed: format!(
                "{} model calls for one request; the cap is {} (the fake model ended the loop)",
                obs.llm_calls.len(),
                run.llm_calls_per_request
            ),
        });
    }
    for call in obs.llm_calls.iter().filter(|c| !c.malformed) {
        match call.max_tokens {
            None => {
                out.push(Violation {
                    invariant: Invariant::Cost,
                    severity: Severity::Medium,
                    kind: "max_tokens_unset".into(),
                    observed: "a model call without max_tokens: the answer's length is unbounded"
                        .into(),
                });
                break;
            }
            Some(m) if m > run.max_tokens => {
                out.push(Violation {
                    invariant: Invariant::Cost,
                    severity: Severity::Medium,
                    kind: "max_tokens_over_cap".into(),
                    observed: format!("max_tokens {m} exceeds the cap {}", run.max_tokens),
                });
                break;
            }
            _ => {}
        }
    }
    if let Some(c) = obs
        .llm_calls
        .iter()
        .find(|c| c.prompt_bytes > run.upstream_prompt_bytes)
    {
        out.push(Violation {
            invariant: Invariant::Cost,
            severity: Severity::Medium,
            kind: "prompt_over_cap".into(),
            observed: format!(
                "a {}-byte prompt went upstream; the cap is {}",
                c.prompt_bytes, run.upstream_prompt_bytes
            ),
        });
    }
}
