"""Golden and behaviour tests for translators.openai_responses (OpenAI Responses codec).

Fixtures live in tests/fixtures/openai_responses/; canonical objects are tagged dicts (see
``to_tagged`` / ``from_tagged``). Minted ids are deterministic (``<prefix>gen<n>``) and
``created_at`` is fixed, so outputs are asserted exactly. Every stream the encoder writes (goldens
and cross-format streams from the C and A decoders) is checked by ``check_r_stream`` (the R
grammar of wire-formats.md §4.1/§4.4) and accumulated by the openai SDK's own
``ResponseStreamState`` after validating every event against its ``ResponseStreamEvent`` types.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.canonical_json import from_tagged, to_tagged
from tests.unit.test_fuzz import JUNK, mutate, paths, sweep
from tests.unit.test_openai_chat import check_grammar
from translators import anthropic_messages, canonical, openai_chat, openai_responses
from translators.canonical import (
    BlockStart,
    BlockStop,
    CanonicalError,
    CanonicalRequest,
    CanonicalResponse,
    Delta,
    EncodeOptions,
    End,
    ErrorEvent,
    Finish,
    KeepAlive,
    Message,
    Reasoning,
    ResponseAccumulator,
    Start,
    StreamContext,
    Text,
    ToolCall,
    ToolResult,
    TranslationError,
    Usage,
    UsageEvent,
)
from translators.pipeline import StreamTranslator, synthesize_stream
from translators.sse import SSEDecoder, SSEEvent

R = openai_responses
ROOT = Path(__file__).resolve().parent.parent / "fixtures"
FIXTURES = ROOT / "openai_responses"
NOW = 1_700_000_000
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
ITEM_PREFIX = {"reasoning": "rs_", "message": "msg_", "function_call": "fc_", "custom_tool_call": "ctc_"}
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
#: ``response.failed`` codes the encoder writes (Codex's vocabulary) that the SDK's
#: ``ResponseError.code`` Literal lacks.
CODEX_ONLY_CODES = {"context_length_exceeded", "insufficient_quota", "usage_not_included", "invalid_request_error"}


# --------------------------------------------------------------------------- helpers


def load(rel: str) -> Any:
    return orjson.loads((FIXTURES / rel).read_bytes())


def names(sub: str, ext: str = ".json") -> list[str]:
    return sorted(p.stem for p in (FIXTURES / sub).glob(f"*{ext}"))


@pytest.fixture(autouse=True)
def deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Minted ids become ``<prefix>gen1``, ``<prefix>gen2``…; ``created_at`` is fixed."""
    reset_ids(monkeypatch)
    monkeypatch.setattr(R, "_now", lambda: NOW)


def reset_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)
    fake = lambda prefix, nbytes=12: f"{prefix}gen{next(counter)}"  # noqa: E731
    for module in (R, openai_chat, anthropic_messages):
        monkeypatch.setattr(module, "new_id", fake)


def decode_sse(raw: bytes, splits: list[int] | None = None, module: Any = R) -> list[canonical.Event]:
    """Raw SSE bytes through SSEDecoder + a StreamDecoder, optionally split at ``splits``."""
    sse, dec = SSEDecoder(), module.StreamDecoder()
    bounds = [0, *(splits or []), len(raw)]
    events: list[canonical.Event] = []
    for a, b in itertools.pairwise(bounds):
        for ev in sse.feed(raw[a:b]):
            events += dec.feed(ev)
    for ev in sse.close():
        events += dec.feed(ev)
    return events + dec.close()


def _joined(deltas: list[str]) -> str:
    return "".join(deltas)


