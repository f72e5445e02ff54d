//! `POST /assist`: the body read after the token check, the model called in a loop, each
//! tool call the model proposes run (or refused) within the endpoint's effective privilege,
//! and the answer scrubbed on its way out.

use crate::app::{
    App, AssistBody, Caller, denial_reason, denied, redact_token, tool_args, truncate,
};
use crate::llm::{LlmError, Reply, ToolCall};
use crate::{
    LIMIT_ANSWER, MAX_BODY_BYTES, MAX_PROMPT_BYTES, MAX_TOKENS, MAX_TOOL_RESULT_BYTES, MODEL,
    PROMPT_BUDGET_BYTES, READ_SCOPE, RUNAWAY_LIMIT, SYSTEM_PROMPT,
};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_guard::audit::{AuditRecord, Decision};
use confab_guard::capability::{AuthorizedArg, EffectivePrivilege, Method, ToolDenial};
use confab_guard::provenance::{
    Excerpt, IdRejection, RequestContext, Source, Untrusted, Validator,
};
use confab_guard::scrub::marker;
use confab_guard::token_forms::TokenForms;
use confab_guard::{ScopeSet, Secret};
use confab_target::encode_path_segment;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) async fn assist(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const ROUTE: &str = "POST /assist";
    app.log_request(ROUTE, &headers);
    let deadline = tokio::time::Instant::now() + app.cfg.request_deadline;
    let (resp, sub) =
        match tokio::time::timeout_at(deadline, app.assist_inner(&headers, body)).await {
            Ok(done) => done,
            Err(_) => (
                app.error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "the request did not finish in time",
                    &headers,
                ),
                None,
            ),
        };
    app.log_done(ROUTE, resp.status(), sub.as_deref());
    resp
}

