//! The oracle: every invariant of docs/ARCHITECTURE.md §4 as a pure function over what a case was, what
//! the reference guard decided for it, and what the harness observed. No I/O.

mod echo;
mod kind;
mod stream;

pub use echo::EchoFinders;
pub use kind::{Place, SecretName, ViolationKind};

use crate::generators::token::{MadeBy, TokenFamily};
use crate::guard::capability::{Capability, Method};
use crate::guard::provenance::Untrusted;
use crate::guard::{Authenticated, Rejection, Secret};
use crate::observation::{Differential, Observation, SinkHost};
use serde::{Deserialize, Serialize};
use std::fmt;

// Defined in the target contract so that a target (the reference one's flaws) can name them too.
pub use confab_target::Invariant;

/// Severity by what an attacker gains (docs/ARCHITECTURE.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A strictness note: accepting it gives an attacker nothing they did not have (a
    /// holder's own token in another form, an RFC status rule).
    Low,
    /// A policy the issuer set was ignored (lifetime, audience, issuer, scope) for a token
    /// the issuer made, or the system prompt leaked.
    Medium,
    /// An attacker gains access, data or a secret with nothing but what they can make alone.
    High,
}

impl Severity {
    /// The binding lower-case name used in reports (`low`, `medium`, `high`).
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
    /// The invariant that did not hold.
    pub invariant: Invariant,
    /// How much it gives an attacker.
    pub severity: Severity,
    /// A short stable key within the invariant (serialised as e.g. `accepted_alg_none`);
    /// findings with the same invariant, endpoint and kind are grouped.
    pub kind: ViolationKind,
    /// What was observed, with secrets masked.
    pub observed: String,
}

impl Violation {
    /// OWASP categories: the invariant's, except that ECHO's follow the secret (LLM07, system
    /// prompt leakage, only for the system prompt).
    pub fn owasp(&self) -> &'static [&'static str] {
        const DISCLOSURE: &[&str] = &["LLM02:2025 Sensitive Information Disclosure"];
        const PROMPT: &[&str] = &["LLM07:2025 System Prompt Leakage"];
        match &self.kind {
            ViolationKind::SecretIn(SecretName::SystemPrompt, _)
            | ViolationKind::SecretSentUpstream(SecretName::SystemPrompt) => PROMPT,
            ViolationKind::SecretIn(..) | ViolationKind::SecretSentUpstream(_) => DISCLOSURE,
            _ => self.invariant.owasp(),
        }
    }
}

/// What the oracle knows about the case (all plain data).
pub struct CaseFacts<'a> {
    /// The endpoint's `name` in the spec.
    pub endpoint_name: &'a str,
    /// The endpoint reaches the model.
    pub llm: bool,
    /// The endpoint's `capabilities` (`GET /docs/{id}`, …): the downstream calls it may make.
    pub capabilities: &'a [String],
    /// The token family the case's credential was made by.
    pub token_family: TokenFamily,
    /// The caller's bearer token, if the case carried one (in any form).
    pub token: Option<&'a str>,
    /// The token travelled in the URL (`?access_token=`), put there by the client itself.
    pub token_in_query: bool,
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

impl CaseFacts<'_> {
    /// What making the case's credential takes: its family's class, except that a request
    /// carrying no token at all takes nothing.
    pub fn made_by(&self) -> MadeBy {
        match self.token {
            None => MadeBy::Nothing,
            Some(_) => self.token_family.made_by(),
        }
    }
}

/// What the oracle knows about the run.
pub struct RunFacts<'a> {
    /// The model key the run gave the target (`{llm_api_key}`): never to be echoed.
    pub llm_api_key: &'a Secret,
    /// The token-signing secret, for HMAC issuers: never to be echoed.
    pub signing_secret: Option<&'a Secret>,
    /// `(resource id, owner, content marker)` of every resource the sink serves.
    pub resources: &'a [(String, String, String)],
    /// `[limits] llm_calls_per_request`: the COST cap on model calls per request.
    pub llm_calls_per_request: u32,
    /// `[limits] max_tokens`: the COST cap on `max_tokens` a call may ask for.
    pub max_tokens: u64,
    /// `[limits] upstream_prompt_bytes`: the COST cap on one prompt's size.
    pub upstream_prompt_bytes: usize,
    /// The run's cached ECHO finders.
    pub echo: &'a EchoFinders,
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

