"""Drives confab's fake model with an official client library, as an app would.

Usage: python3 client.py DIALECT STREAM  (DIALECT: responses | anthropic | ollama | embeddings;
STREAM: 0 or 1). Reads the base URLs and key from the variables the libraries read themselves
(OPENAI_BASE_URL / OPENAI_API_KEY, ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, OLLAMA_HOST) and the
case's nonce from CONFAB_NONCE. Declares one tool, `get_doc(id)`, sends a prompt carrying the
nonce, runs the tool the model calls (its result quotes the id) and sends the result back with
the call's id, then prints one JSON line: the calls the model made and its final text.
"""

import json
import os
import sys

NONCE = os.environ["CONFAB_NONCE"]
PROMPT = f"Summarise my document. [{NONCE}]"
SYSTEM = "You are a documents assistant. Use get_doc to read documents."
SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string", "description": "document id"}},
    "required": ["id"],
}


def tool_result(args):
    return f"document {args.get('id')}: quarterly numbers"


def responses(stream):
    import openai

    client = openai.OpenAI(max_retries=0, timeout=20)
    tools = [{"type": "function", "name": "get_doc", "description": "Read a document", "parameters": SCHEMA}]

    def call(items):
        kwargs = dict(model="gpt-4.1-mini", instructions=SYSTEM, input=items, tools=tools, max_output_tokens=256)
        if not stream:
            return client.responses.create(**kwargs)
        with client.responses.stream(**kwargs) as s:
            for _ in s:
                pass
            return s.get_final_response()

    items = [{"role": "user", "content": PROMPT}]
    first = call(items)
    calls = [o for o in first.output if o.type == "function_call"]
    for c in calls:
        items.append({"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments})
        items.append({"type": "function_call_output", "call_id": c.call_id, "output": tool_result(json.loads(c.arguments))})
    second = call(items)
    return [{"id": c.call_id, "name": c.name, "arguments": json.loads(c.arguments)} for c in calls], second.output_text


def anthropic(stream):
    import anthropic as sdk

    client = sdk.Anthropic(max_retries=0, timeout=20)
    tools = [{"name": "get_doc", "description": "Read a document", "input_schema": SCHEMA}]

    def call(messages):
        kwargs = dict(model="claude-sonnet-4-5", max_tokens=256, system=SYSTEM, messages=messages, tools=tools)
        if not stream:
            return client.messages.create(**kwargs)
        with client.messages.stream(**kwargs) as s:
            for _ in s:
                pass
            return s.get_final_message()

    messages = [{"role": "user", "content": PROMPT}]
    first = call(messages)
    uses = [b for b in first.content if b.type == "tool_use"]
    if uses:
        messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
        messages.append({
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": b.id, "content": tool_result(b.input)} for b in uses],
        })
    second = call(messages)
    text = "".join(b.text for b in second.content if b.type == "text")
    return [{"id": b.id, "name": b.name, "arguments": b.input} for b in uses], text


def ollama(stream):
    import ollama as sdk

    client = sdk.Client(timeout=20)
    tools = [{"type": "function", "function": {"name": "get_doc", "description": "Read a document", "parameters": SCHEMA}}]
    names = [m.model for m in client.list().models]
    assert names, "the model list is empty"

    def call(messages):
        out = client.chat(model=names[0], messages=messages, tools=tools, stream=stream, options={"num_predict": 256})
        if not stream:
            return out.message
        content, tool_calls = "", []
        for part in out:
            content += part.message.content or ""
            tool_calls += part.message.tool_calls or []
        return sdk.Message(role="assistant", content=content, tool_calls=tool_calls or None)

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    first = call(messages)
    calls = first.tool_calls or []
    messages.append(first)
    for c in calls:
        messages.append({"role": "tool", "content": tool_result(c.function.arguments), "tool_name": c.function.name})
    second = call(messages)
    generated = client.generate(model=names[0], prompt=PROMPT, stream=stream, options={"num_predict": 64})
    if stream:
        generated = "".join(p.response for p in generated)
    else:
        generated = generated.response
    assert generated, "generate answered nothing"
    return [{"id": "", "name": c.function.name, "arguments": dict(c.function.arguments)} for c in calls], second.content


def embeddings(_stream):
    import openai
    import ollama as sdk

    client = openai.OpenAI(max_retries=0, timeout=20)
    a = client.embeddings.create(model="text-embedding-3-small", input=[PROMPT, "other text"]).data
    b = client.embeddings.create(model="text-embedding-3-small", input=PROMPT, dimensions=64, encoding_format="float").data
    c = sdk.Client(timeout=20).embed(model="nomic-embed-text", input=PROMPT).embeddings
    assert len(a) == 2 and len(a[0].embedding) == 1536, "default dimension"
    assert len(b[0].embedding) == 64, "requested dimension"
    assert a[0].embedding != a[1].embedding, "different inputs, different vectors"
    assert len(c) == 1 and len(c[0]) == 768
    return [], "vectors: %d %d %d" % (len(a[0].embedding), len(b[0].embedding), len(c[0]))


if __name__ == "__main__":
    dialect, stream = sys.argv[1], sys.argv[2] == "1"
    calls, text = globals()[dialect](stream)
    print(json.dumps({"calls": calls, "text": text}))
