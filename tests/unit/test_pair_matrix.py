"""Golden matrix for the translated client/upstream pairs (wire-formats.md §8).

Directions: ``c_to_a`` (OpenAI Chat client, Anthropic Messages upstream) and ``a_to_c`` (the
reverse). Each scenario lives in ``tests/fixtures/pairs/<direction>/<NN_name>/`` (``NN`` is the
§8 scenario number) and holds any of:

- ``client_request.json`` -> ``upstream_request.json``: through ``routing.plan.plan_request``
  (the JSON of ``UpstreamRequest.body``);
- ``upstream_response.json`` -> ``client_response.json``: ``pipeline.translate_response``;
- ``upstream_stream.sse`` -> ``client_stream.sse``: ``pipeline.StreamTranslator``, fed whole and
  in random chunk splits (identical bytes).

The client's ``StreamContext`` comes from the plan, with a fixed ``response_id``; ``created``
is pinned by patching ``openai_chat._now`` and minted ids are ``<prefix>gen<n>``. Beyond the
goldens every client output is checked for the §4.1 grammar, stop reasons consistent with the
tool blocks, §3.3 usage formulas, id prefixes and preserved tool ids, and stream/non-stream
parity. ``WIRESHIFT_REGEN=1`` rewrites the expected outputs (review every diff by hand).
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

from config.loader import parse_config
from routing.backends import Registry
from routing.plan import ExecutionPlan, UpstreamRequest, plan_request
from translators import anthropic_messages, get_format, openai_chat
from translators.canonical import (
    CanonicalResponse,
    Reasoning,
    ResponseAccumulator,
    StreamContext,
    ToolCall,
    parse_arguments,
    unpack_signature,
)
from translators.pipeline import StreamTranslator, translate_error, translate_response
from translators.sse import SSEDecoder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pairs"
REGEN = os.environ.get("WIRESHIFT_REGEN") == "1"
NOW = 1_700_000_000
C, A = "openai_chat", "anthropic_messages"
DIRECTIONS = {"c_to_a": (C, A), "a_to_c": (A, C)}
RESPONSE_IDS = {C: "chatcmpl-pairs0001", A: "msg_pairs0001"}
ID_PREFIX = {C: "chatcmpl-", A: "msg_"}
A_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


# --------------------------------------------------------------------------- plumbing


def scenarios(*files: str, stream_ok: bool | None = None) -> list[Any]:
    """``(direction, scenario)`` params for every scenario directory holding all ``files``;
    ``stream_ok`` filters on whether the upstream stream ends cleanly (error scenarios are 12, 13)."""
    out = []
    for direction in DIRECTIONS:
        for path in sorted((FIXTURES / direction).iterdir()):
            if not all((path / f).exists() for f in files):
                continue
            if stream_ok is not None and path.name.startswith(("12_", "13_")) == stream_ok:
                continue
            out.append(pytest.param(direction, path.name, id=f"{direction}/{path.name}"))
    return out


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
            ]
        },
        Path("pairs.yaml"),
    )
    return Registry.from_config(cfg, {})


@pytest.fixture(autouse=True)
def deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed ``created`` for C encoders; minted ids become ``<prefix>gen1``, ``<prefix>gen2``…"""
    monkeypatch.setattr(openai_chat, "_now", lambda: NOW)
    counter = itertools.count(1)
    for module in (openai_chat, anthropic_messages):
        monkeypatch.setattr(module, "new_id", lambda prefix, nbytes=12: f"{prefix}gen{next(counter)}")


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


def plan_for(
    direction: str, scenario: str, request: dict[str, Any] | None = None
) -> tuple[ExecutionPlan, UpstreamRequest]:
    client_format, upstream_format = DIRECTIONS[direction]
    body = request if request is not None else load(direction, scenario, "client_request.json")
    plan, upstream = plan_request(registry(), client_format, orjson.dumps(body), request_id="pairs")
    assert plan.error is None and upstream is not None, plan.error
    assert plan.mode == "translated" and plan.upstream_format == upstream_format
    return plan, upstream


def context(plan: ExecutionPlan) -> StreamContext:
    """What the addon builds for this plan, with a fixed response id."""
    return StreamContext(
        model=plan.client_model,
        include_usage=plan.include_usage,
        estimated_input_tokens=plan.estimated_input_tokens,
        response_id=RESPONSE_IDS[plan.client_format],
    )