def check_r_stream(raw: bytes, codex: bool = False) -> list[dict[str, Any]]:
    """The R stream grammar (wire-formats.md §4.1, §4.4); returns the parsed events."""
    assert raw.endswith(b"\n\n") and b"[DONE]" not in raw
    events: list[dict[str, Any]] = []
    for frame in raw[:-2].split(b"\n\n"):
        if frame.startswith(b":"):
            continue  # keep-alive comment
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: "), frame
        data = orjson.loads(data_line[6:])
        assert data["type"] == event_line[7:].decode()
        events.append(data)
    seqs = [e["sequence_number"] for e in events]
    assert seqs[0] in (0, 1) and all(b > a for a, b in itertools.pairwise(seqs))
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types.count("response.created") == 1
    assert types[-1] in TERMINAL and sum(t in TERMINAL for t in types) == 1
    rid = events[0]["response"]["id"]
    assert rid.startswith("resp_") and events[1]["response"]["id"] == rid
    done: list[dict[str, Any]] = []
    item: dict[str, Any] | None = None
    deltas: list[str] = []
    for e in events[2:-1]:
        if e["type"] == "response.output_item.added":
            assert item is None and e["output_index"] == len(done)
            item, deltas = e["item"], []
            assert item["id"].startswith(ITEM_PREFIX[item["type"]])
            continue
        assert item is not None and e["output_index"] == len(done), e
        if e["type"] == "response.output_item.done":
            full = e["item"]
            assert (full["id"], full["type"]) == (item["id"], item["type"])
            if full["type"] == "function_call":
                assert full["status"] == "completed" and full["call_id"] and full["name"]
                assert full["arguments"] == (_joined(deltas) or "{}")
            elif full["type"] == "custom_tool_call":
                assert full["call_id"] and full["name"] and full["input"] == _joined(deltas)
            elif full["type"] == "message":
                part = full["content"][0]
                assert full["status"] == "completed" and part.get("text", part.get("refusal")) == _joined(deltas)
            else:
                assert [s["text"] for s in full["summary"]] == ([_joined(deltas)] if deltas else [])
            done.append(full)
            item = None
            continue
        assert e["item_id"] == item["id"], e
        if e["type"].endswith(".delta"):
            deltas.append(e["delta"])
    last = events[-1]
    resp = last["response"]
    assert resp["id"] == rid and resp["output"] == done
    if last["type"] == "response.failed":
        assert resp["status"] == "failed" and resp["error"]["code"] and resp["error"]["message"]
        return events
    assert item is None, "open items are closed before the terminal event"
    usage = resp["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert isinstance(usage["input_tokens_details"]["cached_tokens"], int)
    assert isinstance(usage["output_tokens_details"]["reasoning_tokens"], int)
    if resp["status"] == "incomplete":
        assert resp["incomplete_details"]["reason"] in ("max_output_tokens", "content_filter")
        assert last["type"] == ("response.completed" if codex else "response.incomplete")
    else:
        assert resp["status"] == "completed" and last["type"] == "response.completed"
    return events


def sdk_accumulate(raw: bytes) -> Any:
    """Validate every event with the SDK's ``ResponseStreamEvent`` and fold them with its own
    ``ResponseStreamState``; returns the SDK's completed ``Response`` (``None`` if none)."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for ev in SSEDecoder().feed(raw):
        data = orjson.loads(ev.data)
        if data["type"] == "response.failed" and data["response"]["error"]["code"] in CODEX_ONLY_CODES:
            data["response"]["error"]["code"] = "server_error"  # Codex's vocabulary, outside the SDK Literal
        state.handle_event(EVENT_ADAPTER.validate_python(data))
    return state._completed_response


def r_usage(usage: Usage | None) -> Usage:
    """What an R client can see of a usage: reasoning tokens are always a number (0 when unknown)."""
    usage = usage or Usage()
    return dataclasses.replace(usage, reasoning_tokens=usage.reasoning_tokens or 0)


def accumulate(events: list[canonical.Event]) -> ResponseAccumulator:
    acc = ResponseAccumulator()
    acc.feed(events)
    return acc


# --------------------------------------------------------------------------- golden: requests


@pytest.mark.parametrize("name", names("decode_request"))
def test_decode_request_golden(name: str) -> None:
    fx = load(f"decode_request/{name}.json")
    assert to_tagged(R.decode_request(fx["input"])) == fx["canonical"]


@pytest.mark.parametrize("name", names("encode_request"))
def test_encode_request_golden(name: str) -> None:
    fx = load(f"encode_request/{name}.json")
    req = from_tagged(fx["canonical"])
    assert isinstance(req, CanonicalRequest)
    assert R.encode_request(req, EncodeOptions(**fx["options"])) == fx["expected"]


def test_request_encoding_is_a_fixpoint() -> None:
    """R -> canonical -> R is stable after one pass (placeholders and joins are not re-applied)."""
    opts = EncodeOptions(include_extra=True)
    for name in names("decode_request"):
        once = R.encode_request(R.decode_request(load(f"decode_request/{name}.json")["input"]), opts)
        assert R.encode_request(R.decode_request(once), opts) == once, name


# --------------------------------------------------------------------------- golden: responses


@pytest.mark.parametrize("name", names("response"))
def test_response_golden(name: str) -> None:
    fx = load(f"response/{name}.json")
    if "wire" in fx:
        assert to_tagged(R.decode_response(fx["wire"])) == fx["canonical"]
    resp = from_tagged(fx["canonical"])
    assert isinstance(resp, CanonicalResponse)
    encoded = R.encode_response(resp, StreamContext(**fx["ctx"]))
    assert encoded == fx["encoded"]
    assert Response.model_validate(encoded).output_text == encoded["output_text"]


# --------------------------------------------------------------------------- golden: streams


@pytest.mark.parametrize("name", names("stream_decode", ".sse"))
def test_stream_decode_golden(name: str) -> None:
    events = decode_sse((FIXTURES / f"stream_decode/{name}.sse").read_bytes())
    assert to_tagged(events) == load(f"stream_decode/{name}.json")
    check_grammar(events)


@pytest.mark.parametrize("name", names("stream_decode", ".sse"))
def test_stream_decode_random_splits(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (FIXTURES / f"stream_decode/{name}.sse").read_bytes()
    reset_ids(monkeypatch)
    whole = decode_sse(raw)
    rng = random.Random(name)
    for _ in range(30):
        splits = sorted(rng.sample(range(1, len(raw)), rng.randint(1, min(40, len(raw) - 1))))
        reset_ids(monkeypatch)
        assert decode_sse(raw, splits) == whole, splits
    reset_ids(monkeypatch)
    assert decode_sse(raw, list(range(1, len(raw)))) == whole  # one byte at a time


@pytest.mark.parametrize("name", names("stream_encode"))
def test_stream_encode_golden(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fx = load(f"stream_encode/{name}.json")
    events = from_tagged(fx["events"])
    expected = (FIXTURES / f"stream_encode/{name}.sse").read_bytes()
    ctx = StreamContext(**fx["ctx"])
    assert R.StreamEncoder(ctx).encode(events) == expected
    reset_ids(monkeypatch)
    enc = R.StreamEncoder(ctx)
    assert b"".join(enc.encode([e]) for e in events) == expected  # one event per call: same bytes
    check_r_stream(expected, codex=ctx.client == "codex")
    sdk_accumulate(expected)


@pytest.mark.parametrize("name", names("stream_decode", ".sse"))
def test_stream_round_trip_through_r(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """R upstream -> canonical -> R client -> canonical keeps every block (item ids aside)."""
    first = decode_sse((FIXTURES / f"stream_decode/{name}.sse").read_bytes())
    raw = R.StreamEncoder(StreamContext(model="m")).encode(first)
    check_r_stream(raw)
    sdk_accumulate(raw)
    a, b = accumulate(first), accumulate(decode_sse(raw))
    for block in (*a.response.content, *b.response.content):
        if isinstance(block, (Reasoning, ToolCall)):
            block.item_id = None
        if isinstance(block, Reasoning) and block.encrypted_content:  # R payload: a signature delta once streamed
            block.signature, block.encrypted_content = block.encrypted_content, None
    assert b.response.content == a.response.content
    assert (b.error is None) == (a.error is None)
    if a.error is None:
        assert b.response.stop_reason == a.response.stop_reason
        assert b.response.usage == r_usage(a.response.usage)


# --------------------------------------------------------------------------- cross-format streams


def _foreign_streams() -> list[Any]:
    return [
        pytest.param(module, path, id=f"{module.FORMAT}/{path.stem}")
        for module in (openai_chat, anthropic_messages)
        for path in sorted((ROOT / module.FORMAT / "stream_decode").glob("*.sse"))
    ]


@pytest.mark.parametrize(("module", "path"), _foreign_streams())
@pytest.mark.parametrize("client", [None, "codex"])
def test_foreign_upstream_streams_encode_valid_r(module: Any, path: Path, client: str | None) -> None:
    """C and A upstream streams (their decoders' goldens) become valid R streams for Codex and
    SDK clients carrying the same blocks, tool calls, stop reason and usage (§4.4)."""
    events = decode_sse(path.read_bytes(), module=module)
    raw = R.StreamEncoder(StreamContext(model="m", client=client)).encode(events)
    check_r_stream(raw, codex=client == "codex")
    completed = sdk_accumulate(raw)
    before, after = accumulate(events), accumulate(decode_sse(raw))
    assert summary(after.response) == summary(before.response, codex=client == "codex")
    if before.error is not None:
        assert after.error is not None and completed is None
        return
    assert after.error is None and after.response.usage == r_usage(before.response.usage)
    stop = before.response.stop_reason
    truncated = {"max_tokens": "max_tokens", "content_filter": "content_filter", "refusal": "content_filter"}
    calls = any(isinstance(b, ToolCall) for b in before.response.content)
    assert after.response.stop_reason == truncated.get(stop or "", "tool_use" if calls else "end_turn")
    assert (completed is not None) == (client == "codex" or stop not in truncated)


def summary(resp: CanonicalResponse, codex: bool = False) -> list[tuple[str, str]]:
    """Blocks as (kind, text or 'id name arguments'), the way an R client sees them (Codex gets
    refusals as text)."""
    out = []
    for b in resp.content:
        if isinstance(b, ToolCall):
            out.append((b.kind, f"{b.id} {b.name} {b.arguments or '{}' if b.kind == 'function' else b.arguments}"))
        elif isinstance(b, (Text, Reasoning, canonical.Refusal)):
            out.append(("Text" if codex and isinstance(b, canonical.Refusal) else type(b).__name__, b.text))
    return out


def test_codex_quirks() -> None:
    """Codex parses only output_text parts (a refusal part would drop the whole message) and
    older releases sent failed tool outputs as {content, success: false}."""
    resp = CanonicalResponse(content=[canonical.Refusal("No.")], stop_reason="end_turn")
    for client, part in (
        (None, {"type": "refusal", "refusal": "No."}),
        ("codex", {"type": "output_text", "text": "No."}),
    ):
        ctx = StreamContext(model="m", client=client)
        assert R.encode_response(resp, ctx)["output"][0]["content"] == [{**part, "annotations": []} if client else part]
        frames = check_r_stream(R.StreamEncoder(ctx).encode(canonical.response_to_events(resp)), codex=bool(client))
        assert frames[-1]["response"]["output"][0]["content"][0]["type"] == part["type"]
    old = {"type": "function_call_output", "call_id": "c1", "output": {"content": "boom", "success": False}}
    req = R.decode_request(
        _body(input=[{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}, old])
    )
    assert req.messages[1].content == [ToolResult("c1", [Text("boom")], is_error=True)]


# --------------------------------------------------------------------------- request behaviour


def _body(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **kw}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        (_body(previous_response_id="resp_1"), "previous_response_id"),
        (_body(conversation="conv_1"), "conversation"),
        (_body(input=[{"type": "item_reference", "id": "msg_1"}]), "input"),
        (_body(input=["text"]), "input"),
        (_body(input=[{"role": "tool", "content": "x"}]), "input"),
        (_body(input=[{"role": "user", "content": [{"type": "input_audio"}]}]), "input"),
        (_body(input=[{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]), "input"),
        (_body(input=[{"role": "user", "content": [{"type": "input_file"}]}]), "input"),
        (_body(input=[{"role": "user", "content": [{"type": "video"}]}]), "input"),
        (_body(input=[{"role": "user", "content": 5}]), "input"),
        (_body(instructions=["x"]), "instructions"),
        (_body(tools={"type": "function"}), "tools"),
        (_body(tools=[{"type": "function", "parameters": {}}]), "tools"),
        (_body(tool_choice="sometimes"), "tool_choice"),
        (_body(tool_choice={"type": "function"}), "tool_choice"),
        (_body(reasoning="high"), "reasoning"),
        (_body(text="json"), "text"),
        (_body(text={"format": {"type": "yaml"}}), "text"),
        (_body(max_output_tokens="many"), "max_output_tokens"),
    ],
)
def test_decode_request_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as exc:
        R.decode_request(body)
    assert (exc.value.error.status, exc.value.error.type, exc.value.error.param) == (
        400,
        "invalid_request_error",
        param,
    )


def test_previous_response_id_says_why() -> None:
    with pytest.raises(TranslationError) as exc:
        R.decode_request(_body(previous_response_id="resp_1"))
    assert "statelessly" in exc.value.error.message and "full conversation" in exc.value.error.message
    with pytest.raises(TranslationError):
        R.decode_request([])  # type: ignore[arg-type]


def test_codex_request_to_chat_and_anthropic_upstreams() -> None:
    """The Codex turn (§7.2) toward C and A: developer messages -> system, flattened namespace
    (``docs`` + ``__`` + its function's name), web_search dropped, custom apply_patch as a
    one-string-parameter function toward A, tool
    results right after their calls, encrypted reasoning not sent to foreign upstreams."""
    req = R.decode_request(load("decode_request/codex.json")["input"])
    chat = openai_chat.encode_request(req, EncodeOptions())
    assert chat["messages"][0] == {
        "role": "system",
        "content": "You are Codex, a coding agent based on GPT-5.\n\n<permissions instructions>"
        "Filesystem sandboxing: workspace-write.</permissions instructions>",
    }
    assert [t.get("function", t.get("custom"))["name"] for t in chat["tools"]] == [
        "shell_command",
        "update_plan",
        "apply_patch",
        "docs__docs__search",
    ]
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user", "user", "assistant", "tool", "assistant", "tool", "assistant", "user"]
    assert chat["messages"][4]["tool_call_id"] == "call_K1" and chat["reasoning_effort"] == "medium"
    assert "gAAAAB" not in orjson.dumps(chat).decode()

    claude = anthropic_messages.encode_request(req, EncodeOptions())
    assert claude["system"][0]["text"].startswith("You are Codex")
    patch_tool = next(t for t in claude["tools"] if t["name"] == "apply_patch")
    assert patch_tool["input_schema"]["required"] == ["input"]
    assert all(b["type"] != "thinking" for m in claude["messages"] for b in m["content"])
    tool_uses = [b["id"] for m in claude["messages"] for b in m["content"] if b["type"] == "tool_use"]
    assert tool_uses == ["call_K1", "call_K2"]
    assert claude["thinking"]["type"] == "enabled" and claude["max_tokens"] > claude["thinking"]["budget_tokens"]


def test_chat_and_anthropic_requests_to_r() -> None:
    """C and A client requests decode and re-encode as R (the reverse direction)."""
    for module, rel in (
        (openai_chat, "openai_chat/decode_request/tool_history.json"),
        (anthropic_messages, "anthropic_messages/decode_request/claude_code.json"),
    ):
        req = module.decode_request(orjson.loads((ROOT / rel).read_bytes())["input"])
        body = R.encode_request(req, EncodeOptions())
        assert body["store"] is False and "messages" not in body
        calls = [i for i in body["input"] if i["type"] == "function_call"]
        assert all("id" not in c and c["call_id"] for c in calls)  # §5 row 17
        outputs = [i["call_id"] for i in body["input"] if i["type"].endswith("_output")]
        assert sorted(outputs) == sorted(c["call_id"] for c in calls)
        assert all(t["strict"] in (True, False) for t in body.get("tools", []) if t["type"] == "function")
        assert R.decode_request(body).messages  # what we write, we read


def test_reasoning_from_anthropic_survives_a_codex_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """§2.9 rule 2 / §4.4 step 6: an A thinking signature streamed to Codex comes back in the
    reasoning item's encrypted_content and reaches Anthropic intact on the next turn."""
    events: list[canonical.Event] = [
        Start(),
        BlockStart(0, Reasoning(provenance="anthropic_messages")),
        Delta(0, "reasoning", "plan"),
        Delta(0, "signature", "EqQBsig"),
        BlockStop(0),
        BlockStart(1, ToolCall("toolu_1", "shell_command")),
        Delta(1, "arguments", '{"command":"ls"}'),
        BlockStop(1),
        Finish("tool_use"),
        End(),
    ]
    frames = check_r_stream(R.StreamEncoder(StreamContext(model="m", client="codex")).encode(events), codex=True)
    items = [e["item"] for e in frames if e["type"] == "response.output_item.done"]
    assert items[1]["id"].startswith("fc_") and items[1]["call_id"] == "toolu_1"
    turn = {
        "model": "m",
        "input": [
            {"role": "user", "content": "list"},
            *items,
            {"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt"},
        ],
        "reasoning": {"effort": "high"},
    }
    req = R.decode_request(turn)
    assert req.messages[1].content[0] == Reasoning("plan", signature="EqQBsig", provenance="anthropic_messages")
    claude = anthropic_messages.encode_request(req, EncodeOptions())
    assert claude["messages"][1]["content"][0] == {"type": "thinking", "thinking": "plan", "signature": "EqQBsig"}
    assert claude["thinking"]["type"] == "enabled"
    assert R.sanitize_passthrough(turn) == [
        "dropped 1 reasoning item(s) carrying wireshift envelopes, not R encrypted_content"
    ]
    assert [i.get("type") for i in turn["input"]] == [None, "function_call", "function_call_output"]


def test_sanitize_passthrough_keeps_real_payloads() -> None:
    body = load("decode_request/codex.json")["input"]
    before = orjson.dumps(body)
    assert R.sanitize_passthrough(body) == [] and orjson.dumps(body) == before
    assert R.sanitize_passthrough({"input": "text"}) == []


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        (canonical.ReasoningConfig(budget_tokens=1024), {"effort": "low", "summary": "auto"}),
        (canonical.ReasoningConfig(budget_tokens=20000, summary="detailed"), {"effort": "high", "summary": "detailed"}),
        (canonical.ReasoningConfig(adaptive=True), {"effort": "medium", "summary": "auto"}),
        (canonical.ReasoningConfig(), {"summary": "auto"}),
        (canonical.ReasoningConfig(enabled=False, effort="none"), {"effort": "none"}),
        (canonical.ReasoningConfig(enabled=False), None),
        (None, None),
    ],
)
def test_encode_reasoning(reasoning: canonical.ReasoningConfig | None, expected: dict[str, Any] | None) -> None:
    req = CanonicalRequest(model="m", messages=[Message("user", [Text("x")])], reasoning=reasoning)
    body = R.encode_request(req, EncodeOptions())
    assert body.get("reasoning") == expected
    assert ("include" in body) == bool(expected and "summary" in expected)


def test_tool_choice_and_parallel_dropped_without_tools() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[Message("user", [Text("x")]), Message("user", [ToolResult("call_1", [Text("r")])])],
        tool_choice=canonical.ToolChoice("required"),
        parallel_tool_calls=False,
        stop=["END"],
    )
    body = R.encode_request(req, EncodeOptions())
    assert body == {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
            {"type": "function_call_output", "call_id": "call_1", "output": "r"},
        ],
        "store": False,
    }


