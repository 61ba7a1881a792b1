"""Golden and behaviour tests for translators.openai_chat (OpenAI Chat Completions codec).

Fixtures live in tests/fixtures/openai_chat/. Canonical objects are stored as tagged dicts:
``{"_type": "<canonical class>", <non-default fields>}`` (see ``to_tagged`` / ``from_tagged``).
Ids minted with ``new_id`` are deterministic (``<prefix>gen<n>``) and ``created`` is fixed, so
outputs are asserted exactly.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.canonical_json import from_tagged, to_tagged
from translators import canonical, openai_chat
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
    Start,
    StreamContext,
    Text,
    ToolCall,
    TranslationError,
    Usage,
    UsageEvent,
)
from translators.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openai_chat"
NOW = 1_700_000_000


# --------------------------------------------------------------------------- helpers


def load(rel: str) -> Any:
    return orjson.loads((FIXTURES / rel).read_bytes())


def names(sub: str, ext: str = ".json") -> list[str]:
    return sorted(p.stem for p in (FIXTURES / sub).glob(f"*{ext}"))


@pytest.fixture(autouse=True)
def deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Minted ids become ``<prefix>gen1``, ``<prefix>gen2``…; ``created`` is fixed."""
    reset_ids(monkeypatch)
    monkeypatch.setattr(openai_chat, "_now", lambda: NOW)


def reset_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)
    monkeypatch.setattr(openai_chat, "new_id", lambda prefix, nbytes=12: f"{prefix}gen{next(counter)}")


def decode_sse(raw: bytes, splits: list[int] | None = None) -> list[canonical.Event]:
    """Run raw SSE bytes through SSEDecoder + StreamDecoder, optionally split at ``splits``."""
    sse, dec = SSEDecoder(), openai_chat.StreamDecoder()
    bounds = [0, *(splits or []), len(raw)]
    events: list[canonical.Event] = []
    for a, b in itertools.pairwise(bounds):
        for ev in sse.feed(raw[a:b]):
            events += dec.feed(ev)
    for ev in sse.close():
        events += dec.feed(ev)
    return events + dec.close()


def check_grammar(events: list[canonical.Event]) -> None:
    """The canonical stream invariants of canonical.py's module docstring."""
    assert events, "a stream must end with a terminal event"
    *body, last = events
    assert isinstance(last, (End, ErrorEvent))
    assert not any(isinstance(e, (End, ErrorEvent)) for e in body)
    if isinstance(last, ErrorEvent) and not body:
        return  # failed before anything was decoded
    assert isinstance(body[0], Start) and not any(isinstance(e, Start) for e in body[1:])
    open_index, next_index, finished = None, 0, False
    for e in body[1:]:
        if isinstance(e, BlockStart):
            assert open_index is None and e.index == next_index and not finished
            open_index, next_index = e.index, next_index + 1
        elif isinstance(e, Delta):
            assert e.index == open_index
        elif isinstance(e, BlockStop):
            assert e.index == open_index
            open_index = None
        elif isinstance(e, Finish):
            assert open_index is None and not finished
            finished = True
    if isinstance(last, End):
        assert finished and open_index is None


# --------------------------------------------------------------------------- golden: requests


@pytest.mark.parametrize("name", names("decode_request"))
def test_decode_request_golden(name: str) -> None:
    fx = load(f"decode_request/{name}.json")
    assert to_tagged(openai_chat.decode_request(fx["input"])) == fx["canonical"]


@pytest.mark.parametrize("name", names("encode_request"))
def test_encode_request_golden(name: str) -> None:
    fx = load(f"encode_request/{name}.json")
    req = from_tagged(fx["canonical"])
    assert isinstance(req, CanonicalRequest)
    assert openai_chat.encode_request(req, EncodeOptions(**fx["options"])) == fx["expected"]


# --------------------------------------------------------------------------- golden: responses


@pytest.mark.parametrize("name", names("response"))
def test_response_golden(name: str) -> None:
    fx = load(f"response/{name}.json")
    if "wire" in fx:
        assert to_tagged(openai_chat.decode_response(fx["wire"])) == fx["canonical"]
    resp = from_tagged(fx["canonical"])
    assert isinstance(resp, CanonicalResponse)
    assert openai_chat.encode_response(resp, StreamContext(**fx["ctx"])) == fx["encoded"]


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
def test_stream_encode_golden(name: str) -> None:
    fx = load(f"stream_encode/{name}.json")
    events = from_tagged(fx["events"])
    expected = (FIXTURES / f"stream_encode/{name}.sse").read_bytes()
    assert openai_chat.StreamEncoder(StreamContext(**fx["ctx"])).encode(events) == expected
    # one event per encode() call gives the same bytes
    enc = openai_chat.StreamEncoder(StreamContext(**fx["ctx"]))
    assert b"".join(enc.encode([e]) for e in events) == expected


