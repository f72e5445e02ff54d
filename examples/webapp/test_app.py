"""Both forms of examples/webapp/app.py against an in-process fake OpenAI server, all on
127.0.0.1 ephemeral ports.

Run from the repository root (or anywhere):

    python3 -m pip install --root-user-action=ignore -r examples/webapp/requirements.txt
    python3 -m pytest -q examples/webapp/test_app.py

Each form runs as a subprocess started the way confab starts it (the environment of
hardened.toml / vulnerable.toml), and is set up the way those specs' [[setup]] steps do it:
the admin signs up first, adds alice, bob signs himself up, everyone makes an API key and a
chat holding a private marker, alice and bob post the workflow. Every server and process is
stopped at the end. The tests check both directions: the hardened form refuses what the
vulnerable form accepts, for each planted flaw, and both forms share everything else.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import jwt
import pytest
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
APP = HERE / "app.py"
SECRET = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # a Fernet key
LLM_KEY = "sk-canary-" + uuid.uuid4().hex
MODELS = ["confab-model", "confab-model-mini"]
TIMEOUT = 20  # seconds, for every HTTP call the test makes
START_TIMEOUT = 30


# --- the fake model -----------------------------------------------------------------------------


def _send_json(h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


class FakeOpenAI:
    """OpenAI-compatible ``GET /v1/models`` and ``POST /v1/chat/completions`` on a loopback
    ephemeral port. ``script(request, n)`` answers completion n (1-based) with ``{"content":
    str}`` or ``{"tool_calls": [(name, args)]}``; past ``loop_limit`` calls it ends the loop.
    ``models_status`` other than 200 makes the model list fail."""

    loop_limit = 8

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request: method, path, auth, body
        self.models_status = 200
        self.script: Callable[[dict[str, Any], int], dict[str, Any]] = self._default
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _record(self, body: Any) -> int:
                with fake.lock:
                    fake.requests.append({"method": self.command, "path": self.path,
                                          "auth": self.headers.get("Authorization"),
                                          "body": body})
                    return sum(1 for r in fake.requests if r["method"] == "POST")

            def do_GET(self) -> None:
                self._record(None)
                if self.path.rstrip("/") != "/v1/models":
                    _send_json(self, 404, {"error": {"message": "no such route"}})
                elif fake.models_status != 200:
                    _send_json(self, fake.models_status, {"error": {"message": "unavailable"}})
                else:
                    _send_json(self, 200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "confab"}
                        for m in MODELS]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = self._record(body)
                if not self.path.endswith("/chat/completions"):
                    _send_json(self, 404, {"error": {"message": "no such route"}})
                    return
                step = {"content": "loop ended"} if n > fake.loop_limit else fake.script(body, n)
                message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
                if "tool_calls" in step:
                    message["tool_calls"] = [
                        {"id": f"call_{n}_{i}", "type": "function",
                         "function": {"name": name, "arguments": args if isinstance(args, str)
                                      else json.dumps(args)}}
                        for i, (name, args) in enumerate(step["tool_calls"])
                    ]
                _send_json(self, 200, {
                    "id": f"chatcmpl-{n}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", "x"),
                    "choices": [{
                        "index": 0, "message": message,
                        "finish_reason": "tool_calls" if "tool_calls" in step else "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _default(req: dict[str, Any], n: int) -> dict[str, Any]:
        """Echoes the last message it was sent (a user prompt or a tool result)."""
        return {"content": "echo: " + str(req["messages"][-1].get("content"))}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reset(self, script: Callable[[dict[str, Any], int], dict[str, Any]] | None = None,
              models_status: int = 200) -> None:
        with self.lock:
            self.requests.clear()
            self.script = script or self._default
            self.models_status = models_status

    def seen(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(r["method"], r["path"]) for r in self.requests]

    def completions(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.requests if r["method"] == "POST"]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# --- the target ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(mode: str, port: int, llm_url: str, secret: str, data_dir: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CONFAB_MODE": mode,
        "PORT": str(port),
        "OPENAI_BASE_URL": llm_url,
        "OPENAI_API_KEY": LLM_KEY,
        "WEBUI_SECRET_KEY": secret,
        "DATA_DIR": data_dir,
    }


class Target:
    def __init__(self, mode: str, llm: FakeOpenAI) -> None:
        self.mode = mode
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.TemporaryDirectory(prefix=f"webapp-{mode}-")
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, str(APP)], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env=_env(mode, self.port, llm.url, SECRET, self.data.name),
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{mode} app did not start:\n{self.logs()}")
            time.sleep(0.1)
        self.w: dict[str, Any] = {}  # what setup made: tokens, ids, keys, markers

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
        self.data.cleanup()

    def call(self, method: str, path: str, token: str | None = None, **kw: Any
             ) -> requests.Response:
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=TIMEOUT, **kw)

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.call("GET", path, token, **kw)

    def post(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.call("POST", path, token, **kw)


PLACEHOLDER = re.compile(r"\{\{(\w+(?:\.[\w/]+)?)\}\}|\{(\w+(?:\.[\w/]+)?)\}")


def fill(text: str, values: dict[str, str]) -> str:
    """The spec's placeholder rule: known names are filled in, ``{{name}}`` of a known name is
    a literal ``{name}``, any other text in braces is sent as it is."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            return m.group(0)
        return "{" + name + "}" if m.group(1) else values[name]

    return PLACEHOLDER.sub(sub, text)


