"""Tests for translators.anthropic_messages (Anthropic Messages <-> canonical).

Golden fixtures live in tests/fixtures/anthropic_messages/. Canonical objects are stored as
tagged JSON (``{"_type": "Text", "text": ...}``, fields at their default omitted) so that
``Text`` and ``Refusal`` (same fields) stay distinguishable; comparisons are dataclass equality.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.canonical_json import from_tagged
from translators import anthropic_messages as am
from translators.canonical import (
    BlockStart,
    BlockStop,
    CanonicalError,
    CanonicalRequest,
    CanonicalResponse,
    Delta,
    Document,
    EncodeOptions,
    End,
    ErrorEvent,
    Event,
    Finish,
    Image,
    KeepAlive,
    Message,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Start,
    StreamContext,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    TranslationError,
    Usage,
    UsageEvent,
    pack_signature,
    unpack_signature,
)
from translators.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic_messages"


# --------------------------------------------------------------------------- helpers


def load(rel: str) -> Any:
    return orjson.loads((FIXTURES / rel).read_bytes())


def names(folder: str, ext: str = "json") -> list[str]:
    return sorted(p.stem for p in (FIXTURES / folder).glob(f"*.{ext}"))


def decode_stream(raw: bytes, splits: list[int] | None = None) -> list[Event]:
    """Run SSE bytes through SSEDecoder + StreamDecoder, optionally split into chunks."""
    sse, dec = SSEDecoder(), am.StreamDecoder()
    bounds = [0, *(splits or []), len(raw)]
    events: list[Event] = []
    for a, b in itertools.pairwise(bounds):
        for ev in sse.feed(raw[a:b]):
            events += dec.feed(ev)
    for ev in sse.close():
        events += dec.feed(ev)
    return events + dec.close()


def parse_frames(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """Split encoder output into (event name, data) pairs, asserting the frame layout."""
    assert raw.endswith(b"\n\n") or raw == b""
    frames = []
    for block in raw.split(b"\n\n")[:-1]:
        lines = block.split(b"\n")
        assert len(lines) == 2, block
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), block
        frames.append((lines[0][7:].decode(), orjson.loads(lines[1][6:])))
    return frames


def check_a_grammar(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """Assert the A stream invariants of wire-formats.md §4.1 on encoder output."""
    frames = parse_frames(raw)
    names_ = [name for name, _ in frames]
    for name, data in frames:
        assert name == data["type"], (name, data)
    assert names_.count("message_start") == 1 and names_[0] == "message_start"
    terminal = [i for i, n in enumerate(names_) if n in ("message_stop", "error")]
    assert len(terminal) == 1 and terminal[0] == len(frames) - 1, names_  # nothing after it
    open_index: int | None = None
    next_index = 0
    for name, data in frames:
        if name == "content_block_start":
            assert open_index is None, "two blocks open at once"
            assert data["index"] == next_index, "indices must be dense"
            open_index = data["index"]
            next_index += 1
            block = data["content_block"]
            if block["type"] == "text":
                assert block["text"] == ""
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta before the last content_block_stop"
    if names_[-1] == "message_stop":
        assert names_[-2] == "message_delta"
        assert names_.count("message_delta") == 1
    return frames


def assemble(frames: list[tuple[str | None, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Fold A stream frames into the content blocks a client SDK would build."""
    blocks: list[dict[str, Any]] = []
    for name, data in frames:
        if name == "content_block_start":
            blocks.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            blk, delta = blocks[-1], data["delta"]
            field = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}
            if delta["type"] == "input_json_delta":
                blk["_json"] = blk.get("_json", "") + delta["partial_json"]
            else:
                key = field[delta["type"]]
                blk[key] = blk.get(key, "") + delta[key]
    return blocks


# --------------------------------------------------------------------------- golden fixtures


@pytest.mark.parametrize("name", names("decode_request"))
def test_decode_request_golden(name: str) -> None:
    case = load(f"decode_request/{name}.json")
    assert am.decode_request(case["input"]) == from_tagged(case["expected"])


@pytest.mark.parametrize("name", names("encode_request"))
def test_encode_request_golden(name: str) -> None:
    case = load(f"encode_request/{name}.json")
    req = from_tagged(case["input"])
    assert isinstance(req, CanonicalRequest)
    assert am.encode_request(req, EncodeOptions(**case.get("options", {}))) == case["expected"]


def test_claude_code_request_translates_back_to_a() -> None:
    """A -> canonical -> A for Claude Code's real request shape (translated route, extras kept)."""
    source = load("decode_request/claude_code.json")["input"]
    expected = load("claude_code_reencoded.json")
    out = am.encode_request(am.decode_request(source), EncodeOptions(include_extra=True))
    assert out == expected


@pytest.mark.parametrize("name", names("decode_response"))
def test_decode_response_golden(name: str) -> None:
    case = load(f"decode_response/{name}.json")
    assert am.decode_response(case["input"]) == from_tagged(case["expected"])