def test_stream_encode_output_is_valid_chunks() -> None:
    """Every frame of every encode fixture is a well-formed chunk with one id and dense tool indices."""
    for name in names("stream_encode"):
        raw = (FIXTURES / f"stream_encode/{name}.sse").read_bytes()
        frames = [ev.data for ev in SSEDecoder().feed(raw) if not ev.data.startswith(b"[DONE]")]
        chunks = [orjson.loads(f) for f in frames if not f.startswith(b'{"error"')]
        assert len({c["id"] for c in chunks}) <= 1
        seen: list[int] = []
        for c in chunks:
            assert c["object"] == "chat.completion.chunk" and c["created"] == NOW
            for choice in c["choices"]:
                for tc in choice["delta"].get("tool_calls", []):
                    if "id" in tc:
                        assert tc["index"] == len(seen)
                        seen.append(tc["index"])
                    else:
                        assert tc["index"] in seen


# --------------------------------------------------------------------------- request behaviour


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 3}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web"}]}, "tools"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "x"}},
            "response_format",
        ),
        ({"model": "m", "messages": [{"role": "tool", "content": "orphan"}]}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages",
        ),
    ],
)
def test_decode_request_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as exc:
        openai_chat.decode_request(body)
    assert exc.value.error.status == 400
    assert exc.value.error.type == "invalid_request_error"
    assert exc.value.error.param == param


def test_decode_request_non_object() -> None:
    with pytest.raises(TranslationError) as exc:
        openai_chat.decode_request([])  # type: ignore[arg-type]
    assert exc.value.error.status == 400


def test_encode_request_document_url_rejected() -> None:
    req = CanonicalRequest(model="m", messages=[Message("user", [canonical.Document(url="https://x/a.pdf")])])
    with pytest.raises(TranslationError) as exc:
        openai_chat.encode_request(req, EncodeOptions())
    assert exc.value.error.param == "messages"


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (canonical.ReasoningConfig(budget_tokens=1024), "low"),
        (canonical.ReasoningConfig(budget_tokens=1025), "medium"),
        (canonical.ReasoningConfig(budget_tokens=8192), "medium"),
        (canonical.ReasoningConfig(budget_tokens=8193), "high"),
        (canonical.ReasoningConfig(adaptive=True), "medium"),
        (canonical.ReasoningConfig(adaptive=True, effort="low"), "low"),
        (canonical.ReasoningConfig(enabled=False, budget_tokens=4000), None),
        (canonical.ReasoningConfig(enabled=False, effort="none"), "none"),
    ],
)
def test_encode_reasoning_effort(reasoning: canonical.ReasoningConfig, effort: str | None) -> None:
    req = CanonicalRequest(model="m", messages=[Message("user", [Text("x")])], reasoning=reasoning)
    assert openai_chat.encode_request(req, EncodeOptions()).get("reasoning_effort") == effort


def test_tool_choice_dropped_without_tools() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[Message("user", [Text("x")])],
        tool_choice=canonical.ToolChoice("required"),
        parallel_tool_calls=False,
    )
    body = openai_chat.encode_request(req, EncodeOptions(stream_usage=True))
    assert body == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_request_encoding_is_a_fixpoint() -> None:
    """C -> canonical -> C is stable after one pass (joins and placeholders are not re-applied)."""
    opts = EncodeOptions(max_tokens_field="max_completion_tokens", include_extra=True)
    for name in names("decode_request"):
        once = openai_chat.encode_request(
            openai_chat.decode_request(load(f"decode_request/{name}.json")["input"]), opts
        )
        twice = openai_chat.encode_request(openai_chat.decode_request(once), opts)
        assert twice == once, name


