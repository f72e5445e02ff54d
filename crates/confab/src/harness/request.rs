//! What a case sends and how: the credential it carries ([`ClientAuth`]: header, cookie or
//! another scheme, and what the reference guard is asked), the HTTP request itself (path, body
//! and the login or follow-up request of a two-step endpoint), the `curl` line a report shows,
//! and the two transports (a socket, or the target's service called in-process). Split from
//! [`super::exchange`], which opens, settles and judges cases around these requests.

use super::run::{Run, Transport};
use crate::generators::case::CasePlan;
use crate::guard::{Authenticated, Rejection, ScopeSet};
use crate::observation::Observation;
use crate::spec::template::{Place, Vars, form_encode};
use axum::body::Body;
use axum::http::Request;
use confab_target::TargetService;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Marks a case whose headers no HTTP client can send (a line break inside a value).
pub(super) const UNSENDABLE: &str = "header value cannot be sent over HTTP";

/// Largest response body read from the target.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How a case authenticates: the headers and cookie it sends, and what the guard is asked
/// (or the verdict itself, where no bearer token is under test).
pub(super) struct ClientAuth {
    /// `Authorization` values, and a non-bearer credential's headers.
    pub(super) headers: Vec<(String, String)>,
    /// The token sent in `[auth] cookie`.
    pub(super) cookie: Option<String>,
    /// The `Authorization` values the guard decides on.
    pub(super) guard_headers: Vec<String>,
    /// The verdict when it is not the guard's to give (`bearer = false` endpoints).
    pub(super) verdict: Option<Result<Authenticated, Rejection>>,
}

impl ClientAuth {
    pub(super) fn credential_values(&self) -> Vec<String> {
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
pub(super) fn client_auth(run: &Run, plan: &mut CasePlan, now: u64) -> ClientAuth {
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
pub(super) async fn send(run: &Run, plan: &CasePlan, auth: &ClientAuth) -> (Observation, String) {
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