@pytest.mark.parametrize("name", names("encode_response"))
def test_encode_response_golden(name: str) -> None:
    case = load(f"encode_response/{name}.json")
    resp = from_tagged(case["input"])
    assert isinstance(resp, CanonicalResponse)
    assert am.encode_response(resp, StreamContext(**case["context"])) == case["expected"]


@pytest.mark.parametrize("name", names("stream_decode", "sse"))
def test_stream_decode_golden(name: str) -> None:
    raw = (FIXTURES / "stream_decode" / f"{name}.sse").read_bytes()
    assert decode_stream(raw) == from_tagged(load(f"stream_decode/{name}.json"))


@pytest.mark.parametrize("name", names("stream_decode", "sse"))
def test_stream_decode_random_chunk_splits_match_single_feed(name: str) -> None:
    raw = (FIXTURES / "stream_decode" / f"{name}.sse").read_bytes()
    whole = decode_stream(raw)
    rng = random.Random(name)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(1, min(40, len(raw) - 1))))
        assert decode_stream(raw, cuts) == whole
    assert decode_stream(raw, list(range(1, len(raw)))) == whole  # one byte at a time


@pytest.mark.parametrize("name", names("stream_encode"))
def test_stream_encode_golden(name: str) -> None:
    case = load(f"stream_encode/{name}.json")
    enc = am.StreamEncoder(StreamContext(**case["context"]))
    events = from_tagged(case["events"])
    # feed in two batches to exercise state carried across encode() calls
    half = len(events) // 2
    out = enc.encode(events[:half]) + enc.encode(events[half:])
    assert out == (FIXTURES / "stream_encode" / f"{name}.sse").read_bytes()
    check_a_grammar(out)


# --------------------------------------------------------------------------- decode_request rules


def base_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    body.update(kw)
    return body


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "model"),
        ({"model": "", "messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": {}}, "messages"),
        (base_body(max_tokens="100"), "max_tokens"),
        (base_body(max_tokens=1.5), "max_tokens"),
        (base_body(max_tokens=True), "max_tokens"),
        (base_body(temperature="hot"), "temperature"),
        (base_body(messages=[{"role": "tool", "content": "x"}]), "messages"),
        (base_body(messages=[{"role": "user", "content": 5}]), "messages"),
        (base_body(messages=[{"role": "user", "content": ["x"]}]), "messages"),
        (base_body(system=[{"type": "image"}]), "system"),
        (base_body(tools={"name": "x"}), "tools"),
        (base_body(tools=[{"description": "no name"}]), "tools"),
        (base_body(tool_choice={"type": "required"}), "tool_choice"),
        (base_body(tool_choice={"type": "tool"}), "tool_choice"),
        (base_body(thinking={"type": "sometimes"}), "thinking"),
        (base_body(stop_sequences="END"), "stop_sequences"),
    ],
)
def test_decode_request_rejects_invalid_params(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as exc:
        am.decode_request(body)
    assert exc.value.error.status == 400
    assert exc.value.error.param == param


def test_decode_request_rejects_non_object_body() -> None:
    with pytest.raises(TranslationError) as exc:
        am.decode_request([1, 2])  # type: ignore[arg-type]
    assert exc.value.error.type == "invalid_request_error"


def test_decode_request_count_tokens_body_without_max_tokens() -> None:
    req = am.decode_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert req.max_tokens is None and req.include_usage is True


def test_leading_system_role_messages_join_system() -> None:
    req = am.decode_request(
        base_body(
            system="base",
            messages=[
                {"role": "system", "content": "lead"},
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "mid"}]},
            ],
        )
    )
    assert req.system == [Text("base"), Text("lead")]
    assert req.messages == [Message("user", [Text("hi")]), Message("system", [Text("mid")])]


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), None),
        ({"type": "any"}, ToolChoice("required"), None),
        ({"type": "none"}, ToolChoice("none"), None),
        ({"type": "tool", "name": "Bash"}, ToolChoice("tool", "Bash"), None),
        ({"type": "auto", "disable_parallel_tool_use": True}, ToolChoice("auto"), False),
        ({"type": "any", "disable_parallel_tool_use": False}, ToolChoice("required"), None),
    ],
)
def test_decode_tool_choice(choice: dict[str, Any], expected: ToolChoice, parallel: bool | None) -> None:
    req = am.decode_request(base_body(tool_choice=choice))
    assert req.tool_choice == expected
    assert req.parallel_tool_calls is parallel


@pytest.mark.parametrize(
    ("thinking", "output_config", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 31999}, None, ReasoningConfig(budget_tokens=31999)),
        ({"type": "adaptive"}, {"effort": "high"}, ReasoningConfig(adaptive=True, effort="high")),
        ({"type": "adaptive"}, None, ReasoningConfig(adaptive=True)),
        ({"type": "disabled"}, None, ReasoningConfig(enabled=False)),
        (None, {"effort": "low"}, ReasoningConfig(effort="low")),
        (None, None, None),
    ],
)
def test_decode_thinking(thinking: Any, output_config: Any, expected: ReasoningConfig | None) -> None:
    body = base_body()
    if thinking is not None:
        body["thinking"] = thinking
    if output_config is not None:
        body["output_config"] = output_config
    req = am.decode_request(body)
    assert req.reasoning == expected
    assert req.extra == {}  # effort-only output_config is fully mapped