def test_custom_format_and_namespaces_toward_r() -> None:
    """Toward an R upstream a custom tool keeps its ``format`` (the grammar), and namespace
    functions go as flat functions by their flat names, as do history calls and tool_choice."""
    body = load("decode_request/codex.json")["input"]
    call = {"type": "function_call", "call_id": "c9", "name": "docs__search", "namespace": "docs", "arguments": "{}"}
    body["input"] = [*body["input"], call]
    body["tool_choice"] = {"type": "function", "name": "docs__search", "namespace": "docs"}
    sent = R.encode_request(R.decode_request(body), EncodeOptions())
    assert next(t for t in sent["tools"] if t["type"] == "custom") == next(
        t for t in body["tools"] if t["type"] == "custom"
    )
    assert [(t["type"], t["name"]) for t in sent["tools"]][-1] == ("function", "docs__docs__search")
    assert sent["input"][-1] == {
        "type": "function_call",
        "call_id": "c9",
        "name": "docs__docs__search",
        "arguments": "{}",
    }
    assert sent["tool_choice"] == {"type": "function", "name": "docs__docs__search"}


def test_namespaced_calls_decode_to_flat_names() -> None:
    """An upstream call into a namespace tool (response output or stream) gets the flat name."""
    item = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "search", "namespace": "mcp__docs__"}
    call = ToolCall("c1", "mcp__docs__search", "{}", item_id="fc_1", namespace="mcp__docs__")
    assert R.decode_response({"status": "completed", "output": [{**item, "arguments": "{}"}]}).content == [call]
    added = orjson.dumps({"type": "response.output_item.added", "output_index": 0, "item": {**item, "arguments": ""}})
    start = BlockStart(0, dataclasses.replace(call, arguments=""))
    assert R.StreamDecoder().feed(SSEEvent(None, added))[-1] == start


