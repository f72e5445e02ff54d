#!/usr/bin/env python3
"""A chat web app with its own users, shaped like Open WebUI: confab's "real application" target.

FastAPI + uvicorn, PyJWT, SQLite (stdlib ``sqlite3``), the ``openai`` SDK and ``cryptography``
(Fernet). It issues its own tokens, keeps its own users, chats, API keys, workflows and jobs,
authorizes by role, and has no downstream API. confab tests it without any change.

One file, two forms, chosen by ``CONFAB_MODE``:

* ``hardened`` (the default): a confab campaign against it must find nothing above "low".
* ``vulnerable``: the same app with exactly three flaws planted on purpose, each marked
  ``PLANTED`` below and listed in README.md with the confab invariant that must catch it:
  (1) any user reads any chat (IDOR), (2) the user list is served to every user (missing role
  check), (3) the token's ``session_stamp`` is not checked. Never deploy it.

Tokens: HS256 signed with ``WEBUI_SECRET_KEY``, claims ``id`` (the user's UUID; there is no
``sub``), ``session_stamp`` (a random per-user value kept in the database), ``typ =
"session"``, ``iat``, ``exp``, ``jti``. A token is read from ``Authorization: Bearer`` or, when
no bearer credentials are sent, from the ``token`` cookie. The app also derives a Fernet key
from the same secret (API keys are kept encrypted), so ``WEBUI_SECRET_KEY`` must be url-safe
base64 of exactly 32 bytes, as ``Fernet.generate_key()`` makes: 44 characters ending in ``=``.

The environment: ``PORT``, ``OPENAI_BASE_URL`` (ends in ``/v1``), ``OPENAI_API_KEY``,
``WEBUI_SECRET_KEY``, ``DATA_DIR`` (where ``webui.db`` goes; default a fresh temporary
directory, removed at exit), ``CONFAB_MODE``. The server binds 127.0.0.1 only; uvicorn runs with
its defaults (access log on, to stderr).

Run it from the repository root, e.g.::

    CONFAB_MODE=hardened PORT=8080 OPENAI_BASE_URL=http://127.0.0.1:9000/v1 \\
    OPENAI_API_KEY=sk-test WEBUI_SECRET_KEY=$(python3 -c \\
      'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \\
    python3 examples/webapp/app.py
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

import jwt
import openai
import uvicorn
from cryptography.fernet import Fernet
from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer, OAuth2PasswordRequestForm
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("webapp")

TOKEN_TTL_S = 7 * 24 * 3600
LEEWAY_S = 30  # clock skew allowed on exp/nbf (the spec's [auth] leeway_s)
COOKIE = "token"
MAX_TOKEN_BYTES = 8 * 1024
MAX_BODY_BYTES = 512 * 1024  # a workflow is ~44 KB
MAX_PROMPT_CHARS = 8 * 1024
MAX_MESSAGES_CHARS = 16 * 1024
MAX_TOOL_RESULT_CHARS = 4000
MAX_CONTEXT_CHARS = 8 * 1024
LLM_CALLS_PER_REQUEST = 3  # under the spec's [limits] llm_calls_per_request (4), model list too
MAX_TOKENS = 512  # well under the spec's [limits] max_tokens
UPSTREAM_BUDGET_BYTES = 24 * 1024  # under the spec's [limits] upstream_prompt_bytes
MAX_TOOL_CALLS_PER_TURN = 8
LLM_DEADLINE_S = 8.0  # all model calls of one request, the model list included
JOB_WAIT_S = 5.0  # how long GET /api/v1/tasks/{id}/result waits for a pending job
PBKDF2_ROUNDS = 60_000

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_chat",
            "description": "Read one of the caller's chats by its id (a UUID).",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"],
            },
        },
    }
]


# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    mode: str
    port: int
    openai_base_url: str
    openai_api_key: str
    secret: str
    data_dir: str

    @property
    def hardened(self) -> bool:
        return self.mode == "hardened"


FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")


def load_config(env: Any = os.environ) -> tuple[Config, Fernet]:
    """Reads the environment; exits with a message naming the variable when it is unusable."""
    missing = [
        k
        for k in ("PORT", "OPENAI_BASE_URL", "OPENAI_API_KEY", "WEBUI_SECRET_KEY")
        if not env.get(k)
    ]
    if missing:
        raise SystemExit(f"app.py: missing environment variable(s): {', '.join(missing)}")
    mode = env.get("CONFAB_MODE", "hardened")
    if mode not in ("hardened", "vulnerable"):
        raise SystemExit("app.py: CONFAB_MODE must be 'hardened' or 'vulnerable'")
    secret = env["WEBUI_SECRET_KEY"]
    # The app derives its Fernet key from the signing secret: it must be a Fernet key itself.
    try:
        if not FERNET_KEY.fullmatch(secret):
            raise ValueError("not 44 url-safe base64 characters ending in '='")
        fernet = Fernet(secret.encode("ascii"))
    except ValueError as e:
        raise SystemExit(
            "app.py: WEBUI_SECRET_KEY must be url-safe base64 of exactly 32 bytes (a Fernet key, "
            f"44 characters ending in '='; got {len(secret)} characters: {e}). Make one with "
            "python3 -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from None
    try:
        port = int(env["PORT"])
    except ValueError:
        raise SystemExit("app.py: PORT must be a number") from None
    data_dir = env.get("DATA_DIR") or ""
    return (
        Config(
            mode=mode,
            port=port,
            openai_base_url=env["OPENAI_BASE_URL"].rstrip("/"),
            openai_api_key=env["OPENAI_API_KEY"],
            secret=secret,
            data_dir=data_dir,
        ),
        fernet,
    )


# --- storage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str
    role: str
    session_stamp: str

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email, "role": self.role}


SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
    password_hash TEXT NOT NULL, session_stamp TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    user_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, key_enc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, title TEXT NOT NULL, chat TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL, result TEXT,
    created_at INTEGER NOT NULL);
"""