def test_decode_request_signature_envelope_is_unpacked() -> None:
    sig = pack_signature(Reasoning(provenance="openai_responses", encrypted_content="gAAA", item_id="rs_1"))
    body = base_body(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": sig}]},
        ]
    )
    block = am.decode_request(body).messages[1].content[0]
    assert block == Reasoning(text="t", provenance="openai_responses", encrypted_content="gAAA", item_id="rs_1")


# --------------------------------------------------------------------------- encode_request rules


def encode(req: CanonicalRequest, **opts: Any) -> dict[str, Any]:
    return am.encode_request(req, EncodeOptions(**opts))


def user(*blocks: Any) -> Message:
    return Message("user", list(blocks))


def assistant(*blocks: Any) -> Message:
    return Message("assistant", list(blocks))


def test_tool_ids_are_sanitised_identically_on_call_and_result() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[
            user(Text("go")),
            assistant(ToolCall("functions.Bash:0", "Bash", '{"a":1}'), ToolCall("", "Read", "")),
            user(ToolResult("functions.Bash:0", [Text("ok")]), ToolResult("", [])),
        ],
    )
    msgs = encode(req)["messages"]
    assert [b["id"] for b in msgs[1]["content"]] == ["functions_Bash_0", "toolu_empty"]
    assert [b["tool_use_id"] for b in msgs[2]["content"]] == ["functions_Bash_0", "toolu_empty"]
    assert msgs[1]["content"][1]["input"] == {}
    assert "content" not in msgs[2]["content"][1]


def test_tool_results_first_and_same_role_turns_merged() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[
            user(Text("go")),
            assistant(ToolCall("a", "f"), ToolCall("b", "f")),
            user(ToolResult("a", [Text("1")])),
            user(Text("and also"), ToolResult("b", [Text("2")], is_error=True)),
            assistant(Text("   ")),  # whitespace only: dropped, so the user turns around it merge
            user(Text("more")),
        ],
    )
    msgs = encode(req)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "a", "content": "1"},
        {"type": "tool_result", "tool_use_id": "b", "content": "2", "is_error": True},
        {"type": "text", "text": "and also"},
        {"type": "text", "text": "more"},
    ]


def test_mid_conversation_system_becomes_system_reminder() -> None:
    req = CanonicalRequest(
        model="m",
        system=[Text("  "), Text("S", {"type": "ephemeral"})],
        messages=[
            Message("system", [Text("lead")]),
            user(Text("hi")),
            assistant(Text("hello")),
            Message("system", [Text("be brief"), Text("really")]),
        ],
    )
    out = encode(req)
    assert out["system"] == [
        {"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "lead"},
    ]
    assert out["messages"][-1] == {
        "role": "user",
        "content": [{"type": "text", "text": "<system-reminder>\nbe brief\nreally\n</system-reminder>"}],
    }


def test_empty_text_never_carries_cache_control_and_system_omitted_when_empty() -> None:
    req = CanonicalRequest(model="m", system=[Text("")], messages=[user(Text(" ", {"type": "ephemeral"}), Text("x"))])
    out = encode(req)
    assert "system" not in out
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]


def test_reasoning_filtering_toward_anthropic() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[
            user(Text("q")),
            assistant(
                Reasoning("signed", signature="SIG", provenance="anthropic_messages"),
                Reasoning("", signature="SIG2", provenance="anthropic_messages"),  # signature-only: kept
                Reasoning(redacted="REDACTED", provenance="anthropic_messages"),
                Reasoning("unsigned", provenance="anthropic_messages"),
                Reasoning("foreign", signature="x", provenance="openai_chat"),
                Reasoning("r", encrypted_content="enc", provenance="openai_responses"),
                Text("answer"),
            ),
        ],
    )
    assert encode(req)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "signed", "signature": "SIG"},
        {"type": "thinking", "thinking": "", "signature": "SIG2"},
        {"type": "redacted_thinking", "data": "REDACTED"},
        {"type": "text", "text": "answer"},
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [("", {}), ('{"a":[1]}', {"a": [1]}), ("not json", {"text": "not json"}), ("[1,2]", {"value": [1, 2]})],
)
def test_tool_arguments_become_input_objects(arguments: str, expected: Any) -> None:
    req = CanonicalRequest(model="m", messages=[user(Text("q")), assistant(ToolCall("t", "f", arguments))])
    assert encode(req)["messages"][1]["content"][0]["input"] == expected


def test_media_encoding_and_rejections() -> None:
    ok = CanonicalRequest(
        model="m",
        messages=[
            user(
                Image(media_type="image/webp", data="AAAA"),
                Image(url="https://x/y.png", detail="high"),
                Document(media_type="application/pdf", data="JVBE", filename="a.pdf"),
                Document(text="plain", title="T"),
                Document(url="https://x/doc.pdf"),
            )
        ],
    )
    assert encode(ok)["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}, "title": "T"},
        {"type": "document", "source": {"type": "url", "url": "https://x/doc.pdf"}},
    ]
    for bad in (Image(media_type="image/bmp", data="AA"), Document(file_id="file-abc"), Image()):
        with pytest.raises(TranslationError) as exc:
            encode(CanonicalRequest(model="m", messages=[user(bad)]))
        assert exc.value.error.status == 400 and exc.value.error.param == "messages"


