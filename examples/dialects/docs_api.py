"""The Flask example's documents API (examples/flask/app.py) calling its model through another
model API, chosen by ``CONFAB_DIALECT``:

* ``anthropic``: Anthropic's Messages API through the ``anthropic`` SDK, which reads
  ``ANTHROPIC_BASE_URL`` (the root, no ``/v1``) and ``ANTHROPIC_API_KEY``;
* ``responses``: OpenAI's Responses API through the ``openai`` SDK, which reads
  ``OPENAI_BASE_URL`` (ending in ``/v1``) and ``OPENAI_API_KEY``.

The app itself is examples/flask/app.py unchanged, hardened or vulnerable by
``CONFAB_FLASK_MODE`` as there (its README lists the planted flaws): only its model client is
replaced here by one that speaks the chosen API (system prompt, tool declarations, tool calls
and tool results each in that API's own shapes) and gives the app back what it reads.

    CONFAB_DIALECT=anthropic CONFAB_FLASK_MODE=vulnerable PORT=8080 \\
      ANTHROPIC_BASE_URL=http://127.0.0.1:9000 ANTHROPIC_API_KEY=sk-test \\
      DOCS_API_URL=http://127.0.0.1:9001 JWT_SECRET=... JWT_ISSUER=https://issuer.test \\
      JWT_AUDIENCE=docs-api python3 examples/dialects/docs_api.py
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace
from typing import Any

DIALECT = os.environ.get("CONFAB_DIALECT", "anthropic")
if DIALECT not in ("anthropic", "responses"):
    raise SystemExit("docs_api.py: CONFAB_DIALECT must be 'anthropic' or 'responses'")
if DIALECT == "anthropic":
    # The app's configuration names the model key OPENAI_API_KEY (its scrubber and log filter
    # watch it): hand it Anthropic's. The base URL is the anthropic SDK's own variable.
    os.environ["OPENAI_API_KEY"] = os.environ.get("ANTHROPIC_API_KEY", "")
    os.environ["OPENAI_BASE_URL"] = os.environ.get("ANTHROPIC_BASE_URL", "")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "flask"))

import openai  # noqa: E402

_OpenAI = openai.OpenAI


class DialectError(openai.OpenAIError):
    """A model API error, raised as the app expects from its client."""


def _arguments(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def _message(text: str | None, calls: list[tuple[str, str, str]]) -> Any:
    tool_calls = [
        SimpleNamespace(id=i, type="function", function=SimpleNamespace(name=n, arguments=a))
        for i, n, a in calls
    ]
    msg = SimpleNamespace(role="assistant", content=text or None, tool_calls=tool_calls or None)
    return SimpleNamespace(choices=[SimpleNamespace(message=msg)])


class _Anthropic:
    def __init__(self, max_retries: int, timeout: float | None) -> None:
        import anthropic

        self.sdk = anthropic
        self.client = anthropic.Anthropic(max_retries=max_retries, timeout=timeout)

    def create(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
               max_tokens: int) -> Any:
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        conv: list[dict[str, Any]] = []
        for m in messages:
            if m["role"] == "user":
                conv.append({"role": "user", "content": m["content"]})
            elif m["role"] == "assistant":
                blocks: list[dict[str, Any]] = []
                if m.get("content"):
                    blocks.append({"type": "text", "text": m["content"]})
                for tc in m.get("tool_calls") or []:
                    fn = tc["function"]
                    blocks.append({"type": "tool_use", "id": tc["id"], "name": fn["name"],
                                   "input": _arguments(fn["arguments"])})
                conv.append({"role": "assistant", "content": blocks})
            elif m["role"] == "tool":
                result = {"type": "tool_result", "tool_use_id": m["tool_call_id"],
                          "content": m["content"]}
                if conv and conv[-1]["role"] == "user" and isinstance(conv[-1]["content"], list):
                    conv[-1]["content"].append(result)
                else:
                    conv.append({"role": "user", "content": [result]})
        declared = [{"name": t["function"]["name"],
                     "description": t["function"].get("description", ""),
                     "input_schema": t["function"].get("parameters", {"type": "object"})}
                    for t in tools]
        try:
            resp = self.client.messages.create(model="claude-sonnet-4-5", max_tokens=max_tokens,
                                               system=system, messages=conv, tools=declared)
        except self.sdk.AnthropicError as e:
            raise DialectError(str(e)) from None
        text = "".join(b.text for b in resp.content if b.type == "text")
        calls = [(b.id, b.name, json.dumps(b.input)) for b in resp.content if b.type == "tool_use"]
        return _message(text, calls)


class _Responses:
    def __init__(self, max_retries: int, timeout: float | None) -> None:
        self.client = _OpenAI(max_retries=max_retries, timeout=timeout)

    def create(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
               max_tokens: int) -> Any:
        instructions = "\n".join(m["content"] for m in messages if m["role"] == "system")
        items: list[dict[str, Any]] = []
        for m in messages:
            if m["role"] == "user":
                items.append({"role": "user", "content": m["content"]})
            elif m["role"] == "assistant":
                if m.get("content"):
                    items.append({"role": "assistant", "content": m["content"]})
                for tc in m.get("tool_calls") or []:
                    items.append({"type": "function_call", "call_id": tc["id"],
                                  "name": tc["function"]["name"],
                                  "arguments": tc["function"]["arguments"]})
            elif m["role"] == "tool":
                items.append({"type": "function_call_output", "call_id": m["tool_call_id"],
                              "output": m["content"]})
        declared = [{"type": "function", "name": t["function"]["name"],
                     "description": t["function"].get("description", ""),
                     "parameters": t["function"].get("parameters", {"type": "object"})}
                    for t in tools]
        resp = self.client.responses.create(model=model, instructions=instructions, input=items,
                                            tools=declared, max_output_tokens=max_tokens)
        calls = [(o.call_id, o.name, o.arguments) for o in resp.output if o.type == "function_call"]
        return _message(resp.output_text, calls)


class DialectClient:
    """What app.py reads of ``openai.OpenAI``: ``.chat.completions.create(...)``."""

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None,
                 max_retries: int = 2, timeout: float | None = None, **_: Any) -> None:
        impl = (_Anthropic if DIALECT == "anthropic" else _Responses)(max_retries, timeout)
        self.chat = SimpleNamespace(completions=impl)


openai.OpenAI = DialectClient  # type: ignore[misc]

import app as docs_app  # noqa: E402  (examples/flask/app.py)

if __name__ == "__main__":
    docs_app.main()
