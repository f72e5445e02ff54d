//! The outbound seam of a service under test: how it reaches the model and the downstream API.
//!
//! A service that takes an [`Outbound`] (instead of building its own HTTP client) can be tested
//! without a socket: in an in-process campaign confab hands it one whose requests go straight to
//! the fake model's and the sink's routers, as a function call. Over HTTP the same type wraps a
//! `reqwest` client, so production code and tests share one code path.
//!
//! In-process, the model answers at [`MODEL_BASE_URL`] and the downstream at
//! [`DOWNSTREAM_URL`]; every other host is routed to the sink's attacker host, the way a
//! proxy would see it, so a service that follows an invented URL is recorded, never connected
//! anywhere. The two addresses are loopback ones of the same shape as the loopback ports an
//! HTTP campaign uses (a service's behaviour may depend on a URL's length, as when a model's
//! echo is cut to fit), on ports above Linux's ephemeral range where nothing listens by
//! default: a service that bypasses the seam with its own client fails to connect.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, Uri, header};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// The model's base URL in an in-process campaign (what `OPENAI_BASE_URL` would hold).
pub const MODEL_BASE_URL: &str = "http://127.0.0.1:65402/v1";
/// The downstream API's base URL in an in-process campaign (what `DOCS_API_URL` would hold).
pub const DOWNSTREAM_URL: &str = "http://127.0.0.1:65401";
/// The port of [`DOWNSTREAM_URL`], where invented loopback URLs point in-process.
pub const DOWNSTREAM_PORT: u16 = 65401;

const MODEL_AUTHORITY: &str = "127.0.0.1:65402";
const DOWNSTREAM_AUTHORITY: &str = "127.0.0.1:65401";

/// Why an outbound call failed. Carries no URL or header: those may hold secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("the upstream call timed out")]
    /// The call did not finish in time.
    Timeout,
    #[error("the upstream answer is larger than {0} bytes")]
    /// The answer was larger than the cap (in bytes).
    TooLarge(usize),
    #[error("the upstream call failed: {0}")]
    /// The call failed in transport (connection, protocol); the text names no URL or header.
    Transport(String),
}

/// An outbound HTTP client for a service under test. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Http(reqwest::Client),
    InProcess(Arc<Routes>),
}

struct Routes {
    model: Router,
    sink: Router,
    /// Hosts that reach the sink as the downstream API (origin-form, as over HTTP): the
    /// downstream's own name and loopback, where invented "internal" URLs point.
    sink_authorities: Vec<&'static str>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Http(_) => "Outbound(http)",
            Inner::InProcess(_) => "Outbound(in-process)",
        })
    }
}

impl Outbound {
    /// A real HTTP client: no proxy (confab's servers are on loopback; an inherited proxy must
    /// not see what the service sends), no redirects (one would carry the caller's token to
    /// wherever it points), a 2 s connect timeout.
    pub fn http() -> Result<Outbound, OutboundError> {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map(Outbound::from_reqwest)
            .map_err(|e| OutboundError::Transport(e.to_string()))
    }

    /// Wraps a `reqwest` client configured elsewhere.
    pub fn from_reqwest(client: reqwest::Client) -> Outbound {
        Outbound {
            inner: Inner::Http(client),
        }
    }

    /// Calls go to the fake model's and the sink's routers, without a socket.
    pub fn in_process(model: Router, sink: Router) -> Outbound {
        Outbound {
            inner: Inner::InProcess(Arc::new(Routes {
                model,
                sink,
                sink_authorities: vec![DOWNSTREAM_AUTHORITY, "localhost:65401"],
            })),
        }
    }

    /// True when calls never leave the process.
    pub fn is_in_process(&self) -> bool {
        matches!(self.inner, Inner::InProcess(_))
    }

    /// Sends `req` (its URI absolute) and reads the answer whole, refusing more than
    /// `max_body` bytes, all within `timeout`.
    pub async fn send(
        &self,
        req: Request<Bytes>,
        max_body: usize,
        timeout: Duration,
    ) -> Result<Response<Bytes>, OutboundError> {
        let call = async {
            match &self.inner {
                Inner::Http(client) => send_http(client, req, max_body).await,
                Inner::InProcess(routes) => routes.send(req, max_body).await,
            }
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| OutboundError::Timeout)?
    }
}

