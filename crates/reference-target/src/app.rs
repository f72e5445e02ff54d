//! The application: its state ([`App`]), the router both routes hang on ([`try_router`]), and
//! what every request goes through first: logging, error responses, authentication and the
//! audit line. The routes live in `docs` and `assist`.

use crate::assist::assist;
use crate::config::{ReferenceConfig, ReferenceError};
use crate::docs::read_doc;
use crate::llm::{LlmError, ToolCall};
use crate::log::lock;
use crate::{MAX_OWNERS, READ_SCOPE, SYSTEM_PROMPT};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use confab_guard::audit::{AuditLog, AuditRecord};
use confab_guard::bearer::extract_token;
use confab_guard::capability::{
    ArgSpec, ArgType, Capability, EndpointPolicy, HostAllowlist, MethodScopes, RequestDenial,
    ToolSpec,
};
use confab_guard::provenance::{IdRejection, PermissionStore, ResourceKind};
use confab_guard::scrub::{Scrubber, ScrubberBuilder, SecretKind, marker};
use confab_guard::{Rejection, ScopeSet, Secret, unix_now};
use confab_target::Outbound;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Who owns which document, as the downstream said. A [`PermissionStore`] for the guard's
/// validator:
///
/// * `permits`: not known to belong to someone else. An unknown id is permitted *to be
///   looked up* when the user names it; the owner check on the answer then decides.
/// * `owns`: known to belong to the principal. Only such ids (and the ones the user
///   supplied) may come from the model.
#[derive(Default)]
pub(crate) struct OwnerBook {
    owners: Mutex<HashMap<String, String>>,
}

impl OwnerBook {
    pub(crate) fn learn(&self, id: &str, owner: &str) {
        let mut owners = lock(&self.owners);
        if owners.len() >= MAX_OWNERS && !owners.contains_key(id) {
            // Forgetting only makes the target stricter (fewer ids count as owned).
            owners.clear();
        }
        owners.insert(id.to_owned(), owner.to_owned());
    }
}

impl PermissionStore for OwnerBook {
    fn permits(&self, principal: &str, _kind: &ResourceKind, id: &str) -> bool {
        lock(&self.owners).get(id).is_none_or(|o| o == principal)
    }

    fn owns(&self, principal: &str, _kind: &ResourceKind, id: &str) -> bool {
        lock(&self.owners).get(id).is_some_and(|o| o == principal)
    }
}

// ---------------------------------------------------------------------------------------------
// The application

pub(crate) struct App {
    pub(crate) cfg: ReferenceConfig,
    pub(crate) http: Outbound,
    pub(crate) owners: OwnerBook,
    pub(crate) kind: ResourceKind,
    pub(crate) read_policy: EndpointPolicy,
    pub(crate) assist_policy: EndpointPolicy,
    /// The downstream's own host, the only one `fetch_url` may reach under `all_tools` alone.
    pub(crate) downstream_hosts: HostAllowlist,
    audit: AuditLog<std::io::Sink>,
    /// What the model's answers go through: the model key, the signing secret, system-prompt
    /// spans and credential patterns. Built once; the caller's token is handled per request.
    pub(crate) answer_scrubber: Option<Scrubber>,
    /// The signature-only verifier of `skip_claim_checks`.
    lenient_key: Option<jsonwebtoken::DecodingKey>,
}

/// An authenticated caller.
pub(crate) struct Caller {
    pub(crate) sub: String,
    pub(crate) scopes: ScopeSet,
    pub(crate) token: Secret,
}

/// A validated `/assist` body.
pub(crate) struct AssistBody {
    pub(crate) prompt: String,
    pub(crate) doc_id: String,
}

/// A failed downstream call.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fail {
    Transport,
    Timeout,
}

