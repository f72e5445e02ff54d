//! `GET /docs/{resource}`: the path id through provenance, the downstream fetched with the
//! caller's token, the answer returned if the caller owns it.

use crate::app::{App, Caller, Fail, denial_reason, denial_status};
use crate::{MAX_DOWNSTREAM_BYTES, READ_SCOPE};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use confab_guard::audit::{AuditRecord, Decision};
use confab_guard::capability::Method;
use confab_guard::provenance::{Excerpt, RequestContext, Untrusted, Validator};
use confab_guard::{ScopeSet, Secret};
use confab_target::OutboundError;
use serde_json::Value;
use std::sync::Arc;

pub(crate) async fn read_doc(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    const ROUTE: &str = "GET /docs/{resource}";
    app.log_request(ROUTE, &headers);
    let required = ScopeSet::parse(READ_SCOPE);
    let caller = match app.authenticate(&headers, &required) {
        Ok(c) => c,
        Err(r) => {
            let resp = app.refuse("read", ROUTE, r, &required, &headers);
            app.log_done(ROUTE, resp.status(), None);
            return resp;
        }
    };
    // The raw (still percent-encoded) segment: provenance judges exactly what was sent.
    let raw = uri.path().strip_prefix("/docs/").unwrap_or_default();
    let resp = app.serve_doc(&caller, raw, &headers).await;
    app.log_done(ROUTE, resp.status(), Some(&caller.sub));
    resp
}

impl App {
    async fn serve_doc(&self, caller: &Caller, raw: &str, headers: &HeaderMap) -> Response {
        let flaws = self.cfg.flaws;
        let (path, id) = if flaws.idor_read {
            // The flaw: whatever the path names goes downstream, and comes back whoever owns it.
            (format!("/docs/{raw}"), None)
        } else {
            let ctx = RequestContext::new(caller.sub.clone());
            let validator = Validator::new(&self.owners, &ctx);
            let privilege = self.read_policy.privilege(&caller.scopes, validator);
            match privilege
                .authorize_request(Method::Get, Untrusted::from_user(format!("/docs/{raw}")))
            {
                Ok(req) => {
                    let id = req.params().get("id").map(|i| i.as_str().to_owned());
                    (req.path().to_owned(), id)
                }
                Err(denial) => {
                    let (status, code) = denial_status(&denial);
                    self.audit(
                        AuditRecord::new("read", "GET /docs/{id}", Decision::Deny, status.as_u16())
                            .with_sub(&caller.sub)
                            .with_resource(Excerpt::of(raw).as_str())
                            .with_reason(denial_reason(&denial)),
                        Some(&caller.token),
                    );
                    return self.error(status, code, denial_reason(&denial), headers);
                }
            }
        };
        let (status, body) = match self
            .downstream(axum::http::Method::GET, &path, Some(&caller.token), None)
            .await
        {
            Ok(got) => got,
            Err(f) => return self.downstream_failure(f, headers),
        };
        if status == 404 {
            return self.error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such document",
                headers,
            );
        }
        let doc = match serde_json::from_slice::<Value>(&body) {
            Ok(doc @ Value::Object(_)) if (200..300).contains(&status) => doc,
            _ => {
                return self.error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    "the documents API answered unexpectedly",
                    headers,
                );
            }
        };
        let owner = doc.get("owner").and_then(Value::as_str).unwrap_or_default();
        if let Some(id) = &id {
            self.owners.learn(id, owner);
        }
        let resource = id
            .clone()
            .unwrap_or_else(|| Excerpt::of(raw).as_str().to_owned());
        if !flaws.idor_read && owner != caller.sub {
            self.audit(
                AuditRecord::new("read", "GET /docs/{id}", Decision::Deny, 403)
                    .with_sub(&caller.sub)
                    .with_resource(resource)
                    .with_reason("not_owner"),
                Some(&caller.token),
            );
            return self.error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "not your document",
                headers,
            );
        }
        self.audit(
            AuditRecord::allow("read", "GET /docs/{id}")
                .with_sub(&caller.sub)
                .with_scopes(&caller.scopes)
                .with_resource(resource),
            Some(&caller.token),
        );
        (StatusCode::OK, axum::Json(doc)).into_response()
    }

    /// One downstream call: `{DOCS_API_URL}{path}` (or an absolute URL), with the caller's
    /// token when given. Returns the status and the (bounded) body.
    pub(crate) async fn downstream(
        &self,
        method: axum::http::Method,
        path_or_url: &str,
        token: Option<&Secret>,
        body: Option<Value>,
    ) -> Result<(u16, Vec<u8>), Fail> {
        let url = if path_or_url.starts_with('/') {
            format!(
                "{}{path_or_url}",
                self.cfg.downstream_url.trim_end_matches('/')
            )
        } else {
            path_or_url.to_owned()
        };
        let mut req = axum::http::Request::builder().method(method).uri(url);
        if let Some(t) = token {
            let mut v = b"Bearer ".to_vec();
            v.extend_from_slice(t.expose());
            if let Ok(mut v) = HeaderValue::from_bytes(&v) {
                v.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, v);
            }
        }
        let bytes = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(&b).map_err(|_| Fail::Transport)?
            }
            None => Vec::new(),
        };
        // An invented URL that is not even a URI fails like an unreachable host.
        let req = req
            .body(axum::body::Bytes::from(bytes))
            .map_err(|_| Fail::Transport)?;
        let resp = self
            .http
            .send(req, MAX_DOWNSTREAM_BYTES, self.cfg.outbound_timeout)
            .await
            .map_err(|e| match e {
                OutboundError::Timeout => Fail::Timeout,
                _ => Fail::Transport,
            })?;
        Ok((resp.status().as_u16(), resp.into_body().to_vec()))
    }
}
