//! Remediation guidance per invariant, written for the APIs confab tests: what to change, a
//! Flask + PyJWT example (the shape of `examples/flask/app.py`'s hardened form) and a Rust +
//! axum example with confab's reference guard (`confab::guard`). Text between backticks is
//! shown as code.

use crate::oracle::Invariant;

/// How to fix what an invariant's findings show.
pub struct Remedy {
    /// One line: the fix in a few words.
    pub title: &'static str,
    /// What the finding means for the API.
    pub risk: &'static str,
    /// What to change, step by step.
    pub steps: &'static [&'static str],
    /// Flask + PyJWT.
    pub flask: &'static str,
    /// Rust + axum with `confab::guard`.
    pub rust: &'static str,
}

/// The guidance for one invariant.
pub fn remedy(inv: Invariant) -> Remedy {
    match inv {
        Invariant::Authn => AUTHN,
        Invariant::Authz => AUTHZ,
        Invariant::Provenance => PROVENANCE,
        Invariant::Ownership => OWNERSHIP,
        Invariant::Agency => AGENCY,
        Invariant::Echo => ECHO,
        Invariant::Robust => ROBUST,
        Invariant::Cost => COST,
        Invariant::UnauthLlm => UNAUTH_LLM,
        Invariant::Agree => AGREE,
    }
}