/// The target acted on the request: it called the model or the downstream API.
fn side_effects(obs: &Observation) -> bool {
    !obs.llm_calls.is_empty() || !obs.sink_requests.is_empty()
}

/// Whether the harness should send the same request under the principal's valid token and
/// under none before judging ([`Differential`]): only when the response alone cannot tell an
/// acceptance from a refusal (a 4xx other than a token refusal, without side effects), or a
/// refusal of a mutated body from a wrong status.
pub fn needs_differential(
    case: &CaseFacts<'_>,
    verdict: &Result<Authenticated, Rejection>,
    obs: &Observation,
) -> bool {
    let Some(s) = obs.status else { return false };
    if !(400..500).contains(&s) || side_effects(obs) || s == 401 {
        return false;
    }
    match verdict {
        Ok(_) => false,
        Err(Rejection::InsufficientScope) => case.body_mutated && s != 403,
        Err(_) => !target_refused_token(obs) || case.body_mutated,
    }
}

/// How severe accepting a request the guard rejects is (docs/ARCHITECTURE.md §4): by what
/// making its credential takes, and for the issuer's own tokens by whether a policy claim
/// (lifetime, issuer, audience, subject, scope) was ignored or only a strictness rule.
pub fn acceptance_severity(made_by: MadeBy, r: Rejection) -> Severity {
    match made_by {
        MadeBy::Nothing => Severity::High,
        MadeBy::Holder => Severity::Low,
        MadeBy::Issuer => match r {
            Rejection::MissingExp
            | Rejection::Expired
            | Rejection::NotYetValid
            | Rejection::IssuerMismatch
            | Rejection::AudienceMismatch
            | Rejection::MissingSub
            | Rejection::SessionMismatch
            | Rejection::InsufficientScope => Severity::Medium,
            _ => Severity::Low,
        },
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
        Ok(_) => agree(case, obs, &mut out),
    }
    provenance(case, verdict.is_ok(), obs, &mut out);
    // What a streaming client shows: a span the framing cut apart is whole again there.
    let streamed = stream::reassemble(obs);
    ownership(case, obs, streamed.as_deref(), run, &mut out);
    agency(case, obs, &mut out);
    echo::echo(case, obs, streamed, run, &mut out);
    cost(obs, run, &mut out);
    out
}

/// A valid request refused. Not a finding: a refusal (401, 403, 404) of a resource the
/// principal does not own, or of a token the guard accepts only by a non-standard convention.
fn agree(case: &CaseFacts<'_>, obs: &Observation, out: &mut Vec<Violation>) {
    if !target_refused_token(obs)
        || case.token_family.accepted_by_convention_only()
        || !case.owned.iter().any(|o| o == case.resource)
    {
        return;
    }
    out.push(Violation {
        invariant: Invariant::Agree,
        severity: Severity::Low,
        kind: ViolationKind::ValidRequestRefused,
        observed: format!(
            "the guard accepts this token for the endpoint's scope; the target answered {}",
            status_text(obs)
        ),
    });
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
        (Some(s), _) if s >= 500 => (
            ViolationKind::ServerError,
            format!("the target answered {s}"),
        ),
        (None, true) => (
            ViolationKind::Hang,
            format!("no response within {} ms", obs.elapsed_ms),
        ),
        (None, false) => (ViolationKind::NoResponse, status_text(obs)),
        _ => return,
    };
    out.push(Violation {
        invariant: Invariant::Robust,
        severity: Severity::High,
        kind,
        observed,
    });
}

/// A refusal whose status the request's body explains, not the token: the same status the
/// same malformed body gets under the principal's valid token (a body validated before
/// authentication), or, with no comparison at hand, a 400 or 422.
fn body_explains(case: &CaseFacts<'_>, s: u16, diff: Option<&Differential>) -> bool {
    case.body_mutated
        && match diff {
            Some(d) => d.valid == Some(s) || d.none == Some(s),
            None => matches!(s, 400 | 422),
        }
}

