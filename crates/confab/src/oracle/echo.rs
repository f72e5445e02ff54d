//! ECHO: no secret in the response, the logs or the prompt sent upstream. Secrets are named
//! by their origin (docs/ARCHITECTURE.md §4): the caller's token from the header or from the
//! URL, the model key, the signing key, the system prompt, and credentials the target showed
//! the model.

use super::{
    CaseFacts, Invariant, Place, RunFacts, SecretName, Severity, Violation, ViolationKind,
};
use crate::guard::scrub::{MIN_SECRET_LEN, ScrubConfig, Scrubber, ScrubberBuilder, SecretKind};
use crate::guard::token_forms::TOKEN_SIGNATURE;
use crate::observation::Observation;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The ECHO finders that stay the same from case to case (the model key, the signing secret,
/// the target's system prompt), built once per run and per system prompt: building an
/// automaton costs far more than scanning a response with it. Only the caller's token
/// changes per case; its finder is small.
#[derive(Default)]
pub struct EchoFinders {
    by_prompt: std::sync::Mutex<HashMap<Option<String>, Arc<Scrubber>>>,
    /// Credentials found in each system prompt: the same prompt every case, scanned once.
    shown_by_prompt: std::sync::Mutex<HashMap<String, Arc<Vec<String>>>>,
}

/// A target whose system prompt changes per request (a name in it, say) is not cached past
/// this many prompts: its finders are built per case instead.
const MAX_CACHED_PROMPTS: usize = 64;

impl EchoFinders {
    /// The credentials the target showed the model in this system prompt.
    fn shown_in_prompt(&self, system_prompt: &str, planted: &[&str]) -> Arc<Vec<String>> {
        let mut cache = self
            .shown_by_prompt
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(system_prompt) {
            return found.clone();
        }
        let found = Arc::new(crate::generators::output::shown_credentials(
            system_prompt,
            &[],
            planted,
        ));
        if cache.len() < MAX_CACHED_PROMPTS {
            cache.insert(system_prompt.to_owned(), found.clone());
        }
        found
    }

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

/// A scrubber that finds exactly the registered secrets (no patterns, no PII), so ECHO never
/// fires on text the run did not plant.
fn shared_finder(run: &RunFacts<'_>, system_prompt: Option<&str>) -> Option<Scrubber> {
    let mut b = ScrubberBuilder::new().config(ScrubConfig::literals_only());
    b.secret(
        SecretKind::LlmApiKey,
        SecretName::LlmApiKey.label(),
        run.llm_api_key,
    )
    .ok()?;
    if let Some(s) = run.signing_secret {
        // A secret too short to register is skipped rather than failing the whole check.
        let _ = b.secret(SecretKind::SigningKey, SecretName::SigningKey.label(), s);
    }
    if let Some(p) = system_prompt {
        let _ = b.system_prompt(SecretName::SystemPrompt.label(), p.as_bytes().to_vec());
    }
    b.build().ok()
}

/// The forms of a shown credential that count as a leak: raw, base64, hex and percent.
fn credential_forms(c: &str) -> [String; 4] {
    use base64::Engine;
    [
        c.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(c),
        c.bytes().map(|b| format!("{b:02x}")).collect(),
        c.bytes().map(|b| format!("%{b:02X}")).collect(),
    ]
}

pub(super) fn echo(
    case: &CaseFacts<'_>,
    obs: &Observation,
    streamed: Option<String>,
    run: &RunFacts<'_>,
    out: &mut Vec<Violation>,
) {
    // What the target itself sent upstream: its system prompt and the tool results.
    let requests: Vec<crate::wire::ChatRequest> = obs
        .llm_calls
        .iter()
        .filter_map(|c| crate::wire::parse_call(&c.request.uri, c.request.body.as_bytes()).ok())
        .collect();
    let system_prompt = requests.first().map(|r| r.system_prompt.clone());
    let shown = if requests.is_empty() {
        Vec::new()
    } else {
        let key = String::from_utf8_lossy(run.llm_api_key.expose()).into_owned();
        let signing = run
            .signing_secret
            .map(|s| String::from_utf8_lossy(s.expose()).into_owned());
        let mut planted: Vec<&str> = vec![key.as_str()];
        planted.extend(signing.as_deref());
        planted.extend(case.token);
        planted.extend(run.resources.iter().map(|(_, _, m)| m.as_str()));
        let tool_results: Vec<String> = requests
            .iter()
            .flat_map(|r| r.tool_results.iter().cloned())
            .collect();
        let mut shown = run
            .echo
            .shown_in_prompt(system_prompt.as_deref().unwrap_or_default(), &planted)
            .as_ref()
            .clone();
        if !tool_results.is_empty() {
            for c in crate::generators::output::shown_credentials("", &tool_results, &planted) {
                if !shown.contains(&c) {
                    shown.push(c);
                }
            }
        }
        shown
    };
    let mut places: Vec<(Place, String)> = vec![
        (Place::ResponseBody, obs.response_body.clone()),
        (
            Place::ResponseHeaders,
            obs.response_headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}\n"))
                .collect(),
        ),
        (Place::TargetLogs, obs.logs.join("\n")),
    ];
    // What a streaming client shows, where the framing cut a span apart.
    if let Some(text) = streamed {
        places.push((Place::ResponseBody, text));
    }
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
    // The caller's token is named by how it travelled: one the client put in the URL is a
    // note about the client's channel where it is merely printed back.
    let token_name = |label: &str| match (case.token_in_query, label == TOKEN_SIGNATURE) {
        (false, false) => SecretName::BearerToken,
        (false, true) => SecretName::BearerTokenSignature,
        (true, false) => SecretName::QueryToken,
        (true, true) => SecretName::QueryTokenSignature,
    };
    // Encoded once per check, not once per place searched.
    let shown_forms: Vec<(&String, [String; 4])> =
        shown.iter().map(|c| (c, credential_forms(c))).collect();
    let find_all = |shared: &Scrubber, text: &str| -> Vec<(SecretName, String)> {
        let mut found: Vec<(SecretName, String)> = shared
            .find(text.as_bytes())
            .into_iter()
            .filter_map(|f| {
                let label = f.label.unwrap_or_else(|| f.rule.to_owned());
                Some((SecretName::from_label(&label)?, f.description))
            })
            .collect();
        if let Some(t) = &token {
            found.extend(
                t.find(text.as_bytes())
                    .into_iter()
                    .map(|f| (token_name(f.label), f.description)),
            );
        }
        for (c, forms) in &shown_forms {
            if let Some(form) = forms.iter().position(|f| text.contains(f.as_str())) {
                let how = ["raw", "base64", "hex", "percent-encoded"][form];
                found.push((
                    SecretName::ShownCredential,
                    format!("{} bytes, {how}", c.len()),
                ));
            }
        }
        found
    };
    let mut reported = BTreeSet::new();
    for (place, text) in &places {
        for (secret, description) in find_all(&shared, text) {
            if !reported.insert((Some(*place), secret)) {
                continue;
            }
            let severity = match secret {
                SecretName::SystemPrompt => Severity::Medium,
                // The client's own token in its own URL, printed back to it or to the access
                // log: the channel the client chose is the leak.
                SecretName::QueryToken | SecretName::QueryTokenSignature => Severity::Low,
                _ => Severity::High,
            };
            out.push(Violation {
                invariant: Invariant::Echo,
                severity,
                kind: ViolationKind::SecretIn(secret, *place),
                observed: format!(
                    "{} ({description}) found in the {}",
                    secret.label(),
                    place.text()
                ),
            });
        }
    }
    // Upstream: the prompt legitimately carries the system prompt and the credentials the
    // target chose to show, never a token or key. A finder without the prompt, so a token
    // inside the system prompt is not merged into a prompt span; built only when the target
    // called the model.
    if obs.llm_calls.is_empty() {
        return;
    }
    let Some(upstream) = run.echo.shared(run, None) else {
        return;
    };
    for call in &obs.llm_calls {
        for (secret, description) in find_all(&upstream, &call.request.body) {
            if secret == SecretName::ShownCredential {
                continue;
            }
            if reported.insert((None, secret)) {
                out.push(Violation {
                    invariant: Invariant::Echo,
                    severity: Severity::High,
                    kind: ViolationKind::SecretSentUpstream(secret),
                    observed: format!(
                        "{} ({description}) is in the prompt sent to the model",
                        secret.label()
                    ),
                });
            }
        }
    }
}
