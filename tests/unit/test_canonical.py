"""Canonical helpers that several formats rely on."""

import pytest

from translators.canonical import (
    CanonicalRequest,
    CanonicalResponse,
    Reasoning,
    ResponseAccumulator,
    Tool,
    ToolCall,
    custom_input,
    functionize_custom_tools,
    pack_signature,
    response_to_events,
    unpack_signature,
)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"input":"*** Begin Patch\\n*** End Patch"}', "*** Begin Patch\n*** End Patch"),
        ('{"input": "spaced"}', "spaced"),
        ('{"input":"*** Begin Patch\\n*** Add Fi', "*** Begin Patch\n*** Add Fi"),  # cut by max_tokens
        ('{"input":"ends in an escape\\', "ends in an escape"),
        ('{"other":1}', '{"other":1}'),
        ("raw text", "raw text"),
    ],
)
def test_custom_input_unwraps_even_truncated_calls(arguments, expected):
    assert custom_input(arguments) == expected


def test_envelope_roundtrip_and_tampered_values():
    packed = pack_signature(Reasoning(provenance="anthropic_messages", signature="sig", redacted=None, item_id="rs_1"))
    assert unpack_signature(packed) == {"p": "anthropic_messages", "s": "sig", "i": "rs_1"}
    assert unpack_signature("wshift1.eyJwIjoxLCJzIjo1fQ") is None  # {"p":1,"s":5}: not ours
    assert unpack_signature("EqQBreal-anthropic-signature") is None


NOTE = "This tool takes freeform input: put it, unchanged and not JSON-encoded, in the `input` string."


@pytest.mark.parametrize(
    ("description", "fmt", "expected"),
    [
        (
            "Apply a patch. This is a FREEFORM tool.",
            {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+"},
            f"Apply a patch. This is a FREEFORM tool.\n\n{NOTE}\n\nInput grammar (lark):\nstart: begin_patch hunk+",
        ),
        (None, {"type": "text"}, NOTE),
        ("Run it.", None, f"Run it.\n\n{NOTE}"),
    ],
)
def test_functionized_custom_tools_say_how_to_pass_their_input(description, fmt, expected):
    """A freeform tool sent as a function says its input goes raw into ``input`` (its own
    description may say "do not wrap it in JSON") and keeps its grammar in the description."""
    req = CanonicalRequest(model="m", tools=[Tool("apply_patch", description, kind="custom", format=fmt)])
    assert functionize_custom_tools(req) == ["apply_patch"]
    assert (req.tools[0].kind, req.tools[0].description) == ("function", expected)


def test_replayed_calls_keep_their_namespace():
    call = ToolCall("call_1", "search", "{}", namespace="mcp__docs__")
    acc = ResponseAccumulator()
    acc.feed(response_to_events(CanonicalResponse(content=[call], stop_reason="tool_use")))
    assert acc.response.content == [call]