def test_tool_result_content_forms() -> None:
    img = Image(media_type="image/png", data="iVBO")
    req = CanonicalRequest(
        model="m",
        messages=[
            user(
                ToolResult("a", [Text("one")]),
                ToolResult("b", [Text("t"), img], cache_control={"type": "ephemeral"}),
                ToolResult("c", [Text("cached", {"type": "ephemeral"})]),
            )
        ],
    )
    assert encode(req)["messages"][0]["content"] == [
        {"type": "tool_result", "tool_use_id": "a", "content": "one"},
        {
            "type": "tool_result",
            "tool_use_id": "b",
            "content": [
                {"type": "text", "text": "t"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
            ],
            "cache_control": {"type": "ephemeral"},
        },
        {
            "type": "tool_result",
            "tool_use_id": "c",
            "content": [{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}],
        },
    ]


def test_tools_and_tool_choice() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[user(Text("q"))],
        tools=[
            Tool("a", "does a", {"properties": {"x": {"type": "string"}}}, strict=True),
            Tool("b", parameters={"type": "object"}, cache_control={"type": "ephemeral"}),
        ],
        tool_choice=ToolChoice("tool", "a"),
        parallel_tool_calls=False,
    )
    out = encode(req)
    assert out["tools"] == [
        {
            "name": "a",
            "description": "does a",
            "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
        {"name": "b", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
    ]
    assert out["tool_choice"] == {"type": "tool", "name": "a", "disable_parallel_tool_use": True}
    with pytest.raises(TranslationError) as exc:
        encode(CanonicalRequest(model="m", tools=[Tool("s", parameters={"type": "string"})]))
    assert exc.value.error.param == "tools"


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("none"), False, {"type": "none"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_encode_tool_choice(choice: ToolChoice | None, parallel: bool | None, expected: Any) -> None:
    req = CanonicalRequest(model="m", tools=[Tool("f")], tool_choice=choice, parallel_tool_calls=parallel)
    assert encode(req).get("tool_choice") == expected


def test_tool_choice_omitted_without_tools() -> None:
    req = CanonicalRequest(model="m", tool_choice=ToolChoice("required"), parallel_tool_calls=False)
    assert "tool_choice" not in encode(req) and "tools" not in encode(req)


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "out_max"),
    [
        (ReasoningConfig(budget_tokens=500), 4000, {"type": "enabled", "budget_tokens": 1024}, 4000),
        (ReasoningConfig(budget_tokens=31999), 32000, {"type": "enabled", "budget_tokens": 31999}, 32000),
        (ReasoningConfig(budget_tokens=31999), 20000, {"type": "enabled", "budget_tokens": 19999}, 20000),
        (ReasoningConfig(budget_tokens=4096), 1024, None, 1024),  # budget cannot fit: thinking off
        (ReasoningConfig(budget_tokens=50000), None, {"type": "enabled", "budget_tokens": 50000}, 50001),
        (ReasoningConfig(effort="minimal"), None, {"type": "enabled", "budget_tokens": 1024}, 32000),
        (ReasoningConfig(effort="low"), None, {"type": "enabled", "budget_tokens": 1024}, 32000),
        (ReasoningConfig(effort="medium"), None, {"type": "enabled", "budget_tokens": 8192}, 32000),
        (ReasoningConfig(effort="high"), 10000, {"type": "enabled", "budget_tokens": 9999}, 10000),
        (ReasoningConfig(effort="xhigh"), None, {"type": "enabled", "budget_tokens": 32000}, 32001),
        (ReasoningConfig(effort="none"), None, None, 32000),
        (ReasoningConfig(enabled=False, budget_tokens=2000), None, None, 32000),
        (ReasoningConfig(adaptive=True), 128000, {"type": "adaptive"}, 128000),
        (None, None, None, 32000),
    ],
)
def test_thinking_budget_rules(
    reasoning: ReasoningConfig | None, max_tokens: int | None, thinking: Any, out_max: int
) -> None:
    out = encode(CanonicalRequest(model="m", messages=[user(Text("q"))], reasoning=reasoning, max_tokens=max_tokens))
    assert out.get("thinking") == thinking
    assert out["max_tokens"] == out_max


def test_adaptive_effort_goes_to_output_config() -> None:
    out = encode(CanonicalRequest(model="m", reasoning=ReasoningConfig(adaptive=True, effort="high")))
    assert out["thinking"] == {"type": "adaptive"} and out["output_config"] == {"effort": "high"}


def test_thinking_forces_sampling_and_tool_choice_policies() -> None:
    req = CanonicalRequest(
        model="m",
        messages=[user(Text("q"))],
        tools=[Tool("f")],
        tool_choice=ToolChoice("tool", "f"),
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        reasoning=ReasoningConfig(budget_tokens=2048),
    )
    out = encode(req)
    assert out["tool_choice"] == {"type": "auto"}
    assert "temperature" not in out and "top_p" not in out and "top_k" not in out
    req.temperature = 1
    assert encode(req)["temperature"] == 1


def test_sampling_without_thinking() -> None:
    req = CanonicalRequest(model="m", temperature=1.7, top_p=0.5, top_k=5, stop=["A", "B"])
    out = encode(req)
    assert (out["temperature"], out.get("top_p"), out["top_k"], out["stop_sequences"]) == (1, None, 5, ["A", "B"])
    out = encode(CanonicalRequest(model="m", top_p=0.5))
    assert out["top_p"] == 0.5 and "temperature" not in out and "stop_sequences" not in out


def test_thinking_dropped_when_last_tool_turn_has_no_signed_thinking() -> None:
    history = [
        user(Text("q")),
        assistant(Reasoning("foreign", provenance="openai_chat"), ToolCall("c1", "f", "{}")),
        user(ToolResult("c1", [Text("r")])),
    ]
    req = CanonicalRequest(model="m", messages=history, reasoning=ReasoningConfig(budget_tokens=4000))
    assert "thinking" not in encode(req)
    history[1].content[0] = Reasoning("mine", signature="SIG", provenance="anthropic_messages")
    assert encode(req)["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    # an older tool turn without thinking is fine once the loop is over
    req.messages = [*history, assistant(Text("done")), user(Text("next")), assistant(ToolCall("c2", "f"))]
    req.messages[1] = assistant(ToolCall("c1", "f", "{}"))
    assert "thinking" not in encode(req)  # the *last* tool turn lacks thinking
    req.messages = req.messages[:-1]
    assert encode(req)["thinking"] == {"type": "enabled", "budget_tokens": 4000}


def test_response_format_user_stream_and_extra() -> None:
    req = CanonicalRequest(
        model="m",
        response_format={"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True},
        user="u1",
        stream=True,
        extra={"metadata": {"user_id": "other", "tag": "t"}, "service_tier": "auto", "stream": False},
    )
    out = encode(req)
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert out["metadata"] == {"user_id": "u1"} and out["stream"] is True and "service_tier" not in out
    out = encode(req, include_extra=True)
    assert out["metadata"] == {"user_id": "u1", "tag": "t"}
    assert out["service_tier"] == "auto" and out["stream"] is True
    assert "output_config" not in encode(CanonicalRequest(model="m", response_format={"type": "json_object"}))
    assert "stream" not in encode(CanonicalRequest(model="m"))


# --------------------------------------------------------------------------- responses


CTX = StreamContext(model="client-model", response_id="msg_fixed", estimated_input_tokens=42)


@pytest.mark.parametrize(
    ("reason", "tool", "expected"),
    [
        ("end_turn", False, "end_turn"),
        ("end_turn", True, "tool_use"),
        (None, False, "end_turn"),
        (None, True, "tool_use"),
        ("tool_use", False, "end_turn"),
        ("tool_use", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("refusal", False, "refusal"),
        ("error", True, "end_turn"),
        ("max_tokens", True, "max_tokens"),
        ("stop_sequence", False, "stop_sequence"),
        ("pause_turn", False, "pause_turn"),
        ("model_context_window_exceeded", False, "model_context_window_exceeded"),
    ],
)
def test_stop_reason_mapping(reason: Any, tool: bool, expected: str) -> None:
    content: list[Any] = [Text("x")] + ([ToolCall("t", "f")] if tool else [])
    assert am.encode_response(CanonicalResponse(content=content, stop_reason=reason), CTX)["stop_reason"] == expected
    enc = am.StreamEncoder(CTX)
    events: list[Event] = [Start(), BlockStart(0, Text("")), Delta(0, "text", "x"), BlockStop(0)]
    if tool:
        events += [BlockStart(1, ToolCall("t", "f")), BlockStop(1)]
    events += [Finish(reason)] if reason else []
    frames = parse_frames(enc.encode([*events, End()]))
    assert frames[-2][1]["delta"]["stop_reason"] == expected


def test_decode_response_unknown_stop_and_no_usage() -> None:
    resp = am.decode_response({"id": "msg_1", "content": [{"type": "text", "text": "x"}], "stop_reason": "brand_new"})
    assert resp == CanonicalResponse(id="msg_1", content=[Text("x")], stop_reason="end_turn")
    with pytest.raises(TranslationError) as exc:
        am.decode_response([])  # type: ignore[arg-type]
    assert exc.value.error.status == 502


def test_encode_response_mints_ids() -> None:
    out = am.encode_response(CanonicalResponse(content=[ToolCall("", "f")]), StreamContext(model="m"))
    assert out["id"].startswith("msg_") and out["content"][0]["id"].startswith("toolu_")
    assert out["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_foreign_reasoning_round_trips_through_the_envelope() -> None:
    """R reasoning shown to an A client comes back next turn with provenance and payload."""
    original = Reasoning("summary", encrypted_content="gAAAA", item_id="rs_9", provenance="openai_responses")
    body = am.encode_response(CanonicalResponse(content=[original, Text("hi")]), CTX)
    thinking = body["content"][0]
    assert unpack_signature(thinking["signature"]) == {"p": "openai_responses", "e": "gAAAA", "i": "rs_9"}
    req = am.decode_request(
        base_body(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": body["content"]}])
    )
    assert req.messages[1].content[0] == original
    # and it is never sent to Anthropic
    assert am.encode_request(req, EncodeOptions())["messages"][1]["content"] == [{"type": "text", "text": "hi"}]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}',
            CanonicalError(529, "overloaded_error", "Overloaded"),
        ),
        (
            409,
            b'{"type":"error","error":{"type":"conflict_error","message":"busy"}}',
            CanonicalError(409, "conflict_error", "busy"),
        ),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}',
            CanonicalError(
                400,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
                code="context_length_exceeded",
            ),
        ),
        (
            400,
            b'{"error":{"message":"max_tokens is too large","type":"invalid_request_error","param":"max_tokens","code":"invalid_value"}}',
            CanonicalError(
                400, "invalid_request_error", "max_tokens is too large", param="max_tokens", code="invalid_value"
            ),
        ),
        (
            429,
            b'{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}',
            CanonicalError(429, "rate_limit_error", "quota", code="insufficient_quota"),
        ),
        (503, b'{"error":"upstream unavailable"}', CanonicalError(503, "overloaded_error", "upstream unavailable")),
        (502, b"<html>Bad gateway</html>", CanonicalError(502, "api_error", "<html>Bad gateway</html>")),
        (500, b"", CanonicalError(500, "api_error", "upstream returned HTTP 500")),
        (418, b"x" * 600, CanonicalError(418, "invalid_request_error", "x" * 500)),
    ],
)
def test_decode_error(status: int, body: bytes, expected: CanonicalError) -> None:
    assert am.decode_error(status, body) == expected