/// Builds the target's router, or says why it cannot.
pub fn try_router(cfg: ReferenceConfig) -> Result<Router, ReferenceError> {
    let build = |e: &dyn fmt::Display| ReferenceError::Build(e.to_string());
    let kind = ResourceKind::with_default_pattern("doc").map_err(|e| build(&e))?;
    let get_doc_cap = Capability::parse("GET /docs/{id}").map_err(|e| build(&e))?;
    let scopes = MethodScopes::read_write(READ_SCOPE, "docs:write");
    let read_policy = EndpointPolicy::new("read", kind.clone(), scopes.clone())
        .capability(get_doc_cap.clone())
        .map_err(|e| build(&e))?;
    let assist_policy = EndpointPolicy::new("assist", kind.clone(), scopes)
        .capability(get_doc_cap)
        .and_then(|p| {
            p.tool(
                ToolSpec::new("get_doc", READ_SCOPE)
                    .arg(ArgSpec::required("id", ArgType::Resource("doc".into()))),
            )
        })
        .map_err(|e| build(&e))?;
    let mut downstream_hosts = HostAllowlist::new();
    if let Some(auth) = authority(&cfg.downstream_url) {
        // An unparsable downstream URL leaves the list empty: fetch_url then reaches nothing.
        let _ = downstream_hosts.allow(auth);
    }
    // confab's sink and attacker host are on loopback (or in-process); the client ignores
    // inherited proxies and never follows a redirect, which would carry the caller's token.
    let http = match &cfg.outbound {
        Some(u) => u.clone(),
        None => Outbound::http().map_err(|e| build(&e))?,
    };

    let mut sb = ScrubberBuilder::new();
    if let Err(e) = sb.secret(SecretKind::LlmApiKey, "llm_api_key", &cfg.llm_api_key) {
        cfg.log.line(&format!(
            "reference-target: warning: LLM key not scrubbable: {e}"
        ));
    }
    if let Some(s) = &cfg.jwt_secret {
        let _ = sb.secret(SecretKind::SigningKey, "jwt_secret", s);
    }
    sb.system_prompt("system_prompt", SYSTEM_PROMPT)
        .map_err(|e| build(&e))?;
    let audit = AuditLog::new(std::io::sink(), sb.build().map_err(|e| build(&e))?);
    let answer_scrubber = {
        let mut b = ScrubberBuilder::new();
        let _ = b.secret(SecretKind::LlmApiKey, "llm_api_key", &cfg.llm_api_key);
        if let Some(s) = &cfg.jwt_secret {
            let _ = b.secret(SecretKind::SigningKey, "jwt_secret", s);
        }
        match b.system_prompt("system_prompt", SYSTEM_PROMPT) {
            Ok(_) => b.build().ok(),
            Err(_) => None,
        }
    };

    let lenient_key = match (&cfg.jwt_secret, cfg.flaws.skip_claim_checks) {
        (Some(s), true) => jsonwebtoken::DecodingKey::from_secret(s.expose()).ok(),
        _ => None,
    };
    if cfg.flaws.skip_claim_checks && lenient_key.is_none() {
        cfg.log.line(
            "reference-target: warning: skip_claim_checks needs the JWT secret; tokens go \
             through the guard",
        );
    }
    let app = Arc::new(App {
        cfg,
        http,
        owners: OwnerBook::default(),
        kind,
        read_policy,
        assist_policy,
        downstream_hosts,
        audit,
        answer_scrubber,
        lenient_key,
    });
    Ok(Router::new()
        .route("/healthz", get(healthz))
        .route("/docs/{resource}", get(read_doc))
        // The body is read by the handler (after the token check), with its own limit.
        .route("/assist", post(assist).layer(DefaultBodyLimit::disable()))
        .with_state(app))
}

/// `host[:port]` of an http(s) URL.
pub(crate) fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

async fn healthz() -> &'static str {
    "ok"
}

/// The arguments of a tool call, when they are a JSON object.
pub(crate) fn tool_args(call: &ToolCall) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

pub(crate) fn denied(reason: &str) -> Value {
    json!({ "error": "denied", "reason": reason })
}

