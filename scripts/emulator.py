"""Reference backend for wireshift: a scripted OpenAI Chat Completions, OpenAI Responses and Anthropic
Messages server.

An independent peer (aiohttp only, nothing from wireshift) that answers ``POST /v1/chat/completions``
("C"), ``POST /v1/responses`` or ``POST /responses`` ("R") and ``POST /v1/messages`` ("A"), streaming
and not, with the wire shapes real OpenAI and Anthropic servers send. ``GET /v1/models`` lists the
scenarios, ``GET /health`` answers 200, ``POST /v1/messages/count_tokens`` estimates (4 chars per
token), ``GET /_emulator/requests`` returns the last 200 recorded requests (method, path, query,
headers, body) and ``DELETE /_emulator/requests`` clears them.

The reply is picked by the request's ``model`` (the exact name or the part after the last ``/``,
so ``acme/tool`` selects ``tool``); the header ``x-emulator-scenario`` overrides it; unknown names
select ``text``. Every reply echoes the requested model. Each scenario is defined once and rendered
in C, A and R (R items: ``msg_emu_1``, ``rs_emu_1``, ``fc_emu_<n>`` with ``call_id`` ``call_emu_<n>``;
R usage = C usage renamed, plus ``cache_write_tokens``). Scenarios:

- ``text``: "Hello from the wireshift reference backend." (usage 12 in / 9 out).
- ``echo``: the text of the last user message.
- ``tool``: "Let me check." then one call to the request's first function tool (R: a ``namespace``
  tool's first function counts, and the call names the namespace; else ``get_weather``) with
  ``{"city": "Paris", "unit": "celsius"}``; ids ``call_emu_1`` / ``toolu_emu_1`` / ``fc_emu_1``.
- ``tools-parallel``: two calls, ``{"city": "Paris"}`` and ``{"city": "Tokyo"}``, no text
  (``call_emu_1``/``call_emu_2``, ``toolu_emu_1``/``toolu_emu_2``); C streams call 0 then call 1.
- ``tools-interleaved``: as ``tools-parallel``, but the C stream interleaves the two calls' fragments.
- ``reasoning``: reasoning "Let me think. 2+2=4." then "The answer is 4." (C ``reasoning_content``,
  reasoning_tokens 6; A thinking block with signature ``emu-sig-1``; R reasoning item with that
  summary, and ``encrypted_content`` ``emu-enc-1`` when ``include`` asks for it).
- ``agent``: when the conversation ends with a tool result (A: the last user message has a
  ``tool_result``; C: a ``tool`` message, R: a ``function_call_output`` item, after the last assistant
  output), "Tool result received: <first 200 chars of the first such result>"; otherwise one call to
  ``Bash``, ``shell`` or ``exec_command`` (else the first tool, else ``get_weather``) with
  ``{"command": "echo wireshift-roundtrip", "description": "Print a marker"}``, fitted to a tool
  schema with a ``command`` or ``cmd`` property: the command goes there (as
  ``["bash", "-lc", "echo wireshift-roundtrip"]`` if it is an array; Codex's ``exec_command`` takes
  a ``cmd`` string) and ``description`` only if the schema has it.
- ``length``: "This reply was cut", finish ``length`` / ``max_tokens`` / R ``incomplete``
  (``max_output_tokens``; the stream ends with ``response.incomplete``).
- ``usage-cache``: "Served from the prompt cache."; C/R prompt 100 (60 cached), completion 5; A input
  30, cache read 60, cache write 10, output 5.
- ``error-401|403|404|429|500|503|529``, ``error-400-context``: the format's HTTP error envelope
  (429 adds ``Retry-After: 7``; 529 is 503 in C and R, which share the OpenAI envelope).
- ``error-midstream``: a few text deltas, then the format's in-stream error frame (R:
  ``response.failed`` with error ``server_error``); non-stream: 500.
- ``cut``: half of the ``text`` stream, then a clean end of body with no terminal event.
- ``drop``: half of the ``text`` stream and the first half of the next frame, then the TCP
  connection is aborted mid-body (mid-event, as when a connection breaks).
- ``slow`` / ``slow-<ms>``: ten deltas "tick 0 " .. "tick 9 ", paced 200 ms (or <ms>, or the
  ``x-emulator-pace-ms`` header); the first delta is flushed at once.
- ``fragmented``: the ``tool`` stream in 7-byte writes, CRLF line endings, ``: keep-alive`` comments.
- ``stall-<ms>``: waits <ms> before sending anything (no headers either), then answers as ``text``.
- ``many-<n>``: ``n`` text deltas "w0 " .. "w<n-1> " (benchmarks; a long stream of small chunks),
  back to back, or paced by the ``x-emulator-pace-ms`` header (like real token streams).

Forced status (Go-LIP's emulator knob, for key pools): an API key (``Authorization: Bearer`` or
``x-api-key``) of the form ``emu-status-<code>`` or ``emu-status-<code>-<retry-after seconds>``
answers that status (401, 403, 429, 500, 503 or 529) in the format's envelope whatever the model
says; a 429 carries ``Retry-After`` (the given seconds, else 7). Other keys are served normally.

Stream-only scenarios answer non-streaming requests like ``text`` (``cut``, ``drop``), ``tool``
(``fragmented``) or after the full pacing delay (``slow``). Run with
``python scripts/emulator.py [--host 127.0.0.1] [--port 8765]``; it prints ``EMULATOR READY <url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import itertools
import json
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEXT = "Hello from the wireshift reference backend."
WEATHER = {"city": "Paris", "unit": "celsius"}
AGENT_ARGS = {"command": "echo wireshift-roundtrip", "description": "Print a marker"}
AGENT_TOOLS = ("Bash", "shell", "exec_command")  # Claude Code's and Codex's shell tools
SIGNATURE = "emu-sig-1"
R_ENCRYPTED = "emu-enc-1"
DEFAULT_PACE_MS = 200
MAX_RECORDED = 200
A_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
REQUESTS: web.AppKey[collections.deque[dict[str, Any]]] = web.AppKey("requests", collections.deque)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _words(text: str) -> list[str]:
    """Split text into word deltas (each keeps its trailing whitespace; they join back exactly)."""
    return [w for w in re.findall(r"\S*\s*", text) if w] or [text]


def _frags(s: str, size: int = 6) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


# ----------------------------------------------------------------------------- scripted replies


@dataclass
class Block:
    """One piece of the reply: ``thinking``, ``text`` or ``tool``; ``n`` numbers the blocks of a kind from 1."""

    kind: str
    text: str = ""
    name: str = ""
    args: dict[str, Any] | None = None
    n: int = 0
    pieces: list[str] | None = None
    ns: str | None = None  # the R ``namespace`` tool the called function belongs to

    def deltas(self) -> list[str]:
        """The stream pieces: words, explicit pieces, or 6-character argument fragments."""
        if self.kind == "tool":
            return _frags(json.dumps(self.args))
        return self.pieces or _words(self.text)


@dataclass
class Reply:
    """A scenario's content; ``prompt`` is the total prompt incl. cache reads and writes."""

    blocks: list[Block]
    finish: str = "stop"
    prompt: int = 12
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def __post_init__(self) -> None:
        for i, b in enumerate(self.blocks):
            b.n = b.n or 1 + sum(x.kind == b.kind for x in self.blocks[:i])
        if not self.output:
            chars = sum(len(b.text) + len(json.dumps(b.args or {})) for b in self.blocks)
            self.output = max(1, chars // 4)


@dataclass
class Tool:
    """A function the request offers: name, JSON schema of its parameters, R namespace."""

    name: str
    params: Any = None
    ns: str | None = None


def parse_tools(fmt: str, raw: Any) -> list[Tool]:
    """The request's function tools in order (C ``function``, A flat, R flat + ``namespace`` members)."""
    found: list[Tool] = []
    for t in raw if isinstance(raw, list) else []:
        if not isinstance(t, dict):
            continue
        if fmt != "R":
            f = t["function"] if isinstance(t.get("function"), dict) else t
            found.append(Tool(str(f.get("name") or ""), f.get("parameters", f.get("input_schema"))))
        elif t.get("type") == "function":
            found.append(Tool(str(t.get("name") or ""), t.get("parameters")))
        elif t.get("type") == "namespace":
            inner = [f for f in t.get("tools") or [] if isinstance(f, dict) and f.get("type") == "function"]
            found += [Tool(str(f.get("name") or ""), f.get("parameters"), str(t.get("name") or "")) for f in inner]
    return [t for t in found if t.name]


@dataclass
class Ctx:
    """What the scenarios may look at: the format ("C"/"A"/"R"), the parsed body and its function tools."""

    fmt: str
    body: dict[str, Any]
    tools: list[Tool] = field(default_factory=list)

    def call(self, n: int, args: Callable[[Any], dict[str, Any]], prefer: tuple[str, ...] = ()) -> Block:
        """Call ``n`` of the first ``prefer`` name offered, else the first tool, else ``get_weather``."""
        tool = next((t for p in prefer for t in self.tools if t.name == p), None)
        tool = tool or (self.tools[0] if self.tools else Tool("get_weather"))
        return Block("tool", name=tool.name, args=args(tool.params), n=n, ns=tool.ns)

    def messages(self) -> list[dict[str, Any]]:
        """C/A ``messages``, or the R ``input`` items (a string input is one user message)."""
        msgs = self.body.get("input" if self.fmt == "R" else "messages")
        if isinstance(msgs, str):
            return [{"role": "user", "content": msgs}]
        return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def _content_text(content: Any, kinds: tuple[str, ...] = ("text", "input_text", "output_text")) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in kinds)
    return ""