def run_stream(direction: str, plan: ExecutionPlan, raw: bytes, splits: list[int] | None = None) -> bytes:
    client_format, upstream_format = DIRECTIONS[direction]
    translator = StreamTranslator(upstream_format, client_format, context(plan), plan.tool_names)
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


def check_response(client_format: str, body: dict[str, Any], upstream: dict[str, Any]) -> None:
    """A translated JSON response: id prefix, preserved tool ids, consistent stop reason, §3.3 usage."""
    assert body["id"].startswith(ID_PREFIX[client_format])
    if client_format == C:
        message = body["choices"][0]["message"]
        calls = message.get("tool_calls", [])
        assert (body["choices"][0]["finish_reason"] == "tool_calls") == bool(calls)
        assert message["content"] is None or message["content"] != ""
        up_ids = [b["id"] for b in upstream["content"] if b["type"] == "tool_use"]
        assert [c["id"] for c in calls] == up_ids
        u, a = body["usage"], upstream["usage"]
        prompt = a["input_tokens"] + a["cache_read_input_tokens"] + a["cache_creation_input_tokens"]
        assert u["prompt_tokens"] == prompt and u["completion_tokens"] == a["output_tokens"]
        assert u["total_tokens"] == prompt + a["output_tokens"]
        assert u["prompt_tokens_details"]["cached_tokens"] == a["cache_read_input_tokens"]
    else:
        blocks = body["content"]
        tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        assert (body["stop_reason"] == "tool_use") == bool(tool_ids)
        assert all(b["text"].strip() for b in blocks if b["type"] == "text")
        kinds = [b["type"] for b in blocks]
        assert kinds == sorted(kinds, key=["thinking", "redacted_thinking", "text", "tool_use"].index)
        up_ids = [c["id"] for c in upstream["choices"][0]["message"].get("tool_calls") or []]
        assert tool_ids == [re.sub(r"[^a-zA-Z0-9_-]", "_", i) for i in up_ids]
        u, o = body["usage"], upstream["usage"]
        details = o.get("prompt_tokens_details") or {}
        cached, written = details.get("cached_tokens", 0), details.get("cache_write_tokens", 0)
        assert u["cache_read_input_tokens"] == cached and u["cache_creation_input_tokens"] == written
        assert u["input_tokens"] == max(o["prompt_tokens"] - cached - written, 0)
        assert u["output_tokens"] == o["completion_tokens"]


def semantic(resp: CanonicalResponse, signatures: bool) -> list[Any]:
    """Comparable content: tool arguments parsed (streams keep the upstream's bytes), wireshift's
    signature envelopes ignored (they carry no upstream signature), real signatures compared
    only when ``signatures`` (see ``test_c_stream_exposes_thinking_signatures``)."""
    out: list[Any] = []
    for b in resp.content:
        if isinstance(b, ToolCall):
            out.append(("tool", b.id, b.name, parse_arguments(b.arguments)))
        elif isinstance(b, Reasoning):
            real = b.signature if b.signature and unpack_signature(b.signature) is None else None
            signature = real if signatures else None
            out.append(("reasoning", b.text, signature, b.redacted))
        else:
            out.append((type(b).__name__, getattr(b, "text", None)))
    return out


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize(("direction", "scenario"), scenarios("client_request.json"))
def test_request(direction: str, scenario: str) -> None:
    _, upstream = plan_for(direction, scenario)
    sent = orjson.loads(upstream.body)
    golden(direction, scenario, "upstream_request.json", sent)
    upstream_format = DIRECTIONS[direction][1]
    assert upstream.url == (
        "http://anthropic.test/v1/messages" if upstream_format == A else "http://openai.test/v1/chat/completions"
    )
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
    client_format, upstream_format = DIRECTIONS[direction]
    plan, _ = plan_for(direction, scenario)
    body, _ = translate_response(
        upstream_format,
        client_format,
        read(direction, scenario, "upstream_response.json"),
        context(plan),
        plan.tool_names,
    )
    client = orjson.loads(body)
    golden(direction, scenario, "client_response.json", client)
    check_response(client_format, client, load(direction, scenario, "upstream_response.json"))


