"""The reference backend (scripts/emulator.py): every scenario, in C and A, streaming and not, checked
against strict wire-grammar validators and driven through the official openai and anthropic SDKs."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from scripts.emulator import serve

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Hello from the wireshift reference backend."
WEATHER = {"city": "Paris", "unit": "celsius"}
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS_C = [{"type": "function", "function": {"name": "lookup", "description": "Weather", "parameters": SCHEMA}}]
TOOLS_A = [{"name": "lookup", "description": "Weather", "input_schema": SCHEMA}]
A_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """The emulator served on port 0 by ``serve`` in its own event-loop thread (the SDKs used here are sync)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        state["runner"], state["port"] = loop.run_until_complete(serve("127.0.0.1", 0))
        ready.set()
        loop.run_forever()
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{state['port']}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


HTTP = httpx.Client(timeout=10)  # one client for the module: building clients (TLS contexts) is slow


@functools.cache
def oai(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)


@functools.cache
def ant(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key="x", max_retries=0)


def post(base: str, fmt: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    path = "/v1/chat/completions" if fmt == "C" else "/v1/messages"
    return HTTP.post(base + path, json=body, headers=headers)


def request_body(fmt: str, model: str, stream: bool, include_usage: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": USER, "tools": TOOLS_C if fmt == "C" else TOOLS_A}
    if fmt == "A":
        body["max_tokens"] = 256
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return body


# ----------------------------------------------------------------------------- strict validators


def sse_frames(raw: bytes) -> list[tuple[str | None, str]]:
    """(event, data) per SSE event; comments and blank events skipped, CRLF accepted."""
    frames = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        if data:
            frames.append((event, "\n".join(data)))
    return frames


def canon(text: str, thinking: str, calls: list[tuple[str, str, Any]], finish: str, usage: Any) -> dict[str, Any]:
    return {"text": text, "thinking": thinking, "calls": calls, "finish": finish, "usage": usage}


def check_c_usage(u: dict[str, Any]) -> dict[str, Any]:
    assert set(u) == {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    }
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["completion_tokens"] > 0
    assert set(u["prompt_tokens_details"]) == {"cached_tokens"}
    assert set(u["completion_tokens_details"]) == {"reasoning_tokens"}
    return u


def parse_c_json(obj: dict[str, Any], model: str) -> dict[str, Any]:
    assert set(obj) == {"id", "object", "created", "model", "choices", "usage"}
    assert obj["id"].startswith("chatcmpl-emu") and obj["object"] == "chat.completion" and obj["model"] == model
    [choice] = obj["choices"]
    assert choice["index"] == 0 and choice["logprobs"] is None
    msg = choice["message"]
    assert msg["role"] == "assistant" and msg["refusal"] is None
    calls = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in msg.get("tool_calls", [])
    ]
    assert all(c["type"] == "function" for c in msg.get("tool_calls", []))
    if "tool_calls" in msg:
        assert msg["tool_calls"] and (msg["content"] is None or msg["content"])
    return canon(
        msg["content"] or "",
        msg.get("reasoning_content", ""),
        calls,
        choice["finish_reason"],
        check_c_usage(obj["usage"]),
    )


def parse_c_stream(raw: bytes, model: str, include_usage: bool) -> dict[str, Any]:
    frames = sse_frames(raw)
    assert all(event is None for event, _ in frames)
    assert frames[-1][1] == "[DONE]" and all(d != "[DONE]" for _, d in frames[:-1])
    chunks = [json.loads(d) for _, d in frames[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-emu")
    for c in chunks:
        assert c["object"] == "chat.completion.chunk" and isinstance(c["created"], int) and c["model"] == model
        assert ("usage" in c) == include_usage
    body = [c for c in chunks if c["choices"]]
    usage = None
    if include_usage:
        assert chunks[-1]["choices"] == [] and len(body) == len(chunks) - 1
        assert all(c["usage"] is None for c in body)
        usage = check_c_usage(chunks[-1]["usage"])
    else:
        assert len(body) == len(chunks)
    assert body[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    last = body[-1]["choices"][0]
    assert last["delta"] == {} and last["finish_reason"]
    text, thinking, calls = "", "", {}
    for c in body[:-1]:
        [ch] = c["choices"]
        assert ch["index"] == 0 and ch["logprobs"] is None and ch["finish_reason"] is None
        d = ch["delta"]
        text += d.get("content") or ""
        thinking += d.get("reasoning_content") or ""
        for tc in d.get("tool_calls", []):
            k = tc["index"]
            if k not in calls:  # first fragment: id, type, name, empty arguments; indices dense from 0
                assert k == len(calls) and tc["type"] == "function" and tc["function"]["arguments"] == ""
                calls[k] = [tc["id"], tc["function"]["name"], ""]
            else:
                assert set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"}
                calls[k][2] += tc["function"]["arguments"]
    return canon(text, thinking, [(i, n, json.loads(a)) for i, n, a in calls.values()], last["finish_reason"], usage)


def check_a_usage(u: dict[str, Any]) -> dict[str, Any]:
    assert set(u) == {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}
    assert u["input_tokens"] > 0 and u["output_tokens"] > 0
    return u


def parse_a_json(obj: dict[str, Any], model: str) -> dict[str, Any]:
    assert set(obj) == {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
    assert obj["id"].startswith("msg_emu") and obj["type"] == "message" and obj["role"] == "assistant"
    assert obj["model"] == model and obj["stop_sequence"] is None
    kinds = [b["type"] for b in obj["content"]]
    assert kinds == sorted(kinds, key=["thinking", "text", "tool_use"].index)  # thinking -> text -> tool_use
    assert all(b["text"] for b in obj["content"] if b["type"] == "text")
    assert (obj["stop_reason"] == "tool_use") == ("tool_use" in kinds)
    thinking = "".join(b["thinking"] for b in obj["content"] if b["type"] == "thinking")
    assert all(b["signature"] == "emu-sig-1" for b in obj["content"] if b["type"] == "thinking")
    return canon(
        "".join(b["text"] for b in obj["content"] if b["type"] == "text"),
        thinking,
        [(b["id"], b["name"], b["input"]) for b in obj["content"] if b["type"] == "tool_use"],
        obj["stop_reason"],
        check_a_usage(obj["usage"]),
    )


def parse_a_stream(raw: bytes, model: str) -> dict[str, Any]:
    frames = sse_frames(raw)
    events = [json.loads(d) for _, d in frames]
    assert all(name == ev["type"] for (name, _), ev in zip(frames, events, strict=True))  # event: line always set
    events = [ev for ev in events if ev["type"] != "ping"]
    assert [ev["type"] for ev in events].count("message_start") == 1 and events[0]["type"] == "message_start"
    assert [ev["type"] for ev in events[-2:]] == ["message_delta", "message_stop"]
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    blocks: list[dict[str, Any]] = []
    open_block: dict[str, Any] | None = None
    for ev in events[1:-2]:
        if ev["type"] == "content_block_start":
            assert open_block is None and ev["index"] == len(blocks)  # one block at a time, dense indices
            open_block = dict(ev["content_block"])
            empty = {"thinking": {"thinking": "", "signature": ""}, "text": {"text": ""}, "tool_use": {"input": {}}}
            assert {k: open_block[k] for k in empty[open_block["type"]]} == empty[open_block["type"]]
            open_block["json"] = ""
        elif ev["type"] == "content_block_delta":
            assert open_block is not None and ev["index"] == len(blocks)
            d = ev["delta"]
            field = {
                "text_delta": "text",
                "thinking_delta": "thinking",
                "signature_delta": "signature",
                "input_json_delta": "partial_json",
            }[d["type"]]
            assert field != "partial_json" or open_block["type"] == "tool_use"
            key = "json" if field == "partial_json" else field
            open_block[key] += d[field]
        else:
            assert ev["type"] == "content_block_stop" and open_block is not None and ev["index"] == len(blocks)
            if open_block["type"] == "tool_use":
                open_block["input"] = json.loads(open_block["json"])
            blocks.append(open_block)
            open_block = None
    assert open_block is None
    delta = events[-2]
    assert delta["delta"]["stop_sequence"] is None and set(delta["usage"]) == {"output_tokens"}
    obj = {
        **start,
        "content": [{k: v for k, v in b.items() if k != "json"} for b in blocks],
        "stop_reason": delta["delta"]["stop_reason"],
        "usage": {**start["usage"], **delta["usage"]},
    }
    return parse_a_json(obj, model)


def run_all(base: str, fmt: str, model: str) -> dict[str, Any]:
    """Canonical reply of a scenario, asserting stream and non-stream (with and without usage) agree."""
    plain = post(base, fmt, request_body(fmt, model, False))
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    assert plain.headers["request-id"] == plain.headers["x-request-id"]
    if fmt == "C":
        out = parse_c_json(plain.json(), model)
        for include_usage in (False, True):
            r = post(base, fmt, request_body(fmt, model, True, include_usage))
            assert r.headers["content-type"] == "text/event-stream" and r.headers["x-request-id"]
            streamed = parse_c_stream(r.content, model, include_usage)
            assert streamed == {**out, "usage": out["usage"] if include_usage else None}
    else:
        out = parse_a_json(plain.json(), model)
        r = post(base, fmt, request_body(fmt, model, True))
        assert r.headers["content-type"] == "text/event-stream" and r.headers["request-id"]
        assert parse_a_stream(r.content, model) == out
    return out


TICKS = "".join(f"tick {i} " for i in range(10))
EXPECTED: dict[str, tuple[str, str, list[dict[str, Any]], str]] = {
    "text": (TEXT, "", [], "stop"),
    "echo": ("What is the weather in Paris?", "", [], "stop"),
    "tool": ("Let me check.", "", [WEATHER], "tool_calls"),
    "tools-parallel": ("", "", [{"city": "Paris"}, {"city": "Tokyo"}], "tool_calls"),
    "tools-interleaved": ("", "", [{"city": "Paris"}, {"city": "Tokyo"}], "tool_calls"),
    "reasoning": ("The answer is 4.", "Let me think. 2+2=4.", [], "stop"),
    "agent": ("", "", [{"command": "echo wireshift-roundtrip", "description": "Print a marker"}], "tool_calls"),
    "length": ("This reply was cut", "", [], "length"),
    "usage-cache": ("Served from the prompt cache.", "", [], "stop"),
    "slow-1": (TICKS, "", [], "stop"),
    "fragmented": ("Let me check.", "", [WEATHER], "tool_calls"),
    "cut": (TEXT, "", [], "stop"),  # non-stream parts of stream-only scenarios
    "no-such-scenario": (TEXT, "", [], "stop"),
}


@pytest.mark.parametrize("scenario", EXPECTED)
def test_scenario_is_valid_and_identical_across_formats_and_transports(base: str, scenario: str):
    text, thinking, args, finish = EXPECTED[scenario]
    model = f"acme/{scenario}"
    if scenario == "cut":  # the stream is cut on purpose (tested below): compare the non-stream bodies only
        c = parse_c_json(post(base, "C", request_body("C", model, False)).json(), model)
        a = parse_a_json(post(base, "A", request_body("A", model, False)).json(), model)
    else:
        c, a = run_all(base, "C", model), run_all(base, "A", model)
    assert (c["text"], c["thinking"], [x[2] for x in c["calls"]], c["finish"]) == (text, thinking, args, finish)
    assert (a["text"], a["thinking"], [x[2] for x in a["calls"]], a["finish"]) == (text, thinking, args, A_STOP[finish])
    assert [x[0] for x in c["calls"]] == [f"call_emu_{i}" for i in range(1, len(args) + 1)]
    assert [x[0] for x in a["calls"]] == [f"toolu_emu_{i}" for i in range(1, len(args) + 1)]
    assert all(x[1] == "lookup" for x in c["calls"] + a["calls"])  # the request's first tool
    cu, au = c["usage"], a["usage"]
    assert cu["prompt_tokens"] == au["input_tokens"] + au["cache_read_input_tokens"] + au["cache_creation_input_tokens"]
    assert cu["prompt_tokens_details"]["cached_tokens"] == au["cache_read_input_tokens"]
    assert cu["completion_tokens"] == au["output_tokens"]
    if scenario == "text":
        assert (cu["prompt_tokens"], cu["completion_tokens"]) == (12, 9)
    if scenario == "usage-cache":
        assert (cu["prompt_tokens"], cu["prompt_tokens_details"]["cached_tokens"], cu["completion_tokens"]) == (
            100,
            60,
            5,
        )
        assert au == {
            "input_tokens": 30,
            "cache_read_input_tokens": 60,
            "cache_creation_input_tokens": 10,
            "output_tokens": 5,
        }
    if scenario == "reasoning":
        assert cu["completion_tokens_details"]["reasoning_tokens"] == 6


def test_stream_shapes_in_detail(base: str):
    frames = sse_frames(post(base, "C", request_body("C", "tool", True)).content)
    args = [
        json.loads(d)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for _, d in frames
        if d != "[DONE]" and "tool_calls" in json.loads(d)["choices"][0]["delta"]
    ]
    assert len(args) >= 6 and args[0] == ""  # first fragment carries id/name only, then >= 5 pieces
    deltas = [
        json.loads(d)["choices"][0]["delta"]
        for _, d in sse_frames(post(base, "C", request_body("C", "text", True)).content)[:-1]
    ]
    assert len([d for d in deltas if d.get("content")]) >= 5  # word by word
    interleaved = [
        json.loads(d)["choices"][0]["delta"]["tool_calls"][0]["index"]
        for _, d in sse_frames(post(base, "C", request_body("C", "tools-interleaved", True)).content)
        if d != "[DONE]" and "tool_calls" in json.loads(d)["choices"][0]["delta"]
    ]
    assert interleaved[:4] == [0, 1, 0, 1]
    a = [json.loads(d) for _, d in sse_frames(post(base, "A", request_body("A", "tool", True)).content)]
    assert len([e for e in a if e.get("delta", {}).get("type") == "input_json_delta"]) >= 5
    assert [e["type"] for e in a[:2]] == ["message_start", "ping"]


# ----------------------------------------------------------------------------- official SDKs


def test_openai_sdk_streams(base: str):
    chunks = list(
        oai(base).chat.completions.create(
            model="text", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 21
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    chunks = list(oai(base).chat.completions.create(model="text", messages=USER, stream=True))
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("scenario", ["tool", "tools-parallel", "tools-interleaved", "fragmented"])
def test_openai_sdk_stream_helper_assembles_tool_calls(base: str, scenario: str):
    with oai(base).chat.completions.stream(
        model=scenario, messages=USER, tools=TOOLS_C, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    msg = final.choices[0].message
    expected = [WEATHER] if scenario in ("tool", "fragmented") else [{"city": "Paris"}, {"city": "Tokyo"}]
    assert [json.loads(tc.function.arguments) for tc in msg.tool_calls] == expected
    assert [tc.id for tc in msg.tool_calls] == [f"call_emu_{i}" for i in range(1, len(expected) + 1)]
    assert {tc.function.name for tc in msg.tool_calls} == {"lookup"}
    assert final.choices[0].finish_reason == "tool_calls" and final.usage.completion_tokens > 0
    assert (msg.content or None) == ("Let me check." if len(expected) == 1 else None)


def test_openai_sdk_reasoning_and_cache_usage(base: str):
    resp = oai(base).chat.completions.create(model="reasoning", messages=USER)
    assert resp.choices[0].message.content == "The answer is 4."
    assert resp.choices[0].message.model_extra["reasoning_content"] == "Let me think. 2+2=4."
    assert resp.usage.completion_tokens_details.reasoning_tokens == 6
    resp = oai(base).chat.completions.create(model="usage-cache", messages=USER)
    assert (resp.usage.prompt_tokens, resp.usage.prompt_tokens_details.cached_tokens) == (100, 60)
    resp = oai(base).chat.completions.create(model="length", messages=USER)
    assert resp.choices[0].finish_reason == "length"


@pytest.mark.parametrize("scenario", ["tool", "tools-parallel", "tools-interleaved", "fragmented", "reasoning"])
def test_anthropic_sdk_stream_final_message(base: str, scenario: str):
    with ant(base).messages.stream(model=scenario, max_tokens=256, messages=USER, tools=TOOLS_A) as stream:
        final = stream.get_final_message()
    assert final.model == scenario and final.usage.input_tokens == 12 and final.usage.output_tokens > 1
    if scenario == "reasoning":
        assert [b.type for b in final.content] == ["thinking", "text"]
        assert (final.content[0].thinking, final.content[0].signature) == ("Let me think. 2+2=4.", "emu-sig-1")
        assert final.content[1].text == "The answer is 4." and final.stop_reason == "end_turn"
        return
    uses = [b for b in final.content if b.type == "tool_use"]
    expected = [WEATHER] if scenario in ("tool", "fragmented") else [{"city": "Paris"}, {"city": "Tokyo"}]
    assert [u.input for u in uses] == expected and {u.name for u in uses} == {"lookup"}
    assert [u.id for u in uses] == [f"toolu_emu_{i}" for i in range(1, len(expected) + 1)]
    assert final.stop_reason == "tool_use"


def test_anthropic_sdk_non_stream_and_usage(base: str):
    msg = ant(base).messages.create(model="usage-cache", max_tokens=64, messages=USER)
    assert (
        msg.usage.input_tokens,
        msg.usage.cache_read_input_tokens,
        msg.usage.cache_creation_input_tokens,
        msg.usage.output_tokens,
    ) == (30, 60, 10, 5)
    msg = ant(base).messages.create(model="length", max_tokens=64, messages=USER)
    assert msg.stop_reason == "max_tokens" and msg.content[0].text == "This reply was cut"


def test_agent_round_trip_both_formats(base: str):
    tools_c = [*TOOLS_C, {"type": "function", "function": {"name": "Bash", "parameters": SCHEMA}}]
    first = oai(base).chat.completions.create(model="agent", messages=USER, tools=tools_c)
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "Bash" and "wireshift-roundtrip" in call.function.arguments
    history = [
        *USER,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "wireshift-roundtrip\n" + "x" * 300},
    ]
    second = oai(base).chat.completions.create(model="agent", messages=history, tools=tools_c)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Tool result received: wireshift-roundtrip\n" + "x" * 180

    tools_a = [*TOOLS_A, {"name": "Bash", "input_schema": SCHEMA}]
    first_a = ant(base).messages.create(model="agent", max_tokens=64, messages=USER, tools=tools_a)
    use = first_a.content[0]
    assert (use.name, use.input["command"], first_a.stop_reason) == ("Bash", "echo wireshift-roundtrip", "tool_use")
    result = {
        "type": "tool_result",
        "tool_use_id": use.id,
        "content": [{"type": "text", "text": "wireshift-roundtrip"}],
    }
    history_a = [*USER, {"role": "assistant", "content": [use.model_dump()]}, {"role": "user", "content": [result]}]
    with ant(base).messages.stream(model="agent", max_tokens=64, messages=history_a, tools=tools_a) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Tool result received: wireshift-roundtrip" and final.stop_reason == "end_turn"


ERRORS = {  # name: (C status, C type, C code, A status, A type)
    "error-401": (401, "invalid_request_error", "invalid_api_key", 401, "authentication_error"),
    "error-403": (403, "invalid_request_error", "permission_denied", 403, "permission_error"),
    "error-404": (404, "invalid_request_error", "model_not_found", 404, "not_found_error"),
    "error-429": (429, "requests", "rate_limit_exceeded", 429, "rate_limit_error"),
    "error-500": (500, "server_error", None, 500, "api_error"),
    "error-503": (503, "service_unavailable_error", None, 503, "api_error"),
    "error-529": (503, "server_error", None, 529, "overloaded_error"),
    "error-400-context": (400, "invalid_request_error", "context_length_exceeded", 400, "invalid_request_error"),
    "error-midstream": (500, "server_error", None, 500, "api_error"),  # non-stream
}


@pytest.mark.parametrize("scenario", ERRORS)
def test_errors_in_each_format(base: str, scenario: str):
    c_status, c_type, c_code, a_status, a_type = ERRORS[scenario]
    with pytest.raises(openai.APIStatusError) as info:
        oai(base).chat.completions.create(model=scenario, messages=USER)
    err = info.value
    assert err.status_code == c_status and set(err.body) == {"message", "type", "param", "code"}
    assert (err.body["type"], err.body["code"]) == (c_type, c_code) and err.body["message"]
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        ant(base).messages.create(model=scenario, max_tokens=64, messages=USER)
    aerr = ainfo.value
    assert aerr.status_code == a_status and aerr.body["type"] == "error" and aerr.body["error"]["type"] == a_type
    assert aerr.body["request_id"] == aerr.response.headers["request-id"]
    if scenario == "error-429":
        assert err.response.headers["retry-after"] == aerr.response.headers["retry-after"] == "7"
        assert isinstance(err, openai.RateLimitError) and isinstance(aerr, anthropic.RateLimitError)
    if scenario == "error-400-context":
        assert "maximum context length is 8192 tokens" in err.body["message"]
        assert aerr.body["error"]["message"] == "prompt is too long: 9000 tokens > 8192 maximum"
    if scenario != "error-midstream":  # stream requests fail before the first byte with the same status
        r = post(base, "C", request_body("C", scenario, True))
        assert r.status_code == c_status and r.headers["content-type"] == "application/json"


def test_midstream_error_frames(base: str):
    got: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in oai(base).chat.completions.create(model="error-midstream", messages=USER, stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "Hello from the "
    with pytest.raises(anthropic.APIStatusError) as info:
        with ant(base).messages.stream(model="error-midstream", max_tokens=64, messages=USER) as stream:
            for _ in stream:
                pass
    assert info.value.body["error"]["type"] == "overloaded_error"
    frames = sse_frames(post(base, "A", request_body("A", "error-midstream", True)).content)
    assert frames[-1][0] == "error" and "message_stop" not in [f[0] for f in frames]
    last = sse_frames(post(base, "C", request_body("C", "error-midstream", True)).content)[-1][1]
    assert json.loads(last)["error"] == {
        "message": "Upstream overloaded",
        "type": "server_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize("fmt", ["C", "A"])
def test_cut_ends_cleanly_without_terminal_events(base: str, fmt: str):
    r = post(base, fmt, request_body(fmt, "cut", True, include_usage=True))  # a clean chunked end: no exception
    frames = sse_frames(r.content)
    assert len(frames) >= 4 and r.content.endswith(b"\n\n")
    raw = r.content.decode()
    for marker in ("[DONE]", 'finish_reason":"', "message_delta", "message_stop", "content_block_stop"):
        assert marker not in raw


@pytest.mark.parametrize("fmt", ["C", "A"])
def test_drop_aborts_mid_body(base: str, fmt: str):
    got = b""
    path = "/v1/chat/completions" if fmt == "C" else "/v1/messages"
    with pytest.raises(httpx.RemoteProtocolError):
        with HTTP.stream("POST", base + path, json=request_body(fmt, "drop", True)) as r:
            for part in r.iter_raw():
                got += part
    assert b"Hello" in got
    assert HTTP.get(f"{base}/health").status_code == 200  # the server survives


@pytest.mark.parametrize("fmt", ["C", "A"])
def test_slow_paces_deltas_and_flushes_the_first_at_once(base: str, fmt: str):
    pace = 60
    path = "/v1/chat/completions" if fmt == "C" else "/v1/messages"
    headers = {"x-emulator-pace-ms": str(pace)}
    stamps: list[float] = []
    with HTTP.stream("POST", base + path, json=request_body(fmt, "slow", True), headers=headers) as r:
        t0 = time.monotonic()
        for line in r.iter_lines():
            if "tick " in line:
                stamps.append(time.monotonic() - t0)
    assert len(stamps) == 10
    assert stamps[0] < pace / 1000 * 0.8, stamps
    assert stamps[-1] - stamps[0] >= 9 * pace / 1000 * 0.9, stamps
    t0 = time.monotonic()  # slow-<ms> in the model name, non-stream waits the whole pacing
    assert post(base, fmt, request_body(fmt, "slow-30", False)).status_code == 200
    assert time.monotonic() - t0 >= 0.25


def test_fragmented_bytes(base: str):
    for fmt in ("C", "A"):
        raw = post(base, fmt, request_body(fmt, "fragmented", True)).content
        assert b"\r\n\r\n: keep-alive\r\n\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")


# ----------------------------------------------------------------------------- control endpoints, selection, CLI


def test_models_health_recording_and_selection(base: str):
    assert HTTP.get(f"{base}/health").status_code == 200
    models = HTTP.get(f"{base}/v1/models").json()
    ids = {m["id"] for m in models["data"]}
    assert models["object"] == "list" and {"text", "tool", "agent", "error-529", "fragmented"} <= ids
    assert {m.id for m in oai(base).models.list()} == ids
    assert HTTP.delete(f"{base}/_emulator/requests").status_code == 200
    assert HTTP.get(f"{base}/_emulator/requests").json() == []
    r = HTTP.post(
        f"{base}/v1/messages?beta=true",
        json=request_body("A", "whatever", False),
        headers={"X-Emulator-Scenario": "length", "X-Custom": "1"},
    )
    assert r.json()["content"][0]["text"] == "This reply was cut" and r.json()["model"] == "whatever"
    bad = HTTP.post(f"{base}/v1/chat/completions", content=b"{oops")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad = HTTP.post(f"{base}/v1/messages", content=b"{oops")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert bad.json()["type"] == "error"
    recorded = HTTP.get(f"{base}/_emulator/requests").json()
    assert [(x["method"], x["path"], x["query"]) for x in recorded] == [
        ("POST", "/v1/messages", "beta=true"),
        ("POST", "/v1/chat/completions", ""),
        ("POST", "/v1/messages", ""),
    ]
    assert recorded[0]["headers"]["X-Custom"] == "1" and recorded[0]["body"]["model"] == "whatever"
    assert recorded[1]["body"] is None
    for _ in range(205):
        HTTP.get(f"{base}/v1/models")
    assert len(HTTP.get(f"{base}/_emulator/requests").json()) == 200


def test_cli_prints_ready_line():
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "emulator.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("EMULATOR READY http://127.0.0.1:")
        assert HTTP.get(line.split()[-1] + "/health").status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == ""