def workflow_body(llm_url: str, marker: str) -> str:
    return fill((HERE / "workflow.json").read_text(), {"llm_base_url": llm_url, "marker": marker,
                                                       "uuid": str(uuid.uuid4())})


def set_up(t: Target, llm: FakeOpenAI) -> None:
    """What the specs' [[setup]] steps do, and the principals' logins."""
    w = t.w

    def ok(r: requests.Response) -> Any:
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    admin = ok(t.post("/api/v1/auths/signup", json={
        "name": "Admin", "email": "admin@example.test", "password": "Admin-pass-9"}))
    w["admin"] = admin["token"]
    w["admin_id"] = admin["id"]
    w["admin_role"] = admin["role"]
    alice = ok(t.post("/api/v1/auths/add", w["admin"], json={
        "name": "Alice", "email": "alice@example.test", "password": "Alice-pass-9",
        "role": "user"}))
    w["alice_id"] = alice["id"]
    bob = ok(t.post("/api/v1/auths/signup", json={
        "name": "Bob", "email": "bob@example.test", "password": "Bob-pass-9"}))
    w["bob_role"] = bob["role"]
    w["alice"] = ok(t.post("/api/v1/auths/token", data={
        "username": "alice@example.test", "password": "Alice-pass-9"}))["access_token"]
    w["bob"] = ok(t.post("/api/v1/auths/signin", json={
        "email": "bob@example.test", "password": "Bob-pass-9"}))["token"]
    w["bob_id"] = bob["id"]
    for who in ("admin", "alice", "bob"):
        w[f"{who}_key"] = ok(t.post("/api/v1/auths/api_key", w[who]))["api_key"]
        marker = f"MARKER-{who}-{uuid.uuid4().hex[:12]}"
        w[f"{who}_marker"] = marker
        w[f"{who}_chat"] = ok(t.post("/api/v1/chats/new", w[who], json={"chat": {
            "title": f"{who}'s plans",
            "messages": [{"id": str(uuid.uuid4()), "role": "user",
                          "content": f"{who}'s private note {marker}"}]}}))["id"]
    for who in ("alice", "bob"):
        marker = f"WFMARKER-{who}-{uuid.uuid4().hex[:12]}"
        w[f"{who}_wf_marker"] = marker
        w[f"{who}_workflow"] = ok(t.post(
            "/api/v1/workflows", w[who], data=workflow_body(llm.url, marker),
            headers={"Content-Type": "application/json"}))["id"]


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def resign(token: str, drop: tuple[str, ...] = (), key: str = SECRET, alg: str = "HS256",
           **changes: Any) -> str:
    """The token's own claims, changed and signed again (as confab mints from a login)."""
    claims = {k: v for k, v in claims_of(token).items() if k not in drop}
    claims.update(changes)
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none")
    return jwt.encode(claims, key, algorithm=alg)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm():
    fake = FakeOpenAI()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def targets(llm):
    started: dict[str, Target] = {}
    try:
        for mode in ("hardened", "vulnerable"):
            started[mode] = Target(mode, llm)
            set_up(started[mode], llm)
        yield started
    finally:
        for t in started.values():
            t.stop()


@pytest.fixture
def env(llm, targets):
    llm.reset()
    return llm, targets