@pytest.mark.parametrize(("given", "sent"), [(1, 16), (15, 16), (16, 16), (4096, 4096)])
def test_max_output_tokens_is_at_least_16(given: int, sent: int) -> None:
    """OpenAI rejects ``max_output_tokens`` below 16 (Claude Code's quota probe asks for 1)."""
    req = CanonicalRequest(model="m", messages=[Message("user", [Text("x")])], max_tokens=given)
    assert R.encode_request(req, EncodeOptions())["max_output_tokens"] == sent


# --------------------------------------------------------------------------- response behaviour


@pytest.mark.parametrize(
    ("stop", "calls", "status", "reason"),
    [
        ("end_turn", False, "completed", None),
        ("tool_use", True, "completed", None),
        ("stop_sequence", False, "completed", None),
        ("pause_turn", False, "completed", None),
        ("max_tokens", True, "incomplete", "max_output_tokens"),
        ("model_context_window_exceeded", False, "incomplete", "max_output_tokens"),
        ("content_filter", False, "incomplete", "content_filter"),
        ("refusal", False, "incomplete", "content_filter"),
        (None, False, "completed", None),
    ],
)
def test_encode_response_status(stop: Any, calls: bool, status: str, reason: str | None) -> None:
    content: list[canonical.Block] = [ToolCall("call_1", "f")] if calls else [Text("x")]
    body = R.encode_response(CanonicalResponse(content=content, stop_reason=stop), StreamContext(model="m"))
    assert body["status"] == status
    assert body["incomplete_details"] == ({"reason": reason} if reason else None)
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    if calls:
        assert body["output"][0] == {
            "id": "fc_gen1",
            "type": "function_call",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
            "status": "completed",
        }
    Response.model_validate(body)
    back = {None: "tool_use" if calls else "end_turn", "max_output_tokens": "max_tokens"}.get(reason, reason)
    assert R.decode_response(body).stop_reason == back


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ({"code": "rate_limit_exceeded", "message": "slow"}, 429, "rate_limit_exceeded"),
        ({"code": "server_error", "message": "boom"}, 500, "server_error"),
        ({"code": "insufficient_quota", "message": "pay"}, 429, "insufficient_quota"),
        ({"code": "context_length_exceeded", "message": "big"}, 400, "context_length_exceeded"),
        (None, 500, None),
    ],
)
def test_failed_responses(error: dict[str, Any] | None, status: int, code: str | None) -> None:
    body = {"id": "resp_1", "status": "failed", "error": error, "output": []}
    with pytest.raises(TranslationError) as exc:
        R.decode_response(body)
    assert (exc.value.error.status, exc.value.error.code) == (status, code)
    dec = R.StreamDecoder()
    events = dec.feed(SSEEvent(None, orjson.dumps({"type": "response.failed", "response": body})))
    assert isinstance(events[-1], ErrorEvent) and (events[-1].error.status, events[-1].error.code) == (status, code)
    assert dec.close() == [] and dec.feed(SSEEvent(None, b'{"type":"response.completed"}')) == []