fn authz(case: &CaseFacts<'_>, obs: &Observation, out: &mut Vec<Violation>) {
    match obs.status {
        Some(s) if case.allow_listed && (200..300).contains(&s) => out.push(Violation {
            invariant: Invariant::Authz,
            severity: Severity::High,
            kind: ViolationKind::PrincipalNotAllowedAccepted,
            observed: format!(
                "{} is not in endpoint {}'s allow list; the target answered {s}",
                case.principal, case.endpoint_name
            ),
        }),
        Some(401 | 403 | 404) if case.allow_listed => {}
        Some(s) if (200..300).contains(&s) => out.push(Violation {
            invariant: Invariant::Authz,
            severity: acceptance_severity(case.made_by(), Rejection::InsufficientScope),
            kind: ViolationKind::MissingScopeAccepted,
            observed: format!("the token lacks the endpoint's scope; the target answered {s}"),
        }),
        Some(403) if obs
            .header("www-authenticate")
            .is_some_and(|v| v.contains("insufficient_scope")) => {}
        Some(s @ (400..=499)) if !body_explains(case, s, obs.differential.as_ref()) => {
            out.push(Violation {
                invariant: Invariant::Authz,
                severity: Severity::Low,
                kind: ViolationKind::StatusNotRfc6750,
                observed: format!(
                    "refused with {s}; RFC 6750 wants 403 with WWW-Authenticate error=\"insufficient_scope\""
                ),
            })
        }
        _ => {}
    }
}

/// Did the target accept the request by its response? A 2xx or 3xx did. A 4xx that is not a
/// token refusal did only if it is what the same request gets under the principal's valid
/// token and not what it gets under none (docs/ARCHITECTURE.md §4): a 422 from body
/// validation before authentication, or a 404 for another principal's resource, is the same
/// for every credential. Without that comparison, only a token refusal or a 400/403 counts
/// as a refusal (the conservative reading).
fn accepted_by_response(obs: &Observation) -> bool {
    let Some(s) = obs.status else { return false };
    match s {
        200..=399 => true,
        401 => false,
        400..=499 if target_refused_token(obs) => false,
        400..=499 => match &obs.differential {
            Some(d) => d.valid == Some(s) && d.none != Some(s),
            None => !matches!(s, 400 | 403),
        },
        _ => false,
    }
}