@pytest.mark.parametrize(
    ("err", "status", "body"),
    [
        (
            CanonicalError(529, "overloaded_error", "Overloaded"),
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
        (
            CanonicalError(429, "insufficient_quota", "quota"),
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "quota"}},
        ),
        (
            CanonicalError(503, "server_error", "down"),
            503,
            {"type": "error", "error": {"type": "overloaded_error", "message": "down"}},
        ),
        (
            CanonicalError(413, "context_length_exceeded", "too many tokens", code="context_length_exceeded"),
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "prompt is too long: too many tokens"},
            },
        ),
        (
            CanonicalError(400, "invalid_request_error", "Prompt is too long: 5 > 4", code="context_length_exceeded"),
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "Prompt is too long: 5 > 4"}},
        ),
    ],
)
def test_encode_error(err: CanonicalError, status: int, body: dict[str, Any]) -> None:
    got_status, got_body = am.encode_error(err)
    assert (got_status, orjson.loads(got_body)) == (status, body)


# --------------------------------------------------------------------------- stream decoder rules


def feed_all(dec: am.StreamDecoder, *payloads: dict[str, Any], named: bool = True) -> list[Event]:
    out: list[Event] = []
    for p in payloads:
        out += dec.feed(SSEEvent(p["type"] if named else None, orjson.dumps(p)))
    return out


