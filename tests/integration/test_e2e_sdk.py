"""Real ``openai`` and ``anthropic`` SDK clients through a real mitmdump + wireshift addon,
against the emulated backends, in both translation directions and on the same-format fast path.

The emulator picks its scripted reply from the upstream model name (``emu-chat:tool`` reaches
the Chat emulator as model ``tool``), so each test names its scenario in the selector.
"""

from __future__ import annotations

import json
import time

import anthropic
import httpx2
import openai
import pytest

from tests.integration.conftest import Emulator, Proxy

CLIENT_KEY = "sk-client-own-key-must-not-leak"
TOOLS_C = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TOOLS_A = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


def oai(proxy: Proxy, *, regular: bool = False) -> openai.OpenAI:
    if regular:
        http = httpx2.Client(proxy=proxy.regular_url, verify=proxy.ssl_context())
        return openai.OpenAI(api_key=CLIENT_KEY, base_url="https://api.openai.com/v1", http_client=http, max_retries=0)
    return openai.OpenAI(api_key=CLIENT_KEY, base_url=f"{proxy.reverse_url}/v1", max_retries=0)


def ant(proxy: Proxy, *, regular: bool = False) -> anthropic.Anthropic:
    if regular:
        http = httpx2.Client(proxy=proxy.regular_url, verify=proxy.ssl_context())
        return anthropic.Anthropic(
            api_key=CLIENT_KEY, base_url="https://api.anthropic.com", http_client=http, max_retries=0
        )
    return anthropic.Anthropic(api_key=CLIENT_KEY, base_url=proxy.reverse_url, max_retries=0)


def last_upstream(emulator: Emulator) -> dict:
    reqs = emulator.requests()
    assert reqs, "the emulator received nothing"
    return reqs[-1]


# ----------------------------------------------------------------------------- Anthropic SDK -> Chat backend


@pytest.mark.parametrize("regular", [False, True], ids=["reverse", "regular-https"])
def test_anthropic_sdk_streams_tool_call_from_chat_backend(proxy: Proxy, emulator: Emulator, regular: bool):
    emulator.clear()
    with ant(proxy, regular=regular).messages.stream(
        model="emu-chat:tool", max_tokens=1024, messages=USER, tools=TOOLS_A
    ) as stream:
        events = [ev.type for ev in stream]
        final = stream.get_final_message()
    tool_uses = [b for b in final.content if b.type == "tool_use"]
    assert len(tool_uses) == 1
    assert tool_uses[0].name == "get_weather"
    assert tool_uses[0].input == {"city": "Paris", "unit": "celsius"}
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert final.model == "emu-chat:tool"  # the client's own model string is echoed
    assert events.count("message_start") == 1 and events[-1] == "message_stop"
    up = last_upstream(emulator)
    assert up["path"] == "/v1/chat/completions"
    assert up["body"]["model"] == "tool"
    assert up["body"]["stream_options"] == {"include_usage": True}  # usage requested upstream
    assert up["headers"].get("Authorization") == "Bearer backend-key-chat"
    assert CLIENT_KEY not in json.dumps(up["headers"])


def test_anthropic_sdk_non_stream_text_and_usage(proxy: Proxy):
    msg = ant(proxy).messages.create(model="emu-chat:usage-cache", max_tokens=256, messages=USER)
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason == "end_turn"
    # C prompt_tokens 100 with 60 cached -> A input_tokens 40 + cache_read 60
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (40, 60, 5)