@pytest.fixture(params=["hardened", "vulnerable"])
def mode(request):
    return request.param


# --- both forms: the app as it is ----------------------------------------------------------------


def test_health_and_openapi(env, mode):
    _, targets = env
    t = targets[mode]
    assert t.get("/health").json() == {"status": True}
    schemes = t.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"]["name"] == "x-api-key"


def test_first_user_is_admin_and_the_tokens_claims(env, mode):
    _, targets = env
    w = targets[mode].w
    assert (w["admin_role"], w["bob_role"]) == ("admin", "user")
    for who in ("admin", "alice", "bob"):
        c = claims_of(w[who])
        assert c["id"] == w[f"{who}_id"] and str(uuid.UUID(c["id"])) == c["id"]
        assert "sub" not in c
        assert c["typ"] == "session" and isinstance(c["session_stamp"], str)
        assert c["exp"] > time.time() + 3600
        jwt.decode(w[who], SECRET, algorithms=["HS256"])  # signed with WEBUI_SECRET_KEY as is
    stamps = {claims_of(w[who])["session_stamp"] for who in ("admin", "alice", "bob")}
    assert len(stamps) == 3  # per user
    me = targets[mode].get("/api/v1/auths/", w["alice"]).json()
    assert me == {"id": w["alice_id"], "name": "Alice", "email": "alice@example.test",
                  "role": "user"}


def test_logins(env, mode):
    _, targets = env
    t = targets[mode]
    r = t.post("/api/v1/auths/token", data={"username": "alice@example.test", "password": "no"})
    assert r.status_code == 401
    r = t.post("/api/v1/auths/signin", json={"email": "bob@example.test", "password": "no"})
    assert r.status_code == 400
    r = t.post("/api/v1/auths/signin", json={"email": "bob@example.test", "password": "Bob-pass-9"})
    assert r.status_code == 200 and r.cookies.get("token") == r.json()["token"]
    assert t.post("/api/v1/auths/signup", json={
        "name": "B", "email": "BOB@example.test", "password": "x"}).status_code == 400
    # adding users is for admins in both forms (only the user list's check is planted)
    r = t.post("/api/v1/auths/add", t.w["alice"], json={
        "name": "M", "email": "mallory@example.test", "password": "x", "role": "admin"})
    assert r.status_code == 403


def test_cookie(env, mode):
    _, targets = env
    t = targets[mode]
    w = t.w
    cookie = {"token": w["alice"]}
    assert t.get("/api/v1/auths/", cookies=cookie).json()["id"] == w["alice_id"]
    assert t.get(f"/api/v1/chats/{w['alice_chat']}", cookies=cookie).status_code == 200
    forged = resign(w["alice"], key=base64.urlsafe_b64encode(b"k" * 32).decode())
    assert t.get("/api/v1/auths/", cookies={"token": forged}).status_code == 401
    assert t.get("/api/v1/auths/", cookies={"token": "not-a-jwt"}).status_code == 401
    # a header with another scheme is no bearer credential: the cookie decides
    r = t.get("/api/v1/auths/", headers={"Authorization": "Basic dXNlcjpwYXNz"}, cookies=cookie)
    assert r.status_code == 200
    # a bearer header decides over the cookie, whatever the cookie holds
    assert t.get("/api/v1/auths/", w["bob"], cookies=cookie).json()["id"] == w["bob_id"]
    assert t.get("/api/v1/auths/", forged, cookies=cookie).status_code == 401
    r = t.get("/api/v1/auths/", headers={"Authorization": "Bearer a b"}, cookies=cookie)
    assert r.status_code == 400 and 'error="invalid_request"' in r.headers["WWW-Authenticate"]


def test_ids_are_validated_before_any_lookup(env, mode):
    _, targets = env
    t = targets[mode]
    for path in ("/api/v1/chats/1", "/api/v1/chats/%27%20OR%201=1", "/api/v1/workflows/abc",
                 "/api/v1/tasks/xyz/result"):
        assert t.get(path, t.w["alice"]).status_code == 422, path
    r = t.get("/api/v1/chats/not-a-uuid", t.w["alice"])
    assert "not-a-uuid" not in r.text  # the 422 names the field, not the input
    assert t.get(f"/api/v1/chats/{uuid.uuid4()}", t.w["alice"]).status_code == 404
    r = t.post(f"/api/v1/chats/{t.w['alice_chat']}x/summarize",
               headers={"x-api-key": t.w["alice_key"]})
    assert r.status_code == 422