def test_blank_text_is_no_message_item() -> None:
    """As in the stream, blank text is no (empty) assistant message (§5 row 5)."""
    resp = CanonicalResponse(content=[Text(" \n"), ToolCall("call_1", "f"), Text("")], stop_reason="tool_use")
    body = R.encode_response(resp, StreamContext(model="m", client="codex"))
    assert [i["type"] for i in body["output"]] == ["function_call"] and body["output_text"] == ""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CanonicalError.of(400, "too long", code="context_length_exceeded"), "context_length_exceeded"),
        (CanonicalError.of(402, "pay"), "insufficient_quota"),
        (CanonicalError.of(403, "upgrade", code="usage_not_included"), "usage_not_included"),
        (CanonicalError.of(429, "slow"), "rate_limit_exceeded"),
        (CanonicalError.of(400, "flagged", code="invalid_prompt"), "invalid_prompt"),
        (CanonicalError.of(400, "bad value", code="invalid_value"), "invalid_request_error"),
        (CanonicalError.of(404, "no such model"), "invalid_request_error"),
        (CanonicalError.of(529, "Overloaded"), "server_error"),
        (CanonicalError.of(502, "cut", code="bad_gateway"), "server_error"),
    ],
)
def test_failed_stream_codes(error: CanonicalError, code: str) -> None:
    """``response.failed`` passes the codes Codex classifies through (§4.1, §6.2); any other 4xx
    is ``invalid_request_error``, not a retryable ``server_error``."""
    raw = R.StreamEncoder(StreamContext(model="m", client="codex")).encode([Start(), ErrorEvent(error)])
    assert check_r_stream(raw, codex=True)[-1]["response"]["error"]["code"] == code
    sdk_accumulate(raw)


