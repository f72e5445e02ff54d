//! Before the baselines: the principals' logins (each when first needed, in spec order) and
//! the `[[setup]]` steps, in order (docs/ARCHITECTURE.md §3b). A login's token is verified
//! with `[auth]`, and every token confab mints for that principal from then on starts from its
//! claims, re-signed. Values saved by steps become `{setup.NAME}`; a `{marker}` a step stores
//! becomes content owned by the step's principal, which OWNERSHIP then looks for in every
//! response to anyone else.

use super::request::{HttpRequest, send_request};
use super::run::{CampaignError, Run};
use crate::generators::token::{TokenFamily, TokenPrincipal, TokenRecipe};
use crate::guard::{ScopeSet, unix_now};
use crate::observation::Observation;
use crate::spec::template::{Place, Unresolved, Vars, form_encode, json_text, placeholders};
use crate::spec::{Login, Method};
use base64::Engine as _;
use std::collections::BTreeMap;

/// Runs the setup steps and every login not yet made, then fills the principals'
/// placeholders (`{setup.NAME}` in `owns`, `claims`, `credential`, `headers`).
pub(super) async fn prepare(run: &mut Run) -> Result<(), CampaignError> {
    for i in 0..run.spec.setup.len() {
        step(run, i).await?;
    }
    for p in 0..run.spec.principals.len() {
        ensure_login(run, p).await?;
    }
    let vars = run.vars.clone();
    let v = Vars {
        run: Some(&vars),
        ..Vars::default()
    };
    for p in 0..run.spec.principals.len() {
        let mut missing = Vec::new();
        run.spec.principals[p].resolve(&v, &mut missing);
        if let Some(Unresolved(name)) = missing.first() {
            return Err(CampaignError::Setup {
                key: format!("principal[{p}]"),
                message: format!(
                    "{{{name}}} has no value: no [[setup]] step saves it (save = {{ NAME = \"/json/pointer\" }})"
                ),
            });
        }
        if run.logins[p].is_none() {
            let tp = token_principal(run, p, None);
            for m in &mut run.mint {
                m.set_principal(p, tp.clone());
            }
        }
    }
    Ok(())
}

/// The caller a principal's tokens are minted for: its login's claims (when it logged in),
/// `[auth.claims]` and its own `claims` (placeholders filled with what is known now).
fn token_principal(
    run: &Run,
    p: usize,
    login: Option<&serde_json::Map<String, serde_json::Value>>,
) -> TokenPrincipal {
    let principal = &run.spec.principals[p];
    let vars = Vars {
        run: Some(&run.vars),
        ..Vars::default()
    };
    let mut missing = Vec::new();
    let mut claims = login.cloned().unwrap_or_default();
    for (k, v) in run.spec.auth.claims.iter().chain(principal.claims.iter()) {
        claims.insert(k.clone(), vars.fill_json(v, &mut missing));
    }
    let subject = run.spec.subject_claim().to_owned();
    let sub = match claims.remove(&subject) {
        Some(serde_json::Value::String(s)) => s,
        Some(v) if !v.is_null() => v.to_string(),
        _ => principal.name.clone(),
    };
    TokenPrincipal {
        sub,
        scope: ScopeSet::parse(&principal.scope),
        claims,
        from_login: login.is_some(),
    }
}