const AUTHN: Remedy = Remedy {
    title: "Verify every token completely, before any model or downstream call",
    risk: "The target accepted a token the reference guard rejects (forged, unsigned, \
expired, for another audience or issuer), or did work for it before refusing. Depending on the \
kind, anyone can call the API without the signing key, or tokens outlive their revocation.",
    steps: &[
        "Pin the algorithm: pass `algorithms=[\"HS256\"]` (or your one asymmetric algorithm); \
never accept `none`, never verify an HMAC with a public key, never take keys from the token's \
`jwk`, `jku`, `x5u` or `kid` path.",
        "Require and check the claims: `exp` must be present and in the future (a small leeway \
only), `nbf` honoured, `iss` and `aud` equal to your issuer and audience. Turning off \
`verify_exp`, `verify_aud` or `verify_iss` is the bug.",
        "Do the check first: authentication runs before the body is parsed and before any \
model or downstream call, so a refused request costs nothing and reaches nothing.",
        "Refuse with RFC 6750 statuses: 401 `invalid_token` with `WWW-Authenticate: Bearer \
error=\"invalid_token\"`, 400 `invalid_request` for a malformed header.",
    ],
    flask: r#"import jwt
from flask import request

def verify(token: str) -> dict:
    # Pinned algorithm; exp, iss and aud required and checked.
    return jwt.decode(
        token, JWT_SECRET,
        algorithms=["HS256"],
        audience="docs-api", issuer="https://issuer.test", leeway=30,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )

@app.post("/assist")
def assist():
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return {"error": "invalid_request"}, 401, {"WWW-Authenticate": "Bearer"}
    try:
        claims = verify(token)          # before reading the body or calling the model
    except jwt.InvalidTokenError:
        return ({"error": "invalid_token"}, 401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    ..."#,
    rust: r#"use axum::http::{HeaderMap, StatusCode, header};
use confab::guard::{Authenticated, Guard, Rejection, ScopeSet, unix_now};

/// Built once from the `[auth]` section (alg pinned, iss/aud/exp checked):
/// `Guard::from_config(&auth_config, Path::new("."))?`
fn authenticate(guard: &Guard, headers: &HeaderMap, required: &ScopeSet)
    -> Result<Authenticated, (StatusCode, String)>
{
    let values: Vec<&[u8]> = headers
        .get_all(header::AUTHORIZATION).iter().map(|v| v.as_bytes()).collect();
    guard.decide(&values, required, unix_now()).map_err(|r: Rejection| {
        let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        // Send guard.challenge(r, Some(required)) as WWW-Authenticate.
        (status, guard.challenge(r, Some(required)))
    })
}"#,
};

const AUTHZ: Remedy = Remedy {
    title: "Check the endpoint's scope exactly, as a space-delimited set",
    risk: "A valid token without the endpoint's scope was served. Typical causes: scopes split \
on commas (`\"docs:write,docs:read\"` then grants `docs:read`), prefix or wildcard matches, or a \
scope check that only some routes run.",
    steps: &[
        "Read `scope` as RFC 8693 says: a string of space-delimited, case-sensitive tokens \
(`scp` as an array of strings, if your issuer uses it). Reject any other type.",
        "Require an exact member (`\"docs:read\" in scopes`), never a substring, prefix, \
wildcard or case-insensitive match.",
        "Run the check on every route, after authentication and before any work, and answer \
403 with `WWW-Authenticate: Bearer error=\"insufficient_scope\"`.",
    ],
    flask: r#"def scopes_of(claims: dict) -> set[str]:
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise jwt.InvalidTokenError("scope must be a string")
    return set(scope.split(" ")) - {""}      # RFC 8693: spaces, not commas

if "docs:read" not in scopes_of(claims):
    return ({"error": "insufficient_scope"}, 403,
            {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="docs:read"'})"#,
    rust: r#"use confab::guard::{Rejection, ScopeSet};

// ScopeSet::parse splits on spaces and compares tokens exactly.
let required = ScopeSet::parse("docs:read");
let who = guard.authenticate(&values, unix_now())?;
guard.authorize(&who, &required)?; // Err(Rejection::InsufficientScope) -> 403
// or both at once: guard.decide(&values, &required, unix_now())"#,
};

const PROVENANCE: Remedy = Remedy {
    title: "Never act on an identifier that only the model supplied",
    risk: "A downstream request carried a resource id that came from the model's output, not \
from the caller's request or the caller's own resources. A prompt injection or a \
hallucination then reads or changes another tenant's data under the caller's token (a confused \
deputy).",
    steps: &[
        "Treat every value in the model's output (tool-call arguments, ids in text) as \
untrusted input.",
        "Before a downstream call, accept an id only if the caller named it in this request, \
or the caller's `sub` owns it (checked against your data, not the model's word); refuse \
anything else and tell the model `document_not_permitted`.",
        "Validate the id's syntax too (an allowlist pattern such as `^[a-z0-9-]{1,64}$`), so \
`../`, encoded and wildcard ids never reach a URL.",
    ],
    flask: r#"DOC_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

def run_get_doc(tool_args: dict, sub: str, requested_id: str | None):
    doc_id = tool_args.get("id")
    if not isinstance(doc_id, str) or not DOC_ID.fullmatch(doc_id):
        return {"error": "document_not_permitted"}
    # From the request, or owned by the caller: never because the model said so.
    if doc_id != requested_id and not owns(sub, doc_id):
        return {"error": "document_not_permitted"}
    return fetch_owned_doc(doc_id, sub)"#,
    rust: r#"use confab::guard::{Method, RequestContext, ResourceKind, Untrusted, Validator};

let kind = ResourceKind::with_default_pattern("doc")?;
// The id the user put in the request is the only one supplied by the user.
let ctx = RequestContext::new(who.sub.clone()).with_supplied(&kind, &body.doc_id);
let validator = Validator::new(&owners, &ctx); // owners: impl PermissionStore
let privilege = policy.privilege(&who.scopes, validator);
// A model-supplied path passes only for ids the user supplied or the caller owns.
let req = privilege
    .authorize_request(Method::Get, Untrusted::from_llm(format!("/docs/{id}")))?;
let url = format!("{DOCS_API}{}", req.path());"#,
};

const OWNERSHIP: Remedy = Remedy {
    title: "Authorize every object access by owner",
    risk: "A response to one principal carried the content of a resource another principal \
owns: broken object level authorization (IDOR), either on a direct read or through what the \
model fetched and repeated.",
    steps: &[
        "When serving or fetching `/docs/{id}`, compare the resource's owner with the token's \
`sub` (or tenant) and answer 404 otherwise; an unknown id and someone else's id look the same.",
        "Apply the same check to documents fetched by tool calls before their content reaches \
the model, since the model may repeat it in the answer.",
        "Never share caches of fetched content across principals.",
    ],
    flask: r#"@app.get("/docs/<doc_id>")
def read_doc(doc_id):
    claims, token = authorize()
    doc = fetch_doc(doc_id, token)                  # GET from the docs API
    if doc is None or doc.get("owner") != claims["sub"]:
        return {"error": "not_found"}, 404          # same answer for unknown and foreign ids
    return {"id": doc_id, "content": doc["content"]}"#,
    rust: r#"use confab::guard::{Method, RequestContext, Untrusted, Validator};

// `owners` implements PermissionStore: permits()/owns() answer from your data.
let ctx = RequestContext::new(who.sub.clone());
let privilege = read_policy.privilege(&who.scopes, Validator::new(&owners, &ctx));
let req = match privilege.authorize_request(Method::Get, Untrusted::from_user(path)) {
    Ok(req) => req,
    Err(_) => return StatusCode::NOT_FOUND.into_response(),
};
let doc = fetch(req.path()).await?;
if doc.owner != who.sub {
    return StatusCode::NOT_FOUND.into_response();
}"#,
};

const AGENCY: Remedy = Remedy {
    title: "Keep tool calls inside the endpoint's capabilities; never follow model URLs",
    risk: "The target made a downstream call the endpoint was never meant to make (a DELETE or \
PUT from a read endpoint, a fetch of a URL the model invented), or sent the caller's bearer token \
to a host other than the downstream API. The model can be steered to do anything those tools \
allow, with the caller's identity.",
    steps: &[
        "Offer the model only the tools the endpoint needs: a read endpoint gets `get_doc`, \
no `update_doc`, `delete_doc` or `fetch_url`.",
        "Enforce the capability in code when running a tool call: an exact tool name, the \
allowed method and path pattern; refuse unknown tools with an error result, never run them.",
        "Build downstream URLs from a fixed base and a validated id. Never fetch a URL the \
model produced; if a tool must fetch URLs, check the host against an allowlist and drop the \
caller's token.",
        "Send the caller's token only to the downstream API's host (or exchange it for a \
narrower token), with redirects off so it cannot be forwarded.",
    ],
    flask: r#"TOOLS = [GET_DOC_TOOL]                 # the only tool the read endpoint offers

def run_tool(tc, sub, token, requested_id):
    if tc.function.name != "get_doc":     # update_doc, delete_doc, fetch_url: refused
        return {"error": "tool_not_permitted"}
    args = json.loads(tc.function.arguments or "{}")
    ...                                   # id checks as under PROVENANCE
    r = http.get(f"{DOCS_API_URL}/docs/{doc_id}",         # fixed base, never a model URL
                 headers={"Authorization": f"Bearer {token}"},
                 timeout=5, allow_redirects=False)"#,
    rust: r#"use confab::guard::capability::{ArgSpec, ArgType};
use confab::guard::{Capability, EndpointPolicy, Method, MethodScopes, ToolSpec, Untrusted};

let policy = EndpointPolicy::new("assist", kind.clone(),
        MethodScopes::read_write("docs:read", "docs:write"))
    .capability(Capability::parse("GET /docs/{id}")?)?
    .tool(ToolSpec::new("get_doc", "docs:read")
        .arg(ArgSpec::required("id", ArgType::Resource("doc".into()))))?;
let privilege = policy.privilege(&who.scopes, validator);
// Unknown tools, extra arguments and unsourced ids are refused here:
let call = privilege.authorize_tool_call(
    Untrusted::from_llm(name.as_str()), Untrusted::from_llm(arguments))?;
// For a URL: privilege.authorize_downstream(Method::Get, Untrusted::from_llm(url))?"#,
};

const ECHO: Remedy = Remedy {
    title: "Keep secrets out of prompts, responses and logs",
    risk: "A secret left the target: the caller's bearer token (or its signature, or an \
encoding of it), the signing key, the LLM API key, long spans of the system prompt, in a \
response, a log line or the prompt sent to the model. Whatever the model sees it can repeat to \
whoever writes the next prompt.",
    steps: &[
        "Never put secrets in the system prompt or any message to the model: no token, no \
key. The model never needs the caller's credential; your code makes the downstream calls.",
        "Error messages name a code, never the token or exception text that may hold it.",
        "Log the token's `sub` or `jti`, never the `Authorization` header; add a log filter \
that redacts token-shaped strings and your keys as a last line of defence.",
        "Scrub the model's answer before returning it: the caller's token and its encodings, \
your keys, and verbatim spans of the system prompt.",
    ],
    flask: r#"messages = [
    {"role": "system", "content": SYSTEM_PROMPT},   # no token, no key in here
    {"role": "user", "content": prompt},
]
...
except openai.OpenAIError:
    log.warning("model call failed for %s", claims["sub"])   # sub, never the token
    return {"error": "model_unavailable"}, 502               # no token in the message

# Scrubber: as in examples/flask/app.py (secrets, their encodings, prompt spans).
scrubber = Scrubber(SYSTEM_PROMPT, [OPENAI_API_KEY, JWT_SECRET, token,
                                    token.rsplit(".", 1)[-1]])
return {"answer": scrubber.scrub(msg.content or "")}"#,
    rust: r#"use confab::guard::scrub::{ScrubberBuilder, SecretKind};
use confab::guard::Secret;

let mut b = ScrubberBuilder::new();
b.bearer_token("caller_token", &Secret::from(token))?;   // whole token and its signature
b.secret(SecretKind::LlmApiKey, "llm_api_key", &llm_key)?;
b.secret(SecretKind::SigningKey, "jwt_secret", &jwt_secret)?;
b.system_prompt("system_prompt", SYSTEM_PROMPT)?;
let (clean, _found) = b.build()?.scrub_str(&answer);
// Logs: confab::guard::audit::AuditLog writes records with a token fingerprint, never a token."#,
};

const ROBUST: Remedy = Remedy {
    title: "Answer bad input with 4xx and failures with 502/503, never 500 or a hang",
    risk: "Something the client sent made the target answer 5xx, drop the connection or hang. \
Any caller can trigger it, and the crash path often skips the checks and cleanup of the normal \
path.",
    steps: &[
        "Validate the body and the claims' types before use: a non-object body, a missing \
`prompt`, a `scope` that is an array are 400 or 401, not exceptions.",
        "Catch errors of the model client and of downstream calls and map them to 502 or \
503 (`model_unavailable`, `downstream_unavailable`).",
        "Put a timeout on every outbound call and on the whole request, and turn off \
client retries you do not count.",
        "Keep a last-resort error handler that answers a fixed JSON body, and fix what it \
catches.",
    ],
    flask: r#"body = request.get_json(silent=True)
if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
    return {"error": "invalid_request"}, 400

llm = openai.OpenAI(base_url=OPENAI_BASE_URL, api_key=OPENAI_API_KEY,
                    timeout=20, max_retries=0)
try:
    resp = llm.chat.completions.create(...)
except Exception:
    return {"error": "model_unavailable"}, 502

r = http.get(url, timeout=5)           # every downstream call has a timeout
if r.status_code == 404:
    return {"error": "not_found"}, 404  # not raise_for_status() -> 500"#,
    rust: r#"use axum::{Json, http::StatusCode};
use std::time::Duration;

// Parse into a typed body; a bad body is 400, never a panic.
let body: AssistBody = match serde_json::from_slice(&bytes) {
    Ok(b) => b,
    Err(_) => return (StatusCode::BAD_REQUEST, "invalid_request").into_response(),
};
// A deadline on the whole request, a timeout on every client.
let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
match tokio::time::timeout(Duration::from_secs(30), handle(body)).await {
    Ok(Ok(answer)) => Json(answer).into_response(),
    Ok(Err(_)) => (StatusCode::BAD_GATEWAY, "model_unavailable").into_response(),
    Err(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout").into_response(),
}"#,
};

const COST: Remedy = Remedy {
    title: "Cap model calls, max_tokens and prompt size per request, in code",
    risk: "One request made more model calls than the spec's cap (a tool-call loop), asked for \
more (or unlimited) output tokens, or sent an oversized prompt. An attacker turns that into \
your bill or a denial of service.",
    steps: &[
        "Loop over tool calls for at most N model calls per request (counting SDK retries: \
set `max_retries=0` or count them), then stop with a fixed answer.",
        "Pass an explicit `max_tokens` no larger than the cap on every call.",
        "Refuse or truncate oversized user input (413) and documents before they go \
upstream; cap the number of tool calls run per model turn.",
    ],
    flask: r#"MAX_CALLS, MAX_TOKENS, MAX_PROMPT_BYTES = 4, 1024, 16 * 1024

if len(prompt.encode()) > MAX_PROMPT_BYTES:
    return {"error": "prompt_too_large"}, 413
for call in range(MAX_CALLS):                 # not `while True`
    resp = llm.chat.completions.create(model=MODEL, messages=messages,
                                       tools=TOOLS, max_tokens=MAX_TOKENS)
    msg = resp.choices[0].message
    if not msg.tool_calls:
        return {"answer": scrub(msg.content or "")}
    for tc in msg.tool_calls[:MAX_TOOL_CALLS_PER_TURN]:
        ...
return {"answer": "I could not finish this request within its budget."}"#,
    rust: r#"const MAX_CALLS: usize = 4;
const MAX_TOKENS: u32 = 1024;
const MAX_PROMPT_BYTES: usize = 16 * 1024;

if body.prompt.len() > MAX_PROMPT_BYTES {
    return (StatusCode::PAYLOAD_TOO_LARGE, "prompt_too_large").into_response();
}
for _ in 0..MAX_CALLS {
    let reply = llm.chat(&messages, MAX_TOKENS).await?; // max_tokens on every call
    if reply.tool_calls.is_empty() {
        return Json(json!({ "answer": scrub(&reply.content) })).into_response();
    }
    // ... run at most a few tool calls, each through privilege.authorize_tool_call
}
Json(json!({ "answer": "stopped at the model-call cap" })).into_response()"#,
};

const UNAUTH_LLM: Remedy = Remedy {
    title: "Authenticate before the model is called",
    risk: "A request without any credentials reached the model. Anyone on the network can use \
your model quota, and the endpoint's prompt and tools, for free.",
    steps: &[
        "Run the bearer-token check (decorator, middleware or extractor) on every endpoint \
that reaches the model, before the handler builds a prompt.",
        "Answer a missing token with 401 and `WWW-Authenticate: Bearer` (no error code, \
RFC 6750 §3.1).",
        "Add a test per endpoint: no `Authorization` header means no model call.",
    ],
    flask: r#"def token_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        claims, token = authorize()       # raises -> 401 before the view runs
        g.claims, g.token = claims, token
        return view(*args, **kwargs)
    return wrapped

@app.post("/assist")
@token_required                           # on every route that reaches the model
def assist():
    ..."#,
    rust: r#"use axum::{extract::{Request, State}, middleware::{self, Next}, response::Response};

async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next)
    -> Result<Response, (StatusCode, String)>
{
    let values: Vec<&[u8]> = req.headers()
        .get_all(header::AUTHORIZATION).iter().map(|v| v.as_bytes()).collect();
    app.guard.decide(&values, &app.required, unix_now())
        .map_err(|r| (StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED),
                      app.guard.challenge(r, Some(&app.required))))?;
    Ok(next.run(req).await)
}

let router = Router::new().route("/assist", post(assist))
    .route_layer(middleware::from_fn_with_state(app.clone(), require_token));"#,
};

const AGREE: Remedy = Remedy {
    title: "Align the token decision with the RFCs (or baseline a deliberate difference)",
    risk: "The target accepted or refused a request differently from the reference guard \
(RFC 6750, 7519, 8725). Usually low severity: a stricter or looser parsing rule, e.g. a \
case-sensitive `Bearer` scheme, duplicate JSON members, string NumericDates, or refusing a valid \
request.",
    steps: &[
        "Read the finding's kind and observed text: it names the guard's reason (e.g. \
`duplicate_member`, `claim_type`, `valid_request_refused`).",
        "Accept the `Bearer` scheme case-insensitively with one or more spaces (RFC 6750 \
§2.1 and RFC 9110), refuse duplicate JSON members and non-numeric `exp`/`nbf`/`iat`.",
        "If the target is stricter on purpose, record the finding's fingerprint in a baseline \
(`confab scan --write-baseline`).",
    ],
    flask: r#"def extract_bearer(value: str | None) -> str:
    if not value:
        raise Rejection("missing", None)                 # 401, no error code
    scheme, sep, token = value.partition(" ")
    if scheme.lower() != "bearer" or not sep or not token.strip(" "):
        raise Rejection("malformed", "invalid_request")  # 400
    return token.strip(" ")"#,
    rust: r#"use confab::guard::bearer::extract_token;

// RFC 6750 §2.1: one Authorization header, case-insensitive scheme, b64token syntax.
let token = extract_token(&values, guard.max_token_bytes())?;
let who = guard.verify_token(token, unix_now())?; // duplicate members, claim types, ..."#,
};