MSG_START = {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}}}


def test_stream_decoder_bad_json_is_terminal_error() -> None:
    dec = am.StreamDecoder()
    feed_all(dec, MSG_START)
    out = dec.feed(SSEEvent("content_block_delta", b"{not json"))
    assert len(out) == 1 and isinstance(out[0], ErrorEvent) and out[0].error.status == 502
    assert feed_all(dec, {"type": "message_stop"}) == [] and dec.close() == []
    assert dec.feed(SSEEvent(None, b"   ")) == []


def test_stream_decoder_close_variants() -> None:
    dec = am.StreamDecoder()
    assert dec.close() == [
        Start(),
        ErrorEvent(CanonicalError(502, "api_error", "upstream stream ended before completion")),
    ]
    dec = am.StreamDecoder()
    feed_all(
        dec, MSG_START, {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}
    )
    assert dec.close() == [End()]
    assert dec.close() == []


def test_stream_decoder_synthesises_start_and_closes_open_blocks() -> None:
    dec = am.StreamDecoder()
    assert feed_all(dec, {"type": "ping"}) == []  # keep-alive before anything: nothing to say yet
    out = feed_all(
        dec,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}},
        {"type": "message_start", "message": {"id": "late"}},  # duplicate/late: ignored
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        named=False,
    )
    assert out == [
        Start(),
        BlockStart(0, Text("")),
        Delta(0, "text", "Hi"),
        BlockStop(0),
        Finish("end_turn"),
        End(),
    ]


def test_stream_decoder_error_event_status_mapping() -> None:
    for etype, status in [("overloaded_error", 529), ("rate_limit_error", 429), ("billing_error", 402), ("new", 500)]:
        dec = am.StreamDecoder()
        out = feed_all(dec, MSG_START, {"type": "error", "error": {"type": etype, "message": "boom"}})
        assert out[-1] == ErrorEvent(CanonicalError(status, etype, "boom"))


# --------------------------------------------------------------------------- stream encoder rules