async fn send_http(
    client: &reqwest::Client,
    req: Request<Bytes>,
    max_body: usize,
) -> Result<Response<Bytes>, OutboundError> {
    let req = reqwest::Request::try_from(req.map(reqwest::Body::from))
        .map_err(|e| OutboundError::Transport(without_url(&e)))?;
    let mut resp = client.execute(req).await.map_err(|e| {
        if e.is_timeout() {
            OutboundError::Timeout
        } else {
            OutboundError::Transport(without_url(&e))
        }
    })?;
    let mut out = Response::builder().status(resp.status());
    if let Some(h) = out.headers_mut() {
        *h = resp.headers().clone();
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Err(OutboundError::TooLarge(max_body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(OutboundError::Timeout),
            Err(e) => return Err(OutboundError::Transport(without_url(&e))),
        }
    }
    out.body(Bytes::from(body))
        .map_err(|e| OutboundError::Transport(e.to_string()))
}

/// reqwest's errors print the URL, which may carry a token in its query.
fn without_url(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<reqwest::Error>() {
        Some(r) if r.is_connect() => "connection refused".to_owned(),
        Some(r) if r.is_builder() => "invalid request".to_owned(),
        Some(_) => "transport error".to_owned(),
        None => e.to_string(),
    }
}

impl Routes {
    async fn send(
        &self,
        req: Request<Bytes>,
        max_body: usize,
    ) -> Result<Response<Bytes>, OutboundError> {
        let (mut parts, body) = req.into_parts();
        // The URL as an HTTP client would put it on the wire (dot segments resolved, the
        // same escapes), so a service behaves here as it does over a socket.
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|_| OutboundError::Transport("invalid URL".to_owned()))?;
        parts.uri = url
            .as_str()
            .parse::<Uri>()
            .map_err(|_| OutboundError::Transport("invalid URL".to_owned()))?;
        let authority = parts
            .uri
            .authority()
            // Userinfo is not part of the host an HTTP client connects to or names in `Host`.
            .map(|a| {
                a.as_str()
                    .rsplit('@')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            })
            .ok_or_else(|| OutboundError::Transport("the URL has no host".to_owned()))?;
        as_on_the_wire(&mut parts.headers);
        if !parts.headers.contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(&authority)
        {
            parts.headers.insert(header::HOST, host);
        }
        let origin_form = || -> Result<Uri, OutboundError> {
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            path.parse::<Uri>()
                .map_err(|e| OutboundError::Transport(e.to_string()))
        };
        let router = if authority == MODEL_AUTHORITY {
            parts.uri = origin_form()?;
            &self.model
        } else if self.sink_authorities.contains(&authority.as_str()) {
            parts.uri = origin_form()?;
            &self.sink
        } else {
            // Any other host: the sink records it as the attacker host, as a proxy would.
            &self.sink
        };
        let resp = router
            .clone()
            .oneshot(Request::from_parts(parts, Body::from(body)))
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, max_body)
            .await
            .map_err(|_| OutboundError::TooLarge(max_body))?;
        Ok(Response::from_parts(parts, bytes))
    }
}

/// Header values as an HTTP/1.1 server hands them over: leading and trailing spaces and tabs
/// are not part of a field value (RFC 9110 §5.5), so a request that goes through a function
/// call looks exactly as one that went over a socket.
pub fn as_on_the_wire(headers: &mut axum::http::HeaderMap) {
    for value in headers.values_mut() {
        let bytes = value.as_bytes();
        let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
        let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|b| !is_ows(b))
            .map_or(start, |i| i + 1);
        if (start, end) != (0, bytes.len())
            && let Ok(mut trimmed) = HeaderValue::from_bytes(&bytes[start..end])
        {
            trimmed.set_sensitive(value.is_sensitive());
            *value = trimmed;
        }
    }
}