/// Logs principal `p` in, once: the request, the token at its pointer, verified by the
/// guard; then its tokens start from the login's claims and its bound claims are registered.
async fn ensure_login(run: &mut Run, p: usize) -> Result<(), CampaignError> {
    let Some(login) = run.spec.principals[p].login.clone() else {
        return Ok(());
    };
    if run.logins[p].is_some() {
        return Ok(());
    }
    let key = format!("principal[{p}].login");
    let name = run.spec.principals[p].name.clone();
    let fail = |message: String| CampaignError::Setup {
        key: key.clone(),
        message: format!("logging in {name}: {message}"),
    };
    let vars = run.vars.clone();
    let v = Vars {
        run: Some(&vars),
        ..Vars::default()
    };
    let (obs, label) = send_step(
        run,
        &v,
        Some(p),
        false,
        &LoginRequest(&login).into(),
        &BTreeMap::new(),
    )
    .await;
    if !obs.status.is_some_and(|s| (200..300).contains(&s)) {
        return Err(fail(format!("{label} answered {}", answer(run, &obs))));
    }
    let json: serde_json::Value = serde_json::from_str(&obs.response_body).map_err(|_| {
        fail(format!(
            "{label} did not answer JSON: {}",
            answer(run, &obs)
        ))
    })?;
    let token = json
        .pointer(&login.token)
        .and_then(|t| t.as_str())
        .ok_or_else(|| {
            fail(format!(
                "{label}'s answer has no string at token = {:?}: {}",
                login.token,
                answer(run, &obs)
            ))
        })?
        .to_owned();
    run.guard.verify_token(&token, unix_now()).map_err(|r| {
        fail(format!(
            "the token {label} gave does not verify with [auth] ({r}): check alg, secret, \
                 issuer, audience and subject_claim (now {:?})",
            run.spec.subject_claim()
        ))
    })?;
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p64| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p64)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b).ok())
        .ok_or_else(|| fail(format!("the token {label} gave has no JSON claims")))?;
    let tp = token_principal(run, p, Some(&claims));
    let bound: Vec<(String, Option<serde_json::Value>)> = run
        .spec
        .auth
        .bound_claims
        .iter()
        .map(|c| (c.clone(), claims.get(c).cloned()))
        .collect();
    run.guard.bind_session(&tp.sub, bound);
    for m in &mut run.mint {
        m.set_principal(p, tp.clone());
    }
    run.logins[p] = Some(token);
    Ok(())
}

/// One `[[setup]]` step.
async fn step(run: &mut Run, i: usize) -> Result<(), CampaignError> {
    let s = run.spec.setup[i].clone();
    let principal = match &s.as_ {
        Some(name) => {
            let p = run
                .spec
                .principal_index(name)
                .ok_or_else(|| CampaignError::Setup {
                    key: format!("setup[{i}].as"),
                    message: format!("{name:?} is not a [[principal]]"),
                })?;
            ensure_login(run, p).await?;
            Some(p)
        }
        None => None,
    };
    let marker = format!("cfbmark-{}-s{i}-{}", run.run_tag, super::run::random_hex(6));
    let vars = run.vars.clone();
    let v = Vars {
        run: Some(&vars),
        marker: Some(&marker),
        ..Vars::default()
    };
    let request = StepRequest {
        method: s.method,
        path: &s.path,
        body: s.body.as_ref(),
        form: s.form.as_ref(),
        file: s.body_file_json.as_ref(),
    };
    let (obs, label) = send_step(run, &v, principal, true, &request, &s.headers).await;
    let key = format!("setup[{i}]");
    let ok = match s.expect {
        Some(code) => obs.status == Some(code),
        None => obs.status.is_some_and(|c| (200..300).contains(&c)),
    };
    if !ok {
        let want = s.expect.map_or("a 2xx".to_owned(), |c| c.to_string());
        return Err(CampaignError::Setup {
            key,
            message: format!(
                "{label} should answer {want}; it answered {}",
                answer(run, &obs)
            ),
        });
    }
    let json: Option<serde_json::Value> = serde_json::from_str(&obs.response_body).ok();
    let mut first_saved = None;
    for (name, pointer) in &s.save {
        let value = json
            .as_ref()
            .and_then(|j| j.pointer(pointer))
            .filter(|v| !v.is_null())
            .map(json_text)
            .ok_or_else(|| CampaignError::Setup {
                key: format!("setup[{i}].save"),
                message: format!(
                    "{label}'s answer has nothing at {pointer:?} for {{setup.{name}}}: {}",
                    answer(run, &obs)
                ),
            })?;
        first_saved.get_or_insert_with(|| value.clone());
        run.vars.insert(format!("setup.{name}"), value);
    }
    if step_uses_marker(&s) {
        let owner = principal.map_or_else(
            || "(no principal)".to_owned(),
            |p| run.spec.principals[p].name.clone(),
        );
        run.resources
            .push((first_saved.unwrap_or(key), owner, marker));
    }
    Ok(())
}

fn step_uses_marker(s: &crate::spec::SetupStep) -> bool {
    let mut text = s.path.clone();
    for t in [&s.body, &s.form].into_iter().flatten() {
        text.push_str(&t.to_string());
    }
    if let Some(j) = &s.body_file_json {
        text.push_str(&j.to_string());
    }
    text.extend(s.headers.values().map(String::as_str));
    placeholders(&text).iter().any(|p| p == "marker")
}

/// What a setup step or a login sends.
struct StepRequest<'a> {
    method: Method,
    path: &'a str,
    body: Option<&'a toml::Table>,
    form: Option<&'a toml::Table>,
    file: Option<&'a serde_json::Value>,
}