def test_stream_encoder_lazy_text_blocks_and_synthesised_start() -> None:
    enc = am.StreamEncoder(CTX)
    out = enc.encode(
        [
            KeepAlive(),
            BlockStart(0, Text("")),
            Delta(0, "text", ""),
            BlockStop(0),  # never became visible: no block, no index consumed
            BlockStart(1, Text("")),
            Delta(1, "text", "\n\n"),
            Delta(1, "text", "  "),
            BlockStop(1),  # blank only: skipped too
            BlockStart(2, Refusal("")),
            Delta(2, "refusal", " "),
            Delta(2, "refusal", "No."),
            BlockStop(2),
            End(),
        ]
    )
    frames = check_a_grammar(out)
    assert [n for n, _ in frames] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert frames[0][1]["message"]["usage"]["input_tokens"] == 42
    assert frames[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert frames[3][1]["delta"] == {"type": "text_delta", "text": " No."}
    assert frames[-2][1]["usage"] == {
        "input_tokens": 42,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert enc.encode([Delta(2, "text", "late"), End()]) == b""


def test_stream_encoder_returns_empty_bytes_for_nothing() -> None:
    enc = am.StreamEncoder(CTX)
    assert enc.encode([]) == b""
    enc.encode([Start()])
    assert enc.encode([UsageEvent(Usage(1, 2))]) == b""


def test_stream_encoder_error_ends_everything() -> None:
    enc = am.StreamEncoder(CTX)
    out = enc.encode(
        [
            Start(),
            BlockStart(0, Text("")),
            Delta(0, "text", "par"),
            ErrorEvent(CanonicalError(529, "overloaded_error", "Overloaded")),
            Delta(0, "text", "tial"),
        ]
    )
    frames = check_a_grammar(out)
    assert frames[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert enc.encode([End()]) == b""


def test_stream_encoder_mints_tool_id_when_missing() -> None:
    enc = am.StreamEncoder(StreamContext(model="m"))
    frames = parse_frames(enc.encode([Start(), BlockStart(0, ToolCall("", "f")), BlockStop(0), End()]))
    assert frames[0][1]["message"]["id"].startswith("msg_")
    assert frames[1][1]["content_block"]["id"].startswith("toolu_")
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"


# --------------------------------------------------------------------------- grammar property test


@st.composite
def canonical_streams(draw: st.DrawFn) -> list[Event]:
    """Random well-formed canonical streams (any block mix, any terminal)."""
    events: list[Event] = [Start(usage=draw(st.none() | st.builds(Usage, st.integers(0, 99), st.integers(0, 99))))]
    texts = st.sampled_from(["", " ", "\n", "a", "hello", "{", '"x":1}'])
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "refusal", "reasoning", "a_reasoning", "redacted", "tool"]))
        block: Any = {
            "text": Text(""),
            "refusal": Refusal(""),
            "reasoning": Reasoning(provenance="openai_chat"),
            "a_reasoning": Reasoning(provenance="anthropic_messages"),
            "redacted": Reasoning(redacted="R", provenance="anthropic_messages"),
            "tool": ToolCall(draw(st.sampled_from(["", "call:1", "toolu_x"])), "f"),
        }[kind]
        events.append(BlockStart(i, block))
        for _ in range(draw(st.integers(0, 4))):
            dk = draw(st.sampled_from(["text", "reasoning", "signature", "arguments", "refusal"]))
            events.append(Delta(i, dk, draw(texts)))
        if draw(st.booleans()):
            events.append(KeepAlive())
        events.append(BlockStop(i))
    if draw(st.booleans()):
        events.append(UsageEvent(Usage(1, 2, 3, 4)))
    terminal = draw(st.sampled_from(["end", "finish_end", "error"]))
    if terminal == "finish_end":
        events.append(Finish(draw(st.sampled_from(["end_turn", "tool_use", "max_tokens", "content_filter"]))))
    if terminal == "error":
        events.append(ErrorEvent(CanonicalError.of(500, "boom")))
    else:
        events.append(End())
    return events


@settings(max_examples=300, deadline=None)
@given(canonical_streams(), st.integers(1, 5))
def test_stream_encoder_output_always_satisfies_a_grammar(events: list[Event], batch: int) -> None:
    enc = am.StreamEncoder(CTX)
    out = b"".join(enc.encode(events[i : i + batch]) for i in range(0, len(events), batch))
    frames = check_a_grammar(out)
    blocks = assemble(frames)
    for blk in blocks:
        if blk["type"] == "text":
            assert blk.get("text", "").strip(), "empty text block emitted"
        if blk["type"] == "thinking":
            assert blk.get("signature"), "thinking block without signature"
    if frames[-1][0] == "message_stop":
        has_tool = any(b["type"] == "tool_use" for b in blocks)
        assert (frames[-2][1]["delta"]["stop_reason"] == "tool_use") == (
            has_tool and frames[-2][1]["delta"]["stop_reason"] not in ("max_tokens", "refusal")
        )
    # decoding our own output gives back a grammatical canonical stream
    back = decode_stream(out)
    assert isinstance(back[0], Start) and isinstance(back[-1], (End, ErrorEvent))
    assert sum(isinstance(e, (End, ErrorEvent)) for e in back) == 1