fn authn(case: &CaseFacts<'_>, r: Rejection, obs: &Observation, out: &mut Vec<Violation>) {
    let accepted = accepted_by_response(obs);
    // Every consequence of an acceptance has the acceptance's severity, never more.
    let severity = acceptance_severity(case.made_by(), r);
    if accepted {
        out.push(Violation {
            invariant: Invariant::Authn,
            severity,
            kind: ViolationKind::Accepted(r),
            observed: format!(
                "the guard rejects this request ({}, family {}, made by {}); the target answered {}",
                r.as_str(),
                case.token_family.name(),
                case.made_by().name(),
                status_text(obs)
            ),
        });
    } else if let Some(s) = obs.status
        && (400..500).contains(&s)
        && s != r.status()
        && !body_explains(case, s, obs.differential.as_ref())
    {
        out.push(Violation {
            invariant: Invariant::Authn,
            severity: Severity::Low,
            kind: ViolationKind::StatusNotRfc6750,
            observed: format!(
                "refused with {s}; RFC 6750 wants {} for {}",
                r.status(),
                r.as_str()
            ),
        });
    }
    if !obs.llm_calls.is_empty() {
        // Without a token means without one in any form (no header, an empty credential,
        // another scheme's credential): a valid token under another scheme word or in the
        // URL is the holder's own credential, not its absence.
        let no_credentials = case.token.is_none();
        if no_credentials && case.llm {
            out.push(Violation {
                invariant: Invariant::UnauthLlm,
                severity,
                kind: ViolationKind::ModelCalledWithoutToken,
                observed: format!(
                    "a request without bearer credentials caused {} model call(s)",
                    obs.llm_calls.len()
                ),
            });
        } else {
            out.push(Violation {
                invariant: Invariant::Authn,
                severity,
                kind: ViolationKind::ModelCalledBeforeAuth,
                observed: format!(
                    "a request the guard rejects ({}, family {}, made by {}) caused {} model call(s)",
                    r.as_str(),
                    case.token_family.name(),
                    case.made_by().name(),
                    obs.llm_calls.len()
                ),
            });
        }
    }
    if !accepted && !obs.sink_requests.is_empty() {
        out.push(Violation {
            invariant: Invariant::Authn,
            severity,
            kind: ViolationKind::DownstreamCalledBeforeAuth,
            observed: format!(
                "a request the guard rejects ({}, family {}, made by {}) caused {} downstream request(s)",
                r.as_str(),
                case.token_family.name(),
                case.made_by().name(),
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
    let known = |v: &str| v == case.resource || case.owned.iter().any(|o| o == v);
    for req in &obs.sink_requests {
        if req.host != SinkHost::Downstream {
            continue;
        }
        if let Some(id) = &req.resource
            && !known(id)
        {
            let exists = req.status != 404;
            out.push(Violation {
                invariant: Invariant::Provenance,
                severity: if exists {
                    Severity::High
                } else {
                    Severity::Medium
                },
                kind: if exists {
                    ViolationKind::ModelIdOfAnotherTenant
                } else {
                    ViolationKind::ModelInventedId
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
            continue;
        }
        // Whatever the shape: a path segment or query value of the raw request that only
        // the model supplied (the caller never sent it).
        if obs.model_ids.is_empty() {
            continue;
        }
        if let Some(v) = crate::observation::target_values(&req.request.uri)
            .into_iter()
            .find(|v| !known(v) && obs.model_ids.iter().any(|m| m == v))
        {
            out.push(Violation {
                invariant: Invariant::Provenance,
                severity: Severity::Medium,
                kind: ViolationKind::ModelInventedId,
                observed: format!(
                    "{} {} under {}'s token: {v:?} came from the model, not the request or {}'s own ids",
                    req.request.method,
                    req.request.path(),
                    case.principal,
                    case.principal
                ),
            });
        }
    }
}

fn ownership(
    case: &CaseFacts<'_>,
    obs: &Observation,
    streamed: Option<&str>,
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
        let m = marker.as_str();
        if obs.response_body.contains(m)
            || headers.contains(m)
            || streamed.is_some_and(|t| t.contains(m))
        {
            out.push(Violation {
                invariant: Invariant::Ownership,
                severity: Severity::High,
                kind: ViolationKind::OtherTenantContent,
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
                        ViolationKind::TokenSentToForeignHost
                    } else {
                        ViolationKind::RequestToInventedUrl
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
                // The path as the downstream server reads it (dot segments resolved).
                let normal = crate::observation::normalize_path(r.path());
                let path = Untrusted::from_llm(normal.clone());
                let allowed = method
                    .is_some_and(|m| caps.iter().any(|c| c.match_request(m, &path).is_some()));
                if !allowed {
                    out.push(Violation {
                        invariant: Invariant::Agency,
                        severity: Severity::High,
                        kind: ViolationKind::CapabilityExceeded(r.method.to_ascii_lowercase()),
                        observed: format!(
                            "{} {} is outside endpoint {}'s capabilities {:?}",
                            r.method, normal, case.endpoint_name, case.capabilities
                        ),
                    });
                }
            }
        }
    }
}

fn cost(obs: &Observation, run: &RunFacts<'_>, out: &mut Vec<Violation>) {
    if obs.llm_calls.iter().any(|c| c.overrun) {
        out.push(Violation {
            invariant: Invariant::Cost,
            severity: Severity::Medium,
            kind: ViolationKind::ModelCallsOverCap,
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
                    kind: ViolationKind::MaxTokensUnset,
                    observed: "a model call without max_tokens: the answer's length is unbounded"
                        .into(),
                });
                break;
            }
            Some(m) if m > run.max_tokens => {
                out.push(Violation {
                    invariant: Invariant::Cost,
                    severity: Severity::Medium,
                    kind: ViolationKind::MaxTokensOverCap,
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
            kind: ViolationKind::PromptOverCap,
            observed: format!(
                "a {}-byte prompt went upstream; the cap is {}",
                c.prompt_bytes, run.upstream_prompt_bytes
            ),
        });
    }
}