struct LoginRequest<'a>(&'a Login);

impl<'a> From<LoginRequest<'a>> for StepRequest<'a> {
    fn from(l: LoginRequest<'a>) -> StepRequest<'a> {
        StepRequest {
            method: l.0.method,
            path: &l.0.path,
            body: l.0.body.as_ref(),
            form: l.0.form.as_ref(),
            file: None,
        }
    }
}

/// Sends a step (as `principal`, with its token when `with_token`); returns what came back
/// and a label (`POST /path as alice`).
async fn send_step(
    run: &Run,
    vars: &Vars<'_>,
    principal: Option<usize>,
    with_token: bool,
    req: &StepRequest<'_>,
    headers: &BTreeMap<String, String>,
) -> (Observation, String) {
    let mut missing = Vec::new();
    let path = vars.fill_path(req.path, &mut missing);
    let mut out_headers: Vec<(String, String)> = Vec::new();
    if let Some(p) = principal {
        for (k, v) in &run.spec.principals[p].headers {
            out_headers.push((k.clone(), vars.fill(v, Place::Text, &mut missing)));
        }
        if with_token {
            let token = match &run.logins[p] {
                Some(t) => t.clone(),
                None => {
                    let recipe = TokenRecipe {
                        family: TokenFamily::Valid,
                        principal: p as u32,
                        variant: 0,
                        skew_s: 0,
                        jti: 0,
                    };
                    recipe
                        .mint(&run.mint[0], unix_now())
                        .token
                        .unwrap_or_default()
                }
            };
            out_headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
    }
    for (k, v) in headers {
        out_headers.push((k.clone(), vars.fill(v, Place::Text, &mut missing)));
    }
    let (body, content_type) = if let Some(b) = req.body {
        (
            Some(vars.fill_toml(b, &mut missing).to_string()),
            "application/json",
        )
    } else if let Some(f) = req.file {
        (
            Some(vars.fill_json(f, &mut missing).to_string()),
            "application/json",
        )
    } else if let Some(f) = req.form {
        (
            Some(form_encode(&vars.fill_toml(f, &mut missing))),
            "application/x-www-form-urlencoded",
        )
    } else {
        (None, "application/json")
    };
    if body.is_some() {
        out_headers.push(("content-type".to_owned(), content_type.to_owned()));
    }
    let who = principal.map_or_else(
        || "without a token".to_owned(),
        |p| format!("as {}", run.spec.principals[p].name),
    );
    let label = format!("{} {} {who}", req.method, req.path);
    let obs = send_request(
        run,
        HttpRequest {
            method: req.method.http(),
            path,
            headers: out_headers,
            body: body.map(String::into_bytes),
        },
    )
    .await;
    (obs, label)
}

/// The status and an excerpt of the body, with anything token-shaped and the run's secrets
/// masked.
pub(super) fn answer(run: &Run, obs: &Observation) -> String {
    match obs.status {
        None => format!(
            "nothing ({})",
            obs.transport_error.as_deref().unwrap_or("no response")
        ),
        Some(s) => format!("{s} {}", excerpt(run, &obs.response_body)),
    }
}

/// At most 300 characters of `body`, JWTs and the run's secrets masked.
pub(super) fn excerpt(run: &Run, body: &str) -> String {
    let mut text: String = body.chars().take(300).collect();
    if body.chars().count() > 300 {
        text.push('…');
    }
    let mut secrets: Vec<String> = vec![String::from_utf8_lossy(run.llm_key.expose()).into_owned()];
    if let Some(s) = run.vars.get("jwt_secret") {
        secrets.push(s.clone());
    }
    secrets.extend(run.logins.iter().flatten().cloned());
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        text = text.replace(s.as_str(), "[masked]");
    }
    mask_jwts(&text)
}

fn mask_jwts(s: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("eyJ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .char_indices()
            .find(|&(_, c)| !(is_b64(c) || c == '.'))
            .map_or(tail.len(), |(i, _)| i);
        if tail[..end].matches('.').count() >= 2 {
            out.push_str("[token]");
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::mask_jwts;

    #[test]
    fn excerpts_mask_tokens() {
        assert_eq!(
            mask_jwts("{\"token\":\"eyJhbGc.eyJpZCI6.c2ln\",\"x\":\"eyJ\"}"),
            "{\"token\":\"[token]\",\"x\":\"eyJ\"}"
        );
    }
}