def test_stream_decoder_event_name_fallback_and_renamed_events() -> None:
    dec = am.StreamDecoder()
    out = dec.feed(SSEEvent("message", orjson.dumps(MSG_START)))  # relay renamed the event
    out += dec.feed(SSEEvent("error", b'{"error":{"type":"api_error","message":"x"}}'))  # no "type" in payload
    assert out == [
        Start("msg_1", "m", Usage(input_tokens=3)),
        ErrorEvent(CanonicalError(500, "api_error", "x")),
    ]


# --------------------------------------------------------------------------- same-format passthrough

ENVELOPE = pack_signature(Reasoning(provenance="openai_chat"))


def tool_turn(*first: dict[str, Any]) -> list[dict[str, Any]]:
    """user -> assistant (``first`` blocks, then a tool_use) -> user tool_result."""
    return [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [*first, {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
    ]


def test_sanitize_passthrough_keeps_a_valid_body_byte_identical() -> None:
    body = base_body(
        max_tokens=32000,
        thinking={"type": "enabled", "budget_tokens": 16000},
        messages=tool_turn(
            {"type": "thinking", "thinking": "t", "signature": "EqQBreal"}, {"type": "redacted_thinking", "data": "x"}
        ),
    )
    before = orjson.dumps(body)
    assert am.sanitize_passthrough(body) == [] and orjson.dumps(body) == before


@pytest.mark.parametrize("thinking_type", ["enabled", "adaptive"])
def test_sanitize_passthrough_drops_envelopes_then_thinking(thinking_type: str) -> None:
    """§2.9 rule 3: wireshift's envelopes never reach Anthropic; without them the tool turn
    cannot satisfy A's thinking rule, so thinking is turned off for the call."""
    messages = [
        {"role": "user", "content": "q0"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "older", "signature": ENVELOPE}]},
        *tool_turn({"type": "thinking", "thinking": "foreign", "signature": ENVELOPE}, {"type": "text", "text": "ok"}),
    ]
    thinking = {"type": thinking_type} | ({"budget_tokens": 2048} if thinking_type == "enabled" else {})
    body = base_body(max_tokens=4096, thinking=thinking, messages=messages)
    notes = am.sanitize_passthrough(body)
    assert len(notes) == 2 and "2 thinking block" in notes[0] and "thinking disabled" in notes[1]
    assert "thinking" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "user", "assistant", "user"]  # emptied turn gone
    assert [b["type"] for b in body["messages"][2]["content"]] == ["text", "tool_use"]


def test_sanitize_passthrough_keeps_thinking_when_only_older_turns_lose_envelopes() -> None:
    older = [
        {"role": "user", "content": "q0"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": ENVELOPE}, "junk"]},
    ]
    body = base_body(
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[*older, *tool_turn({"type": "thinking", "thinking": "t", "signature": "EqQBreal"})],
    )
    assert am.sanitize_passthrough(body) == ["dropped 1 thinking block(s) signed by wireshift, not by Anthropic"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["messages"][1]["content"] == ["junk"]


def test_sanitize_passthrough_removes_thinking_for_an_unsatisfiable_history() -> None:
    body = base_body(max_tokens=8000, thinking={"type": "enabled", "budget_tokens": 2048}, messages=tool_turn())
    assert am.sanitize_passthrough(body) == [
        "thinking disabled: the last tool-using assistant turn does not start with a thinking block"
    ]
    assert "thinking" not in body


@pytest.mark.parametrize(
    ("max_tokens", "budget", "thinking", "notes"),
    [
        (8192, 31999, {"type": "enabled", "budget_tokens": 8191}, ["lowered from 31999 to 8191"]),
        (8192, 8192, {"type": "enabled", "budget_tokens": 8191}, ["lowered from 8192 to 8191"]),
        (1025, 2000, {"type": "enabled", "budget_tokens": 1024}, ["lowered from 2000 to 1024"]),
        (1024, 2000, None, ["thinking disabled: a budget below max_tokens 1024 would be under 1024"]),
        (8192, 8191, {"type": "enabled", "budget_tokens": 8191}, []),
    ],
)
def test_sanitize_passthrough_fits_the_budget_under_max_tokens(
    max_tokens: int, budget: int, thinking: dict[str, Any] | None, notes: list[str]
) -> None:
    """§2.7/§2.9: after max_tokens is clamped, budget_tokens must stay below it and >= 1024."""
    body = base_body(max_tokens=max_tokens, thinking={"type": "enabled", "budget_tokens": budget})
    got = am.sanitize_passthrough(body)
    assert body.get("thinking") == thinking
    assert len(got) == len(notes) and all(n in g for n, g in zip(notes, got, strict=True))


def test_sanitize_passthrough_tolerates_odd_bodies() -> None:
    for body in ({}, {"messages": "x", "thinking": {"type": "enabled"}}, {"thinking": "on", "messages": [None, 1]}):
        assert am.sanitize_passthrough(body) == []
    body = base_body(thinking={"type": "adaptive"}, max_tokens=10)
    assert am.sanitize_passthrough(body) == [] and body["thinking"] == {"type": "adaptive"}