def test_thinking_blocks_round_trip_through_response() -> None:
    """Reasoning sent to a C client as thinking_blocks comes back with provenance and payloads."""
    blocks: list[canonical.Block] = [
        Reasoning("signed", signature="sig-A", provenance="anthropic_messages"),
        Reasoning(redacted="blob", provenance="anthropic_messages"),
        Reasoning("from R", encrypted_content="enc", item_id="rs_9", provenance="openai_responses"),
        Text("answer"),
    ]
    wire = openai_chat.encode_response(CanonicalResponse(content=blocks), StreamContext(model="m"))
    message = wire["choices"][0]["message"]
    assert message["reasoning_content"] == "signedfrom R"
    history = {"model": "m", "messages": [{"role": "user", "content": "q"}, message]}
    assert openai_chat.decode_request(history).messages[1].content == blocks


# --------------------------------------------------------------------------- response behaviour


def test_decode_response_without_choices() -> None:
    with pytest.raises(TranslationError) as exc:
        openai_chat.decode_response({"error": {"message": "boom"}})
    assert exc.value.error.status == 502 and exc.value.error.message == "boom"
    with pytest.raises(TranslationError):
        openai_chat.decode_response({"choices": []})


@pytest.mark.parametrize(
    ("stop", "calls", "finish"),
    [
        ("end_turn", False, "stop"),
        ("stop_sequence", False, "stop"),
        ("pause_turn", False, "stop"),
        ("max_tokens", False, "length"),
        ("model_context_window_exceeded", False, "length"),
        ("tool_use", True, "tool_calls"),
        ("tool_use", False, "stop"),
        ("end_turn", True, "tool_calls"),
        ("refusal", False, "content_filter"),
        ("content_filter", False, "content_filter"),
        ("error", False, "stop"),
        (None, False, "stop"),
    ],
)
def test_encode_response_finish_reason(stop: Any, calls: bool, finish: str) -> None:
    content: list[canonical.Block] = [ToolCall("call_1", "f", "{}")] if calls else [Text("x")]
    resp = CanonicalResponse(content=content, stop_reason=stop)
    assert openai_chat.encode_response(resp, StreamContext(model="m"))["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    ("finish", "calls", "stop"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("content_filter", False, "content_filter"),
        (None, False, "end_turn"),
        ("tool_calls", False, "end_turn"),
        ("stop", True, "tool_use"),
        ("something_new", False, "end_turn"),
    ],
)
def test_decode_response_stop_reason(finish: Any, calls: bool, stop: str) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": "x"}
    if calls:
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    body = {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    assert openai_chat.decode_response(body).stop_reason == stop


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"error":{"message":"Unsupported parameter: max_tokens","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}',
            CanonicalError(
                400, "invalid_request_error", "Unsupported parameter: max_tokens", "max_tokens", "unsupported_parameter"
            ),
        ),
        (
            400,
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens.","type":"invalid_request_error","code":null}}',
            CanonicalError(
                400,
                "invalid_request_error",
                "This model's maximum context length is 8192 tokens.",
                None,
                "context_length_exceeded",
            ),
        ),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}',
            CanonicalError(529, "overloaded_error", "Overloaded"),
        ),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}',
            CanonicalError(
                400,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
                None,
                "context_length_exceeded",
            ),
        ),
        (401, b'{"error":"invalid key"}', CanonicalError(401, "authentication_error", "invalid key")),
        (502, b"  <html>Bad Gateway</html>\n", CanonicalError(502, "api_error", "<html>Bad Gateway</html>")),
        (503, b"", CanonicalError(503, "overloaded_error", "upstream returned HTTP 503")),
        (
            429,
            b'{"error":{"message":"slow down","code":"rate_limit_exceeded"}}',
            CanonicalError(429, "rate_limit_error", "slow down", None, "rate_limit_exceeded"),
        ),
        (418, b"[1,2]", CanonicalError(418, "invalid_request_error", "[1,2]")),
    ],
)
def test_decode_error(status: int, body: bytes, expected: CanonicalError) -> None:
    assert openai_chat.decode_error(status, body) == expected


def test_decode_error_truncates_text() -> None:
    err = openai_chat.decode_error(500, b"x" * 2000)
    assert err.message == "x" * 500 and err.type == "api_error"