pub(crate) fn truncate(s: &str, cap: usize) -> &str {
    if s.len() <= cap {
        return s;
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Replaces the raw token and its signature segment: the backstop for a token too long for
/// the scrubber to register.
pub(crate) fn redact_token(text: String, token: &Secret) -> String {
    let Ok(t) = std::str::from_utf8(token.expose()) else {
        return text;
    };
    let sig = t
        .rsplit('.')
        .next()
        .filter(|s| s.len() >= 8 && s.len() < t.len());
    let mut out = text;
    for needle in std::iter::once(t).chain(sig) {
        if !needle.is_empty() && out.contains(needle) {
            out = out.replace(needle, &marker("bearer_token"));
        }
    }
    out
}

impl App {
    // --- logging --------------------------------------------------------------------------

    pub(crate) fn log(&self, line: &str) {
        self.cfg.log.line(&format!("reference-target: {line}"));
    }

    pub(crate) fn log_request(&self, route: &str, headers: &HeaderMap) {
        if self.cfg.flaws.log_token {
            // The flaw: "debug" logging of the raw credential.
            for v in headers.get_all(header::AUTHORIZATION) {
                self.log(&format!(
                    "{route} authorization: {}",
                    String::from_utf8_lossy(v.as_bytes())
                ));
            }
        }
    }

    pub(crate) fn log_done(&self, route: &str, status: StatusCode, sub: Option<&str>) {
        // `{:?}` escapes the claim, so a `sub` with line breaks cannot forge log lines.
        match sub {
            Some(sub) => self.log(&format!("{route} -> {} sub={sub:?}", status.as_u16())),
            None => self.log(&format!("{route} -> {}", status.as_u16())),
        }
    }

    pub(crate) fn audit(&self, record: AuditRecord, token: Option<&Secret>) {
        if let Ok(line) = self.audit.line(&record, token) {
            let line = String::from_utf8_lossy(&line);
            self.log(&format!("audit {}", line.trim_end()));
        }
    }

    // --- responses ------------------------------------------------------------------------

    /// An error answer. The body names a code and a fixed description, never request data
    /// (except under the `token_in_errors` flaw).
    pub(crate) fn error(
        &self,
        status: StatusCode,
        code: &str,
        description: &str,
        headers: &HeaderMap,
    ) -> Response {
        let mut body = json!({ "error": code, "error_description": description });
        if self.cfg.flaws.token_in_errors && status.is_client_error() {
            // The flaw: a "helpful" echo of what the client sent.
            let sent: Vec<String> = headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            body["authorization"] = json!(sent.join(", "));
        }
        (status, axum::Json(body)).into_response()
    }

    /// The RFC 6750 refusal of a request whose token or scope the target rejects.
    pub(crate) fn refuse(
        &self,
        endpoint: &str,
        route: &str,
        rejection: Rejection,
        required: &ScopeSet,
        headers: &HeaderMap,
    ) -> Response {
        let presented = self.presented_token(headers);
        self.audit(
            AuditRecord::deny(endpoint, route, rejection),
            presented.as_ref(),
        );
        let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut resp = self.error(
            status,
            rejection.error_code().unwrap_or("unauthorized"),
            rejection.as_str(),
            headers,
        );
        if let Ok(v) = HeaderValue::from_str(&self.cfg.guard.challenge(rejection, Some(required))) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }

    pub(crate) fn llm_failure(&self, e: LlmError, headers: &HeaderMap) -> Response {
        self.log(&format!("model call failed: {e}"));
        match e {
            LlmError::Timeout => self.error(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the model did not answer in time",
                headers,
            ),
            _ => self.error(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "the model call failed",
                headers,
            ),
        }
    }

    pub(crate) fn downstream_failure(&self, f: Fail, headers: &HeaderMap) -> Response {
        match f {
            Fail::Timeout => self.error(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the documents API did not answer in time",
                headers,
            ),
            Fail::Transport => self.error(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "the documents API call failed",
                headers,
            ),
        }
    }

    // --- authentication -------------------------------------------------------------------

    fn authorization_values(headers: &HeaderMap) -> Vec<&[u8]> {
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    /// The syntactically valid bearer credential, if any (for audit fingerprints).
    pub(crate) fn presented_token(&self, headers: &HeaderMap) -> Option<Secret> {
        extract_token(
            &Self::authorization_values(headers),
            self.cfg.guard.max_token_bytes(),
        )
        .ok()
        .map(Secret::from)
    }

    /// Token, then scope. The hardened path is the guard's; two flaws bend it.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        required: &ScopeSet,
    ) -> Result<Caller, Rejection> {
        let values = Self::authorization_values(headers);
        let token = extract_token(&values, self.cfg.guard.max_token_bytes())?;
        let (sub, mut scopes) = match (&self.lenient_key, self.cfg.flaws.skip_claim_checks) {
            (Some(key), true) => lenient_verify(token, key)?,
            _ => {
                let who = self.cfg.guard.verify_token(token, unix_now())?;
                (who.sub, who.scopes)
            }
        };
        if self.cfg.flaws.comma_scopes {
            // The flaw of the Flask guide: `scope.split(',')` (kept tolerant of spaces so
            // the usual tokens still work and only the confusion shows).
            scopes = scopes
                .iter()
                .flat_map(|t| t.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
        }
        if !scopes.includes(required) {
            return Err(Rejection::InsufficientScope);
        }
        Ok(Caller {
            sub,
            scopes,
            token: Secret::from(token),
        })
    }
}

/// The signature-only check of `skip_claim_checks`: HS256 verified, `exp`, `nbf`, `iss` and
/// `aud` ignored (what `jwt.decode(..., options={"verify_exp": False, "verify_aud": False})`
/// does).
pub(crate) fn lenient_verify(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
) -> Result<(String, ScopeSet), Rejection> {
    use jsonwebtoken::errors::ErrorKind;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, key, &v).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => Rejection::BadSignature,
        ErrorKind::InvalidAlgorithm => Rejection::AlgMismatch,
        _ => Rejection::MalformedToken,
    })?;
    let claims = data.claims;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(Rejection::MissingSub)?
        .to_owned();
    let mut scopes = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(ScopeSet::parse)
        .unwrap_or_default();
    if let Some(scp) = claims.get("scp").and_then(Value::as_array) {
        scp.iter()
            .filter_map(Value::as_str)
            .for_each(|t| scopes.insert(t));
    }
    Ok((sub, scopes))
}