@pytest.mark.parametrize(("direction", "scenario"), scenarios("client_request.json", "upstream_stream.sse"))
def test_stream(direction: str, scenario: str) -> None:
    plan, _ = plan_for(direction, scenario)
    raw = read(direction, scenario, "upstream_stream.sse")
    whole = run_stream(direction, plan, raw)
    golden(direction, scenario, "client_stream.sse", whole)
    if DIRECTIONS[direction][0] == A:
        check_a_stream(whole)
    else:
        check_c_stream(whole, plan.include_usage)
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
    """Decoding the client stream gives what decoding the client JSON gives (§8)."""
    client_format, upstream_format = DIRECTIONS[direction]
    module = get_format(client_format)
    plan, _ = plan_for(direction, scenario)
    from_json = module.decode_response(
        orjson.loads(
            translate_response(
                upstream_format,
                client_format,
                read(direction, scenario, "upstream_response.json"),
                context(plan),
                plan.tool_names,
            )[0]
        )
    )
    sse, decoder, acc = SSEDecoder(), module.StreamDecoder(), ResponseAccumulator()
    for ev in sse.feed(run_stream(direction, plan, read(direction, scenario, "upstream_stream.sse"))):
        acc.feed(decoder.feed(ev))
    acc.feed(decoder.close())
    assert acc.done and acc.error is None
    from_stream = acc.response
    assert semantic(from_stream, client_format == A) == semantic(from_json, client_format == A)
    assert from_stream.stop_reason == from_json.stop_reason
    if plan.include_usage:
        assert from_stream.usage == from_json.usage
    assert from_stream.id == from_json.id == RESPONSE_IDS[client_format]


def test_c_stream_exposes_thinking_signatures() -> None:
    """§4.3 step 4: a streaming C client gets the Anthropic signature as ``delta.thinking_blocks``
    (what the JSON response carries), so it can replay the thinking on the follow-up tool turn."""
    plan, _ = plan_for("c_to_a", "06_reasoning_tool")
    raw = run_stream("c_to_a", plan, read("c_to_a", "06_reasoning_tool", "upstream_stream.sse"))
    streamed = [
        block
        for _, data in frames(raw)
        if data != b"[DONE]"
        for choice in orjson.loads(data)["choices"]
        for block in choice["delta"].get("thinking_blocks", [])
    ]
    message = load("c_to_a", "06_reasoning_tool", "client_response.json")["choices"][0]["message"]
    signature = load("c_to_a", "06_reasoning_tool", "upstream_response.json")["content"][0]["signature"]
    assert streamed == message["thinking_blocks"] and streamed[0]["signature"] == signature


# --------------------------------------------------------------------------- multi-turn


@pytest.mark.parametrize(
    ("direction", "first", "followup"),
    [
        ("c_to_a", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("a_to_c", "06_reasoning_tool", "06_reasoning_tool_followup"),
        ("a_to_c", "16_tool_id_chars", "16_tool_id_chars_followup"),
    ],
)
def test_followup_replays_the_previous_client_response(direction: str, first: str, followup: str) -> None:
    """The follow-up fixtures echo exactly what the client was given (signatures, envelopes,
    sanitised ids), so their upstream_request goldens show what survives a round trip."""
    given = load(direction, first, "client_response.json")
    history = load(direction, followup, "client_request.json")["messages"]
    if DIRECTIONS[direction][0] == A:
        assert history[1] == {"role": "assistant", "content": given["content"]}
        return
    message = {k: v for k, v in given["choices"][0]["message"].items() if v is not None}
    replayed = {k: v for k, v in history[1].items() if v is not None}
    assert replayed == message
    for call in message.get("tool_calls", []):  # the tool results answer the same ids
        assert any(m.get("tool_call_id") == call["id"] for m in history[2:])


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
    body, _ = translate_response(
        upstream_format, client_format, read(direction, "02_text_then_tool", "upstream_response.json"), ctx
    )
    assert orjson.loads(body)["id"] == f"{ID_PREFIX[client_format]}gen1"
    translator = StreamTranslator(upstream_format, client_format, ctx)
    raw = translator.feed(read(direction, "02_text_then_tool", "upstream_stream.sse")) + translator.close()
    ids = {
        orjson.loads(d).get("id") or orjson.loads(d).get("message", {}).get("id")
        for _, d in frames(raw)
        if d != b"[DONE]"
    }
    assert ids - {None} == {f"{ID_PREFIX[client_format]}gen2"}


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