@pytest.mark.parametrize(
    ("err", "status", "payload"),
    [
        (
            CanonicalError.of(529, "Overloaded"),
            503,
            {"message": "Overloaded", "type": "server_error", "param": None, "code": None},
        ),
        (
            CanonicalError.of(429, "Rate limited.", retry_after="20"),
            429,
            {
                "message": "Rate limited. Please try again in 20s.",
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limit_exceeded",
            },
        ),
        (
            CanonicalError.of(429, "Rate limited.", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
            429,
            {"message": "Rate limited.", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"},
        ),
        (
            CanonicalError.of(401, "bad key"),
            401,
            {"message": "bad key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"},
        ),
        (
            CanonicalError.of(403, "nope"),
            403,
            {"message": "nope", "type": "permission_error", "param": None, "code": None},
        ),
        (
            CanonicalError.of(404, "no such model"),
            404,
            {"message": "no such model", "type": "invalid_request_error", "param": None, "code": "model_not_found"},
        ),
        (
            CanonicalError.of(402, "credit balance too low"),
            429,
            {
                "message": "credit balance too low",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            },
        ),
        (
            CanonicalError.of(413, "too long", code="context_length_exceeded"),
            400,
            {"message": "too long", "type": "invalid_request_error", "param": None, "code": "context_length_exceeded"},
        ),
        (
            CanonicalError.of(400, "bad n", param="n"),
            400,
            {"message": "bad n", "type": "invalid_request_error", "param": "n", "code": None},
        ),
        (
            CanonicalError.of(504, "timeout"),
            504,
            {"message": "timeout", "type": "server_error", "param": None, "code": None},
        ),
    ],
)
def test_encode_error(err: CanonicalError, status: int, payload: dict[str, Any]) -> None:
    got_status, body = openai_chat.encode_error(err)
    assert (got_status, orjson.loads(body)) == (status, {"error": payload})


# --------------------------------------------------------------------------- stream decoder behaviour


def _feed(dec: openai_chat.StreamDecoder, *chunks: Any) -> list[canonical.Event]:
    out: list[canonical.Event] = []
    for c in chunks:
        out += dec.feed(SSEEvent(None, c if isinstance(c, bytes) else orjson.dumps(c)))
    return out


def test_stream_done_without_finish_is_a_clean_end() -> None:
    dec = openai_chat.StreamDecoder()
    events = _feed(dec, {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}]}, b"[DONE]")
    assert events[-2:] == [Finish("end_turn"), End()]
    assert dec.close() == [] and _feed(dec, {"choices": []}) == []


def test_stream_done_before_any_chunk_is_an_error() -> None:
    events = _feed(openai_chat.StreamDecoder(), b"[DONE]")
    assert len(events) == 1 and isinstance(events[0], ErrorEvent) and events[0].error.status == 502


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"error": {"message": "Overloaded", "type": "overloaded_error"}}, 529, None),
        ({"error": {"message": "rate", "code": 429}}, 429, None),
        ({"error": {"message": "quota", "code": "insufficient_quota"}}, 429, "insufficient_quota"),
        ({"error": {"message": "oops"}}, 500, None),
        (
            {"error": {"message": "ctx", "status": 400, "code": "context_length_exceeded"}},
            400,
            "context_length_exceeded",
        ),
    ],
)
def test_stream_error_status(payload: dict[str, Any], status: int, code: str | None) -> None:
    dec = openai_chat.StreamDecoder()
    events = _feed(dec, {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]}, payload)
    last = events[-1]
    assert isinstance(last, ErrorEvent) and (last.error.status, last.error.code) == (status, code)
    assert dec.close() == []


def test_stream_usage_snapshots_deduplicated_and_other_choices_ignored() -> None:
    dec = openai_chat.StreamDecoder()
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    events = _feed(
        dec,
        {"id": "c", "choices": [{"index": 1, "delta": {"content": "other choice"}}], "usage": usage},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}], "usage": usage},
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    )
    assert [e for e in events if isinstance(e, UsageEvent)] == [
        UsageEvent(Usage(input_tokens=3, output_tokens=1)),
        UsageEvent(Usage(input_tokens=3, output_tokens=2)),
    ]
    assert not any(isinstance(e, Delta) and e.value == "other choice" for e in events)
    assert dec.close() == [End()]


def test_stream_text_during_tool_call_is_kept_for_the_end() -> None:
    """Text arriving while a call's arguments are still streaming must not split the call's block."""
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":'}}
    events = _feed(
        openai_chat.StreamDecoder(),
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "note "}}]},
        {
            "id": "c",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}],
        },
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "tool_calls"}]},
        b"[DONE]",
    )
    assert events[1:] == [
        BlockStart(0, ToolCall("call_1", "f")),
        Delta(0, "arguments", '{"a":'),
        Delta(0, "arguments", "1}"),
        BlockStop(0),
        BlockStart(1, Text("")),
        Delta(1, "text", "note end"),
        BlockStop(1),
        Finish("tool_use"),
        End(),
    ]


# --------------------------------------------------------------------------- stream encoder behaviour