def _last_user_text(ctx: Ctx) -> str:
    for m in reversed(ctx.messages()):
        if m.get("role") == "user":
            return _content_text(m.get("content"))
    return ""


def _tool_result_text(ctx: Ctx) -> str | None:
    """Text of the tool result that ends the conversation, or None when it does not end with one."""
    msgs = ctx.messages()
    if ctx.fmt != "A":
        # C tool messages / R *_call_output items after the last assistant output (a translated A turn may
        # add user text after them); R assistant output is a message, a reasoning item or a *_call item
        tail: list[dict[str, Any]] = []
        for m in reversed(msgs):
            if m.get("role") == "assistant" or m.get("type") == "reasoning" or str(m.get("type")).endswith("_call"):
                break
            tail.insert(0, m)
        results = [m for m in tail if m.get("role") == "tool" or str(m.get("type")).endswith("_call_output")]
        return _content_text(results[0].get("output", results[0].get("content"))) if results else None
    if msgs and msgs[-1].get("role") == "user" and isinstance(msgs[-1].get("content"), list):
        for b in msgs[-1]["content"]:
            if isinstance(b, dict) and b.get("type") == "tool_result":
                return _content_text(b.get("content"))
    return None


def _agent_args(schema: Any) -> dict[str, Any]:
    """AGENT_ARGS fitted to a schema with a ``command``/``cmd`` property (an argv if it is an array)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    key = next((k for k in ("command", "cmd") if isinstance(props, dict) and k in props), None)
    if not isinstance(props, dict) or key is None:
        return dict(AGENT_ARGS)
    kind = props[key].get("type") if isinstance(props[key], dict) else None
    argv = kind == "array" or (isinstance(kind, list) and "array" in kind)
    cmd = AGENT_ARGS["command"]
    args: dict[str, Any] = {key: ["bash", "-lc", cmd] if argv else cmd}
    if "description" in props:
        args["description"] = AGENT_ARGS["description"]
    return args


def _agent(ctx: Ctx) -> Reply:
    result = _tool_result_text(ctx)
    if result is not None:
        return Reply([Block("text", "Tool result received: " + result[:200])])
    return Reply([ctx.call(1, _agent_args, AGENT_TOOLS)], "tool_calls")


def _parallel(ctx: Ctx) -> Reply:
    calls = [ctx.call(i, lambda _, c=c: {"city": c}) for i, c in enumerate(("Paris", "Tokyo"), 1)]
    return Reply(calls, "tool_calls", output=20)


SCENARIOS: dict[str, Callable[[Ctx], Reply]] = {
    "text": lambda ctx: Reply([Block("text", TEXT)], output=9),
    "echo": lambda ctx: Reply([Block("text", _last_user_text(ctx) or "(no user text)")]),
    "tool": lambda ctx: Reply(
        [Block("text", "Let me check."), ctx.call(1, lambda _: dict(WEATHER))], "tool_calls", output=18
    ),
    "tools-parallel": _parallel,
    "tools-interleaved": _parallel,
    "reasoning": lambda ctx: Reply(
        [Block("thinking", "Let me think. 2+2=4."), Block("text", "The answer is 4.")], output=12, reasoning=6
    ),
    "agent": _agent,
    "length": lambda ctx: Reply([Block("text", "This reply was cut")], "length", output=5),
    "usage-cache": lambda ctx: Reply(
        [Block("text", "Served from the prompt cache.")], prompt=100, output=5, cache_read=60, cache_write=10
    ),
    "slow": lambda ctx: Reply(
        [Block("text", "".join(f"tick {i} " for i in range(10)), pieces=[f"tick {i} " for i in range(10)])], output=20
    ),
}
# stream-only behaviours on top of a base scenario
STREAM_MODES = {"cut": "text", "drop": "text", "error-midstream": "text", "fragmented": "tool"}

# name -> (C status, C type, C code, C message, A status, A type, A message)
ERRORS: dict[str, tuple[int, str, str | None, str, int, str, str]] = {
    "error-400-context": (
        400, "invalid_request_error", "context_length_exceeded",
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        400, "invalid_request_error", "prompt is too long: 9000 tokens > 8192 maximum",
    ),
    "error-401": (
        401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: x. You can find your API key at https://platform.openai.com/account/api-keys.",
        401, "authentication_error", "invalid x-api-key",
    ),
    "error-403": (
        403, "invalid_request_error", "permission_denied", "You are not allowed to access this resource.",
        403, "permission_error", "Your API key does not have permission to use the specified resource.",
    ),
    "error-404": (
        404, "invalid_request_error", "model_not_found", "The model `{model}` does not exist or you do not have access to it.",
        404, "not_found_error", "model: {model}",
    ),
    "error-429": (
        429, "requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 7s.",
        429, "rate_limit_error", "Number of requests has exceeded your per-minute rate limit. Please try again in 7s.",
    ),
    "error-500": (
        500, "server_error", None, "The server had an error while processing your request. Sorry about that!",
        500, "api_error", "Internal server error",
    ),
    "error-503": (
        503, "service_unavailable_error", None, "The server is temporarily unavailable. Please try again later.",
        503, "api_error", "Service unavailable",
    ),
    "error-529": (
        503, "server_error", None, "The engine is currently overloaded, please try again later.",
        529, "overloaded_error", "Overloaded",
    ),
}  # fmt: skip
MIDSTREAM_ERROR = {
    "C": "data: " + _dumps({"error": {"message": "Upstream overloaded", "type": "server_error", "param": None, "code": None}}) + "\n\n",
    "A": "event: error\ndata: " + _dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}) + "\n\n",
}  # fmt: skip
ALL_SCENARIOS = [*SCENARIOS, *STREAM_MODES, *ERRORS]


def pick_scenario(model: str, header: str | None) -> tuple[str, int | None]:
    """Scenario name and its number (the pace of ``slow-<ms>``, the wait of ``stall-<ms>``, the
    length of ``many-<n>``; None otherwise) for a model string."""
    name = (header or model or "").rsplit("/", 1)[-1].strip()
    if m := re.fullmatch(r"(slow|stall|many)-(\d+)", name):
        return m.group(1), int(m.group(2))
    return (name if name in ALL_SCENARIOS else "text"), None


def forced_status(request: web.Request) -> tuple[str, str] | None:
    """``(error scenario, retry-after)`` when the request's API key is ``emu-status-<code>[-<s>]``."""
    auth = request.headers.get("authorization", "")
    key = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if m := re.fullmatch(r"emu-status-(\d{3})(?:-(\d+))?", key.strip()):
        name = f"error-{m.group(1)}"
        if name in ERRORS:
            return name, m.group(2) or "7"
    return None