pub(crate) fn denial_reason(d: &RequestDenial) -> &'static str {
    match d {
        RequestDenial::Id { error, .. } => error.reason().as_str(),
        other => other.as_str(),
    }
}

pub(crate) fn denial_status(d: &RequestDenial) -> (StatusCode, &'static str) {
    match d {
        RequestDenial::Id { error, .. } if error.reason() == IdRejection::NotPermitted => {
            (StatusCode::FORBIDDEN, "forbidden")
        }
        RequestDenial::Id { .. } => (StatusCode::BAD_REQUEST, "invalid_id"),
        RequestDenial::InsufficientScope { .. } => (StatusCode::FORBIDDEN, "insufficient_scope"),
        _ => (StatusCode::NOT_FOUND, "not_found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_urls() {
        assert_eq!(authority("http://127.0.0.1:8080/x"), Some("127.0.0.1:8080"));
        assert_eq!(authority("https://docs.test"), Some("docs.test"));
        assert_eq!(authority("ftp://x"), None);
        assert_eq!(authority("http:///x"), None);
    }

    #[test]
    fn owner_book_permits_unknown_and_owns_learned() {
        let kind = ResourceKind::with_default_pattern("doc").expect("constant");
        let book = OwnerBook::default();
        assert!(book.permits("alice", &kind, "doc-a1"));
        assert!(!book.owns("alice", &kind, "doc-a1"));
        book.learn("doc-a1", "alice");
        book.learn("doc-b1", "bob");
        assert!(book.owns("alice", &kind, "doc-a1"));
        assert!(!book.permits("alice", &kind, "doc-b1"));
    }

    #[test]
    fn token_backstop_redacts_raw_and_signature() {
        let t = Secret::from("aaaa.bbbb.signature-part-xyz");
        let out = redact_token(
            "x aaaa.bbbb.signature-part-xyz y signature-part-xyz".into(),
            &t,
        );
        assert!(!out.contains("signature-part-xyz"), "{out}");
    }
}