def test_decode_response_rejects_non_responses() -> None:
    for body in ([], {"id": "x"}):
        with pytest.raises(TranslationError) as exc:
            R.decode_response(body)  # type: ignore[arg-type]
        assert exc.value.error.status == 502


def test_errors_share_the_openai_envelope() -> None:
    body = b'{"error":{"message":"slow down","code":"rate_limit_exceeded"}}'
    assert R.decode_error(429, body) == openai_chat.decode_error(429, body)
    err = CanonicalError.of(529, "Overloaded")
    assert R.encode_error(err) == openai_chat.encode_error(err) and R.encode_error(err)[0] == 503


# --------------------------------------------------------------------------- stream behaviour


def test_stream_encoder_edges() -> None:
    enc = R.StreamEncoder(StreamContext(model="m", response_id="resp_x"))
    assert enc.encode([]) == b""
    first = enc.encode([KeepAlive()])
    assert first.endswith(b": keep-alive\n\n") and first.count(b"event: ") == 2  # created + in_progress first
    assert enc.encode([Delta(5, "text", "no open block"), UsageEvent(Usage(input_tokens=1))]) == b""
    blank = [BlockStart(0, Text("")), Delta(0, "arguments", "wrong kind"), Delta(0, "text", " \n"), BlockStop(0)]
    assert enc.encode(blank) == b""  # a message item is announced on its first non-blank text (§5 row 5)
    opened = enc.encode([BlockStart(1, Text("\n")), Delta(1, "text", "Hi")])
    assert opened.count(b"event: ") == 3 and b'"output_index":0' in opened and b'"delta":"\\nHi"' in opened
    tail = enc.encode([ErrorEvent(CanonicalError.of(400, "bad", code="context_length_exceeded")), End()])
    failed = orjson.loads(tail.split(b"data: ")[-1])
    assert failed["response"]["error"] == {"code": "context_length_exceeded", "message": "bad"}
    assert failed["response"]["output"] == []  # the open message was abandoned
    assert enc.encode([Start(), End()]) == b""