# ----------------------------------------------------------------------------- OpenAI Chat Completions (C)

Event = tuple[bool, str]  # (is a content delta, SSE frame text)


def c_usage(r: Reply) -> dict[str, Any]:
    """The C ``usage`` object (``prompt_tokens`` includes cached tokens)."""
    return {
        "prompt_tokens": r.prompt,
        "completion_tokens": r.output,
        "total_tokens": r.prompt + r.output,
        "prompt_tokens_details": {"cached_tokens": r.cache_read},
        "completion_tokens_details": {"reasoning_tokens": r.reasoning},
    }


def c_json(r: Reply, model: str, rid: str) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    text = "".join(b.text for b in r.blocks if b.kind == "text")
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if thinking := "".join(b.text for b in r.blocks if b.kind == "thinking"):
        msg["reasoning_content"] = thinking
    if calls := [b for b in r.blocks if b.kind == "tool"]:
        msg["tool_calls"] = [
            {"id": f"call_emu_{b.n}", "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.args)}}
            for b in calls
        ]
    msg["refusal"] = None
    choice = {"index": 0, "message": msg, "logprobs": None, "finish_reason": r.finish}
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": c_usage(r),
    }


def c_stream(r: Reply, model: str, rid: str, include_usage: bool, interleave: bool) -> list[Event]:
    """The ``chat.completion.chunk`` frames, ending with ``data: [DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj: dict[str, Any] = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }
        if include_usage:
            obj["usage"] = None  # as OpenAI does on every chunk but the last
        return f"data: {_dumps(obj)}\n\n"

    events: list[Event] = [(False, chunk({"role": "assistant", "content": ""}))]
    calls: list[list[Event]] = []
    for b in r.blocks:
        if b.kind == "tool":
            k = len(calls)
            head = {
                "index": k,
                "id": f"call_emu_{b.n}",
                "type": "function",
                "function": {"name": b.name, "arguments": ""},
            }
            frags = [(True, chunk({"tool_calls": [{"index": k, "function": {"arguments": f}}]})) for f in b.deltas()]
            calls.append([(True, chunk({"tool_calls": [head]})), *frags])
        else:
            key = "reasoning_content" if b.kind == "thinking" else "content"
            events += [(True, chunk({key: p})) for p in b.deltas()]
    if interleave and len(calls) > 1:
        events += [c[0] for c in calls]
        rests = [c[1:] for c in calls]
        for i in range(max(map(len, rests))):
            events += [rest[i] for rest in rests if i < len(rest)]
    else:
        events += [e for c in calls for e in c]
    events.append((False, chunk({}, r.finish)))
    if include_usage:
        usage = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": c_usage(r),
        }
        events.append((False, f"data: {_dumps(usage)}\n\n"))
    events.append((False, "data: [DONE]\n\n"))
    return events


# ----------------------------------------------------------------------------- Anthropic Messages (A)


def a_usage(r: Reply, output: int | None = None) -> dict[str, Any]:
    """The A ``usage`` object (``input_tokens`` excludes cache reads and writes)."""
    return {
        "input_tokens": max(r.prompt - r.cache_read - r.cache_write, 0),
        "cache_creation_input_tokens": r.cache_write,
        "cache_read_input_tokens": r.cache_read,
        "output_tokens": r.output if output is None else output,
    }


def a_block(b: Block, empty: bool = False) -> dict[str, Any]:
    """An A content block; ``empty`` gives the ``content_block_start`` form."""
    if b.kind == "thinking":
        return {"type": "thinking", "thinking": "" if empty else b.text, "signature": "" if empty else SIGNATURE}
    if b.kind == "text":
        return {"type": "text", "text": "" if empty else b.text}
    return {"type": "tool_use", "id": f"toolu_emu_{b.n}", "name": b.name, "input": {} if empty else b.args}


def a_json(r: Reply, model: str, rid: str) -> dict[str, Any]:
    """The non-streaming ``message`` object."""
    return {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [a_block(b) for b in r.blocks],
        "stop_reason": A_STOP[r.finish],
        "stop_sequence": None,
        "usage": a_usage(r),
    }


def a_stream(r: Reply, model: str, rid: str) -> list[Event]:
    """The Messages SSE frames, ``message_start`` .. ``message_stop``."""

    def ev(kind: str, obj: dict[str, Any], delta: bool = False) -> Event:
        return delta, f"event: {kind}\ndata: {_dumps({'type': kind, **obj})}\n\n"

    start = {**a_json(r, model, rid), "content": [], "stop_reason": None, "usage": a_usage(r, output=1)}
    events = [ev("message_start", {"message": start}), ev("ping", {})]
    for i, b in enumerate(r.blocks):
        events.append(ev("content_block_start", {"index": i, "content_block": a_block(b, empty=True)}))
        if b.kind == "tool":
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *b.deltas()]]
        elif b.kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": p} for p in b.deltas()]
            deltas.append({"type": "signature_delta", "signature": SIGNATURE})
        else:
            deltas = [{"type": "text_delta", "text": p} for p in b.deltas()]
        events += [ev("content_block_delta", {"index": i, "delta": d}, delta=True) for d in deltas]
        events.append(ev("content_block_stop", {"index": i}))
    stop = {"stop_reason": A_STOP[r.finish], "stop_sequence": None}
    events.append(ev("message_delta", {"delta": stop, "usage": {"output_tokens": r.output}}))
    events.append(ev("message_stop", {}))
    return events


# ----------------------------------------------------------------------------- OpenAI Responses (R)

# echoed request parameters of the ``response`` object, with the defaults OpenAI reports
R_ECHO: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": None,
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "top_p": 1.0,
    "truncation": "disabled",
}


def r_usage(r: Reply) -> dict[str, Any]:
    """The R ``usage`` object (``input_tokens`` includes cached tokens, as in C)."""
    return {
        "input_tokens": r.prompt,
        "input_tokens_details": {"cached_tokens": r.cache_read, "cache_write_tokens": r.cache_write},
        "output_tokens": r.output,
        "output_tokens_details": {"reasoning_tokens": r.reasoning},
        "total_tokens": r.prompt + r.output,
    }


def r_item(b: Block, status: str, encrypted: bool, empty: bool = False) -> dict[str, Any]:
    """An R output item; ``empty`` gives the ``output_item.added`` form."""
    if b.kind == "thinking":
        item: dict[str, Any] = {"id": f"rs_emu_{b.n}", "type": "reasoning", "summary": []}
        if not empty:
            item["summary"] = [{"type": "summary_text", "text": b.text}]
            if encrypted:
                item["encrypted_content"] = R_ENCRYPTED
        return item
    if b.kind == "text":
        content = [] if empty else [{"type": "output_text", "text": b.text, "annotations": []}]
        status = "in_progress" if empty else status
        return {"id": f"msg_emu_{b.n}", "type": "message", "role": "assistant", "status": status, "content": content}
    item = {
        "id": f"fc_emu_{b.n}",
        "type": "function_call",
        "call_id": f"call_emu_{b.n}",
        "name": b.name,
        "arguments": "" if empty else json.dumps(b.args),
        "status": "in_progress" if empty else "completed",
    }
    return {**item, "namespace": b.ns} if b.ns else item


def r_json(r: Reply, model: str, rid: str, body: dict[str, Any]) -> dict[str, Any]:
    """The non-streaming ``response`` object (also the payload of the stream's terminal event)."""
    encrypted = "reasoning.encrypted_content" in (body.get("include") or [])
    done = r.finish != "length"
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed" if done else "incomplete",
        "background": False,
        "error": None,
        "incomplete_details": None if done else {"reason": "max_output_tokens"},
        "model": model,
        "output": [r_item(b, "completed" if done else "incomplete", encrypted) for b in r.blocks],
        "output_text": "".join(b.text for b in r.blocks if b.kind == "text"),
        **{k: body.get(k, default) for k, default in R_ECHO.items()},
        "tools": [],
        "usage": r_usage(r),
    }