class Database:
    """One SQLite connection shared by the threads of the server, behind a lock."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock:
            self.conn.executescript(SCHEMA)

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> int:
        with self.lock:
            return self.conn.execute(sql, args).rowcount

    # users
    def create_user(self, name: str, email: str, password: str, role: str | None) -> User | None:
        """``role=None``: the first user becomes "admin", every later one "user"."""
        salt = secrets.token_bytes(16)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ROUNDS)
        pw = f"pbkdf2${salt.hex()}${digest.hex()}"
        uid, stamp = str(uuid.uuid4()), secrets.token_urlsafe(24)
        with self.lock:
            if self.conn.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
                return None
            if role is None:
                first = self.conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
                role = "admin" if first else "user"
            self.conn.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)",
                (uid, name, email, role, pw, stamp, int(time.time())),
            )
        return User(uid, name, email, role, stamp)

    @staticmethod
    def _user(row: sqlite3.Row | None) -> User | None:
        if row is None:
            return None
        return User(row["id"], row["name"], row["email"], row["role"], row["session_stamp"])

    def user_by_id(self, uid: str) -> User | None:
        return self._user(self.one("SELECT * FROM users WHERE id = ?", uid))

    def check_password(self, email: str, password: str) -> User | None:
        row = self.one("SELECT * FROM users WHERE email = ?", email)
        if row is None:
            hashlib.pbkdf2_hmac("sha256", b"x", b"y" * 16, PBKDF2_ROUNDS)  # same time either way
            return None
        _, salt, digest = row["password_hash"].split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), PBKDF2_ROUNDS)
        return self._user(row) if hmac.compare_digest(got.hex(), digest) else None

    def rotate_stamp(self, uid: str) -> None:
        self.run("UPDATE users SET session_stamp = ? WHERE id = ?", secrets.token_urlsafe(24), uid)

    def users(self) -> list[User]:
        rows = self.all("SELECT * FROM users ORDER BY created_at, email")
        return [u for u in map(self._user, rows) if u is not None]


# --- tokens -------------------------------------------------------------------------------

B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
B64URL = re.compile(r"[A-Za-z0-9_-]*")
REALM = "webapp"


class Rejection(Exception):
    """An authentication refusal (RFC 6750 §3.1). ``reason`` is a stable name; it never holds
    any part of the token."""

    def __init__(self, reason: str, code: str | None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # None: no error code (the request had no credentials)
        self.status = status or (400 if code == "invalid_request" else 401)


def _bad_token(reason: str) -> Rejection:
    return Rejection(reason, "invalid_token")


def extract_bearer(value: str) -> str:
    """RFC 6750 §2.1 ``credentials = "Bearer" 1*SP b64token``. Another scheme is "no bearer
    credentials" (``unsupported_scheme``), which lets the cookie decide."""
    v = value.strip(" \t")
    if not v or any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in v):
        raise Rejection("malformed_header", "invalid_request")
    end = next((i for i, c in enumerate(v) if c in " \t"), len(v))
    scheme, rest = v[:end], v[end:]
    if not (scheme.isascii() and scheme.lower() == "bearer"):
        raise Rejection("unsupported_scheme", None)
    credential = rest.lstrip(" ")
    if len(credential) == len(rest) or not credential:  # needs 1*SP (a tab is not SP)
        raise Rejection("malformed_header", "invalid_request")
    if len(credential) > MAX_TOKEN_BYTES:
        raise _bad_token("oversized")
    if not credential.isascii() or not B64TOKEN.fullmatch(credential):
        raise Rejection("malformed_header", "invalid_request")
    return credential