def test_stream_decoder_edges() -> None:
    dec = R.StreamDecoder()
    assert dec.feed(SSEEvent(None, b"")) == [] and dec.feed(SSEEvent(None, b"[DONE]")) == []
    created = dec.feed(SSEEvent("response.created", b'{"response":{"id":"resp_1","model":"m"}}'))
    assert created == [Start("resp_1", "m")]
    assert dec.feed(SSEEvent(None, b'{"type":"response.in_progress","response":{}}')) == []
    events = dec.feed(SSEEvent(None, b'{"type":"response.output_text.delta","output_index":0,"delta":"x"}'))
    assert events == [BlockStart(0, Text("")), Delta(0, "text", "x")]
    nameless = {"type": "response.output_item.done", "output_index": 1, "item": {"type": "function_call"}}
    assert dec.feed(SSEEvent(None, orjson.dumps(nameless))) == []  # a call without a name cannot run
    assert dec.close() == [ErrorEvent(CanonicalError.of(502, "upstream stream ended before completion"))]
    lone_error = R.StreamDecoder().feed(SSEEvent("error", b'{"message":"Overloaded","code":"server_error"}'))
    assert lone_error == [Start(), ErrorEvent(CanonicalError.of(500, "Overloaded", code="server_error"))]


# --------------------------------------------------------------------------- fuzz (as tests/unit/test_fuzz.py)