impl App {
    /// Reads and parses the body. Hardened: 400 with a fixed description (413 when too
    /// large); `crash_on_bad_body`: 500. Read only when needed, so an unauthenticated
    /// request's body is never even read (and a huge one cannot be refused before its token).
    async fn read_body(&self, body: Body, headers: &HeaderMap) -> Result<AssistBody, Response> {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return Err(self.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "body too large",
                headers,
            ));
        };
        let parsed = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            Some(AssistBody {
                prompt: v.get("prompt")?.as_str()?.to_owned(),
                doc_id: v.get("doc_id")?.as_str()?.to_owned(),
            })
        });
        match parsed {
            Some(b) if b.prompt.len() > MAX_PROMPT_BYTES => Err(self.error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "prompt too long",
                headers,
            )),
            Some(b) => Ok(b),
            None if self.cfg.flaws.crash_on_bad_body => {
                // The flaw: `request.json["prompt"]` raising, and the framework's 500 page.
                self.log("unhandled error while reading the request body");
                Err((StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response())
            }
            None => Err(self.error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "body must be a JSON object with string fields prompt and doc_id",
                headers,
            )),
        }
    }

    /// The conversation's first two messages. The user's prompt goes in verbatim (confab
    /// attributes model calls by a nonce inside it).
    fn initial_messages(&self, body: &AssistBody, token: Option<&Secret>) -> Vec<Value> {
        let mut system = SYSTEM_PROMPT.to_owned();
        if self.cfg.flaws.token_to_model
            && let Some(t) = token
        {
            // The flaw: handing the model the caller's credential "so it can call APIs".
            system.push_str(&format!(
                "\nCaller credential for the documents API: Bearer {}",
                String::from_utf8_lossy(t.expose())
            ));
        }
        vec![
            json!({ "role": "system", "content": system }),
            json!({
                "role": "user",
                "content": format!("{}\n\nDocument id: {}", body.prompt, body.doc_id),
            }),
        ]
    }

    async fn call_model(&self, messages: &[Value]) -> Result<Reply, LlmError> {
        let body = crate::llm::request_body(MODEL, messages, MAX_TOKENS, self.cfg.stream);
        crate::llm::complete(
            &self.http,
            &self.cfg.llm_base_url,
            &self.cfg.llm_api_key,
            &body,
            self.cfg.stream,
            self.cfg.outbound_timeout,
        )
        .await
    }

    /// `/assist` up to its answer; returns the response and the caller's `sub` if known.
    async fn assist_inner(&self, headers: &HeaderMap, body: Body) -> (Response, Option<String>) {
        const ROUTE: &str = "POST /assist";
        let flaws = self.cfg.flaws;
        let required = ScopeSet::parse(READ_SCOPE);
        let mut calls = 0u32;

        // The flaw `llm_before_auth`: the first model call ("classify the request") happens
        // before anyone looked at the token.
        let mut early = None;
        let mut body = Some(body);
        if flaws.llm_before_auth
            && let Some(body) = body.take()
        {
            let b = match self.read_body(body, headers).await {
                Ok(b) => b,
                Err(resp) => return (resp, None),
            };
            let messages = self.initial_messages(&b, self.presented_token(headers).as_ref());
            calls += 1;
            match self.call_model(&messages).await {
                Ok(reply) => early = Some((b, messages, reply)),
                Err(e) => return (self.llm_failure(e, headers), None),
            }
        }

        let caller = match self.authenticate(headers, &required) {
            Ok(c) => c,
            Err(r) => return (self.refuse("assist", ROUTE, r, &required, headers), None),
        };
        let sub = Some(caller.sub.clone());
        let (b, mut messages, mut pending) = match early {
            Some((b, m, reply)) => (b, m, Some(reply)),
            None => match self.read_body(body.unwrap_or_default(), headers).await {
                Ok(b) => {
                    let m = self.initial_messages(&b, Some(&caller.token));
                    (b, m, None)
                }
                Err(resp) => return (resp, sub),
            },
        };

        // The user-supplied id: syntax and permission now, and it becomes the one id besides
        // the caller's own that the model may name.
        let mut ctx = RequestContext::new(caller.sub.clone());
        if !flaws.trust_llm_ids {
            let validator = Validator::new(&self.owners, &ctx);
            match validator.authorize(&self.kind, Untrusted::from_user(b.doc_id.as_str())) {
                Ok(id) => {
                    let id = id.as_str().to_owned();
                    ctx.supply(&self.kind, id);
                }
                Err(e) => {
                    let (status, code) = if e.reason() == IdRejection::NotPermitted {
                        (StatusCode::FORBIDDEN, "forbidden")
                    } else {
                        (StatusCode::BAD_REQUEST, "invalid_id")
                    };
                    self.audit(
                        AuditRecord::new("assist", "doc_id", Decision::Deny, status.as_u16())
                            .with_sub(&caller.sub)
                            .with_resource(e.excerpt().as_str())
                            .with_reason(e.reason().as_str()),
                        Some(&caller.token),
                    );
                    return (self.error(status, code, e.reason().as_str(), headers), sub);
                }
            }
        }
        self.audit(
            AuditRecord::allow("assist", ROUTE)
                .with_sub(&caller.sub)
                .with_scopes(&caller.scopes)
                .with_resource(Excerpt::of(&b.doc_id).as_str()),
            Some(&caller.token),
        );
        let validator = Validator::new(&self.owners, &ctx);
        let privilege = self.assist_policy.privilege(&caller.scopes, validator);
        // Validator is Copy; the write tools of `all_tools` check ids with the same context.

        let cap = if flaws.no_call_cap {
            RUNAWAY_LIMIT
        } else {
            self.cfg.call_cap.max(1)
        };
        let answer = loop {
            let reply = match pending.take() {
                Some(r) => r,
                None => {
                    let size: usize = messages.iter().map(|m| m.to_string().len()).sum();
                    if calls >= cap || (!flaws.no_call_cap && size > PROMPT_BUDGET_BYTES) {
                        self.audit(
                            AuditRecord::new("assist", "model call", Decision::Deny, 200)
                                .with_sub(&caller.sub)
                                .with_reason(if calls >= cap {
                                    "call_cap"
                                } else {
                                    "prompt_budget"
                                }),
                            Some(&caller.token),
                        );
                        break LIMIT_ANSWER.to_owned();
                    }
                    calls += 1;
                    match self.call_model(&messages).await {
                        Ok(r) => r,
                        Err(e) => return (self.llm_failure(e, headers), sub),
                    }
                }
            };
            if reply.tool_calls.is_empty() {
                break reply.content.unwrap_or_default();
            }
            messages.push(reply.assistant_message());
            for call in &reply.tool_calls {
                let result = self.run_tool(&caller, &privilege, &validator, call).await;
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": result.to_string(),
                }));
            }
        };
        let answer = if flaws.echo_model_output {
            answer
        } else {
            self.scrub_answer(answer, &caller.token)
        };
        (
            (StatusCode::OK, axum::Json(json!({ "answer": answer }))).into_response(),
            sub,
        )
    }

    /// The model's text on its way to the caller: the caller's token, the LLM key, the
    /// signing secret, system-prompt spans and credential patterns are redacted.
    fn scrub_answer(&self, answer: String, token: &Secret) -> String {
        match &self.answer_scrubber {
            Some(s) => {
                let clean = s.scrub_str(&answer).0;
                // The caller's token in every encoding; one too long to register is still
                // removed verbatim by `redact_token`.
                let clean = match TokenForms::new(token.expose()) {
                    Some(forms) => forms.redact(&clean),
                    None => clean,
                };
                redact_token(clean, token)
            }
            // Fail closed: without a scrubber nothing of the model's text goes out.
            None => marker("unscrubbable"),
        }
    }

    /// Executes (or refuses) one tool call; the result goes back to the model either way.
    async fn run_tool(
        &self,
        caller: &Caller,
        privilege: &EffectivePrivilege<'_>,
        validator: &Validator<'_>,
        call: &ToolCall,
    ) -> Value {
        let flaws = self.cfg.flaws;
        let args = tool_args(call);
        let arg = |k: &str| args.as_ref().and_then(|a| a.get(k)).and_then(Value::as_str);
        match call.name.as_str() {
            "get_doc" if flaws.trust_llm_ids => {
                let Some(id) = arg("id") else {
                    return denied("missing_argument");
                };
                // The flaw: the model's id goes downstream as is, whatever comes back goes to
                // the model.
                let path = format!("/docs/{}", encode_path_segment(id));
                self.tool_get_doc(caller, &path, None, false).await
            }
            "update_doc" | "delete_doc" if flaws.all_tools => {
                let Some(id) = arg("id") else {
                    return denied("missing_argument");
                };
                // Without `trust_llm_ids` the id still needs provenance: this flaw is the
                // capability, not the id.
                if !flaws.trust_llm_ids
                    && let Err(e) = validator.authorize(&self.kind, Untrusted::from_llm(id))
                {
                    return denied(e.reason().as_str());
                }
                let path = format!("/docs/{}", encode_path_segment(id));
                // The flaw: a write tool executed from a read endpoint.
                let (method, body) = if call.name == "update_doc" {
                    let content = arg("content").unwrap_or_default();
                    (axum::http::Method::PUT, Some(json!({ "content": content })))
                } else {
                    (axum::http::Method::DELETE, None)
                };
                match self
                    .downstream(method, &path, Some(&caller.token), body)
                    .await
                {
                    Ok((status, _)) => json!({ "status": status }),
                    Err(_) => json!({ "error": "downstream_error" }),
                }
            }
            "fetch_url" if flaws.follow_any_url || flaws.all_tools => {
                let Some(url) = arg("url") else {
                    return denied("missing_argument");
                };
                let (target, token) = if flaws.follow_any_url {
                    // The flaw: any URL, with the caller's token "in case it needs auth".
                    (url.to_owned(), Some(&caller.token))
                } else {
                    match self.downstream_hosts.check(url) {
                        Ok(allowed) => (allowed.to_string(), None),
                        Err(d) => return denied(d.as_str()),
                    }
                };
                if !(target.starts_with("http://") || target.starts_with("https://")) {
                    return denied("bad_scheme");
                }
                match self
                    .downstream(axum::http::Method::GET, &target, token, None)
                    .await
                {
                    Ok((status, body)) => json!({
                        "status": status,
                        "body": truncate(&String::from_utf8_lossy(&body), MAX_TOOL_RESULT_BYTES),
                    }),
                    Err(_) => json!({ "error": "fetch_failed" }),
                }
            }
            _ => self.guarded_tool(caller, privilege, call).await,
        }
    }

    /// The hardened path: the endpoint's declared tools only, within the effective privilege,
    /// on ids with provenance, through the capability they map to.
    async fn guarded_tool(
        &self,
        caller: &Caller,
        privilege: &EffectivePrivilege<'_>,
        call: &ToolCall,
    ) -> Value {
        let deny = |reason: &str, resource: Option<&str>| {
            let mut r = AuditRecord::new(
                "assist",
                format!("tool {}", Excerpt::of(&call.name).as_str()),
                Decision::Deny,
                403,
            )
            .with_sub(&caller.sub)
            .with_reason(reason);
            if let Some(res) = resource {
                r = r.with_resource(res);
            }
            self.audit(r, Some(&caller.token));
            denied(reason)
        };
        let authorized = match privilege.authorize_tool_call(
            Untrusted::from_llm(call.name.as_str()),
            Untrusted::from_llm(Value::String(call.arguments.clone())),
        ) {
            Ok(a) => a,
            Err(ToolDenial::Id { error, .. }) => {
                return deny(error.reason().as_str(), Some(error.excerpt().as_str()));
            }
            Err(d) => return deny(d.as_str(), None),
        };
        let Some(AuthorizedArg::Resource(id)) = authorized.arg("id") else {
            // Only get_doc is declared, and its id is required.
            return deny("unknown_tool", None);
        };
        let path = format!("/docs/{id}");
        match privilege.authorize_request(Method::Get, Untrusted::new(path, Source::LlmOutput)) {
            Ok(req) => {
                self.tool_get_doc(caller, req.path(), Some(id.as_str()), true)
                    .await
            }
            Err(d) => deny(denial_reason(&d), Some(id.as_str())),
        }
    }

    /// `get_doc` downstream; with `check_owner`, content of someone else's document never
    /// reaches the model.
    async fn tool_get_doc(
        &self,
        caller: &Caller,
        path: &str,
        id: Option<&str>,
        check_owner: bool,
    ) -> Value {
        let (status, body) = match self
            .downstream(axum::http::Method::GET, path, Some(&caller.token), None)
            .await
        {
            Ok(got) => got,
            Err(_) => return json!({ "error": "downstream_error" }),
        };
        if status == 404 {
            return json!({ "error": "not_found" });
        }
        let doc = match serde_json::from_slice::<Value>(&body) {
            Ok(doc @ Value::Object(_)) if (200..300).contains(&status) => doc,
            _ => return json!({ "error": "downstream_error", "status": status }),
        };
        let owner = doc.get("owner").and_then(Value::as_str).unwrap_or_default();
        if let Some(id) = id {
            self.owners.learn(id, owner);
        }
        let record = |decision, status, reason: Option<&str>| {
            let mut r = AuditRecord::new("assist", "tool get_doc", decision, status)
                .with_sub(&caller.sub)
                .with_resource(id.unwrap_or("<unvalidated>"));
            if let Some(reason) = reason {
                r = r.with_reason(reason);
            }
            self.audit(r, Some(&caller.token));
        };
        if check_owner && owner != caller.sub {
            record(Decision::Deny, 403, Some("not_owner"));
            return denied("not_owner");
        }
        record(Decision::Allow, 200, None);
        let content = doc
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        json!({
            "id": doc.get("id").cloned().unwrap_or(Value::Null),
            "owner": owner,
            "content": truncate(content, MAX_TOOL_RESULT_BYTES),
        })
    }
}