def test_stream_encoder_nothing_to_write() -> None:
    enc = openai_chat.StreamEncoder(StreamContext(model="m", response_id="chatcmpl-x"))
    assert enc.encode([]) == b""
    assert enc.encode([UsageEvent(Usage(input_tokens=1))]) == b""
    assert enc.encode([Delta(0, "signature", "sig")]) == b""
    assert enc.encode([KeepAlive()]) == b": keep-alive\n\n"
    enc.encode([ErrorEvent(CanonicalError.of(500, "x"))])
    assert enc.encode([Finish("end_turn"), End()]) == b""


def test_stream_encoder_mints_one_id() -> None:
    enc = openai_chat.StreamEncoder(StreamContext(model="m"))
    raw = enc.encode([Start(), BlockStart(0, Text("")), Delta(0, "text", "a"), BlockStop(0), Finish("end_turn"), End()])
    ids = {orjson.loads(ev.data)["id"] for ev in SSEDecoder().feed(raw) if ev.data != b"[DONE]"}
    assert ids == {"chatcmpl-gen1"}


# --------------------------------------------------------------------------- review fixes


def _chunk(*calls: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    delta = {"tool_calls": list(calls)} if calls else {}
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _fn(name: str | None = None, arguments: Any = None, **kw: Any) -> dict[str, Any]:
    spec = {k: v for k, v in (("name", name), ("arguments", arguments)) if v is not None}
    return {"type": "function", "function": spec, **kw}


def _calls(events: list[canonical.Event]) -> list[tuple[str, str]]:
    """(name, joined arguments) per tool block, checking the stream grammar on the way."""
    check_grammar(events)
    out: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, BlockStart) and isinstance(e.block, ToolCall):
            out[e.index] = [e.block.name, ""]
        elif isinstance(e, Delta) and e.kind == "arguments":
            out[e.index][1] += e.value
    return [(name, args) for name, args in out.values()]


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(
            [
                _chunk(_fn("Read", '{"p":1}', index=0)),
                _chunk(_fn("Glob", '{"q":2}', index=0)),
            ],
            id="same-index-no-ids",
        ),
        pytest.param([_chunk(_fn("Read", '{"p":1}'), _fn("Glob", '{"q":2}'))], id="one-array-no-index"),
        pytest.param(
            [
                _chunk(_fn("Read", '{"p":', index=0)),
                _chunk(_fn(None, "1}", index=0)),
                _chunk(_fn("Glob", '{"q":2}', index=0, id="call_g")),
            ],
            id="same-index-new-name-with-id",
        ),
    ],
)
def test_stream_parallel_calls_sharing_an_index_without_ids(chunks: list[dict[str, Any]]) -> None:
    """§5 row 2: a second name at the same slot (no id, or another id) is a second call; entries
    without ``index`` in one ``tool_calls`` array are keyed by position."""
    events = _feed(openai_chat.StreamDecoder(), *chunks, _chunk(finish="tool_calls"), b"[DONE]")
    assert _calls(events) == [("Read", '{"p":1}'), ("Glob", '{"q":2}')]
    assert events[-2:] == [Finish("tool_use"), End()]


def test_stream_repeated_name_and_id_stay_one_call() -> None:
    """Upstreams that repeat the id (or, without ids, the name) on every fragment of one call."""
    with_id = [_chunk(_fn("Read", '{"p":', index=0, id="call_1")), _chunk(_fn("Read", "1}", index=0, id="call_1"))]
    without_id = [_chunk(_fn("Read", '{"p":', index=0)), _chunk(_fn("Read", "1}", index=0))]
    for chunks in (with_id, without_id):
        events = _feed(openai_chat.StreamDecoder(), *chunks, _chunk(finish="tool_calls"), b"[DONE]")
        assert _calls(events) == [("Read", '{"p":1}')]


@pytest.mark.parametrize(("arguments", "text"), [({"command": "ls -la"}, '{"command":"ls -la"}'), ([1, 2], "[1,2]")])
def test_stream_object_arguments_are_serialised(arguments: Any, text: str) -> None:
    """§5 row 1: arguments sent as a JSON value, not a string, are kept (compact, as decode_response does)."""
    events = _feed(
        openai_chat.StreamDecoder(),
        _chunk(_fn("Bash", arguments, index=0, id="call_1")),
        _chunk(finish="tool_calls"),
        b"[DONE]",
    )
    assert _calls(events) == [("Bash", text)]
    wire = {"choices": [{"message": {"tool_calls": [_fn("Bash", arguments, id="call_1")]}}]}
    assert openai_chat.decode_response(wire).content == [ToolCall("call_1", "Bash", text)]