def test_anthropic_sdk_parallel_interleaved_tool_calls(proxy: Proxy):
    with ant(proxy).messages.stream(
        model="emu-chat:tools-interleaved", max_tokens=512, messages=USER, tools=TOOLS_A
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [c.input for c in calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert len({c.id for c in calls}) == 2
    assert final.stop_reason == "tool_use"


def test_anthropic_sdk_thinking_from_chat_reasoning(proxy: Proxy):
    with ant(proxy).messages.stream(
        model="emu-chat:reasoning",
        max_tokens=4096,
        messages=USER,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think. 2+2=4."
    assert final.content[0].signature  # Anthropic SDK consumers require one
    assert final.content[1].text == "The answer is 4."


def test_anthropic_sdk_multi_turn_tool_result_reaches_chat_backend(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    msg = ant(proxy).messages.create(model="emu-chat:agent", max_tokens=256, messages=messages, tools=TOOLS_A)
    sent = last_upstream(emulator)["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C and sunny"}
    assert msg.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("scenario", "exc", "status"),
    [
        ("error-401", anthropic.AuthenticationError, 401),
        ("error-429", anthropic.RateLimitError, 429),
        ("error-500", anthropic.InternalServerError, 500),
        ("error-400-context", anthropic.BadRequestError, 400),
    ],
)
def test_anthropic_sdk_upstream_errors_in_anthropic_format(proxy: Proxy, scenario, exc, status):
    with pytest.raises(exc) as info:
        ant(proxy).messages.create(model=f"emu-chat-nokey:{scenario}", max_tokens=64, messages=USER)
    err = info.value
    assert err.status_code == status
    assert err.body["type"] == "error" and err.body["error"]["type"]
    if scenario == "error-429":
        assert err.response.headers.get("retry-after") == "7"
    if scenario == "error-400-context":
        assert "prompt is too long" in err.body["error"]["message"]


def test_anthropic_sdk_midstream_error_and_cut_stream_are_errors(proxy: Proxy):
    for scenario in ("error-midstream", "cut"):
        with pytest.raises(anthropic.APIError):
            with ant(proxy).messages.stream(model=f"emu-chat:{scenario}", max_tokens=64, messages=USER) as stream:
                for _ in stream:
                    pass


def test_bad_json_answers_in_client_format(proxy: Proxy):
    r = httpx2.post(f"{proxy.reverse_url}/v1/messages", content=b"{oops", headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    r = httpx2.post(f"{proxy.reverse_url}/v1/chat/completions", content=b"{oops")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


# ----------------------------------------------------------------------------- OpenAI SDK -> Anthropic backend


@pytest.mark.parametrize("regular", [False, True], ids=["reverse", "regular-https"])
def test_openai_sdk_streams_from_anthropic_backend(proxy: Proxy, emulator: Emulator, regular: bool):
    emulator.clear()
    stream = oai(proxy, regular=regular).chat.completions.create(
        model="emu-anthropic:tool",
        messages=USER,
        tools=TOOLS_C,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    args = "".join(
        tc.function.arguments or "" for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert json.loads(args) == {"city": "Paris", "unit": "celsius"}
    assert text == "Let me check."
    assert finish == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1 and chunks[0].model == "emu-anthropic:tool"
    up = last_upstream(emulator)
    assert up["path"] == "/v1/messages"
    assert up["body"]["max_tokens"] == 4096  # default for Anthropic targets, clamped by max_output_tokens
    assert up["headers"].get("x-api-key") == "backend-key-anthropic"
    assert up["headers"].get("anthropic-version") == "2023-06-01"
    assert CLIENT_KEY not in json.dumps(up["headers"])


def test_openai_sdk_stream_without_include_usage_gets_no_usage_chunk(proxy: Proxy):
    chunks = list(oai(proxy).chat.completions.create(model="emu-anthropic:text", messages=USER, stream=True))
    assert all(c.choices for c in chunks)  # no choices:[] usage chunk leaked
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the wireshift reference backend."


def test_openai_sdk_parallel_tool_calls_non_stream(proxy: Proxy):
    resp = oai(proxy).chat.completions.create(model="emu-anthropic:tools-parallel", messages=USER, tools=TOOLS_C)
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert msg.content is None
    assert [json.loads(tc.function.arguments) for tc in msg.tool_calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0


def test_openai_sdk_parallel_tool_calls_stream_have_dense_indices(proxy: Proxy):
    chunks = list(
        oai(proxy).chat.completions.create(
            model="emu-anthropic:tools-parallel", messages=USER, tools=TOOLS_C, stream=True
        )
    )
    calls: dict[int, str] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            calls[tc.index] = calls.get(tc.index, "") + (tc.function.arguments or "")
    assert sorted(calls) == [0, 1]
    assert [json.loads(calls[i]) for i in (0, 1)] == [{"city": "Paris"}, {"city": "Tokyo"}]


def test_openai_sdk_reasoning_from_anthropic_thinking(proxy: Proxy):
    resp = oai(proxy).chat.completions.create(model="emu-anthropic:reasoning", messages=USER)
    msg = resp.choices[0].message
    assert msg.content == "The answer is 4."
    assert msg.model_extra.get("reasoning_content") == "Let me think. 2+2=4."


@pytest.mark.parametrize(
    ("scenario", "exc", "status"),
    [
        ("error-401", openai.AuthenticationError, 401),
        ("error-429", openai.RateLimitError, 429),
        ("error-529", openai.InternalServerError, 503),
        ("error-400-context", openai.BadRequestError, 400),
    ],
)
def test_openai_sdk_upstream_errors_in_openai_format(proxy: Proxy, scenario, exc, status):
    with pytest.raises(exc) as info:
        oai(proxy).chat.completions.create(model=f"emu-anthropic-nokey:{scenario}", messages=USER)
    assert info.value.status_code == status
    assert info.value.body["message"]
    if scenario == "error-400-context":
        assert info.value.body["code"] == "context_length_exceeded"


def test_openai_sdk_midstream_error_raises(proxy: Proxy):
    with pytest.raises(openai.APIError):
        for _ in oai(proxy).chat.completions.create(model="emu-anthropic:error-midstream", messages=USER, stream=True):
            pass


def test_openai_sdk_empty_model_after_prefix_is_400(proxy: Proxy):
    with pytest.raises(openai.BadRequestError) as info:
        oai(proxy).chat.completions.create(model="emu-chat:", messages=USER)
    assert "no model after" in info.value.body["message"]


# ----------------------------------------------------------------------------- same format (fast path)


def test_same_format_fast_path_both_sdks(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    resp = oai(proxy).chat.completions.create(model="emu-chat:text", messages=USER)
    assert resp.choices[0].message.content == "Hello from the wireshift reference backend."
    assert resp.model == "text"  # fast path: upstream bytes untouched
    msg = ant(proxy).messages.create(model="emu-anthropic:text", max_tokens=64, messages=USER)
    assert msg.content[0].text == "Hello from the wireshift reference backend."
    reqs = emulator.requests()
    assert reqs[0]["headers"]["Authorization"] == "Bearer backend-key-chat"
    assert reqs[1]["headers"]["x-api-key"] == "backend-key-anthropic"
    assert CLIENT_KEY not in json.dumps([r["headers"] for r in reqs])


def test_same_format_stream_passes_through(proxy: Proxy):
    with ant(proxy).messages.stream(model="emu-anthropic:tool", max_tokens=64, messages=USER, tools=TOOLS_A) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].input == {"city": "Paris", "unit": "celsius"}


# ----------------------------------------------------------------------------- incremental streaming


@pytest.mark.parametrize("direction", ["anthropic-client", "openai-client"])
def test_streaming_is_incremental(proxy: Proxy, direction: str):
    """The client holds the first event while the emulator is still pacing the rest (10 x 150 ms)."""
    start = time.monotonic()
    first = None
    if direction == "anthropic-client":
        with ant(proxy).messages.stream(model="emu-chat:slow-150", max_tokens=64, messages=USER) as stream:
            for ev in stream:
                if ev.type == "content_block_delta" and first is None:
                    first = time.monotonic() - start
    else:
        for chunk in oai(proxy).chat.completions.create(model="emu-anthropic:slow-150", messages=USER, stream=True):
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.monotonic() - start
    total = time.monotonic() - start
    assert first is not None
    assert total >= 1.3
    assert first < total - 1.0, f"first text after {first:.2f}s of {total:.2f}s: the stream was buffered"
