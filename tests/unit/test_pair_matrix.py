"""Golden matrix for the translated client/upstream pairs (wire-formats.md §8).

Directions (client -> upstream): ``c_to_a`` and ``a_to_c`` (OpenAI Chat <-> Anthropic Messages),
and the four involving OpenAI Responses: ``r_to_c``, ``r_to_a`` (an R client such as Codex on a C
or A backend) and ``c_to_r``, ``a_to_r`` (C and A clients on an R backend). Each scenario lives in
``tests/fixtures/pairs/<direction>/<NN_name>/`` (``NN`` is the §8 scenario number; ``codex_*``
scenarios are Codex-shaped turns, served with ``StreamContext(client="codex")``) and holds any of:

- ``client_request.json`` -> ``upstream_request.json``: through ``routing.plan.plan_request``
  (the JSON of ``UpstreamRequest.body``);
- ``upstream_response.json`` -> ``client_response.json``: ``pipeline.translate_response``;
- ``upstream_stream.sse`` -> ``client_stream.sse``: ``pipeline.StreamTranslator``, fed whole and
  in random chunk splits (identical bytes);
- ``upstream_error.json`` -> ``client_error.json``: ``pipeline.translate_error`` (§8 scenario 11);
- for R clients, ``client_stream_codex.sse`` / ``client_response_codex.json``: what Codex gets,
  present only where it differs from the plain output (truncation, refusals).

The client's ``StreamContext`` comes from the plan, with a fixed ``response_id``; ``created`` /
``created_at`` are pinned by patching ``_now`` and minted ids are ``<prefix>gen<n>``. Beyond the
goldens every client output is checked for the §4.1 grammar of its format (R events and
responses also by the openai SDK's own types), stop reasons consistent with the tool calls,
§3.3 usage formulas, id prefixes and preserved tool ids, and stream/non-stream parity. R upstream
fixtures are held to the same R grammar and SDK types (they must look like what OpenAI sends).
Known translator gaps are strict ``xfail`` tests. ``WIRESHIFT_REGEN=1`` rewrites the expected
outputs (review every diff by hand).
"""

from __future__ import annotations

import itertools
import os
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from config.loader import parse_config
from routing.backends import Registry
from routing.plan import ExecutionPlan, UpstreamRequest, plan_request
from translators import anthropic_messages, get_format, openai_chat, openai_responses
from translators.canonical import (
    SIGNATURE_PREFIX,
    CanonicalResponse,
    Reasoning,
    ResponseAccumulator,
    StreamContext,
    Text,
    ToolCall,
    Usage,
    parse_arguments,
    response_to_events,
    unpack_signature,
)
from translators.pipeline import StreamTranslator, synthesize_stream, translate_error, translate_response
from translators.sse import SSEDecoder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pairs"
REGEN = os.environ.get("WIRESHIFT_REGEN") == "1"
NOW = 1_700_000_000
C, A, R = "openai_chat", "anthropic_messages", "openai_responses"
DIRECTIONS = {
    "c_to_a": (C, A),
    "a_to_c": (A, C),
    "r_to_c": (R, C),
    "r_to_a": (R, A),
    "c_to_r": (C, R),
    "a_to_r": (A, R),
}
RESPONSE_IDS = {C: "chatcmpl-pairs0001", A: "msg_pairs0001", R: "resp_pairs0001"}
ID_PREFIX = {C: "chatcmpl-", A: "msg_", R: "resp_"}
UPSTREAM_URLS = {
    A: "http://anthropic.test/v1/messages",
    C: "http://openai.test/v1/chat/completions",
    R: "http://127.0.0.1:3/v1/responses",
}
A_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
R_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
R_ITEM_PREFIX = {"reasoning": "rs_", "message": "msg_", "function_call": "fc_", "custom_tool_call": "ctc_"}
R_CALLS = ("function_call", "custom_tool_call")
#: ``response.failed`` codes Codex classifies (§4.1), and ``invalid_request_error``, which the
#: encoder gives any other 4xx (everything else is ``rate_limit_exceeded`` or ``server_error``).
CODEX_FAILED_CODES = {
    "context_length_exceeded",
    "insufficient_quota",
    "usage_not_included",
    "rate_limit_exceeded",
    "invalid_prompt",
    "server_error",
    "invalid_request_error",
}
#: …of which the SDK's ``ResponseError.code`` Literal lacks these (replaced before validating).
SDK_MISSING_CODES = {"context_length_exceeded", "insufficient_quota", "usage_not_included", "invalid_request_error"}
R_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


# --------------------------------------------------------------------------- plumbing


def scenarios(*files: str, stream_ok: bool | None = None, directions: tuple[str, ...] = tuple(DIRECTIONS)) -> list[Any]:
    """``(direction, scenario)`` params for every scenario directory holding all ``files``;
    ``stream_ok`` filters on whether the upstream stream ends cleanly (error scenarios are 12, 13)."""
    out = []
    for direction in directions:
        for path in sorted((FIXTURES / direction).iterdir()):
            if not all((path / f).exists() for f in files):
                continue
            if stream_ok is not None and path.name.startswith(("12_", "13_")) == stream_ok:
                continue
            out.append(pytest.param(direction, path.name, id=f"{direction}/{path.name}"))
    return out


def with_client(client_format: str) -> tuple[str, ...]:
    return tuple(d for d, (c, _) in DIRECTIONS.items() if c == client_format)


def with_upstream(upstream_format: str) -> tuple[str, ...]:
    return tuple(d for d, (_, u) in DIRECTIONS.items() if u == upstream_format)


def client_of(scenario: str) -> str | None:
    """The known client a scenario plays (``codex_*`` scenarios are Codex turns)."""
    return "codex" if scenario.startswith("codex") else None


def registry() -> Registry:
    cfg = parse_config(
        {
            "backends": [
                {
                    "kind": "custom-anthropic-compatible",
                    "backend_prefix": "anth",
                    "base_url": "http://anthropic.test",
                    "api_keys": ["sk-ant-test"],
                },
                {
                    "kind": "custom-openai-chat-compatible",
                    "backend_prefix": "chat",
                    "base_url": "http://openai.test/v1",
                    "api_keys": ["sk-chat-test"],
                    "max_output_tokens": 8192,
                },
                {
                    "kind": "custom-openai-responses-compatible",
                    "backend_prefix": "resp",
                    "base_url": "http://127.0.0.1:3/v1",
                    "api_keys": ["sk-resp-test"],
                },
            ]
        },
        Path("pairs.yaml"),
    )
    return Registry.from_config(cfg, {})


MINTED = [itertools.count(1)]


def reset_ids() -> None:
    """Minted ids count from 1 again (every translation run gives the same bytes)."""
    MINTED[0] = itertools.count(1)