def _streamed_thinking_blocks(events: list[canonical.Event]) -> list[Any]:
    raw = openai_chat.StreamEncoder(StreamContext(model="m")).encode(events)
    chunks = [orjson.loads(ev.data) for ev in SSEDecoder().feed(raw) if ev.data != b"[DONE]"]
    return [b for c in chunks for choice in c["choices"] for b in choice["delta"].get("thinking_blocks", [])]


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([Reasoning("plan", signature="sig-A", provenance="anthropic_messages")], id="signed"),
        pytest.param([Reasoning(signature="sig-only", provenance="anthropic_messages")], id="signature-only"),
        pytest.param(
            [
                Reasoning("first", provenance="openai_chat"),
                Reasoning(redacted="blob", provenance="anthropic_messages"),
                Reasoning("after", provenance="openai_chat"),
            ],
            id="held-until-a-payload",
        ),
        pytest.param(
            [Reasoning("from R", encrypted_content="enc", item_id="rs_1", provenance="openai_responses")],
            id="encrypted",
        ),
        pytest.param(
            [Reasoning("R via signature delta", signature="enc", provenance="openai_responses")],
            id="foreign-signature",
        ),
        pytest.param([Reasoning("plain", provenance="openai_chat")], id="unsigned"),
    ],
)
def test_stream_thinking_blocks_match_the_json_response(blocks: list[canonical.Block]) -> None:
    """§4.3 step 4: a C stream exposes what ``encode_response`` puts in ``thinking_blocks`` (A
    signatures and redacted data as is, anything else enveloped), one entry per block at its close."""
    resp = CanonicalResponse(content=[*blocks, Text("answer")], stop_reason="end_turn")
    message = openai_chat.encode_response(resp, StreamContext(model="m"))["choices"][0]["message"]
    assert _streamed_thinking_blocks(canonical.response_to_events(resp)) == message.get("thinking_blocks", [])
    history = {"model": "m", "messages": [{"role": "user", "content": "q"}, message]}
    replayed = openai_chat.decode_request(history).messages[1].content
    for sent, back in zip(blocks, replayed, strict=False):
        assert isinstance(sent, Reasoning) and isinstance(back, Reasoning)
        if sent.provenance == "anthropic_messages":
            assert back == sent  # real signatures and redacted data come back verbatim
        elif "thinking_blocks" in message:  # foreign payloads only ever come back enveloped
            assert back.signature is None and back.encrypted_content == (sent.encrypted_content or sent.signature)


def test_stream_thinking_blocks_carry_the_whole_block() -> None:
    events: list[canonical.Event] = [
        Start(),
        BlockStart(0, Reasoning(provenance="anthropic_messages")),
        Delta(0, "reasoning", "a"),
        Delta(0, "reasoning", "b"),
        Delta(0, "signature", "s1"),
        Delta(0, "signature", "s2"),
        BlockStop(0),
        Finish("end_turn"),
        End(),
    ]
    assert _streamed_thinking_blocks(events) == [{"type": "thinking", "thinking": "ab", "signature": "s1s2"}]


def test_encode_request_sends_reasoning_text_only_to_c_upstreams() -> None:
    """§2.9 rule 2: A signatures (and wireshift envelopes) are not sent to C upstreams; C client
    requests carrying ``thinking_blocks`` still decode them."""
    signed = Reasoning("plan", signature="sig-A", provenance="anthropic_messages")
    history = [
        Message("user", [Text("q")]),
        Message("assistant", [signed, Reasoning(redacted="blob", provenance="anthropic_messages"), Text("a")]),
    ]
    body = openai_chat.encode_request(CanonicalRequest(model="m", messages=history), EncodeOptions())
    assert body["messages"][1] == {"role": "assistant", "content": "a", "reasoning_content": "plan"}
    client = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "a",
                "thinking_blocks": [{"type": "thinking", "thinking": "plan", "signature": "sig-A"}],
            },
        ],
    }
    assert openai_chat.decode_request(client).messages[1].content == [signed, Text("a")]


def test_sanitize_passthrough_changes_nothing() -> None:
    body = load("decode_request/thinking_blocks_refusal.json")["input"]
    before = orjson.dumps(body)
    assert openai_chat.sanitize_passthrough(body) == [] and orjson.dumps(body) == before