R_REQUEST: dict[str, Any] = orjson.loads((FIXTURES / "decode_request/codex.json").read_bytes())["input"]
R_RESPONSE: dict[str, Any] = orjson.loads((FIXTURES / "response/r_upstream_reasoning_tools.json").read_bytes())["wire"]
R_EVENTS = [
    orjson.loads(ev.data)
    for ev in SSEDecoder().feed((FIXTURES / "stream_decode/openai_reasoning_text_tools.sse").read_bytes())
]
TARGETS = (R, openai_chat, anthropic_messages)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(paths(R_REQUEST)), JUNK)
def test_requests_never_crash(path: tuple[Any, ...], value: Any) -> None:
    try:
        req = R.decode_request(mutate(R_REQUEST, path, value))
    except TranslationError:
        return
    for target in TARGETS:
        try:
            target.encode_request(req, EncodeOptions(include_extra=target is R))
        except TranslationError:
            pass


HUGE = 2**64 - 1


@pytest.mark.parametrize(
    ("module", "usage"),
    [
        (R, {"input_tokens": HUGE, "output_tokens": HUGE, "output_tokens_details": {"reasoning_tokens": HUGE}}),
        (openai_chat, {"prompt_tokens": HUGE, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": -1}}),
        (anthropic_messages, {"input_tokens": HUGE, "output_tokens": -5, "cache_read_input_tokens": HUGE}),
    ],
)
def test_huge_token_counts_are_clamped(module: Any, usage: dict[str, Any]) -> None:
    """Upstream token counts are clamped to 0..2**53, so no encoder meets a sum orjson cannot write."""
    decoded = module._decode_usage(usage)
    assert all(0 <= n <= 2**53 for n in dataclasses.astuple(decoded) if n is not None)
    resp = CanonicalResponse(content=[Text("x")], stop_reason="end_turn", usage=decoded)
    for target in TARGETS:
        orjson.dumps(target.encode_response(resp, StreamContext(model="m")))
        target.StreamEncoder(StreamContext(model="m")).encode(canonical.response_to_events(resp))


def test_upstream_responses_never_crash() -> None:
    for mutated in sweep(R_RESPONSE):
        try:
            resp = R.decode_response(mutated)
        except (TranslationError, ValueError):
            continue
        for target in TARGETS:
            target.encode_response(resp, StreamContext(model="m"))


@pytest.mark.parametrize("position", range(len(R_EVENTS)))
def test_stream_events_never_crash(position: int) -> None:
    for mutated in sweep(R_EVENTS[position]):
        dec = R.StreamDecoder()
        events: list[canonical.Event] = []
        for i, event in enumerate(R_EVENTS):
            events += dec.feed(SSEEvent(None, orjson.dumps(mutated if i == position else event)))
        events += dec.close()
        check_grammar(events)
        for target in TARGETS:
            target.StreamEncoder(StreamContext(model="m", client="codex")).encode(events)


def test_through_the_pipeline() -> None:
    """``translators.pipeline`` drives the module by format name: an A stream cut mid-frame still
    ends in a valid R stream for Codex (``response.failed``), and a whole R body replays as a stream."""
    raw = (ROOT / "anthropic_messages/stream_decode/cut_mid_frame.sse").read_bytes()
    translator = StreamTranslator("anthropic_messages", R.FORMAT, StreamContext(model="m", client="codex"))
    out = b"".join(translator.feed(raw[i : i + 7]) for i in range(0, len(raw), 7)) + translator.close()
    assert check_r_stream(out, codex=True)[-1]["type"] == "response.failed"
    body = orjson.dumps(load("response/r_upstream_reasoning_tools.json")["wire"])
    replay, resp = synthesize_stream(R.FORMAT, R.FORMAT, body, StreamContext(model="m"))
    assert check_r_stream(replay)[-1]["response"]["output"][0]["encrypted_content"] == "gAAAAenc"
    assert sdk_accumulate(replay).output_text == "Checking both cities." and resp.stop_reason == "tool_use"