@pytest.fixture(autouse=True)
def deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed ``created`` / ``created_at``; minted ids become ``<prefix>gen1``, ``<prefix>gen2``…"""
    reset_ids()
    for module in (openai_chat, anthropic_messages, openai_responses):
        monkeypatch.setattr(module, "new_id", lambda prefix, nbytes=12: f"{prefix}gen{next(MINTED[0])}")
    for module in (openai_chat, openai_responses):
        monkeypatch.setattr(module, "_now", lambda: NOW)


def read(direction: str, scenario: str, name: str) -> bytes:
    return (FIXTURES / direction / scenario / name).read_bytes()


def load(direction: str, scenario: str, name: str) -> Any:
    return orjson.loads(read(direction, scenario, name))


def golden(direction: str, scenario: str, name: str, actual: Any) -> None:
    """Compare ``actual`` (bytes for ``.sse``, JSON data otherwise) with the fixture, or write it."""
    path = FIXTURES / direction / scenario / name
    if REGEN:
        path.write_bytes(
            actual if isinstance(actual, bytes) else orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n"
        )
        return
    expected = path.read_bytes() if isinstance(actual, bytes) else orjson.loads(path.read_bytes())
    assert actual == expected


def golden_variant(direction: str, scenario: str, name: str, actual: Any, plain: Any) -> None:
    """A variant output (what Codex gets) kept as ``name`` only where it differs from ``plain``."""
    path = FIXTURES / direction / scenario / name
    if actual == plain and not path.exists():
        return
    if REGEN and actual == plain:
        path.unlink()
        return
    golden(direction, scenario, name, actual)


def plan_for(
    direction: str, scenario: str, request: dict[str, Any] | None = None
) -> tuple[ExecutionPlan, UpstreamRequest]:
    client_format, upstream_format = DIRECTIONS[direction]
    body = request if request is not None else load(direction, scenario, "client_request.json")
    plan, upstream = plan_request(
        registry(), client_format, orjson.dumps(body), request_id="pairs", client=client_of(scenario)
    )
    assert plan.error is None and upstream is not None, plan.error
    assert plan.mode == "translated" and plan.upstream_format == upstream_format
    return plan, upstream


def context(plan: ExecutionPlan, client: str | None = None) -> StreamContext:
    """What the addon builds for this plan, with a fixed response id (``client`` overrides the
    plan's known client)."""
    return StreamContext(
        model=plan.client_model,
        include_usage=plan.include_usage,
        estimated_input_tokens=plan.estimated_input_tokens,
        response_id=RESPONSE_IDS[plan.client_format],
        client=client or plan.client,
    )


def run_json(direction: str, scenario: str, plan: ExecutionPlan, client: str | None = None) -> dict[str, Any]:
    client_format, upstream_format = DIRECTIONS[direction]
    reset_ids()
    body, _ = translate_response(
        upstream_format,
        client_format,
        read(direction, scenario, "upstream_response.json"),
        context(plan, client),
        plan.tool_names,
        plan.custom_tools,
    )
    result: dict[str, Any] = orjson.loads(body)
    return result


def run_stream(
    direction: str, plan: ExecutionPlan, raw: bytes, splits: list[int] | None = None, client: str | None = None
) -> bytes:
    client_format, upstream_format = DIRECTIONS[direction]
    reset_ids()
    translator = StreamTranslator(
        upstream_format, client_format, context(plan, client), plan.tool_names, plan.custom_tools
    )
    bounds = [0, *(splits or []), len(raw)]
    out = b"".join(translator.feed(raw[a:b]) for a, b in itertools.pairwise(bounds))
    out += translator.close()
    assert translator.done
    return out


def frames(raw: bytes) -> list[tuple[str | None, bytes]]:
    """A client SSE body -> ``(event, data)`` per frame (comment keep-alives skipped); the body
    must be well-framed."""
    assert raw.endswith(b"\n\n"), raw[-80:]
    out = []
    for block in raw[:-2].split(b"\n\n"):
        if block.startswith(b":"):
            continue
        lines = block.split(b"\n")
        event = lines[0][7:].decode() if lines[0].startswith(b"event: ") else None
        data = lines[-1]
        assert data.startswith(b"data: ") and len(lines) == (2 if event else 1), block
        out.append((event, data[6:]))
    return out


# --------------------------------------------------------------------------- client-side invariants


def is_json_object(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def check_a_stream(raw: bytes) -> None:
    """§4.1 A grammar: ``event:`` on every frame naming ``data.type``; one ``message_start`` first;
    dense indices with one block open at a time; ``message_delta`` after the last block stop;
    ``message_stop`` or ``error`` last; stop reason consistent with the tool_use blocks; every
    thinking block signed (§2.9 rule 2); tool input JSON that parses to an object."""
    events = [(name, orjson.loads(data)) for name, data in frames(raw)]
    assert all(name == data["type"] for name, data in events)
    types = [data["type"] for _, data in events]
    assert types[0] == "message_start" and types.count("message_start") == 1
    message = events[0][1]["message"]
    assert message["id"].startswith("msg_") and message["content"] == [] and message["stop_reason"] is None
    assert message["usage"]["input_tokens"] > 0, "Claude Code's context indicator reads message_start (§3.3)"
    assert types[-1] in ("message_stop", "error")
    assert types.count("message_stop") + types.count("error") == 1
    open_index, next_index, tools, delta, block = None, 0, 0, None, {}
    deltas: list[dict[str, Any]] = []
    for _, data in events[1:]:
        kind = data["type"]
        assert delta is None or kind in ("message_stop", "ping"), "nothing but message_stop after message_delta"
        if kind == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index, next_index, deltas = next_index, next_index + 1, []
            block = data["content_block"]
            if block["type"] == "tool_use":
                tools += 1
                assert A_TOOL_ID.match(block["id"]) and block["input"] == {}
            assert block["type"] != "text" or block["text"] == ""
        elif kind == "content_block_delta":
            assert data["index"] == open_index
            deltas.append(data["delta"])
        elif kind == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
            if block["type"] == "tool_use":  # the SDKs read "" as {}
                assert is_json_object("".join(d["partial_json"] for d in deltas) or "{}")
            elif block["type"] == "thinking":
                assert any(d["type"] == "signature_delta" and d["signature"] for d in deltas), "unsigned thinking"
        elif kind == "message_delta":
            assert open_index is None
            delta = data
    if types[-1] == "message_stop":
        assert delta is not None
        assert (delta["delta"]["stop_reason"] == "tool_use") == (tools > 0)
        assert set(delta["usage"]) >= {"input_tokens", "output_tokens"}


def check_c_stream(raw: bytes, include_usage: bool) -> None:
    """§4.1 C grammar: ``data:``-only frames; one id / created / model on every chunk; dense
    0-based ``tool_calls[].index`` (id and name on a call's first fragment); ``[DONE]`` only last
    and only after a finish; an error frame is terminal; the ``choices: []`` usage chunk only
    when asked for; ``finish_reason`` ``tool_calls`` exactly when tool calls were sent."""
    parsed = frames(raw)
    assert all(event is None for event, _ in parsed)
    datas = [data for _, data in parsed]
    done = datas[-1] == b"[DONE]"
    chunks = [orjson.loads(d) for d in (datas[:-1] if done else datas)]
    assert b"[DONE]" not in datas[:-1]
    error = "error" in chunks[-1]
    assert done != error, "a stream ends with [DONE] (clean) or an error frame, never both"
    body = chunks[:-1] if error else chunks
    assert not any("error" in c for c in body)
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in body}) == 1
    assert body[0]["id"].startswith("chatcmpl-") and body[0]["object"] == "chat.completion.chunk"
    assert body[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    usage_chunks = [i for i, c in enumerate(body) if c["choices"] == []]
    assert usage_chunks == ([len(body) - 1] if include_usage and done else [])
    calls, finishes, arguments = 0, [], []
    for chunk in body:
        for choice in chunk["choices"]:
            assert choice["index"] == 0 and not finishes, "nothing after the finish chunk but usage"
            for tc in choice["delta"].get("tool_calls", []):
                if tc["index"] == calls:  # a new call: its first fragment names it
                    assert tc["id"] and tc["function"]["name"] and tc["type"] == "function"
                    calls += 1
                    arguments.append("")
                else:
                    assert tc["index"] < calls and set(tc) == {"index", "function"}
                arguments[tc["index"]] += tc["function"]["arguments"]
            if choice["finish_reason"] is not None:
                finishes.append(choice["finish_reason"])
    assert len(finishes) <= 1 and (finishes or not done)
    if done:
        assert (finishes[0] == "tool_calls") == (calls > 0)
        assert all(map(is_json_object, arguments)), arguments


def sdk_event(data: dict[str, Any]) -> None:
    """Validate one R event with the openai SDK (Codex's ``response.failed`` codes the SDK's
    ``ResponseError.code`` Literal lacks are swapped for ``server_error`` first)."""
    R_EVENT.validate_python(sdk_safe(data))


def sdk_response(resp: dict[str, Any]) -> None:
    Response.model_validate(sdk_safe({"response": resp})["response"])


def sdk_safe(data: dict[str, Any]) -> dict[str, Any]:
    error = (data.get("response") or {}).get("error")
    if not (error and error.get("code") in SDK_MISSING_CODES):
        return data
    return {**data, "response": {**data["response"], "error": {**error, "code": "server_error"}}}


#: R item-scoped events: (accumulator key, index field or None, value field, is a ``.done`` event).
R_ITEM_EVENTS: dict[str, tuple[str, str | None, str, bool]] = {
    "response.output_text.delta": ("content", "content_index", "delta", False),
    "response.output_text.done": ("content", "content_index", "text", True),
    "response.refusal.delta": ("content", "content_index", "delta", False),
    "response.refusal.done": ("content", "content_index", "refusal", True),
    "response.reasoning_summary_text.delta": ("summary", "summary_index", "delta", False),
    "response.reasoning_summary_text.done": ("summary", "summary_index", "text", True),
    "response.reasoning_text.delta": ("reasoning", "content_index", "delta", False),
    "response.reasoning_text.done": ("reasoning", "content_index", "text", True),
    "response.function_call_arguments.delta": ("args", None, "delta", False),
    "response.function_call_arguments.done": ("args", None, "arguments", True),
    "response.custom_tool_call_input.delta": ("args", None, "delta", False),
    "response.custom_tool_call_input.done": ("args", None, "input", True),
    "response.content_part.added": ("content", "content_index", "part", False),
    "response.content_part.done": ("content", "content_index", "part", True),
    "response.reasoning_summary_part.added": ("summary", "summary_index", "part", False),
    "response.reasoning_summary_part.done": ("summary", "summary_index", "part", True),
}


def part_text(part: dict[str, Any]) -> str:
    return str(part.get("text", part.get("refusal", "")))


def check_r_item(item: dict[str, Any], codex: bool = False) -> None:
    """A complete R output item (§4.4 step 4: what Codex executes): id prefix, ``completed`` calls
    with their full arguments (a JSON object), non-empty message parts, summary parts."""
    assert item["id"].startswith(R_ITEM_PREFIX[item["type"]]), item
    if item["type"] == "function_call":
        assert item["status"] == "completed" and item["call_id"] and item["name"]
        assert is_json_object(item["arguments"]), item
    elif item["type"] == "custom_tool_call":
        assert item["call_id"] and item["name"] and isinstance(item["input"], str)
    elif item["type"] == "message":
        assert item["role"] == "assistant" and item["status"] in ("completed", "incomplete") and item["content"]
        assert all(part_text(p) for p in item["content"]), "no empty message parts"
        assert not codex or all(p["type"] == "output_text" for p in item["content"]), "Codex reads output_text only"
    else:
        assert all(s["type"] == "summary_text" and s["text"] for s in item["summary"])
        assert isinstance(item.get("encrypted_content", ""), str)


def check_r_terminal(resp: dict[str, Any], kind: str | None, codex: bool) -> None:
    """The response of a terminal event ``kind`` or (``kind`` None) a JSON body: status,
    incomplete_details, error, complete usage, complete items."""
    sdk_response(resp)
    assert resp["id"].startswith("resp_") and resp["object"] == "response"
    items = resp["output"]
    for item in items:
        check_r_item(item, codex)
    if resp["status"] == "failed":
        assert kind in ("response.failed", None) and resp["error"]["message"]
        return
    assert resp["error"] is None
    usage = resp["usage"]  # Codex fails the turn on a partial usage object (§3.3)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert isinstance(usage["input_tokens_details"]["cached_tokens"], int)
    assert isinstance(usage["output_tokens_details"]["reasoning_tokens"], int)
    if resp["status"] == "incomplete":
        assert resp["incomplete_details"]["reason"] in ("max_output_tokens", "content_filter")
        assert kind in ("response.completed" if codex else "response.incomplete", None)
    else:
        assert resp["status"] == "completed" and resp["incomplete_details"] is None
        assert kind in ("response.completed", None)
        assert all(i.get("status", "completed") == "completed" for i in items)


def check_r_stream(raw: bytes, codex: bool = False, client: bool = True) -> dict[str, Any]:
    """§4.1 R grammar / §4.4: ``event:`` naming ``data.type`` on every frame, every event valid
    for the SDK; ``sequence_number`` strictly increasing from 0; ``response.created`` then
    ``response.in_progress`` (one id throughout); items one at a time, ``output_item.added`` /
    ``.done`` paired on ``output_index`` (dense) and id; every item event carrying the open
    item's ``item_id`` / ``output_index`` (and its ``content_index`` / ``summary_index``); ``.done``
    events and the done item repeating what the deltas said, arguments complete; exactly one
    terminal event, last, whose ``output`` is the done items; no ``[DONE]``. Codex gets
    ``response.completed`` even for an incomplete response. ``client=False`` checks an upstream
    (any ``response.failed`` code). Returns the terminal response."""
    events = []
    for name, data in frames(raw):
        assert data != b"[DONE]"
        event = orjson.loads(data)
        assert name == event["type"], (name, event)
        sdk_event(event)
        events.append(event)
    seqs = [e["sequence_number"] for e in events]
    assert seqs[0] == 0 and all(b > a for a, b in itertools.pairwise(seqs))
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types.count("response.created") == types.count("response.in_progress") == 1
    assert types[-1] in R_TERMINAL and sum(t in R_TERMINAL for t in types) == 1
    rid, model = events[0]["response"]["id"], events[0]["response"]["model"]
    for e in events[:2]:
        assert (e["response"]["id"], e["response"]["status"], e["response"]["output"]) == (rid, "in_progress", [])
    done: list[dict[str, Any]] = []
    item: dict[str, Any] | None = None
    said: dict[tuple[str, int], str] = {}  # (key, index) -> the text the deltas carried
    for e in events[2:-1]:
        kind = e["type"]
        if kind == "response.output_item.added":
            assert item is None and e["output_index"] == len(done), "one item at a time, dense output_index"
            item, said = e["item"], {}
            assert item["id"].startswith(R_ITEM_PREFIX[item["type"]])
            assert item.get("status", "in_progress") == "in_progress"
            assert item.get("content", []) == [] and item.get("summary", []) == [] and item.get("arguments", "") == ""
            continue
        assert item is not None and e["output_index"] == len(done), e
        if kind == "response.output_item.done":
            full = e["item"]
            assert (full["id"], full["type"]) == (item["id"], item["type"])
            assert all(full[k] == item[k] for k in ("call_id", "name") if k in item)
            check_r_item(full, codex)
            if full["type"] in R_CALLS:
                value = full["arguments" if full["type"] == "function_call" else "input"]
                assert value == (said.get(("args", 0)) or ("{}" if full["type"] == "function_call" else ""))
            for key, parts in (("content", full.get("content")), ("summary", full.get("summary"))):
                if parts is not None:
                    assert [part_text(p) for p in parts] == [said[(key, i)] for i in range(len(parts))]
            done.append(full)
            item = None
            continue
        assert e["item_id"] == item["id"], e
        spec = R_ITEM_EVENTS.get(kind)
        if spec is None:
            continue
        key, index_field, value_field, is_done = spec
        index = e[index_field] if index_field else 0
        assert isinstance(index, int)
        so_far = said.get((key, index), "")
        value = e[value_field]
        if value_field == "part":
            assert part_text(value) == (so_far if is_done else "")
        elif is_done:
            assert value == so_far or (key == "args" and so_far == "" and value == "{}"), (value, so_far)
        else:
            assert value, "no empty deltas"
            said[(key, index)] = so_far + value
    last = events[-1]
    resp = last["response"]
    assert (resp["id"], resp["model"]) == (rid, model)
    assert resp["output"] == done, "the terminal output repeats every done item"
    check_r_terminal(resp, last["type"], codex)
    if resp["status"] == "failed":
        assert not client or resp["error"]["code"] in CODEX_FAILED_CODES
    else:
        assert item is None, "open items are closed before the terminal event"
    return resp


# --------------------------------------------------------------------------- what a wire body says


def wire_calls(fmt: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """``(call id, tool name)`` of every tool call in a JSON response, in order."""
    if fmt == A:
        return [(b["id"], b["name"]) for b in body["content"] if b["type"] == "tool_use"]
    if fmt == R:
        return [(i["call_id"], i["name"]) for i in body["output"] if i["type"] in R_CALLS]
    calls = body["choices"][0]["message"].get("tool_calls") or []
    return [(c["id"], c.get("function", c.get("custom", {}))["name"]) for c in calls]


def wire_stop(fmt: str, body: dict[str, Any]) -> str:
    """The stop reason of a JSON response as one of ``tool`` / ``stop`` / ``length`` / ``filter``;
    a clean stop is ``tool`` exactly when tool calls are present (§3.1, §3.2)."""
    if fmt == A:
        stop = {"max_tokens": "length", "model_context_window_exceeded": "length", "refusal": "filter"}
        reason = stop.get(body["stop_reason"])
    elif fmt == R:
        reason = {"max_output_tokens": "length", "content_filter": "filter"}.get(
            (body.get("incomplete_details") or {}).get("reason", "")
        )
    else:
        reason = {"length": "length", "content_filter": "filter"}.get(body["choices"][0]["finish_reason"])
    return reason or ("tool" if wire_calls(fmt, body) else "stop")


def wire_usage(fmt: str, usage: dict[str, Any]) -> tuple[int, int, int, int]:
    """``(all input tokens, cache read, cache write, output)`` of a wire usage object (§3.3:
    A ``input_tokens`` excludes the cache, C/R input counts include it)."""
    if fmt == A:
        read, written = usage.get("cache_read_input_tokens") or 0, usage.get("cache_creation_input_tokens") or 0
        return usage["input_tokens"] + read + written, read, written, usage["output_tokens"]
    if fmt == R:
        details = usage.get("input_tokens_details") or {}
        prompt, output = usage["input_tokens"], usage["output_tokens"]
    else:
        details = usage.get("prompt_tokens_details") or {}
        prompt, output = usage["prompt_tokens"], usage["completion_tokens"]
    return prompt, details.get("cached_tokens", 0), details.get("cache_write_tokens", 0), output


def wire_reasoning(fmt: str, body: dict[str, Any]) -> list[tuple[str, str | None]]:
    """``(text, opaque payload)`` per reasoning block of a JSON response: A signature (or
    redacted data), R ``encrypted_content``, C ``thinking_blocks`` signature (else the
    ``reasoning_content`` text with no payload)."""
    if fmt == A:
        return [
            (b.get("thinking", ""), b.get("signature") or b.get("data"))
            for b in body["content"]
            if b["type"] in ("thinking", "redacted_thinking")
        ]
    if fmt == R:
        return [
            ("\n\n".join(s["text"] for s in i["summary"]), i.get("encrypted_content"))
            for i in body["output"]
            if i["type"] == "reasoning"
        ]
    message = body["choices"][0]["message"]
    if blocks := message.get("thinking_blocks"):
        return [(b.get("thinking", ""), b.get("signature") or b.get("data")) for b in blocks]
    return [(text, None)] if (text := message.get("reasoning_content")) else []


def check_reasoning_carried(upstream_format: str, upstream: dict[str, Any], client_format: str, client: Any) -> None:
    """Every upstream reasoning block reaches the client with its text and its payload: verbatim
    when the client format can carry it, else in wireshift's envelope naming the issuer (§2.9
    rule 2, §4.3 step 4, §4.4 step 6) — which the client sends back next turn."""
    given = wire_reasoning(client_format, client)
    expected = wire_reasoning(upstream_format, upstream)
    if client_format == C:  # an empty reasoning item (no summary, no encrypted_content) has no C form
        expected = [r for r in expected if r != ("", None)]
    assert [text for text, _ in given] == [text for text, _ in expected]
    for (_, payload), (_, original) in zip(given, expected, strict=True):
        if payload == original and original is not None:
            continue
        envelope = unpack_signature(payload or "")
        assert envelope is not None, f"{client_format} client got no envelope for {upstream_format} reasoning"
        assert envelope["p"] == upstream_format and (envelope.get("s") or envelope.get("e")) == original


def check_response(plan: ExecutionPlan, body: dict[str, Any], upstream: dict[str, Any]) -> None:
    """A translated JSON response: id prefix, tool ids preserved (sanitised only for A) and names
    restored, stop reason consistent with the calls, §3.3 usage, reasoning payloads carried."""
    client_format, upstream_format = plan.client_format, plan.upstream_format or ""
    assert body["id"].startswith(ID_PREFIX[client_format])
    calls, up_calls = wire_calls(client_format, body), wire_calls(upstream_format, upstream)
    sanitise = (lambda i: re.sub(r"[^a-zA-Z0-9_-]", "_", i)) if client_format == A else (lambda i: i)
    assert calls == [(sanitise(i), plan.tool_names.get(n, n)) for i, n in up_calls]
    assert wire_stop(client_format, body) == wire_stop(upstream_format, upstream)
    usage, up_usage = wire_usage(client_format, body["usage"]), wire_usage(upstream_format, upstream["usage"])
    if client_format == C:  # C has no cache-write count: the writes stay inside prompt_tokens
        usage, up_usage = usage[:2] + usage[3:], up_usage[:2] + up_usage[3:]
    assert usage == up_usage
    check_reasoning_carried(upstream_format, upstream, client_format, body)
    if client_format == C:
        message, finish = body["choices"][0]["message"], body["choices"][0]["finish_reason"]
        assert (finish == "tool_calls") == bool(calls)
        assert message["content"] is None or message["content"] != ""
        u = body["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    elif client_format == A:
        blocks = body["content"]
        assert (body["stop_reason"] == "tool_use") == bool(calls)
        assert all(b["text"].strip() for b in blocks if b["type"] == "text")
        kinds = [b["type"] for b in blocks]
        assert kinds == sorted(kinds, key=["thinking", "redacted_thinking", "text", "tool_use"].index)
        assert all(b["signature"] for b in blocks if b["type"] == "thinking"), "unsigned thinking"
    else:
        check_r_terminal(body, None, plan.client == "codex")
        parts = [p for i in body["output"] if i["type"] == "message" for p in i["content"]]
        assert body["output_text"] == "".join(p["text"] for p in parts if p["type"] == "output_text")
        for i in body["output"]:
            if i["type"] == "reasoning":  # never a foreign payload posing as R's own
                assert unpack_signature(i["encrypted_content"]) is not None


def r_payload(block: Reasoning) -> tuple[str | None, ...]:
    """A reasoning payload with wireshift's envelope unpacked: the JSON decoders unpack it, the
    stream decoders hand it over as a signature (R: its ``encrypted_content``)."""
    envelope = unpack_signature(block.signature or "")
    if envelope is not None:
        return envelope.get("p"), envelope.get("s"), envelope.get("r"), envelope.get("e")
    return block.provenance, block.signature, block.redacted, block.encrypted_content


def semantic(resp: CanonicalResponse, client_format: str) -> list[Any]:
    """Comparable content: tool arguments parsed (streams keep the upstream's bytes); reasoning
    payloads (envelopes unpacked) compared for A and R clients (for C see
    ``test_c_stream_exposes_thinking_signatures``)."""
    out: list[Any] = []
    for b in resp.content:
        if isinstance(b, ToolCall):
            out.append(("tool", b.id, b.name, b.kind, parse_arguments(b.arguments)))
        elif isinstance(b, Reasoning):
            out.append(("reasoning", b.text, r_payload(b) if client_format != C else None))
        else:
            out.append((type(b).__name__, getattr(b, "text", None)))
    return out


def check_upstream_request(upstream_format: str, body: bytes) -> None:
    """What any upstream may be sent: no wireshift envelope (only the issuer can read a
    reasoning payload, §2.9 rules 3 and 5); toward R also ``store: false``, explicit ``strict``
    (§2.4), call items with ``call_id`` and no ``id`` (§2.6), each output after its call."""
    assert SIGNATURE_PREFIX.encode() not in body
    sent = orjson.loads(body)
    if upstream_format != R:
        return
    assert sent["store"] is False and "max_tokens" not in sent
    assert all(isinstance(t["strict"], bool) for t in sent.get("tools", []) if t["type"] == "function")
    called: set[str] = set()
    for item in sent["input"]:
        kind = item.get("type")
        if kind in R_CALLS:
            assert "id" not in item and item["call_id"], item
            called.add(item["call_id"])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            assert item["call_id"] in called, item
        elif kind == "reasoning":
            assert item["encrypted_content"] and item.get("id", "rs_").startswith("rs_")


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize(("direction", "scenario"), scenarios("client_request.json"))
def test_request(direction: str, scenario: str) -> None:
    _, upstream = plan_for(direction, scenario)
    sent = orjson.loads(upstream.body)
    golden(direction, scenario, "upstream_request.json", sent)
    upstream_format = DIRECTIONS[direction][1]
    assert upstream.url == UPSTREAM_URLS[upstream_format]
    check_upstream_request(upstream_format, upstream.body)
    # the same request with the stream flag flipped differs only in the streaming fields, and a
    # C upstream is asked for usage exactly when streaming (§2.8)
    request = load(direction, scenario, "client_request.json")
    request["stream"] = not request.get("stream", False)
    request.pop("stream_options", None)
    flipped = orjson.loads(plan_for(direction, scenario, request)[1].body)
    streaming, plain = (flipped, sent) if request["stream"] else (sent, flipped)
    assert streaming.pop("stream") is True and "stream" not in plain and "stream_options" not in plain
    assert streaming.pop("stream_options", None) == ({"include_usage": True} if upstream_format == C else None)
    assert streaming == plain


@pytest.mark.parametrize(("direction", "scenario"), scenarios("client_request.json", "upstream_response.json"))
def test_response(direction: str, scenario: str) -> None:
    plan, _ = plan_for(direction, scenario)
    client = run_json(direction, scenario, plan)
    golden(direction, scenario, "client_response.json", client)
    check_response(plan, client, load(direction, scenario, "upstream_response.json"))
    if plan.client_format == R and plan.client != "codex":
        codex = run_json(direction, scenario, plan, "codex")
        golden_variant(direction, scenario, "client_response_codex.json", codex, client)
        check_r_terminal(codex, None, codex=True)


@pytest.mark.parametrize(("direction", "scenario"), scenarios("client_request.json", "upstream_stream.sse"))
def test_stream(direction: str, scenario: str) -> None:
    plan, _ = plan_for(direction, scenario)
    raw = read(direction, scenario, "upstream_stream.sse")
    whole = run_stream(direction, plan, raw)
    golden(direction, scenario, "client_stream.sse", whole)
    client_format = plan.client_format
    if client_format == A:
        check_a_stream(whole)
    elif client_format == C:
        check_c_stream(whole, plan.include_usage)
    else:
        final = check_r_stream(whole, codex=plan.client == "codex")
        for item in final["output"]:  # reasoning from A or C comes in wireshift's envelope (§4.4 step 6)
            if item["type"] == "reasoning":
                assert (unpack_signature(item["encrypted_content"]) or {}).get("p") == plan.upstream_format
        if plan.client != "codex":  # §4.4 step 5: Codex gets response.completed, and text for refusals
            codex = run_stream(direction, plan, raw, client="codex")
            golden_variant(direction, scenario, "client_stream_codex.sse", codex, whole)
            check_r_stream(codex, codex=True)
    rng = random.Random(f"{direction}/{scenario}")
    for _ in range(25):
        splits = sorted(rng.sample(range(1, len(raw)), rng.randint(1, min(60, len(raw) - 1))))
        assert run_stream(direction, plan, raw, splits) == whole, splits
    assert run_stream(direction, plan, raw, list(range(1, len(raw)))) == whole  # byte by byte


@pytest.mark.parametrize(
    ("direction", "scenario"),
    scenarios("client_request.json", "upstream_response.json", "upstream_stream.sse", stream_ok=True),
)
def test_stream_and_json_parity(direction: str, scenario: str) -> None:
    """Decoding the client stream gives what decoding the client JSON gives (§8), for R clients
    also in the Codex variant."""
    client_format = DIRECTIONS[direction][0]
    module = get_format(client_format)
    plan, _ = plan_for(direction, scenario)
    clients = [None, "codex"] if client_format == R else [None]
    for client in clients:
        from_json = module.decode_response(run_json(direction, scenario, plan, client))
        sse, decoder, acc = SSEDecoder(), module.StreamDecoder(), ResponseAccumulator()
        for ev in sse.feed(
            run_stream(direction, plan, read(direction, scenario, "upstream_stream.sse"), client=client)
        ):
            acc.feed(decoder.feed(ev))
        acc.feed(decoder.close())
        assert acc.done and acc.error is None
        from_stream = acc.response
        assert semantic(from_stream, client_format) == semantic(from_json, client_format)
        assert from_stream.stop_reason == from_json.stop_reason
        if plan.include_usage:
            assert from_stream.usage == from_json.usage
        assert from_stream.id == from_json.id == RESPONSE_IDS[client_format]


@pytest.mark.parametrize(("direction", "scenario"), scenarios("upstream_error.json"))
def test_http_error_scenario(direction: str, scenario: str) -> None:
    """§8 scenario 11 / §6.1 for the R directions: an upstream HTTP error (before the first
    byte) in the client's envelope with the upstream status (529 -> 503 for OpenAI clients),
    retry-after carried, rate limits and context overflow recognisable to Codex and Claude Code."""
    client_format, upstream_format = DIRECTIONS[direction]
    case = load(direction, scenario, "upstream_error.json")
    status, body, err = translate_error(
        upstream_format, client_format, case["status"], orjson.dumps(case["body"]), case["retry_after"]
    )
    golden(direction, scenario, "client_error.json", {"status": status, "body": orjson.loads(body)})
    assert err.retry_after == case["retry_after"]
    assert status == (503 if case["status"] == 529 and client_format != A else case["status"])
    sent = orjson.loads(body)
    if client_format == A:
        assert sent["type"] == "error" and set(sent["error"]) == {"type", "message"}
        if "context" in scenario:
            assert sent["error"]["message"].startswith("prompt is too long")
        return
    assert set(sent["error"]) == {"message", "type", "param", "code"}
    if "context" in scenario or "prompt_too_long" in scenario:
        assert sent["error"]["code"] == "context_length_exceeded"  # Codex: ContextWindowExceeded
    if sent["error"]["code"] == "rate_limit_exceeded":
        assert "try again in" in sent["error"]["message"].lower()  # Codex parses the retry delay


@pytest.mark.parametrize(("direction", "scenario"), scenarios("upstream_stream.sse", directions=with_upstream(R)))
def test_r_upstream_fixtures_look_like_openai(direction: str, scenario: str) -> None:
    """The R upstream fixtures are held to what OpenAI sends: every event and response valid for
    the SDK, and a clean stream follows the same R grammar wireshift emits."""
    raw = read(direction, scenario, "upstream_stream.sse")
    if scenario.startswith(("12_", "13_")):
        sse = SSEDecoder()
        events = [orjson.loads(ev.data) for ev in [*sse.feed(raw), *sse.close()]]
        for event in events:
            sdk_event(event)
        assert all(b["sequence_number"] > a["sequence_number"] for a, b in itertools.pairwise(events))
    else:
        check_r_stream(raw, client=False)
    if (FIXTURES / direction / scenario / "upstream_response.json").exists():
        check_r_terminal(load(direction, scenario, "upstream_response.json"), None, codex=False)


@pytest.mark.parametrize(
    ("direction", "scenario"),
    [("c_to_a", "06_reasoning_tool"), ("c_to_r", "05_reasoning_text"), ("c_to_r", "06_reasoning_tool")],
)
def test_c_stream_exposes_thinking_signatures(direction: str, scenario: str) -> None:
    """§4.3 step 4: a streaming C client gets the reasoning payload (the Anthropic signature, or
    R's encrypted_content in wireshift's envelope) as ``delta.thinking_blocks``, what the JSON
    response carries, so it can replay the reasoning on the follow-up tool turn."""
    plan, _ = plan_for(direction, scenario)
    raw = run_stream(direction, plan, read(direction, scenario, "upstream_stream.sse"))
    streamed = [
        block
        for _, data in frames(raw)
        if data != b"[DONE]"
        for choice in orjson.loads(data)["choices"]
        for block in choice["delta"].get("thinking_blocks", [])
    ]
    assert streamed == load(direction, scenario, "client_response.json")["choices"][0]["message"]["thinking_blocks"]
    given = {"choices": [{"message": {"thinking_blocks": streamed}}]}
    check_reasoning_carried(DIRECTIONS[direction][1], load(direction, scenario, "upstream_response.json"), C, given)


# --------------------------------------------------------------------------- multi-turn


def codex_replay(item: dict[str, Any]) -> dict[str, Any]:
    """An output item as Codex sends it back next turn (it drops ``id`` and ``status``)."""
    return {k: v for k, v in item.items() if k not in ("id", "status")}


@pytest.mark.parametrize(
    ("direction", "first", "followup"),
    [
        ("c_to_a", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("a_to_c", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("a_to_c", "16_tool_id_chars", "16_tool_id_chars_followup"),
        ("r_to_c", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("r_to_a", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("c_to_r", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("a_to_r", "06_reasoning_tool", "06_reasoning_tool_followup"),
    ],
)
def test_followup_replays_the_previous_client_response(direction: str, first: str, followup: str) -> None:
    """The follow-up fixtures echo exactly what the client was given (signatures, envelopes,
    sanitised ids; R output items verbatim as SDK users replay them, or as Codex does), so their
    upstream_request goldens show what survives a round trip."""
    client_format = DIRECTIONS[direction][0]
    given = load(direction, first, "client_response.json")
    request = load(direction, followup, "client_request.json")
    if client_format == R:
        items, history = given["output"], request["input"]
        replayed = [i for i in history if i.get("type") in ("reasoning", *R_CALLS) or i.get("role") == "assistant"]
        assert replayed in (items, [codex_replay(i) for i in items])
        outputs = {
            i["call_id"] for i in history if i.get("type") in ("function_call_output", "custom_tool_call_output")
        }
        assert outputs == {i["call_id"] for i in items if i["type"] in R_CALLS}
        return
    history = request["messages"]
    if client_format == A:
        assert history[1] == {"role": "assistant", "content": given["content"]}
        return
    message = {k: v for k, v in given["choices"][0]["message"].items() if v is not None}
    replayed = {k: v for k, v in history[1].items() if v is not None}
    assert replayed == message
    for call in message.get("tool_calls", []):  # the tool results answer the same ids
        assert any(m.get("tool_call_id") == call["id"] for m in history[2:])


@pytest.mark.parametrize("direction", with_client(R))
def test_r_client_reasoning_comes_back_to_its_issuer(direction: str) -> None:
    """§4.4 step 6: the reasoning item an R client replays carries wireshift's envelope, which
    gives the issuer its own payload back: the Anthropic thinking block with its signature (so
    thinking stays on for the tool turn), the Chat reasoning text."""
    upstream_format = DIRECTIONS[direction][1]
    issued = wire_reasoning(upstream_format, load(direction, "06_reasoning_tool", "upstream_response.json"))
    sent = orjson.loads(plan_for(direction, "06_reasoning_tool_followup")[1].body)
    assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
    if upstream_format == A:
        assert sent["thinking"]["type"] == "enabled"
        thinking = [(b["thinking"], b["signature"]) for b in assistant["content"] if b["type"] == "thinking"]
        assert thinking == issued and assistant["content"][0]["type"] == "thinking"
    else:
        assert [(assistant["reasoning_content"], None)] == issued


@pytest.mark.parametrize("direction", with_upstream(R))
def test_only_r_issued_reasoning_goes_back_to_r(direction: str) -> None:
    """§2.9 rule 5: the follow-up gives the R upstream its own reasoning item back (id and
    encrypted_content as issued); reasoning issued elsewhere (an Anthropic signature, unsigned
    reasoning text) is not sent to R."""
    issued = load(direction, "06_reasoning_tool", "upstream_response.json")["output"]
    sent = orjson.loads(plan_for(direction, "06_reasoning_tool_followup")[1].body)["input"]
    reasoning = [(i["id"], i["encrypted_content"]) for i in sent if i.get("type") == "reasoning"]
    assert reasoning == [(i["id"], i["encrypted_content"]) for i in issued if i["type"] == "reasoning"]
    foreign = orjson.loads(plan_for(direction, "06_reasoning_tool_followup_foreign")[1].body)["input"]
    assert not any(i.get("type") == "reasoning" for i in foreign)
    assert [i["call_id"] for i in foreign if i.get("type") == "function_call"] == [
        i["call_id"] for i in foreign if i.get("type") == "function_call_output"
    ]


def test_unsigned_reasoning_is_not_sent_to_anthropic_and_thinking_is_dropped() -> None:
    """§2.9 rule 3: a C client that kept only ``reasoning_content`` cannot satisfy A's thinking
    rules for the tool turn, so the upstream request carries no thinking at all."""
    _, upstream = plan_for("c_to_a", "06_reasoning_tool_followup_unsigned")
    sent = orjson.loads(upstream.body)
    assert "thinking" not in sent
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["tool_use"]
    signed = orjson.loads(plan_for("c_to_a", "06_reasoning_tool_followup")[1].body)
    assert signed["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert signed["messages"][1]["content"][0]["type"] == "thinking"


# --------------------------------------------------------------------------- Codex


@pytest.mark.parametrize("direction", with_client(R))
def test_codex_turn(direction: str) -> None:
    """A Codex-shaped turn (§7.2) on a C or A backend: developer messages become the system
    prompt, the namespace tool is flattened, the hosted web_search tool and the R-only fields
    (include, store, prompt_cache_key, client_metadata…) stay behind, apply_patch goes as a
    one-string function and its call comes back to Codex as a ``custom_tool_call`` with the raw
    patch, complete in ``output_item.done`` before ``response.completed``."""
    plan, upstream = plan_for(direction, "codex_turn")
    assert plan.client == "codex" and plan.custom_tools == ["apply_patch"]
    sent = orjson.loads(upstream.body)
    tools = [t.get("name") or t["function"]["name"] for t in sent["tools"]]
    assert tools == ["shell_command", "update_plan", "apply_patch", "docs__docs__search"]
    assert plan.namespaced_tools == {"docs__docs__search": ["docs", "docs__search"]}
    for field in ("include", "store", "prompt_cache_key", "client_metadata", "text", "service_tier"):
        assert field not in sent
    request = load(direction, "codex_turn", "client_request.json")
    developer = [i["content"][0]["text"] for i in request["input"] if i.get("role") == "developer"]
    if DIRECTIONS[direction][1] == A:
        assert [b["text"] for b in sent["system"]] == developer
    else:
        assert sent["messages"][0] == {"role": "system", "content": "\n\n".join(developer)}
    final = check_r_stream(read(direction, "codex_turn", "client_stream.sse"), codex=True)
    patch = [i for i in final["output"] if i["type"] == "custom_tool_call"]
    assert len(patch) == 1 and patch[0]["name"] == "apply_patch" and patch[0]["input"].startswith("*** Begin Patch\n")


def _function(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}, "strict": False}


#: Codex ``namespace`` tools: MCP servers (names ending in ``__``) sharing an inner name, and one
#: that does not end in ``_``.
CODEX_NAMESPACES = [
    {"type": "namespace", "name": "mcp__github__", "description": "GitHub", "tools": [_function("search")]},
    {"type": "namespace", "name": "mcp__docs__", "description": "Docs", "tools": [_function("search")]},
    {"type": "namespace", "name": "multi_agent_v1", "tools": [_function("spawn_agent")]},
]


@pytest.mark.parametrize("direction", with_client(R))
def test_codex_namespace_calls_keep_their_namespace(direction: str) -> None:
    """Codex runs a namespace tool's function by (namespace, name): upstream, each gets its flat
    Codex name (unique even when two namespaces share an inner name), history calls too, and a
    call coming back (JSON, replayed JSON, stream) is a function_call with the inner name and its
    namespace, which the next turn sends upstream by the flat name again."""
    upstream_format = DIRECTIONS[direction][1]
    history = [
        {"role": "user", "content": "find it"},
        {"type": "function_call", "call_id": "call_0", "name": "search", "namespace": "mcp__docs__", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_0", "output": "nothing"},
    ]
    model = "anth:m" if upstream_format == A else "chat:m"
    plan, upstream = plan_for(direction, "codex", {"model": model, "input": history, "tools": CODEX_NAMESPACES})
    assert plan.namespaced_tools == {
        "mcp__github__search": ["mcp__github__", "search"],
        "mcp__docs__search": ["mcp__docs__", "search"],
        "multi_agent_v1__spawn_agent": ["multi_agent_v1", "spawn_agent"],
    }
    sent = orjson.loads(upstream.body)
    assert [t.get("name") or t["function"]["name"] for t in sent["tools"]] == list(plan.namespaced_tools)

    def history_calls(body: dict[str, Any]) -> list[str]:
        if upstream_format == A:
            turns = [m["content"] for m in body["messages"] if m["role"] == "assistant"]
            return [b["name"] for content in turns for b in content if b["type"] == "tool_use"]
        return [c["function"]["name"] for m in body["messages"] for c in m.get("tool_calls") or []]

    assert history_calls(sent) == ["mcp__docs__search"]

    calls = [ToolCall("call_1", "mcp__github__search", '{"q":"x"}'), ToolCall("call_2", "multi_agent_v1__spawn_agent")]
    resp = CanonicalResponse(id="up_1", model="m", content=[Text("Looking."), *calls], stop_reason="tool_use")
    resp.usage = Usage(input_tokens=10, output_tokens=5)
    module, ctx = get_format(upstream_format), context(plan)
    body = orjson.dumps(module.encode_response(resp, StreamContext(model="m")))
    raw = module.StreamEncoder(StreamContext(model="m")).encode(response_to_events(resp))
    expected = [("search", "mcp__github__"), ("spawn_agent", "multi_agent_v1")]
    out, _ = translate_response(upstream_format, R, body, ctx, namespaced_tools=plan.namespaced_tools)
    replayed, _ = synthesize_stream(upstream_format, R, body, ctx, namespaced_tools=plan.namespaced_tools)
    translator = StreamTranslator(upstream_format, R, ctx, namespaced_tools=plan.namespaced_tools)
    streamed = check_r_stream(translator.feed(raw) + translator.close(), codex=True)
    for output in (orjson.loads(out)["output"], check_r_stream(replayed, codex=True)["output"], streamed["output"]):
        items = [i for i in output if i["type"] == "function_call"]
        assert [(i["name"], i["namespace"]) for i in items] == expected

    turn = [*history, *(codex_replay(i) for i in streamed["output"])]
    turn += [{"type": "function_call_output", "call_id": c.id, "output": "ok"} for c in calls]
    _, followup = plan_for(direction, "codex", {"model": model, "input": turn, "tools": CODEX_NAMESPACES})
    assert history_calls(orjson.loads(followup.body)) == ["mcp__docs__search", *(c.name for c in calls)]


# --------------------------------------------------------------------------- blank upstream text


def a_sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events)


def test_blank_upstream_text_is_no_r_message() -> None:
    """A blank upstream text block (an Anthropic-compatible backend opening an empty text block
    before a tool call) is no empty assistant message for Codex (§4.2 step 3, §5 row 5)."""
    message = {"id": "msg_01Blank", "type": "message", "role": "assistant", "model": "glm-4.6", "content": []}
    message.update(stop_reason=None, stop_sequence=None, usage={"input_tokens": 10, "output_tokens": 1})
    raw = a_sse(
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "ls"},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    )
    translator = StreamTranslator(A, R, StreamContext(model="anth:glm-4.6", client="codex"))
    final = check_r_stream(translator.feed(raw) + translator.close(), codex=True)
    assert [i["type"] for i in final["output"]] == ["function_call"]


# --------------------------------------------------------------------------- HTTP errors

HTTP_ERRORS = orjson.loads((FIXTURES / "http_errors.json").read_bytes())


@pytest.mark.parametrize("case", HTTP_ERRORS, ids=[c["name"] for c in HTTP_ERRORS])
def test_http_error(case: dict[str, Any]) -> None:
    """§6.1: upstream HTTP errors (a 429 before the first byte included, §8 scenario 11)
    re-enveloped in the client's format with the upstream status (529 -> 503 for OpenAI clients),
    retry-after carried, context overflow recognisable to each client."""
    client_format, upstream_format = DIRECTIONS[case["direction"]]
    upstream = orjson.dumps(case["upstream"])
    status, body, err = translate_error(upstream_format, client_format, case["status"], upstream, case["retry_after"])
    assert (status, orjson.loads(body)) == (case["client_status"], case["client"])
    assert err.retry_after == case["retry_after"]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_minted_ids_carry_the_client_prefix(direction: str) -> None:
    """§3.4: without a preset id, the response id is minted in the client format's prefix, one
    id for the whole stream."""
    client_format, upstream_format = DIRECTIONS[direction]
    plan, _ = plan_for(direction, "02_text_then_tool")
    ctx = context(plan)
    ctx.response_id = None
    minted = re.compile(rf"^{re.escape(ID_PREFIX[client_format])}gen\d+$")
    body, _ = translate_response(
        upstream_format, client_format, read(direction, "02_text_then_tool", "upstream_response.json"), ctx
    )
    assert minted.match(orjson.loads(body)["id"])
    translator = StreamTranslator(upstream_format, client_format, ctx)
    raw = translator.feed(read(direction, "02_text_then_tool", "upstream_stream.sse")) + translator.close()
    ids = set()
    for _, data in frames(raw):
        if data != b"[DONE]":
            event = orjson.loads(data)
            ids.add(event.get("id") or event.get("message", event.get("response", {})).get("id"))
    ids.discard(None)
    assert len(ids) == 1 and minted.match(ids.pop())


# ----------------------------------------------------------------------------- freeform (custom) tools


def _custom_request() -> dict:
    return {
        "model": "chat:m",
        "stream": True,
        "input": [
            {"role": "user", "content": "patch it"},
            {"type": "custom_tool_call", "call_id": "call_0", "name": "apply_patch", "input": "*** Begin Patch\n"},
            {"type": "custom_tool_call_output", "call_id": "call_0", "output": "ok"},
        ],
        "tools": [{"type": "custom", "name": "apply_patch", "description": "Apply a patch"}],
    }


def test_custom_tools_go_upstream_as_functions_and_come_back_custom():
    """Codex's apply_patch is freeform: toward Chat it is a function with one string ``input``,
    and the call coming back is a ``custom_tool_call`` with the raw input again (§2.4)."""
    from routing.plan import plan_request as plan_it
    from translators.canonical import StreamContext as Ctx

    plan, up = plan_it(registry(), "openai_responses", orjson.dumps(_custom_request()))
    assert up is not None and plan.custom_tools == ["apply_patch"]
    sent = orjson.loads(up.body)
    tool = sent["tools"][0]
    assert tool["type"] == "function" and tool["function"]["parameters"]["required"] == ["input"]
    history_call = sent["messages"][1]["tool_calls"][0]
    assert orjson.loads(history_call["function"]["arguments"]) == {"input": "*** Begin Patch\n"}

    raw = '{"input":"*** Begin Patch\\n*** End Patch"}'
    chunks = [
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "apply_patch", "arguments": ""},
                            }
                        ],
                    },
                }
            ]
        },
        *[
            {
                "choices": [
                    {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": raw[i : i + 7]}}]}}
                ]
            }
            for i in range(0, len(raw), 7)
        ],
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    sse = (
        b"".join(b"data: " + orjson.dumps({"id": "c", "model": "m", **c}) + b"\n\n" for c in chunks)
        + b"data: [DONE]\n\n"
    )
    tr = StreamTranslator(
        "openai_chat", "openai_responses", Ctx("chat:m", response_id="resp_1"), plan.tool_names, plan.custom_tools
    )
    out = (tr.feed(sse) + tr.close()).decode()
    done = [
        orjson.loads(line[6:])
        for line in out.splitlines()
        if line.startswith("data: ") and '"response.output_item.done"' in line
    ]
    assert [d["item"]["type"] for d in done] == ["custom_tool_call"]
    assert done[0]["item"]["input"] == "*** Begin Patch\n*** End Patch" and done[0]["item"]["call_id"] == "call_1"

    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "apply_patch", "arguments": raw}}
                    ],
                },
            }
        ],
    }
    out_json, _ = translate_response(
        "openai_chat", "openai_responses", orjson.dumps(body), Ctx("chat:m"), plan.tool_names, plan.custom_tools
    )
    item = orjson.loads(out_json)["output"][0]
    assert item["type"] == "custom_tool_call" and item["input"] == "*** Begin Patch\n*** End Patch"


def test_encoder_failure_still_ends_the_client_stream():
    """If the client encoder's own state makes it fail, a fresh encoder writes the error frame."""
    from translators.canonical import StreamContext as Ctx

    tr = StreamTranslator("openai_chat", "openai_responses", Ctx("m"))

    class BrokenEncoder:
        def encode(self, events):
            raise RuntimeError("broken state")

    tr._encoder = BrokenEncoder()
    out = tr.feed(b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n')
    assert b"event: response.failed" in out and tr.done