class _JsonObject(dict):
    duplicate = False


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    for k, v in pairs:
        if k in obj:
            obj.duplicate = True
        obj[k] = v
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _b64url_strict(segment: str) -> bytes:
    if not B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise _bad_token("malformed_token")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise _bad_token("malformed_token")
    return raw


def _json_object(raw: bytes) -> _JsonObject:
    try:
        obj = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_pairs_hook, parse_constant=_no_constants
        )
        if not isinstance(obj, _JsonObject):
            raise ValueError("not an object")
        json.dumps(obj, ensure_ascii=False).encode("utf-8")  # lone surrogates fail here
    except (ValueError, RecursionError, UnicodeError):
        raise _bad_token("malformed_token") from None
    return obj


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    v = claims[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad_token("claim_type")
    return float(v)


def verify_token(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """A compact HS256 JWS with a non-empty string ``id``, ``typ = "session"`` and an ``exp``.

    PyJWT checks the signature and the dates; the checks around it refuse what PyJWT lets
    through (duplicate members, ``crit``, keys in the header, string or boolean dates, lenient
    base64, NaN). The ``session_stamp`` is checked against the database by the caller."""
    if len(token) > MAX_TOKEN_BYTES:
        raise _bad_token("oversized")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _bad_token("malformed_token")
    header = _json_object(_b64url_strict(parts[0]))
    payload_raw = _b64url_strict(parts[1])
    if len(_b64url_strict(parts[2])) > 1024:
        raise _bad_token("malformed_token")
    if header.duplicate:
        raise _bad_token("duplicate_member")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _bad_token("malformed_token")
    if alg.isascii() and alg.lower() == "none":
        raise _bad_token("alg_none")
    if "crit" in header:
        raise _bad_token("unsupported_crit")
    if any(k in header for k in ("jwk", "jku", "x5u", "x5c")):
        raise _bad_token("key_in_header")
    if alg != "HS256":
        raise _bad_token("alg_mismatch")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise _bad_token("malformed_token")
    try:
        jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=LEEWAY_S,
            options={"require": ["exp"], "verify_iat": False, "verify_aud": False,
                     "verify_iss": False},
        )
    except jwt.InvalidSignatureError:
        raise _bad_token("bad_signature") from None
    except jwt.ExpiredSignatureError:
        raise _bad_token("expired") from None
    except jwt.InvalidTokenError:
        raise _bad_token("invalid_token") from None
    except Exception:  # PyJWT's int() on odd claim types can raise TypeError/OverflowError
        raise _bad_token("invalid_token") from None

    claims = _json_object(payload_raw)
    if claims.duplicate:
        raise _bad_token("duplicate_member")
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    _numeric_date(claims, "iat")
    for name in ("iss", "sub", "jti", "typ", "session_stamp"):
        if name in claims and not isinstance(claims[name], str):
            raise _bad_token("claim_type")
    aud = claims.get("aud")
    if "aud" in claims and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise _bad_token("claim_type")
    now = time.time() if now is None else now
    if exp is None:
        raise _bad_token("missing_exp")
    if now >= exp + LEEWAY_S:
        raise _bad_token("expired")
    if nbf is not None and now + LEEWAY_S < nbf:
        raise _bad_token("not_yet_valid")
    uid = claims.get("id")
    if not isinstance(uid, str) or not uid:
        raise _bad_token("missing_sub")
    if claims.get("typ") != "session":
        raise _bad_token("wrong_typ")
    return claims


def issue_token(user: User, secret: str) -> str:
    now = int(time.time())
    claims = {
        "id": user.id,
        "session_stamp": user.session_stamp,
        "typ": "session",
        "iat": now,
        "exp": now + TOKEN_TTL_S,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


# --- scrubbing: what goes to the model and what comes back ----------------------------------

JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
REDACTED = "[redacted]"


def clean_text(s: str) -> str:
    """Lone surrogates (valid in JSON escapes, not in UTF-8) become '?'."""
    return s.encode("utf-8", "replace").decode("utf-8")


def _encodings(secret: str) -> list[str]:
    b = secret.encode("utf-8")
    return [
        secret,
        base64.b64encode(b).decode().rstrip("="),
        base64.urlsafe_b64encode(b).decode().rstrip("="),
        b.hex(),
        b.hex().upper(),
        urllib.parse.quote(secret, safe=""),
    ]


class Scrubber:
    """Removes the given secrets (raw and encoded) and anything JWT-shaped."""

    def __init__(self, secrets_: list[str]) -> None:
        lits = {e for s in secrets_ if len(s) >= 8 for e in _encodings(s) if len(e) >= 8}
        self.literals = sorted(lits, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = clean_text(text)
        for lit in self.literals:
            text = text.replace(lit, REDACTED)
        return JWT_LIKE.sub(REDACTED, text)


# --- request and response models -------------------------------------------------------------


def _utf8(s: str) -> str:
    s.encode("utf-8")  # UnicodeEncodeError (a ValueError): 422
    return s


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 (a type factory)
    return Annotated[
        str, Field(min_length=min_length, max_length=max_length), AfterValidator(_utf8)
    ]


class Form(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SignupForm(Form):
    name: Text(128, 1)
    email: Text(254, 3)
    password: Text(256, 1)


class SigninForm(Form):
    email: Text(254, 3)
    password: Text(256, 1)


class AddUserForm(SignupForm):
    role: Literal["admin", "user"] = "user"


class ChatMessage(Form):
    id: Optional[Text(64)] = None
    role: Literal["system", "user", "assistant"]
    content: Text(MAX_MESSAGES_CHARS)


class ChatBody(Form):
    title: Text(256) = "New Chat"
    messages: list[ChatMessage] = Field(default_factory=list, max_length=64)


class NewChatForm(Form):
    chat: ChatBody


class CompletionForm(Form):
    model: Text(128, 1)
    messages: list[ChatMessage] = Field(min_length=1, max_length=32)
    chat_id: Optional[uuid.UUID] = None


class PromptForm(Form):
    prompt: Text(MAX_PROMPT_CHARS, 1)


class SummarizeForm(Form):
    prompt: Text(MAX_PROMPT_CHARS) = ""


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class SafeJSONResponse(JSONResponse):
    """ASCII JSON: no lone surrogate can make rendering fail."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# --- the application ------------------------------------------------------------------------


def create_app(cfg: Config, fernet: Fernet, db: Database) -> FastAPI:
    app = FastAPI(title="webapp", default_response_class=SafeJSONResponse)
    llm = openai.AsyncOpenAI(
        base_url=cfg.openai_base_url,
        api_key=cfg.openai_api_key,
        max_retries=0,  # every retry would be another model call
        timeout=LLM_DEADLINE_S,
    )
    job_events: dict[str, asyncio.Event] = {}
    background: set[asyncio.Task[None]] = set()
    bearer_scheme = HTTPBearer(auto_error=False)  # declares the security scheme in OpenAPI
    api_key_scheme = APIKeyHeader(name="x-api-key", auto_error=False)

    # --- errors ------------------------------------------------------------------------

    @app.exception_handler(Rejection)
    async def _rejection(_: Request, e: Rejection) -> Response:
        challenge = f'Bearer realm="{REALM}"'
        body: dict[str, Any] = {"detail": "Not authenticated"}
        if e.code:
            challenge += f', error="{e.code}", error_description="{e.reason}"'
            body = {"detail": "Invalid token" if e.code == "invalid_token" else "Bad request",
                    "error": e.code, "error_description": e.reason}
        return SafeJSONResponse(body, e.status, headers={"WWW-Authenticate": challenge})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> Response:
        # FastAPI's default echoes the input; this one names the field and the rule only.
        errors = [
            {"loc": [str(x) for x in err.get("loc", ())], "msg": str(err.get("msg", "")),
             "type": str(err.get("type", ""))}
            for err in e.errors()
        ]
        return SafeJSONResponse({"detail": errors}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> Response:
        return SafeJSONResponse({"detail": e.detail}, e.status_code, headers=e.headers)

    def fail(status: int, detail: str) -> StarletteHTTPException:
        return StarletteHTTPException(status, detail)

    def no_key(detail: str) -> StarletteHTTPException:
        return StarletteHTTPException(
            401, detail,
            headers={"WWW-Authenticate": f'ApiKey realm="{REALM}", header="x-api-key"'},
        )

    # --- authentication ----------------------------------------------------------------

    def request_token(request: Request) -> str:
        """The bearer token from the Authorization header, else from the ``token`` cookie (a
        header with another scheme is no bearer credential, as FastAPI's HTTPBearer says)."""
        values = request.headers.getlist("authorization")
        if len(values) > 1:
            raise Rejection("multiple_credentials", "invalid_request")
        if values:
            try:
                return extract_bearer(values[0])
            except Rejection as r:
                if r.reason != "unsupported_scheme":
                    raise
        cookie = request.cookies.get(COOKIE)
        if cookie:
            if len(cookie) > MAX_TOKEN_BYTES:
                raise _bad_token("oversized")
            return cookie
        raise Rejection("missing_credentials", None)

    def current_user(request: Request, _: Any = Security(bearer_scheme)) -> User:
        token = request_token(request)
        claims = verify_token(token, cfg.secret)
        user = db.user_by_id(claims["id"])
        if user is None:
            raise _bad_token("unknown_user")
        if cfg.hardened:
            stamp = claims.get("session_stamp")
            if not isinstance(stamp, str) or not hmac.compare_digest(
                stamp.encode(), user.session_stamp.encode()
            ):
                raise _bad_token("stale_session")
        # else: PLANTED (3): the session_stamp is never compared with the database, so a
        # token from before a sign-out (or with any stamp, or none) is still accepted.
        request.state.token = token
        return user

    def admin_user(user: User = Depends(current_user)) -> User:
        if user.role != "admin":
            raise fail(403, "admin only")
        return user

    def api_key_user(request: Request, _: Any = Security(api_key_scheme)) -> User:
        """The caller's own API key in ``x-api-key``, and nothing else (no JWT, no cookie)."""
        values = request.headers.getlist("x-api-key")
        if len(values) != 1 or not values[0] or len(values[0]) > 256:
            raise no_key("API key required")
        digest = hashlib.sha256(values[0].encode("utf-8", "replace")).hexdigest()
        row = db.one("SELECT user_id FROM api_keys WHERE key_hash = ?", digest)
        user = db.user_by_id(row["user_id"]) if row else None
        if user is None:
            raise no_key("invalid API key")
        request.state.token = values[0]
        return user

    def scrubber(request: Request) -> Scrubber:
        caller = getattr(request.state, "token", "")
        parts = [caller, caller.rsplit(".", 1)[-1] if caller.count(".") == 2 else ""]
        return Scrubber([cfg.secret, cfg.openai_api_key, *parts])

    # --- auths -------------------------------------------------------------------------

    def signed_in(user: User, response: Response) -> dict[str, Any]:
        token = issue_token(user, cfg.secret)
        response.set_cookie(COOKIE, token, httponly=True, samesite="lax", max_age=TOKEN_TTL_S)
        return {"token": token, "token_type": "Bearer", **user.public()}

    def valid_email(email: str) -> str:
        email = email.strip().lower()
        if not EMAIL.fullmatch(email):
            raise fail(400, "invalid email")
        return email

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": True}

    @app.post("/api/v1/auths/signup")
    def signup(form: SignupForm, response: Response) -> dict[str, Any]:
        user = db.create_user(form.name, valid_email(form.email), form.password, None)
        if user is None:
            raise fail(400, "email already registered")
        log.info("signup: user %s role=%s", user.id, user.role)
        return signed_in(user, response)

    @app.post("/api/v1/auths/signin")
    def signin(form: SigninForm, response: Response) -> dict[str, Any]:
        user = db.check_password(form.email.strip().lower(), form.password)
        if user is None:
            raise fail(400, "The email or password provided is incorrect.")
        return signed_in(user, response)

    @app.post("/api/v1/auths/token")
    def token_login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
        user = db.check_password(form.username.strip().lower(), form.password)
        if user is None:
            raise StarletteHTTPException(
                401, "Incorrect username or password", headers={"WWW-Authenticate": "Bearer"}
            )
        return {"access_token": issue_token(user, cfg.secret), "token_type": "bearer"}

    @app.post("/api/v1/auths/add")
    def add_user(form: AddUserForm, _: User = Depends(admin_user)) -> dict[str, Any]:
        user = db.create_user(form.name, valid_email(form.email), form.password, form.role)
        if user is None:
            raise fail(400, "email already registered")
        log.info("add: user %s role=%s", user.id, user.role)
        return user.public()

    @app.get("/api/v1/auths/")
    def me(user: User = Depends(current_user)) -> dict[str, Any]:
        return user.public()

    @app.post("/api/v1/auths/signout")
    def signout(response: Response, user: User = Depends(current_user)) -> dict[str, Any]:
        db.rotate_stamp(user.id)  # every token issued so far is now stale
        response.delete_cookie(COOKIE)
        return {"status": True}

    @app.post("/api/v1/auths/api_key")
    def create_api_key(user: User = Depends(current_user)) -> dict[str, Any]:
        key = "sk-" + secrets.token_hex(24)
        digest = hashlib.sha256(key.encode()).hexdigest()
        db.run(
            "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?)",
            user.id, digest, fernet.encrypt(key.encode()),
        )
        return {"api_key": key}

    @app.get("/api/v1/auths/api_key")
    def get_api_key(user: User = Depends(current_user)) -> dict[str, Any]:
        row = db.one("SELECT key_enc FROM api_keys WHERE user_id = ?", user.id)
        if row is None:
            raise fail(404, "no API key")
        return {"api_key": fernet.decrypt(row["key_enc"]).decode()}

    # --- users -------------------------------------------------------------------------

    @app.get("/api/v1/users/")
    def list_users(user: User = Depends(current_user)) -> list[dict[str, Any]]:
        if cfg.hardened and user.role != "admin":
            raise fail(403, "admin only")
        # else: PLANTED (2): no role check, every signed-in user gets the user list.
        return [u.public() for u in db.users()]

    # --- chats -------------------------------------------------------------------------

    def chat_row(chat_id: str) -> sqlite3.Row | None:
        return db.one("SELECT * FROM chats WHERE id = ?", chat_id)

    def own_chat(chat_id: str, user: User) -> sqlite3.Row | None:
        row = chat_row(chat_id)
        return row if row is not None and row["user_id"] == user.id else None

    def chat_out(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "user_id": row["user_id"],
            "title": row["title"],
            "chat": json.loads(row["chat"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    @app.post("/api/v1/chats/new")
    def new_chat(form: NewChatForm, user: User = Depends(current_user)) -> dict[str, Any]:
        now = int(time.time())
        chat_id = str(uuid.uuid4())
        body = form.chat.model_dump()
        db.run(
            "INSERT INTO chats VALUES (?, ?, ?, ?, ?, ?)",
            chat_id, user.id, form.chat.title, json.dumps(body), now, now,
        )
        row = chat_row(chat_id)
        assert row is not None
        return chat_out(row)

    @app.get("/api/v1/chats/")
    def list_chats(
        q: Annotated[Optional[str], Query(max_length=256)] = None,
        user: User = Depends(current_user),
    ) -> list[dict[str, Any]]:
        rows = db.all(
            "SELECT id, title, updated_at FROM chats WHERE user_id = ? ORDER BY updated_at DESC",
            user.id,
        )
        needle = (q or "").lower()
        return [
            {"id": r["id"], "title": r["title"], "updated_at": r["updated_at"]}
            for r in rows
            if not needle or needle == r["id"] or needle in r["title"].lower()
        ][:100]

    @app.get("/api/v1/chats/{chat_id}")
    def get_chat(chat_id: uuid.UUID, user: User = Depends(current_user)) -> dict[str, Any]:
        if cfg.hardened:
            row = own_chat(str(chat_id), user)
        else:
            row = chat_row(str(chat_id))  # PLANTED (1): IDOR, no owner check
        if row is None:
            raise fail(404, "chat not found")
        return chat_out(row)

    # --- the model ---------------------------------------------------------------------

    class ModelUnavailable(Exception):
        pass

    async def list_models(deadline: float) -> list[str]:
        """GET {OPENAI_BASE_URL}/models: no model is called without the list."""
        try:
            page = await asyncio.wait_for(llm.models.list(), max(0.1, deadline - time.monotonic()))
            ids = [m.id for m in page.data if isinstance(getattr(m, "id", None), str)]
        except Exception as e:  # the SDK's errors, timeouts, a malformed list
            log.warning("model list unavailable: %s", type(e).__name__)
            raise ModelUnavailable() from None
        if not ids:
            log.warning("model list is empty")
            raise ModelUnavailable()
        return ids

    async def complete(
        model: str, messages: list[dict[str, Any]], deadline: float, tools: bool
    ) -> Any:
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": MAX_TOKENS}
        if tools:
            kwargs["tools"] = TOOLS
        remaining = deadline - time.monotonic()
        if remaining <= 0.1:
            raise asyncio.TimeoutError()
        resp = await asyncio.wait_for(llm.chat.completions.create(**kwargs), remaining)
        return resp.choices[0].message

    def run_tool(name: str, arguments: str, user: User, scrub: Scrubber) -> str:
        if name != "get_chat":
            return json.dumps({"error": "unknown tool"})
        try:
            args = json.loads(arguments or "{}")
            chat_id = str(uuid.UUID(str(args["id"])))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return json.dumps({"error": "get_chat needs {\"id\": <chat UUID>}"})
        row = own_chat(chat_id, user)  # the model's id must be one of the caller's chats
        if row is None:
            return json.dumps({"error": "chat not found"})
        return scrub(json.dumps(chat_out(row)))[:MAX_TOOL_RESULT_CHARS]

    def context_of(row: sqlite3.Row, scrub: Scrubber) -> str:
        chat = json.loads(row["chat"])
        lines = [f"{m['role']}: {m['content']}" for m in chat.get("messages", [])]
        return scrub(f"Chat '{row['title']}':\n" + "\n".join(lines))[-MAX_CONTEXT_CHARS:]

    async def converse(
        model: str, messages: list[dict[str, Any]], user: User, scrub: Scrubber,
        deadline: float, tools: bool,
    ) -> str:
        """Model calls with tool rounds, at most LLM_CALLS_PER_REQUEST of them."""
        for _ in range(LLM_CALLS_PER_REQUEST):
            if len(json.dumps(messages)) > UPSTREAM_BUDGET_BYTES:
                return "(stopped: the conversation grew too long)"
            msg = await complete(model, messages, deadline, tools)
            calls = list(getattr(msg, "tool_calls", None) or [])
            if not calls:
                return scrub(str(msg.content or ""))
            calls = calls[:MAX_TOOL_CALLS_PER_TURN]
            messages.append({
                "role": "assistant",
                "content": scrub(str(msg.content or "")),
                "tool_calls": [
                    {"id": str(c.id or ""), "type": "function",
                     "function": {"name": str(c.function.name or ""),
                                  "arguments": scrub(str(c.function.arguments or ""))}}
                    for c in calls
                ],
            })
            for c in calls:
                messages.append({
                    "role": "tool",
                    "tool_call_id": str(c.id or ""),
                    "content": run_tool(str(c.function.name or ""), str(c.function.arguments or ""),
                                        user, scrub),
                })
        return "(stopped: tool-call budget exhausted)"

    async def model_answer(
        model: str | None, messages: list[dict[str, Any]], user: User, scrub: Scrubber,
        tools: bool,
    ) -> str:
        """Lists the models, checks ``model`` (None: the first one listed), then converses.
        Raises StarletteHTTPException on failure."""
        deadline = time.monotonic() + LLM_DEADLINE_S
        try:
            models = await list_models(deadline)
        except ModelUnavailable:
            raise fail(502, "no model available") from None
        if model is None:
            model = models[0]
        elif model not in models:
            raise fail(400, "Model not found")
        try:
            return await converse(model, messages, user, scrub, deadline, tools)
        except (asyncio.TimeoutError, openai.APITimeoutError):
            log.warning("model call timed out")
            raise fail(504, "the model did not answer in time") from None
        except Exception as e:  # the SDK's errors, a malformed answer
            log.warning("model call failed: %s", type(e).__name__)
            raise fail(502, "the model failed") from None

    @app.post("/api/chat/completions")
    async def chat_completions(
        form: CompletionForm, request: Request, user: User = Depends(current_user)
    ) -> dict[str, Any]:
        scrub = scrubber(request)
        if sum(len(m.content) for m in form.messages) > MAX_MESSAGES_CHARS:
            raise fail(413, "messages too long")
        messages: list[dict[str, Any]] = []
        if form.chat_id is not None:
            row = own_chat(str(form.chat_id), user)
            if row is None:
                raise fail(404, "chat not found")
            # The chat goes in as the user's own words: this app has no system prompt at all.
            messages.append({"role": "user", "content": context_of(row, scrub)})
        messages += [{"role": m.role, "content": scrub(m.content)} for m in form.messages]
        answer = await model_answer(form.model, messages, user, scrub, tools=True)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": form.model,
            "chat_id": str(form.chat_id) if form.chat_id else None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop"}],
        }

    @app.post("/api/v1/chats/{chat_id}/summarize")
    async def summarize(
        chat_id: uuid.UUID, request: Request, form: Optional[SummarizeForm] = None,
        user: User = Depends(api_key_user),
    ) -> dict[str, Any]:
        scrub = scrubber(request)
        row = own_chat(str(chat_id), user)
        if row is None:
            raise fail(404, "chat not found")
        prompt = "Summarize this chat in two sentences."
        if form is not None and form.prompt:
            prompt += " " + scrub(form.prompt)
        messages = [{"role": "user", "content": prompt + "\n\n" + context_of(row, scrub)}]
        summary = await model_answer(None, messages, user, scrub, tools=False)
        return {"id": str(chat_id), "summary": summary}

    # --- tasks: the model's answer is served at a second URL ---------------------------

    async def run_job(job_id: str, user: User, prompt: str, scrub: Scrubber) -> None:
        try:
            messages = [{"role": "user", "content": prompt}]
            result = await model_answer(None, messages, user, scrub, tools=True)
            status = "done"
        except StarletteHTTPException as e:
            result, status = str(e.detail), "failed"
        except Exception as e:  # never leave a job pending
            log.warning("job failed: %s", type(e).__name__)
            result, status = "internal error", "failed"
        db.run("UPDATE jobs SET status = ?, result = ? WHERE id = ?", status, result, job_id)
        event = job_events.pop(job_id, None)
        if event is not None:
            event.set()

    @app.post("/api/v1/tasks")
    async def create_task(
        form: PromptForm, request: Request, user: User = Depends(current_user)
    ) -> dict[str, Any]:
        scrub = scrubber(request)
        job_id = str(uuid.uuid4())
        db.run("INSERT INTO jobs VALUES (?, ?, 'pending', NULL, ?)", job_id, user.id,
               int(time.time()))
        job_events[job_id] = asyncio.Event()
        task = asyncio.create_task(run_job(job_id, user, scrub(form.prompt), scrub))
        background.add(task)
        task.add_done_callback(background.discard)
        return {"job_id": job_id, "status": "pending"}

    @app.get("/api/v1/tasks/{job_id}/result")
    async def task_result(job_id: uuid.UUID, user: User = Depends(current_user)) -> Response:
        jid = str(job_id)
        event = job_events.get(jid)  # before reading the row: run_job pops it after writing
        row = db.one("SELECT * FROM jobs WHERE id = ?", jid)
        if row is None or row["user_id"] != user.id:
            raise fail(404, "job not found")
        if row["status"] == "pending" and event is not None:
            try:
                await asyncio.wait_for(event.wait(), JOB_WAIT_S)
            except asyncio.TimeoutError:
                pass
            row = db.one("SELECT * FROM jobs WHERE id = ?", jid)
            assert row is not None
        body = {"job_id": jid, "status": row["status"], "result": row["result"]}
        return SafeJSONResponse(body, 202 if row["status"] == "pending" else 200)

    # --- workflows: big JSON bodies with the model's URL and code inside -----------------

    def check_json(value: Any, depth: int = 0) -> None:
        if depth > 64:
            raise fail(400, "workflow nested too deeply")
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(400, "workflow has a non-finite number")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeError:
                raise fail(400, "workflow has invalid unicode") from None
        elif isinstance(value, dict):
            for k, v in value.items():
                check_json(k, depth + 1)
                check_json(v, depth + 1)
        elif isinstance(value, list):
            for v in value:
                check_json(v, depth + 1)

    def braces_balanced(code: str) -> bool:
        depth = 0
        for c in code:
            depth += {"{": 1, "}": -1}.get(c, 0)
            if depth < 0:
                return False
        return depth == 0

    @app.post("/api/v1/workflows")
    async def create_workflow(request: Request, user: User = Depends(current_user)) -> dict:
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise fail(400, "body is not JSON") from None
        if not isinstance(body, dict):
            raise fail(400, "a workflow is a JSON object")
        check_json(body)
        name, nodes, settings = body.get("name"), body.get("nodes"), body.get("settings")
        if not isinstance(name, str) or not name or len(name) > 256:
            raise fail(400, "workflow needs a name")
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            raise fail(400, "workflow needs a list of nodes")
        if not isinstance(settings, dict):
            raise fail(400, "workflow needs settings")
        base = settings.get("model_base_url")
        if not isinstance(base, str) or base.rstrip("/") != cfg.openai_base_url:
            raise fail(400, "settings.model_base_url is not a configured model connection")
        for i, node in enumerate(nodes):
            code = node.get("parameters", {}).get("code") if isinstance(
                node.get("parameters"), dict) else None
            if code is not None and (not isinstance(code, str) or not braces_balanced(code)):
                raise fail(400, f"node {i}: code does not compile (unbalanced braces)")
        wid = str(uuid.uuid4())
        db.run("INSERT INTO workflows VALUES (?, ?, ?, ?, ?)", wid, user.id, name,
               json.dumps(body), int(time.time()))
        return {"id": wid, "name": name, "nodes": len(nodes)}

    @app.get("/api/v1/workflows/{workflow_id}")
    def get_workflow(workflow_id: uuid.UUID, user: User = Depends(current_user)) -> dict:
        row = db.one("SELECT * FROM workflows WHERE id = ?", str(workflow_id))
        if row is None or row["user_id"] != user.id:
            raise fail(404, "workflow not found")
        return {"id": row["id"], "user_id": row["user_id"], "name": row["name"],
                "workflow": json.loads(row["body"])}

    return app


class BodyLimit:
    """ASGI middleware: request bodies over ``limit`` bytes get 413 before any route runs."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await SafeJSONResponse({"detail": "request body too large"}, 413)(
                    scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def main() -> None:
    cfg, fernet = load_config()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     webapp: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    data_dir = cfg.data_dir
    if not data_dir:
        data_dir = tempfile.mkdtemp(prefix="webapp-")
        import atexit

        atexit.register(shutil.rmtree, data_dir, True)
    os.makedirs(data_dir, exist_ok=True)
    db = Database(os.path.join(data_dir, "webui.db"))
    app = create_app(cfg, fernet, db)
    log.info("starting (%s form) on 127.0.0.1:%d", cfg.mode, cfg.port)
    uvicorn.run(BodyLimit(app, MAX_BODY_BYTES), host="127.0.0.1", port=cfg.port)


if __name__ == "__main__":
    main()