def r_frame(kind: str, seq: int, **fields: Any) -> str:
    return f"event: {kind}\ndata: {_dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n"


def r_skeleton(full: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The ``response`` of ``response.created`` / ``in_progress`` (and ``failed``, with ``changes``)."""
    skel = {k: v for k, v in full.items() if k != "output_text"}
    return {**skel, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None, **changes}


def r_stream(r: Reply, model: str, rid: str, body: dict[str, Any]) -> list[Event]:
    """The Responses SSE events, ``response.created`` .. ``response.completed`` / ``response.incomplete``."""
    full = r_json(r, model, rid, body)
    seq = itertools.count()

    def ev(kind: str, is_delta: bool = False, /, **fields: Any) -> Event:
        return is_delta, r_frame(f"response.{kind}", next(seq), **fields)

    events = [ev("created", response=r_skeleton(full)), ev("in_progress", response=r_skeleton(full))]
    for o, (b, item) in enumerate(zip(r.blocks, full["output"], strict=True)):
        at = {"item_id": item["id"], "output_index": o}
        events.append(ev("output_item.added", output_index=o, item=r_item(b, "", False, empty=True)))
        if b.kind == "thinking":
            at["summary_index"] = 0
            part = item["summary"][0]
            events.append(ev("reasoning_summary_part.added", **at, part={**part, "text": ""}))
            events += [ev("reasoning_summary_text.delta", True, **at, delta=p) for p in b.deltas()]
            events.append(ev("reasoning_summary_text.done", **at, text=b.text))
            events.append(ev("reasoning_summary_part.done", **at, part=part))
        elif b.kind == "text":
            at["content_index"] = 0
            part = item["content"][0]
            events.append(ev("content_part.added", **at, part={**part, "text": ""}))
            events += [ev("output_text.delta", True, **at, delta=p, logprobs=[]) for p in b.deltas()]
            events.append(ev("output_text.done", **at, text=b.text, logprobs=[]))
            events.append(ev("content_part.done", **at, part=part))
        else:
            events += [ev("function_call_arguments.delta", True, **at, delta=p) for p in b.deltas()]
            events.append(ev("function_call_arguments.done", **at, arguments=item["arguments"]))
        events.append(ev("output_item.done", output_index=o, item=item))
    events.append(ev(full["status"], response=full))
    return events


def midstream_error(fmt: str, r: Reply, model: str, rid: str, body: dict[str, Any], seq: int) -> str:
    """The in-stream error frame of ``error-midstream`` (R: ``response.failed`` as event ``seq``)."""
    if fmt != "R":
        return MIDSTREAM_ERROR[fmt]
    error = {"code": "server_error", "message": "Upstream overloaded"}
    skeleton = r_skeleton(r_json(r, model, rid, body), status="failed", error=error)
    return r_frame("response.failed", seq, response=skeleton)


# ----------------------------------------------------------------------------- HTTP


def _id_headers(rid: str) -> dict[str, str]:
    return {"request-id": rid, "x-request-id": rid}


def _json(obj: Any, status: int, rid: str, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_dumps(obj).encode(),
        status=status,
        content_type="application/json",
        headers={**_id_headers(rid), **(extra or {})},
    )


def error_response(fmt: str, name: str, model: str, rid: str, retry_after: str = "7") -> web.Response:
    """The HTTP error of an ``error-*`` scenario in the format's envelope."""
    c_status, c_type, c_code, c_msg, a_status, a_type, a_msg = ERRORS[name]
    extra = {"Retry-After": retry_after} if name == "error-429" else {}
    if fmt != "A":
        body = {"error": {"message": c_msg.format(model=model), "type": c_type, "param": None, "code": c_code}}
        return _json(body, c_status, rid, extra)
    body = {"type": "error", "error": {"type": a_type, "message": a_msg.format(model=model)}, "request_id": rid}
    return _json(body, a_status, rid, extra)


def _bad_request(fmt: str, message: str, rid: str) -> web.Response:
    if fmt != "A":
        return _json(
            {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, 400, rid
        )
    return _json(
        {"type": "error", "error": {"type": "invalid_request_error", "message": message}, "request_id": rid}, 400, rid
    )


async def _write_stream(
    request: web.Request, events: list[Event], mode: str, fail: Callable[[int], str], pace_ms: int, rid: str
) -> web.StreamResponse:
    """Write the frames as ``mode`` says; ``fail(n)`` is the in-stream error frame after ``n`` frames."""
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        **_id_headers(rid),
    }
    resp = web.StreamResponse(status=200, headers=headers)
    await resp.prepare(request)
    if mode == "fragmented":
        data = ": keep-alive\r\n\r\n".join(frame.replace("\n", "\r\n") for _, frame in events).encode()
        writes = [(0.0, data[i : i + 7]) for i in range(0, len(data), 7)]
    else:
        if mode in ("cut", "drop"):
            half = len(events) // 2
            if mode == "drop":  # end inside the next frame
                partial = events[half][1]
                events = [*events[:half], (False, partial[: len(partial) // 2])]
            else:
                events = events[:half]
        elif mode == "error-midstream":
            third = [i for i, (is_delta, _) in enumerate(events) if is_delta][2]
            events = [*events[: third + 1], (False, fail(third + 1))]
        writes, seen = [], 0
        for is_delta, frame in events:  # slow: pause before every delta but the first
            paced = mode in ("slow", "many") and is_delta and seen
            writes.append((pace_ms / 1000 if paced else 0.0, frame.encode()))
            seen += is_delta
    try:
        for delay, chunk in writes:
            if delay:
                await asyncio.sleep(delay)
            await resp.write(chunk)
        if mode != "drop":
            await resp.write_eof()
            return resp
        await asyncio.sleep(0.05)  # let the kernel send what was written, then reset mid-body
        if request.transport is not None:
            request.transport.abort()
    except ConnectionResetError:
        pass  # the client went away
    return resp


async def handle_generate(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``, ``/v1/messages``, ``/v1/responses``: run the selected scenario."""
    path = request.path.rstrip("/")
    fmt = "C" if path.endswith("chat/completions") else "R" if path.endswith("responses") else "A"
    rid = f"req_emu_{secrets.token_hex(8)}"
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        return _bad_request(fmt, f"We could not parse the JSON body of your request: not valid JSON ({exc}).", rid)
    if not isinstance(body, dict):
        return _bad_request(fmt, "The request body must be a JSON object.", rid)
    model = str(body.get("model") or "emulator")
    name, number = pick_scenario(model, request.headers.get("x-emulator-scenario"))
    if (forced := forced_status(request)) is not None:
        return error_response(fmt, forced[0], model, rid, forced[1])
    if name == "stall":
        await asyncio.sleep((number or 0) / 1000)
        name = "text"
    stream = body.get("stream") is True
    if name in ERRORS or (name == "error-midstream" and not stream):
        return error_response(fmt, "error-500" if name == "error-midstream" else name, model, rid)
    ctx = Ctx(fmt, body, parse_tools(fmt, body.get("tools")))
    if name == "many":
        reply = Reply([Block("text", "".join(f"w{i} " for i in range(number or 0)))])
    else:
        reply = SCENARIOS[STREAM_MODES.get(name, name)](ctx)
    slow_pace = number if name == "slow" else None
    header_pace = request.headers.get("x-emulator-pace-ms", "")
    default_pace = 0 if name == "many" else DEFAULT_PACE_MS
    pace = int(header_pace) if header_pace.isdigit() else slow_pace if slow_pace is not None else default_pace
    resp_id = {"C": "chatcmpl-emu", "A": "msg_emu", "R": "resp_emu"}[fmt] + secrets.token_hex(10)
    if not stream:
        if name == "slow":
            await asyncio.sleep(pace * len(reply.blocks[0].deltas()) / 1000)
        if fmt == "R":
            return _json(r_json(reply, model, resp_id, body), 200, rid)
        return _json((c_json if fmt == "C" else a_json)(reply, model, resp_id), 200, rid)
    if fmt == "C":
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = c_stream(reply, model, resp_id, include_usage, interleave=name == "tools-interleaved")
    else:
        events = a_stream(reply, model, resp_id) if fmt == "A" else r_stream(reply, model, resp_id, body)
    fail = functools.partial(midstream_error, fmt, reply, model, resp_id, body)
    return await _write_stream(request, events, name, fail, pace, rid)


async def handle_count_tokens(request: web.Request) -> web.Response:
    """``POST /v1/messages/count_tokens``: a rough estimate (4 characters per token)."""
    return _json({"input_tokens": max(1, len(await request.read()) // 4)}, 200, f"req_emu_{secrets.token_hex(8)}")


async def handle_models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the scenario names, in a shape both the OpenAI and Anthropic SDKs accept."""
    data = [
        {
            "id": n,
            "object": "model",
            "created": 0,
            "owned_by": "wireshift-emulator",
            "type": "model",
            "display_name": n,
            "created_at": "2025-01-01T00:00:00Z",
        }
        for n in ALL_SCENARIOS
    ]
    return web.json_response(
        {"object": "list", "data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    )


async def handle_health(request: web.Request) -> web.Response:
    """``GET /health``."""
    return web.json_response({"status": "ok"})


async def handle_requests(request: web.Request) -> web.Response:
    """``GET`` lists, ``DELETE`` clears the recorded requests."""
    if request.method == "DELETE":
        request.app[REQUESTS].clear()
        return web.json_response({"cleared": True})
    return web.json_response(list(request.app[REQUESTS]))


@web.middleware
async def record(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Record every request except the emulator's own control and health endpoints."""
    if not (request.path.startswith("/_emulator") or request.path == "/health"):
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request.app[REQUESTS].append(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": body,
            }
        )
    return await handler(request)


def make_app() -> web.Application:
    """Build the emulator's aiohttp application (routes, request recorder)."""
    app = web.Application(middlewares=[record], client_max_size=64 * 1024 * 1024)
    app[REQUESTS] = collections.deque(maxlen=MAX_RECORDED)
    app.router.add_post("/v1/chat/completions", handle_generate)
    app.router.add_post("/v1/messages", handle_generate)
    app.router.add_post("/v1/responses", handle_generate)
    app.router.add_post("/responses", handle_generate)
    app.router.add_post("/v1/messages/count_tokens", handle_count_tokens)
    app.router.add_get("/v1/models", handle_models)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/_emulator/requests", handle_requests)
    app.router.add_delete("/_emulator/requests", handle_requests)
    return app


async def serve(host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the emulator on host:port (0 picks a free port); returns the runner and the bound port."""
    runner = web.AppRunner(make_app(), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def _main(host: str, port: int) -> None:
    runner, bound = await serve(host, port)
    print(f"EMULATOR READY http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python scripts/emulator.py [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(
        description="wireshift reference backend (OpenAI Chat and Responses, Anthropic Messages)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