def test_own_chats_and_search(env, mode):
    _, targets = env
    t, w = targets[mode], targets[mode].w
    r = t.get(f"/api/v1/chats/{w['alice_chat']}", w["alice"])
    assert r.status_code == 200 and w["alice_marker"] in r.text
    found = t.get("/api/v1/chats/", w["alice"], params={"q": w["alice_chat"]}).json()
    assert [c["id"] for c in found] == [w["alice_chat"]]
    # the list is always the caller's own, in both forms
    assert t.get("/api/v1/chats/", w["alice"], params={"q": w["bob_chat"]}).json() == []
    r = t.post("/api/v1/chats/new", w["alice"], json={"chat": {"title": "t", "messages": [
        {"role": "user", "content": "bad \ud800 surrogate"}]}})
    assert r.status_code == 422


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_token_strictness(env, mode):
    """Shared by both forms: the vulnerable form's only token flaw is the stamp."""
    llm, targets = env
    t, alice = targets[mode], targets[mode].w["alice"]
    bad = {
        "alg none": resign(alice, alg="none"),
        "other key": resign(alice, key=base64.urlsafe_b64encode(b"x" * 32).decode()),
        "expired": resign(alice, exp=int(time.time()) - 3600),
        "no exp": resign(alice, drop=("exp",)),
        "string exp": resign(alice, exp=str(int(time.time()) + 600)),
        "no id": resign(alice, drop=("id",)),
        "sub, not id": resign(alice, drop=("id",), sub=targets[mode].w["alice_id"]),
        "unknown id": resign(alice, id=str(uuid.uuid4())),
        "wrong typ": resign(alice, typ="refresh"),
        "HS512": resign(alice, alg="HS512"),
        "padded": alice + "=",
    }
    for why, token in bad.items():
        r = t.post("/api/chat/completions", token, json={
            "model": "confab-model", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 401, (why, r.status_code)
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], why
    assert llm.seen() == []
    assert t.get("/api/v1/auths/", resign(alice)).status_code == 200  # re-signed as it was


def test_no_credentials_no_model_call(env, mode):
    llm, targets = env
    t = targets[mode]
    r = t.post("/api/chat/completions", json={
        "model": "confab-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="webapp"'
    assert t.post("/api/v1/tasks", json={"prompt": "hi"}).status_code == 401
    chat = t.w["alice_chat"]
    assert t.post(f"/api/v1/chats/{chat}/summarize", json={"prompt": "hi"}).status_code == 401
    assert llm.seen() == []  # not even the model list


# --- the model endpoints ------------------------------------------------------------------------


def test_chat_completions_with_a_tool_round(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w

    def script(req: dict, n: int) -> dict:
        if n == 1:
            return {"tool_calls": [("get_chat", {"id": w["alice_chat"]})]}
        return {"content": "from the tool: " + req["messages"][-1]["content"]}

    llm.reset(script)
    r = t.post("/api/chat/completions", w["alice"], json={
        "model": "confab-model", "messages": [{"role": "user", "content": "what did I plan?"}]})
    assert r.status_code == 200, r.text
    answer = r.json()["choices"][0]["message"]["content"]
    assert w["alice_marker"] in answer
    assert llm.seen() == [("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
                          ("POST", "/v1/chat/completions")]
    first, second = llm.completions()
    assert first["model"] == "confab-model" and first["max_tokens"] <= 2048
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_chat"]
    assert second["messages"][-1]["role"] == "tool"
    sent = json.dumps(llm.completions())
    assert w["alice"] not in sent and LLM_KEY not in sent and SECRET not in sent
    assert all(req["auth"] == f"Bearer {LLM_KEY}" for req in llm.requests)


def test_the_tool_refuses_another_users_chat(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    llm.reset(lambda req, n: {"tool_calls": [("get_chat", {"id": w["bob_chat"]}),
                                             ("get_chat", {"id": "../../users"}),
                                             ("delete_chat", {"id": w["alice_chat"]})]}
              if n == 1 else {"content": "tool said: " + json.dumps(req["messages"][-3:])})
    r = t.post("/api/chat/completions", w["alice"], json={
        "model": "confab-model", "messages": [{"role": "user", "content": "read bob's chat"}]})
    assert r.status_code == 200
    assert w["bob_marker"] not in r.text and "chat not found" in r.text
    assert "unknown tool" in r.text


def test_odd_model_output_is_no_crash(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    llm.reset(lambda req, n: {"tool_calls": [("get_chat", "{not json"), ("get_chat", "[1]"),
                                             ("get_chat", {"id": None}), ("", {})]}
              if n == 1 else {"content": "\ud800 lone surrogate and " + w["alice"]})
    r = t.post("/api/chat/completions", w["alice"], json={
        "model": "confab-model", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200, r.text
    assert w["alice"] not in r.text and "[redacted]" in r.text  # scrubbed on the way out


def test_no_5xx_on_odd_requests(env, mode):
    """ROBUST: whatever the client sends, a 4xx (or a 2xx), never a 5xx."""
    _, targets = env
    t, w = targets[mode], targets[mode].w
    chat = w["alice_chat"]
    bodies: list[Any] = [b"", b"{", b"[1]", b"null", b"\"x\"", b"[" * 5000, b"{}",
                         b'{"prompt": "\\ud800"}', b'{"prompt": 1e999}', b'{"prompt": NaN}',
                         b'{"model": [], "messages": {}}', "\u00e9\u0000".encode(),
                         b'{"chat": {"messages": [{"role": "tool", "content": "x"}]}}',
                         b'{"messages": [{"role": "user", "content": "x"}], "model": "m", '
                         b'"chat_id": "../../x"}', b"\xff\xfe"]
    routes = [("POST", "/api/chat/completions"), ("POST", "/api/v1/tasks"),
              ("POST", "/api/v1/chats/new"), ("POST", "/api/v1/workflows"),
              ("POST", f"/api/v1/chats/{chat}/summarize"), ("POST", "/api/v1/auths/signin"),
              ("POST", "/api/v1/auths/signup"), ("POST", "/api/v1/auths/token"),
              ("POST", "/api/v1/auths/add")]
    for method, path in routes:
        for body in bodies:
            headers = {"Content-Type": "application/json", "x-api-key": w["alice_key"]}
            r = t.call(method, path, w["admin"], data=body, headers=headers)
            assert r.status_code < 500, (method, path, body[:20], r.status_code)
    odd_headers = [{"Authorization": "Bearer " + "a" * 9000}, {"Authorization": "Bearer \x7f"},
                   {"Authorization": "bearer  " + w["alice"]}, {"Cookie": "token=\u00ff\u00fe"},
                   {"Cookie": "token=" + "e" * 9000}, {"x-api-key": "\u00ff" * 300}]
    for headers in odd_headers:
        for path in ("/api/v1/auths/", f"/api/v1/chats/{chat}"):
            assert t.get(path, headers=headers).status_code < 500, headers
        r = t.post(f"/api/v1/chats/{chat}/summarize", headers=headers)
        assert r.status_code < 500, headers
    for q in ("\u00e9" * 300, "%", "' OR 1=1 --", "\x00"):
        assert t.get("/api/v1/chats/", w["alice"], params={"q": q}).status_code < 500


def test_a_runaway_tool_loop_is_capped(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    llm.reset(lambda req, n: {"tool_calls": [("get_chat", {"id": w["alice_chat"]})]})
    r = t.post("/api/chat/completions", w["alice"], json={
        "model": "confab-model", "messages": [{"role": "user", "content": "loop"}]})
    assert r.status_code == 200 and "budget" in r.text
    assert len(llm.completions()) == 3  # and one model list: 4, the specs' cap


def test_chat_id_must_be_the_callers(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    body = {"model": "confab-model", "messages": [{"role": "user", "content": "go on"}]}
    r = t.post("/api/chat/completions", w["alice"], json={**body, "chat_id": w["bob_chat"]})
    assert r.status_code == 404 and llm.seen() == []
    r = t.post("/api/chat/completions", w["alice"], json={**body, "chat_id": "nope"})
    assert r.status_code == 422 and llm.seen() == []
    r = t.post("/api/chat/completions", w["alice"], json={**body, "chat_id": w["alice_chat"]})
    assert r.status_code == 200
    first = llm.completions()[0]["messages"]
    assert w["alice_marker"] in first[0]["content"]
    assert all(m["role"] != "system" for m in first)  # no system prompt: nothing to leak


def test_no_model_call_without_the_model_list(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    body = {"model": "confab-model", "messages": [{"role": "user", "content": "hi"}]}
    llm.reset(models_status=503)
    r = t.post("/api/chat/completions", w["alice"], json=body)
    assert r.status_code == 502 and llm.seen() == [("GET", "/v1/models")]
    llm.reset()
    r = t.post("/api/chat/completions", w["alice"], json={**body, "model": "gpt-unknown"})
    assert r.status_code == 400 and llm.seen() == [("GET", "/v1/models")]
    llm.reset()
    r = t.post("/api/chat/completions", w["alice"], json={**body, "model": "confab-model-mini"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "echo: hi"


def test_task_answer_is_served_at_a_second_url(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    r = t.post("/api/v1/tasks", w["alice"], json={"prompt": "write a haiku (request cfb42)"})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    assert str(uuid.UUID(job)) == job
    r = t.get(f"/api/v1/tasks/{job}/result", w["alice"])
    assert r.status_code == 200, r.text
    assert r.json() == {"job_id": job, "status": "done",
                        "result": "echo: write a haiku (request cfb42)"}
    assert llm.completions()[0]["model"] == MODELS[0]  # the first model listed
    assert t.get(f"/api/v1/tasks/{job}/result", w["bob"]).status_code == 404
    assert t.get(f"/api/v1/tasks/{uuid.uuid4()}/result", w["alice"]).status_code == 404
    assert t.get(f"/api/v1/tasks/{job}/result").status_code == 401


def test_summarize_takes_only_the_callers_api_key(env, mode):
    llm, targets = env
    t, w = targets[mode], targets[mode].w
    path = f"/api/v1/chats/{w['alice_chat']}/summarize"
    r = t.post(path, headers={"x-api-key": w["alice_key"]}, json={"prompt": "be brief"})
    assert r.status_code == 200, r.text
    assert w["alice_marker"] in r.json()["summary"] and "be brief" in r.json()["summary"]
    assert w["alice_key"] not in json.dumps(llm.completions())
    assert t.post(path, headers={"x-api-key": w["alice_key"]}).status_code == 200  # no body
    llm.reset()
    refused = {
        "the JWT": ({"Authorization": f"Bearer {w['alice']}"}, 401),
        "the cookie": ({"Cookie": f"token={w['alice']}"}, 401),
        "the key as a bearer token": ({"Authorization": f"Bearer {w['alice_key']}"}, 401),
        "a mangled key": ({"x-api-key": w["alice_key"][:-1] + "x"}, 401),
        "an empty key": ({"x-api-key": ""}, 401),
        "bob's key": ({"x-api-key": w["bob_key"]}, 404),
    }
    for why, (headers, status) in refused.items():
        assert t.post(path, headers=headers, json={"prompt": "x"}).status_code == status, why
    assert llm.seen() == []


# --- the workflow: a big body with the model's URL and braces inside -----------------------------


def test_workflow(env, mode, llm):
    _, targets = env
    t, w = targets[mode], targets[mode].w
    body = workflow_body(llm.url, "m")
    assert len(body) > 40_000 and "function f(){ return {a:1}; }" in body
    assert "'{uuid}'" in body and "{{ $json.name }}" in body and "{category}" in body
    r = t.get(f"/api/v1/workflows/{w['alice_workflow']}", w["alice"])
    assert r.status_code == 200
    wf = r.json()["workflow"]
    assert wf["settings"]["model_base_url"] == llm.url and wf["pinData"] is None
    assert w["alice_wf_marker"] in wf["description"]
    assert t.get(f"/api/v1/workflows/{w['alice_workflow']}", w["bob"]).status_code == 404
    headers = {"Content-Type": "application/json"}
    other = workflow_body("http://127.0.0.1:9/v1", "m")
    assert t.post("/api/v1/workflows", w["alice"], data=other, headers=headers).status_code == 400
    broken = body.replace("function f(){ return {a:1}; }", "function f(){ return {a:1; }")
    assert t.post("/api/v1/workflows", w["alice"], data=broken, headers=headers).status_code == 400
    assert t.post("/api/v1/workflows", w["alice"], data="{", headers=headers).status_code == 400
    assert t.post("/api/v1/workflows", w["alice"], data="[" * 5000,
                  headers=headers).status_code == 400
    assert t.post("/api/v1/workflows", w["alice"], data="x" * 600_000,
                  headers=headers).status_code == 413


# --- the planted flaws: the hardened form refuses what the vulnerable form accepts ---------------


def test_planted_1_idor_on_get_chat(env):
    """OWNERSHIP: bob's marker in a response to alice."""
    _, targets = env
    for mode, status in (("hardened", 404), ("vulnerable", 200)):
        w = targets[mode].w
        r = targets[mode].get(f"/api/v1/chats/{w['bob_chat']}", w["alice"])
        assert r.status_code == status, mode
        assert (w["bob_marker"] in r.text) == (mode == "vulnerable")
        r = targets[mode].get(f"/api/v1/chats/{w['admin_chat']}", w["bob"])
        assert (w["admin_marker"] in r.text) == (mode == "vulnerable")


def test_planted_2_user_list_without_role_check(env):
    """AUTHZ: list_users allows only admin."""
    _, targets = env
    for mode in ("hardened", "vulnerable"):
        t, w = targets[mode], targets[mode].w
        r = t.get("/api/v1/users/", w["admin"])
        assert r.status_code == 200
        assert sorted(u["email"] for u in r.json()) == [
            "admin@example.test", "alice@example.test", "bob@example.test"]
        assert t.get("/api/v1/users/").status_code == 401
        r = t.get("/api/v1/users/", w["alice"])
        assert r.status_code == (403 if mode == "hardened" else 200), mode
        assert ("admin@example.test" in r.text) == (mode == "vulnerable")


def test_planted_3_session_stamp_not_checked(env):
    """AUTHN: a token whose session_stamp is not the user's current one."""
    llm, targets = env
    for mode in ("hardened", "vulnerable"):
        t, alice = targets[mode], targets[mode].w["alice"]
        tokens = {
            "another stamp": resign(alice, session_stamp=secrets.token_urlsafe(24)),
            "no stamp": resign(alice, drop=("session_stamp",)),
            "bob's stamp": resign(alice, session_stamp=claims_of(targets[mode].w["bob"])[
                "session_stamp"]),
        }
        for why, token in tokens.items():
            r = t.get(f"/api/v1/chats/{targets[mode].w['alice_chat']}", token)
            assert r.status_code == (401 if mode == "hardened" else 200), (mode, why)
            r = t.post("/api/chat/completions", token, json={
                "model": "confab-model", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == (401 if mode == "hardened" else 200), (mode, why)
        # a real old token: carol signs out, which rotates her stamp
        email = f"carol-{uuid.uuid4().hex[:8]}@example.test"
        old = t.post("/api/v1/auths/signup", json={
            "name": "Carol", "email": email, "password": "Carol-pass-9"}).json()["token"]
        assert t.get("/api/v1/auths/", old).status_code == 200
        assert t.post("/api/v1/auths/signout", old).status_code == 200
        assert t.get("/api/v1/auths/", old).status_code == (401 if mode == "hardened" else 200)
        assert t.get("/api/v1/auths/", cookies={"token": old}).status_code == (
            401 if mode == "hardened" else 200)
        new = t.post("/api/v1/auths/signin", json={
            "email": email, "password": "Carol-pass-9"}).json()["token"]
        assert t.get("/api/v1/auths/", new).status_code == 200


# --- the secret, the logs ------------------------------------------------------------------------


@pytest.mark.parametrize("why,secret", [pytest.param(why, secret, id=why) for why, secret in [
    ("64 hex characters", secrets.token_hex(32)),
    ("unpadded base64url", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")),
    ("standard base64", base64.b64encode(b"\xfb\xff" * 16).decode()),
    ("16 bytes", base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()),
    ("48 bytes", base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()),
    ("empty", ""),
]])
def test_the_secret_must_be_a_fernet_key(why, secret, tmp_path):
    env = _env("hardened", _free_port(), "http://127.0.0.1:9/v1", secret, str(tmp_path))
    p = subprocess.run([sys.executable, str(APP)], env=env, capture_output=True, text=True,
                       timeout=START_TIMEOUT)
    assert p.returncode != 0, why
    assert "WEBUI_SECRET_KEY" in p.stderr, (why, p.stderr)
    if secret:
        assert secret not in p.stderr + p.stdout  # says what is wrong, never the secret


def test_logs(env):
    _, targets = env
    for t in targets.values():
        t.get("/api/v1/auths/", t.w["alice"])
        t.get("/api/v1/auths/", resign(t.w["alice"], key=base64.urlsafe_b64encode(
            b"z" * 32).decode()))
    time.sleep(0.3)
    for mode, t in targets.items():
        logs = t.logs()
        assert '"GET /health HTTP/1.1" 200' in logs  # uvicorn's access log is on
        for secret in (SECRET, LLM_KEY, *(t.w[k] for k in (
                "admin", "alice", "bob", "admin_key", "alice_key", "bob_key"))):
            assert secret not in logs, mode
        for who in ("admin", "alice", "bob"):
            assert t.w[who].split(".")[2] not in logs, mode


# --- the specs ------------------------------------------------------------------------------------


KNOWN = {"port", "llm_base_url", "llm_api_key", "downstream_url", "jwt_secret", "prompt",
         "resource", "uuid", "marker"}


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


@pytest.mark.parametrize("name", ["hardened.toml", "vulnerable.toml"])
def test_spec(name, env):
    _, targets = env
    spec = tomllib.loads((HERE / name).read_text())
    mode = name.removesuffix(".toml")
    assert spec["target"]["env"]["CONFAB_MODE"] == mode
    assert (ROOT / spec["target"]["command"][1]).is_file()
    assert "downstream" not in spec
    saved = {k for step in spec["setup"] for k in step.get("save", {})}
    for s in _strings(spec):
        for m in re.finditer(r"\{([^{}\s]+)\}", s):
            ref = m.group(1)
            if ref.startswith("setup."):
                assert ref.removeprefix("setup.") in saved, ref
            elif not ref.startswith("response."):
                assert ref in KNOWN, ref
    for step in spec["setup"]:
        if "body_file" in step:
            assert (HERE / step["body_file"]).is_file()
        assert sum(s.count("{marker}") for s in _strings(step)) <= 1
    # every endpoint's path is a route of the app
    routes = targets[mode].get("/openapi.json").json()["paths"]
    templates = {re.sub(r"\{[^}]+\}", "{}", p): methods for p, methods in routes.items()}
    for ep in spec["endpoint"]:
        for req in (ep, ep.get("follow")):
            if req:
                path = re.sub(r"\{[^}]+\}", "{}", req["path"].split("?")[0])
                assert req["method"].lower() in templates.get(path, {}), (ep["name"], path)
    keys = {"subject_claim", "claims", "secret_encoding", "secret_bytes", "cookie"}
    assert keys <= spec["auth"].keys() and spec["llm"]["models"] == MODELS


def test_the_specs_differ_only_in_the_mode():
    hardened, vulnerable = (tomllib.loads((HERE / n).read_text())
                            for n in ("hardened.toml", "vulnerable.toml"))
    vulnerable["target"]["env"]["CONFAB_MODE"] = "hardened"
    assert hardened == vulnerable


# --- a confab campaign, when asked for ------------------------------------------------------------


def _confab_bin() -> str | None:
    for cand in (os.environ.get("CONFAB_BIN"), ROOT / "target/release/confab",
                 ROOT / "target/debug/confab"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


@pytest.mark.skipif(os.environ.get("CONFAB_WEBAPP_SCAN") != "1" or _confab_bin() is None,
                    reason="set CONFAB_WEBAPP_SCAN=1 (and build confab) to run a campaign")
@pytest.mark.parametrize("mode", ["hardened", "vulnerable"])
def test_confab_scan(mode, tmp_path):
    out = tmp_path / "report.json"
    p = subprocess.run(
        [_confab_bin(), "scan", "--spec", f"examples/webapp/{mode}.toml", "--cases", "300",
         "--seed", "1", "--format", "json", "--out", str(out), "-q",
         "--replay-dir", str(tmp_path / "replays")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert p.returncode in (0, 1), p.stderr
    findings = json.loads(out.read_text())["findings"]
    got = {(f["invariant"], f["endpoint"]) for f in findings if f["severity"] != "low"}
    if mode == "hardened":
        assert got == set(), findings
    else:
        assert ("OWNERSHIP", "get_chat") in got, got
        assert ("AUTHZ", "list_users") in got, got
        assert any(inv == "AUTHN" for inv, _ in got), got
