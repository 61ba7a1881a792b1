"""The reference backend (scripts/emulator.py): every scenario, in C, A and R, streaming and not, checked
against strict wire-grammar validators and driven through the official openai and anthropic SDKs."""

from __future__ import annotations

import asyncio
import functools
import json
import re
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
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from scripts.emulator import serve

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Hello from the wireshift reference backend."
WEATHER = {"city": "Paris", "unit": "celsius"}
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS_C = [{"type": "function", "function": {"name": "lookup", "description": "Weather", "parameters": SCHEMA}}]
TOOLS_A = [{"name": "lookup", "description": "Weather", "input_schema": SCHEMA}]
TOOLS_R = [{"type": "function", "name": "lookup", "description": "Weather", "parameters": SCHEMA}]
INPUT_R = [  # Codex-style: a developer message and input_text parts
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": USER[0]["content"]}]},
]
ENC = ["reasoning.encrypted_content"]
PATHS = {"C": "/v1/chat/completions", "A": "/v1/messages", "R": "/v1/responses"}
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
    return HTTP.post(base + PATHS[fmt], json=body, headers=headers)


def request_body(fmt: str, model: str, stream: bool, include_usage: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": USER, "tools": TOOLS_C if fmt == "C" else TOOLS_A}
    if fmt == "A":
        body["max_tokens"] = 256
    if fmt == "R":
        body = {"model": model, "input": INPUT_R, "tools": TOOLS_R, "include": ENC, "store": False}
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


R_KEYS = {
    *("id", "object", "created_at", "status", "background", "error", "incomplete_details", "model", "output"),
    *("output_text", "instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "previous_response_id"),
    *("reasoning", "store", "temperature", "text", "tool_choice", "top_p", "truncation", "tools", "usage"),
}
R_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
R_PHASES = {  # the events between an item's output_item.added and output_item.done
    "reasoning": "reasoning_summary_part.added (reasoning_summary_text.delta )+reasoning_summary_text.done "
    "reasoning_summary_part.done ",
    "message": "content_part.added (output_text.delta )+output_text.done content_part.done ",
    "function_call": "(function_call_arguments.delta )+function_call_arguments.done ",
}
R_ITEM = "|".join(f"added:{kind} {phases}done:{kind} " for kind, phases in R_PHASES.items())
R_GRAMMAR = re.compile(rf"created in_progress ({R_ITEM})*(completed|incomplete)")


def check_r_usage(u: dict[str, Any]) -> dict[str, Any]:
    assert set(u) == {"input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details", "total_tokens"}
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"] and u["output_tokens"] > 0
    assert set(u["input_tokens_details"]) == {"cached_tokens", "cache_write_tokens"}
    assert set(u["output_tokens_details"]) == {"reasoning_tokens"}
    return u


def parse_r_json(obj: dict[str, Any], model: str, encrypted: bool = True) -> dict[str, Any]:
    """A complete ``response`` object: the SDK model accepts it strictly, items are well-formed and numbered."""
    Response.model_validate(obj, strict=True)
    assert set(obj) == R_KEYS and obj["tools"] == [] and obj["error"] is None and obj["background"] is False
    assert obj["id"].startswith("resp_emu") and obj["object"] == "response" and obj["model"] == model
    assert isinstance(obj["created_at"], int)
    if obj["status"] == "incomplete":
        assert obj["incomplete_details"] == {"reason": "max_output_tokens"}
    else:
        assert obj["status"] == "completed" and obj["incomplete_details"] is None
    kinds = [i["type"] for i in obj["output"]]
    assert kinds == sorted(kinds, key=["reasoning", "message", "function_call"].index)
    text, thinking, calls = "", "", []
    for i, item in enumerate(obj["output"]):
        n = kinds[: i + 1].count(item["type"])  # items of a kind are numbered from 1
        if item["type"] == "reasoning":
            keys = {"id", "type", "summary", "encrypted_content"} if encrypted else {"id", "type", "summary"}
            assert (item["id"], set(item)) == (f"rs_emu_{n}", keys)
            assert item.get("encrypted_content", "emu-enc-1") == "emu-enc-1"
            [summary] = item["summary"]
            assert summary["type"] == "summary_text"
            thinking += summary["text"]
        elif item["type"] == "message":
            assert (item["id"], item["role"], item["status"]) == (f"msg_emu_{n}", "assistant", obj["status"])
            [part] = item["content"]
            assert part["type"] == "output_text" and part["annotations"] == [] and part["text"]
            text += part["text"]
        else:
            assert (item["id"], item["call_id"], item["status"]) == (f"fc_emu_{n}", f"call_emu_{n}", "completed")
            assert set(item) <= {"id", "type", "call_id", "name", "arguments", "status", "namespace"}
            calls.append((item["call_id"], item["name"], json.loads(item["arguments"])))
    assert obj["output_text"] == text
    finish = "length" if obj["status"] == "incomplete" else "tool_calls" if calls else "stop"
    return canon(text, thinking, calls, finish, check_r_usage(obj["usage"]))


def r_events(raw: bytes) -> list[dict[str, Any]]:
    """The events of an R stream: ``event:`` names the type, sequence numbers count from 0, the SDK accepts each."""
    frames = sse_frames(raw)
    events = [json.loads(d) for _, d in frames]
    assert [name for name, _ in frames] == [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for e in events:
        R_EVENT.validate_python(e)
    return events


def parse_r_stream(raw: bytes, model: str, encrypted: bool = True) -> dict[str, Any]:
    """A complete R stream: the grammar of wire-formats 4.1, consistent deltas, done items and final response."""
    events = r_events(raw)
    tokens = [e["type"].removeprefix("response.") for e in events]
    for i, e in enumerate(events):
        if tokens[i] in ("output_item.added", "output_item.done"):
            tokens[i] = f"{tokens[i].split('.')[1]}:{e['item']['type']}"
    assert R_GRAMMAR.fullmatch(" ".join(tokens)), tokens
    final = events[-1]["response"]
    for e in events[:2]:
        assert e["response"] == {k: v for k, v in final.items() if k != "output_text"} | {
            "status": "in_progress",
            "output": [],
            "usage": None,
            "incomplete_details": None,
        }
    items: list[dict[str, Any]] = []
    added: dict[str, Any] = {}
    acc = ""
    for e, token in zip(events[2:-1], tokens[2:-1], strict=True):
        if token.startswith("added:"):
            added, acc = e["item"], ""
            assert e["output_index"] == len(items)
            empty = {"reasoning": {"summary": []}, "message": {"content": [], "status": "in_progress"}}
            empty["function_call"] = {"arguments": "", "status": "in_progress"}
            assert {k: added[k] for k in empty[added["type"]]} == empty[added["type"]]
        elif token.startswith("done:"):
            item = e["item"]
            same = ("id", "type", "role", "call_id", "name", "namespace")
            assert e["output_index"] == len(items) and {k: item.get(k) for k in same} == {k: added.get(k) for k in same}
            if item["type"] == "reasoning":
                assert item["summary"][0]["text"] == acc
            else:
                assert (item["content"][0]["text"] if item["type"] == "message" else item["arguments"]) == acc
            items.append(item)
        else:
            assert (e["item_id"], e["output_index"]) == (added["id"], len(items))
            assert e.get("content_index", 0) == 0 and e.get("summary_index", 0) == 0
            if token.endswith(".delta"):
                acc += e["delta"]
            elif token.endswith(".added"):
                assert e["part"]["text"] == ""
            else:
                assert e.get("text", e.get("arguments", e.get("part", {}).get("text"))) == acc
    assert final["output"] == items
    return parse_r_json(final, model, encrypted)


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
    elif fmt == "A":
        out = parse_a_json(plain.json(), model)
        r = post(base, fmt, request_body(fmt, model, True))
        assert r.headers["content-type"] == "text/event-stream" and r.headers["request-id"]
        assert parse_a_stream(r.content, model) == out
    else:
        out = parse_r_json(plain.json(), model)
        r = post(base, fmt, request_body(fmt, model, True))
        assert r.headers["content-type"] == "text/event-stream" and r.headers["x-request-id"]
        assert parse_r_stream(r.content, model) == out
        final = json.loads(sse_frames(r.content)[-1][1])["response"]  # the terminal event carries the JSON reply
        assert final["id"] != plain.json()["id"]
        assert {**final, "id": "", "created_at": 0} == {**plain.json(), "id": "", "created_at": 0}
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
        r = parse_r_json(post(base, "R", request_body("R", model, False)).json(), model)
    else:
        c, a, r = run_all(base, "C", model), run_all(base, "A", model), run_all(base, "R", model)
    assert (c["text"], c["thinking"], [x[2] for x in c["calls"]], c["finish"]) == (text, thinking, args, finish)
    assert (a["text"], a["thinking"], [x[2] for x in a["calls"]], a["finish"]) == (text, thinking, args, A_STOP[finish])
    assert {**r, "usage": None} == {**c, "usage": None}  # R calls carry call_id call_emu_<n> like C
    assert [x[0] for x in c["calls"]] == [f"call_emu_{i}" for i in range(1, len(args) + 1)]
    assert [x[0] for x in a["calls"]] == [f"toolu_emu_{i}" for i in range(1, len(args) + 1)]
    assert all(x[1] == "lookup" for x in c["calls"] + a["calls"] + r["calls"])  # the request's first tool
    cu, au, ru = c["usage"], a["usage"], r["usage"]
    assert (ru["input_tokens"], ru["output_tokens"], ru["total_tokens"]) == (
        cu["prompt_tokens"],
        cu["completion_tokens"],
        cu["total_tokens"],
    )
    assert ru["input_tokens_details"]["cached_tokens"] == cu["prompt_tokens_details"]["cached_tokens"]
    assert ru["input_tokens_details"]["cache_write_tokens"] == au["cache_creation_input_tokens"]
    assert ru["output_tokens_details"] == cu["completion_tokens_details"]
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
    r_types = [e["type"] for e in r_events(post(base, "R", request_body("R", "tool", True)).content)]
    assert r_types.count("response.function_call_arguments.delta") >= 5
    assert r_types.count("response.output_text.delta") == 3  # "Let ", "me ", "check."
    r_types = [e["type"] for e in r_events(post(base, "R", request_body("R", "text", True)).content)]
    assert r_types.count("response.output_text.delta") >= 5
    interleaved = [  # R has no interleaving: each call is one item, opened and closed in turn
        (e["type"].rsplit(".", 1)[-1], e["output_index"])
        for e in r_events(post(base, "R", request_body("R", "tools-interleaved", True)).content)
        if e["type"].startswith("response.output_item")
    ]
    assert interleaved == [("added", 0), ("done", 0), ("added", 1), ("done", 1)]


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


def test_openai_sdk_responses_create(base: str):
    resp = oai(base).responses.create(model="tool", input=INPUT_R, tools=TOOLS_R)
    assert resp.status == "completed" and resp.output_text == "Let me check." and resp.model == "tool"
    [call] = [item for item in resp.output if item.type == "function_call"]
    assert (call.id, call.call_id, call.name, call.status) == ("fc_emu_1", "call_emu_1", "lookup", "completed")
    assert json.loads(call.arguments) == WEATHER
    assert (resp.usage.input_tokens, resp.usage.total_tokens) == (12, 12 + resp.usage.output_tokens)
    resp = oai(base).responses.create(model="usage-cache", input="hi")
    assert (resp.usage.input_tokens, resp.usage.input_tokens_details.cached_tokens, resp.usage.output_tokens) == (
        100,
        60,
        5,
    )
    resp = oai(base).responses.create(model="length", input="hi", max_output_tokens=16)
    assert (resp.status, resp.incomplete_details.reason, resp.output_text) == (
        "incomplete",
        "max_output_tokens",
        "This reply was cut",
    )
    assert resp.max_output_tokens == 16  # request parameters are echoed
    resp = oai(base).responses.create(model="echo", input="say this back")
    assert resp.output_text == "say this back" and resp.output[0].id == "msg_emu_1"


@pytest.mark.parametrize("scenario", ["text", "tool", "tools-parallel", "tools-interleaved", "fragmented", "reasoning"])
def test_openai_sdk_responses_stream_helper(base: str, scenario: str):
    with oai(base).responses.stream(model=scenario, input=INPUT_R, tools=TOOLS_R, include=ENC) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    expected = {"tool": [WEATHER], "fragmented": [WEATHER], "tools-parallel": [{"city": "Paris"}, {"city": "Tokyo"}]}
    expected["tools-interleaved"] = expected["tools-parallel"]
    assert [json.loads(c.arguments) for c in calls] == expected.get(scenario, [])
    assert "".join(deltas) == "".join(c.arguments for c in calls)
    assert [(c.call_id, c.name) for c in calls] == [(f"call_emu_{i}", "lookup") for i in range(1, len(calls) + 1)]
    text = {"text": TEXT, "tool": "Let me check.", "fragmented": "Let me check.", "reasoning": "The answer is 4."}
    assert final.output_text == text.get(scenario, "") and final.status == "completed"
    assert final.usage.output_tokens > 0 and final.model == scenario
    if scenario == "reasoning":
        rs = final.output[0]
        assert (rs.type, rs.id, rs.summary[0].text, rs.encrypted_content) == (
            "reasoning",
            "rs_emu_1",
            "Let me think. 2+2=4.",
            "emu-enc-1",
        )
        assert final.usage.output_tokens_details.reasoning_tokens == 6


def test_responses_encrypted_content_only_when_included(base: str):
    for stream in (False, True):
        body = {**request_body("R", "reasoning", stream), "include": []}
        r = post(base, "R", body)
        out = parse_r_stream(r.content, "reasoning", False) if stream else parse_r_json(r.json(), "reasoning", False)
        assert out["thinking"] == "Let me think. 2+2=4."
    resp = oai(base).responses.create(model="reasoning", input="2+2?")
    assert resp.output[0].encrypted_content is None
    resp = oai(base).responses.create(model="reasoning", input="2+2?", include=ENC)
    assert resp.output[0].encrypted_content == "emu-enc-1"


def test_responses_without_v1_and_length_stream(base: str):
    client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)  # Codex-style base URL without /v1
    assert client.responses.create(model="text", input="hi").output_text == TEXT
    with client.responses.stream(model="tool", input="hi", tools=TOOLS_R) as stream:
        assert stream.get_final_response().output[1].call_id == "call_emu_1"
    assert HTTP.get(f"{base}/_emulator/requests").json()[-1]["path"] == "/responses"
    events = list(oai(base).responses.create(model="length", input="hi", stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.incomplete_details.reason == (
        "max_output_tokens"
    )
    assert events[-2].item.status == "incomplete"


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


EXEC = {  # Codex's tools: exec_command (cmd string), a namespace of functions, web_search
    "type": "function",
    "name": "exec_command",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Sub-agents",
    "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}}],
}
SHELL = {  # the older Codex shell tool: an argv array, strict
    "type": "function",
    "name": "shell",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {
            "command": {"type": "array", "items": {"type": "string"}},
            "workdir": {"type": ["string", "null"]},
        },
        "required": ["command", "workdir"],
        "additionalProperties": False,
    },
}


def test_agent_round_trip_codex_shapes(base: str):
    tools = [{"type": "web_search"}, NAMESPACE, *TOOLS_R, EXEC]
    first = oai(base).responses.create(model="agent", input=INPUT_R, tools=tools, include=ENC)
    [call] = first.output
    assert (call.type, call.name, call.namespace) == ("function_call", "exec_command", None)
    assert json.loads(call.arguments) == {"cmd": "echo wireshift-roundtrip"}  # fitted to the schema
    history = [
        *INPUT_R,
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "wireshift-roundtrip\n" + "x" * 300},
    ]
    with oai(base).responses.stream(model="agent", input=history, tools=tools, include=ENC) as stream:
        final = stream.get_final_response()
    assert final.output_text == "Tool result received: wireshift-roundtrip\n" + "x" * 180
    parts = [{"type": "input_text", "text": "part one"}]  # an output given as content parts; a reasoning item before
    history = [
        *INPUT_R,
        {"type": "reasoning", "id": "rs_emu_1", "summary": []},
        history[2],
        {**history[3], "output": parts},
    ]
    assert oai(base).responses.create(model="agent", input=history, tools=tools).output_text == (
        "Tool result received: part one"
    )
    history.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]})
    assert oai(base).responses.create(model="agent", input=history, tools=tools).output[0].type == "function_call"

    resp = oai(base).responses.create(model="agent", input="go", tools=[*TOOLS_R, SHELL])  # argv, strict schema
    assert (resp.output[0].name, json.loads(resp.output[0].arguments)) == (
        "shell",
        {"command": ["bash", "-lc", "echo wireshift-roundtrip"]},
    )
    resp = oai(base).responses.create(model="agent", input="go", tools=[NAMESPACE])  # no shell: the first function
    assert (resp.output[0].name, resp.output[0].namespace) == ("spawn_agent", "multi_agent_v1")
    with oai(base).responses.stream(model="tool", input="go", tools=[{"type": "web_search"}, NAMESPACE]) as stream:
        call = stream.get_final_response().output[1]
    assert (call.name, call.namespace, json.loads(call.arguments)) == ("spawn_agent", "multi_agent_v1", WEATHER)
    assert oai(base).responses.create(model="tool", input="go", tools=[{"type": "web_search"}]).output[1].name == (
        "get_weather"
    )
    bash = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    use = ant(base).messages.create(model="agent", max_tokens=64, messages=USER, tools=[*TOOLS_A, bash]).content[0]
    assert (use.name, use.input) == ("Bash", {"command": "echo wireshift-roundtrip"})  # no description property


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
    with pytest.raises(openai.APIStatusError) as rinfo:  # R: the OpenAI envelope and status of C
        oai(base).responses.create(model=scenario, input="hi")
    assert type(rinfo.value) is type(err) and rinfo.value.status_code == c_status and rinfo.value.body == err.body
    expected_class = {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError}
    expected_class |= {403: openai.PermissionDeniedError, 429: openai.RateLimitError}
    assert isinstance(err, expected_class.get(c_status, openai.InternalServerError))
    if scenario == "error-429":
        assert rinfo.value.response.headers["retry-after"] == "7"
    if scenario != "error-midstream":  # stream requests fail before the first byte with the same status
        for fmt in ("C", "R"):
            r = post(base, fmt, request_body(fmt, scenario, True))
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
    events = list(oai(base).responses.create(model="error-midstream", input="hi", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from the "
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert (failed.response.error.code, failed.response.error.message) == ("server_error", "Upstream overloaded")
    with oai(base).responses.stream(model="error-midstream", input="hi") as stream:
        assert [e.type for e in stream][-1] == "response.failed"
        with pytest.raises(RuntimeError):
            stream.get_final_response()
    raw = r_events(post(base, "R", request_body("R", "error-midstream", True)).content)  # seq numbers continue
    text = r_events(post(base, "R", request_body("R", "text", True)).content)
    assert [e["type"] for e in raw[:-1]] == [e["type"] for e in text[: len(raw) - 1]]
    assert raw[-1]["type"] == "response.failed" and raw[-1]["response"]["id"] == raw[0]["response"]["id"]


@pytest.mark.parametrize("fmt", ["C", "A", "R"])
def test_cut_ends_cleanly_without_terminal_events(base: str, fmt: str):
    r = post(base, fmt, request_body(fmt, "cut", True, include_usage=True))  # a clean chunked end: no exception
    frames = sse_frames(r.content)
    assert len(frames) >= 4 and r.content.endswith(b"\n\n")
    raw = r.content.decode()
    for marker in ("[DONE]", 'finish_reason":"', "message_delta", "message_stop", "content_block_stop"):
        assert marker not in raw
    if fmt == "R":  # a valid prefix of the text stream (about half of it), without any done or terminal event
        cut = [e["type"] for e in r_events(r.content)]
        full = [e["type"] for e in r_events(post(base, "R", request_body("R", "text", True)).content)]
        assert cut == full[: len(full) // 2] and "response.output_text.delta" in cut
        assert not [t for t in cut if t.endswith(("done", "completed", "incomplete", "failed"))]


@pytest.mark.parametrize("fmt", ["C", "A", "R"])
def test_drop_aborts_mid_body(base: str, fmt: str):
    got = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with HTTP.stream("POST", base + PATHS[fmt], json=request_body(fmt, "drop", True)) as r:
            for part in r.iter_raw():
                got += part
    assert b"Hello" in got
    assert HTTP.get(f"{base}/health").status_code == 200  # the server survives


@pytest.mark.parametrize("fmt", ["C", "A", "R"])
def test_slow_paces_deltas_and_flushes_the_first_at_once(base: str, fmt: str):
    pace = 60
    headers = {"x-emulator-pace-ms": str(pace)}
    stamps: list[float] = []
    with HTTP.stream("POST", base + PATHS[fmt], json=request_body(fmt, "slow", True), headers=headers) as r:
        t0 = time.monotonic()
        for line in r.iter_lines():
            if "tick " in line and "delta" in line:  # R also repeats the text in its done events
                stamps.append(time.monotonic() - t0)
    assert len(stamps) == 10
    assert stamps[0] < pace / 1000 * 0.8, stamps
    assert stamps[-1] - stamps[0] >= 9 * pace / 1000 * 0.9, stamps
    t0 = time.monotonic()  # slow-<ms> in the model name, non-stream waits the whole pacing
    assert post(base, fmt, request_body(fmt, "slow-30", False)).status_code == 200
    assert time.monotonic() - t0 >= 0.25


def test_fragmented_bytes(base: str):
    for fmt in ("C", "A", "R"):
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
    bad = HTTP.post(f"{base}/v1/responses", content=b"[]")
    assert bad.status_code == 400 and set(bad.json()["error"]) == {"message", "type", "param", "code"}
    r = HTTP.post(
        f"{base}/responses", json={"model": "x/usage-cache", "input": "hi"}, headers={"x-emulator-scenario": "text"}
    )
    assert r.json()["output_text"] == TEXT and r.json()["model"] == "x/usage-cache"
    recorded = HTTP.get(f"{base}/_emulator/requests").json()
    assert [(x["method"], x["path"], x["query"]) for x in recorded] == [
        ("POST", "/v1/messages", "beta=true"),
        ("POST", "/v1/chat/completions", ""),
        ("POST", "/v1/messages", ""),
        ("POST", "/v1/responses", ""),
        ("POST", "/responses", ""),
    ]
    assert recorded[-1]["body"] == {"model": "x/usage-cache", "input": "hi"}
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
