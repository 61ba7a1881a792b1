"""Malformed input never crashes translation.

Client requests decode and encode, or raise TranslationError (the addon answers a client-format
400). Upstream bodies, error bodies and stream events with any single field replaced by junk
decode without raising anything but TranslationError / ValueError (non-streaming, answered as a
client-format 502) and never raise from a stream decoder or encoder.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators import anthropic_messages, openai_chat, openai_responses
from translators.canonical import EncodeOptions, StreamContext, TranslationError
from translators.sse import SSEEvent

C_REQUEST: dict[str, Any] = {
    "model": "m",
    "stream": True,
    "stream_options": {"include_usage": True},
    "max_completion_tokens": 100,
    "temperature": 0.5,
    "stop": ["x"],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "hmm",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok"}]},
    ],
}
A_REQUEST: dict[str, Any] = {
    "model": "m",
    "max_tokens": 100,
    "stream": True,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "u"},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": True}],
        },
        {"role": "system", "content": "mid-conversation note"},
    ],
}

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def mutate(base: dict, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(base)
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def roundtrip(source, target, body: Any) -> None:
    try:
        req = source.decode_request(body)
        target.encode_request(req, EncodeOptions())
        source.encode_request(req, EncodeOptions(include_extra=True))
    except TranslationError:
        pass


C_PATHS, A_PATHS = paths(C_REQUEST), paths(A_REQUEST)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(C_PATHS), JUNK)
def test_chat_requests_never_crash(path, value):
    roundtrip(openai_chat, anthropic_messages, mutate(C_REQUEST, path, value))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(A_PATHS), JUNK)
def test_anthropic_requests_never_crash(path, value):
    roundtrip(anthropic_messages, openai_chat, mutate(A_REQUEST, path, value))


def test_unmutated_requests_translate():
    roundtrip(openai_chat, anthropic_messages, C_REQUEST)
    roundtrip(anthropic_messages, openai_chat, A_REQUEST)


# ----------------------------------------------------------------------------- upstream side: every path x junk

SWEEP_JUNK = [None, True, 0, -1, 2.5, "", "x", [], {}, [1], {"a": None}, [None], [{}]]
CTX = StreamContext(model="m")
C_RESPONSE = {
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
                "content": "hi",
                "reasoning_content": "r",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 5,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 1},
    },
}
A_RESPONSE = {
    "id": "msg",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "stop_reason": "tool_use",
    "content": [
        {"type": "thinking", "thinking": "t", "signature": "s"},
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
    ],
    "usage": {
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_read_input_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 1},
    },
}
C_ERROR = {"error": {"message": "m", "type": "t", "param": None, "code": "c"}}
A_ERROR = {"type": "error", "error": {"type": "rate_limit_error", "message": "m"}}
C_CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": None,
            "delta": {
                "role": "assistant",
                "content": "x",
                "reasoning_content": "r",
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{"}}
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}
A_EVENTS = [
    {"type": "message_start", "message": {"id": "m", "model": "x", "usage": {"input_tokens": 1, "output_tokens": 1}}},
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
    },
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
    {"type": "message_stop"},
]
FORMATS = (openai_chat, openai_responses, anthropic_messages)


def sweep(doc: Any):
    for path in paths(doc):
        for junk in SWEEP_JUNK:
            yield mutate(doc, path, junk)


@pytest.mark.parametrize(("module", "body"), [(openai_chat, C_RESPONSE), (anthropic_messages, A_RESPONSE)])
def test_upstream_responses_never_crash(module, body):
    for mutated in sweep(body):
        try:
            resp = module.decode_response(mutated)
        except (TranslationError, ValueError):
            continue
        for target in FORMATS:
            target.encode_response(resp, CTX)


@pytest.mark.parametrize(("module", "body"), [(openai_chat, C_ERROR), (anthropic_messages, A_ERROR)])
def test_upstream_errors_never_crash(module, body):
    for mutated in sweep(body):
        err = module.decode_error(429, orjson.dumps(mutated))
        for target in FORMATS:
            target.encode_error(err)


def test_chat_stream_chunks_never_crash():
    for mutated in sweep(C_CHUNK):
        dec = openai_chat.StreamDecoder()
        events = dec.feed(SSEEvent(None, orjson.dumps(mutated))) + dec.close()
        for target in FORMATS:
            target.StreamEncoder(CTX).encode(events)


@pytest.mark.parametrize("position", range(len(A_EVENTS)))
def test_anthropic_stream_events_never_crash(position):
    for mutated in sweep(A_EVENTS[position]):
        dec = anthropic_messages.StreamDecoder()
        events = []
        for i, event in enumerate(A_EVENTS):
            data = mutated if i == position else event
            events += dec.feed(SSEEvent(None, orjson.dumps(data)))
        events += dec.close()
        for target in FORMATS:
            target.StreamEncoder(CTX).encode(events)


R_REQUEST: dict[str, Any] = {
    "model": "m",
    "instructions": "be brief",
    "stream": True,
    "max_output_tokens": 100,
    "reasoning": {"effort": "high", "summary": "auto"},
    "include": ["reasoning.encrypted_content"],
    "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False},
        {"type": "custom", "name": "apply_patch", "description": "patch"},
        {"type": "namespace", "name": "mcp__x__", "tools": [{"type": "function", "name": "g", "parameters": {}}]},
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            ],
        },
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "hmm"}],
            "encrypted_content": "enc",
        },
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "done"},
    ],
}
R_PATHS = paths(R_REQUEST)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(R_PATHS), JUNK)
def test_responses_requests_never_crash(path, value):
    body = mutate(R_REQUEST, path, value)
    roundtrip(openai_responses, openai_chat, body)
    roundtrip(openai_responses, anthropic_messages, body)


def test_responses_requests_sweep():
    for mutated in sweep(R_REQUEST):
        roundtrip(openai_responses, anthropic_messages, mutated)
        roundtrip(openai_responses, openai_chat, mutated)
