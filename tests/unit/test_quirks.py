"""Provider quirks (issue #4 item 5): extra body fields per backend kind, usage estimation for
upstreams that cannot report stream usage, Hugging Face translation, OpenRouter headers."""

import itertools
from pathlib import Path

import orjson
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from config.loader import parse_config
from routing.backends import CHAT, MESSAGES, RESPONSES, Registry
from routing.plan import plan_request, upstream_headers
from routing.quirks import NVIDIA_MAX_FIELDS, forward_extra_fields, needs_usage_estimate
from translators import anthropic_messages, get_format, openai_chat, openai_responses
from translators.canonical import (
    CanonicalResponse,
    EncodeOptions,
    StreamContext,
    Text,
    ToolCall,
    Usage,
    estimate_usage,
)
from translators.pipeline import StreamTranslator, synthesize_stream, translate_response
from translators.sse import SSEDecoder

A, C, R = "anthropic_messages", "openai_chat", "openai_responses"


def registry() -> Registry:
    cfg = parse_config(
        {
            "backends": [
                {"kind": "openrouter", "api_keys": ["sk-or"], "headers": {"X-OpenRouter-Title": "wireshift"}},
                {"kind": "nvidia", "api_keys": ["nvapi-x"]},
                {"kind": "huggingface", "backend_prefix": "hf", "api_keys": ["hf_x"]},
                {"kind": "custom-openai-chat-compatible", "backend_prefix": "chat", "base_url": "http://h/v1"},
            ]
        },
        Path("t.yaml"),
    )
    return Registry.from_config(cfg, {})


def translate(client: str, body: dict, prefix: str, upstream: str = CHAT) -> tuple[dict, list[str]]:
    """What plan.py's translated path does: decode, encode for ``upstream``, forward extras."""
    req = get_format(client).decode_request(body)
    out = get_format(upstream).encode_request(req, EncodeOptions())
    return out, forward_extra_fields(registry().backends[prefix], out, req.extensions, upstream)


USER = {"role": "user", "content": "hi"}
OPENROUTER_EXTRAS = {
    "provider": {"order": ["Together"], "allow_fallbacks": False},
    "models": ["a/b", "c/d"],
    "route": "fallback",
    "plugins": [{"id": "web"}],
    "transforms": ["middle-out"],
    "session_id": "s-1",
    "usage": {"include": True},
    "prediction": {"type": "content", "content": "x"},
}


# --------------------------------------------------------------------------- extensions


def test_decoders_keep_vendor_extensions_apart_from_their_own_unmapped_parameters():
    a = get_format(A).decode_request(
        {"model": "m", "max_tokens": 5, "messages": [USER], "context_management": {"edits": []},
         "service_tier": "auto", "provider": {"order": ["x"]}}
    )  # fmt: skip
    assert set(a.extra) == {"context_management", "service_tier", "provider"}
    assert a.extensions == {"provider": {"order": ["x"]}}
    r = get_format(R).decode_request(
        {"model": "m", "input": "hi", "store": False, "include": ["reasoning.encrypted_content"],
         "prompt_cache_key": "t", "client_metadata": {}, "text": {"verbosity": "low"}, "models": ["a", "b"]}
    )  # fmt: skip
    assert r.extensions == {"models": ["a", "b"]}
    assert {"store", "include", "prompt_cache_key", "client_metadata", "text"} <= set(r.extra)
    c = get_format(C).decode_request({"model": "m", "messages": [USER], "seed": 1, "nvext": {"top_k": 3}})
    assert c.extensions == {"nvext": {"top_k": 3}} and set(c.extra) == {"seed", "nvext"}


def test_encoders_still_do_not_emit_extras_by_default():
    req = get_format(A).decode_request({"model": "m", "max_tokens": 5, "messages": [USER], "provider": {}})
    assert "provider" not in get_format(C).encode_request(req, EncodeOptions())


# --------------------------------------------------------------------------- OpenRouter


@pytest.mark.parametrize(("client", "base"), [
    (A, {"model": "m", "max_tokens": 50, "messages": [USER]}),
    (R, {"model": "m", "input": "hi"}),
])  # fmt: skip
def test_openrouter_fields_reach_a_translated_chat_upstream(client, base):
    sent, notes = translate(client, {**base, **OPENROUTER_EXTRAS}, "openrouter")
    for name, value in OPENROUTER_EXTRAS.items():
        assert sent[name] == value
    assert notes == [f"forwarded extra fields {', '.join(OPENROUTER_EXTRAS)}"]
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}


def test_openrouter_keeps_encoded_fields_and_drops_what_it_does_not_know():
    body = {
        "model": "m", "max_tokens": 50, "messages": [USER], "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "user": "not-me", "reasoning": {"effort": "high"}, "models": None, "nvext": {"x": 1},
        "context_management": {"edits": []},
    }  # fmt: skip
    sent, notes = translate(A, body, "openrouter")
    assert sent["user"] == "u-1"  # encoded from metadata.user_id: wins over the raw field
    assert sent["reasoning_effort"] == "medium" and "reasoning" not in sent  # mapped spelling wins
    assert "models" not in sent and "nvext" not in sent and "context_management" not in sent
    assert notes == ["dropped extra fields 'nvext' (not an OpenRouter field)"]


def test_openrouter_responses_upstream_and_other_formats():
    req = get_format(A).decode_request({"model": "m", "max_tokens": 5, "messages": [USER], "provider": {"a": 1}})
    backend = registry().backends["openrouter"]
    out = get_format(R).encode_request(req, EncodeOptions())
    assert forward_extra_fields(backend, out, req.extensions, RESPONSES) == ["forwarded extra fields provider"]
    assert out["provider"] == {"a": 1}
    body: dict = {}
    assert forward_extra_fields(backend, body, req.extensions, MESSAGES) == [] and body == {}


def test_kinds_without_a_policy_forward_nothing():
    for prefix in ("hf", "chat"):
        sent, notes = translate(A, {"model": "m", "max_tokens": 5, "messages": [USER], "provider": {}}, prefix)
        assert "provider" not in sent and notes == []


# --------------------------------------------------------------------------- NVIDIA


def test_nvidia_forwards_unknown_fields_within_bounds():
    extras = {
        "nvext": {"guided_json": {"type": "object"}},
        "chat_template_kwargs": {"thinking": True},
        "bad-name": 1,
        "x" * 65: 1,
        "huge": "y" * (16 * 1024),
        "gone": None,
        "stop": "never",  # unknown to A, but the encoder sets it from stop_sequences
    }
    base = {"model": "m", "max_tokens": 5, "messages": [USER], "stop_sequences": ["END"]}
    sent, notes = translate(A, {**base, **extras}, "nvidia")
    assert sent["nvext"] == extras["nvext"] and sent["chat_template_kwargs"] == {"thinking": True}
    assert not {"bad-name", "x" * 65, "huge", "gone"} & set(sent)
    assert sent["stop"] == ["END"]  # encoded fields win
    assert notes == [
        "forwarded extra fields nvext, chat_template_kwargs",
        f"dropped extra fields 'bad-name', {'x' * 64!r} (name not allowed)",
        "dropped extra fields 'huge' (value over 16 KiB)",
    ]
    fits = "y" * (16 * 1024 - 2)  # 16 KiB exactly once serialised with its quotes
    sent, _ = translate(A, {"model": "m", "max_tokens": 5, "messages": [USER], "fits": fits}, "nvidia")
    assert sent["fits"] == fits


def test_nvidia_forwards_at_most_32_fields():
    extras = {f"f{i}": i for i in range(NVIDIA_MAX_FIELDS + 3)}
    sent, notes = translate(A, {"model": "m", "max_tokens": 5, "messages": [USER], **extras}, "nvidia")
    assert [k for k in sent if k.startswith("f")] == [f"f{i}" for i in range(NVIDIA_MAX_FIELDS)]
    assert notes[1:] == ["dropped extra fields 'f32', 'f33', 'f34' (over 32 fields)"]
    many = {f"bad-{i}": i for i in range(1000)}
    _, notes = translate(A, {"model": "m", "max_tokens": 5, "messages": [USER], **many}, "nvidia")
    assert notes == ["dropped extra fields " + ", ".join(f"'bad-{i}'" for i in range(8)) + " and 992 more "
                     "(name not allowed)"]  # fmt: skip


def test_claude_code_fields_never_reach_nvidia():
    body = {"model": "m", "max_tokens": 5, "messages": [USER], "context_management": {"edits": []},
            "metadata": {"user_id": "u", "other": 1}, "output_config": {"effort": "low", "task_budget": 1},
            "service_tier": "auto", "mcp_servers": [], "container": "c"}  # fmt: skip
    sent, notes = translate(A, body, "nvidia")
    assert not {"context_management", "metadata", "output_config", "service_tier", "mcp_servers", "container"} & set(
        sent
    )
    assert notes == []


def test_translated_plan_forwards_openrouter_fields():
    """Needs the one-line call to ``forward_extra_fields`` in ``routing.plan._translate_request``."""
    raw = orjson.dumps({"model": "openrouter:a/b", "max_tokens": 5, "messages": [USER], **OPENROUTER_EXTRAS})
    plan, up = plan_request(registry(), A, raw)
    assert plan.mode == "translated" and up is not None
    sent = orjson.loads(up.body)
    if "provider" not in sent:
        pytest.xfail("routing/plan.py does not call forward_extra_fields yet")
    assert {k: sent[k] for k in OPENROUTER_EXTRAS} == OPENROUTER_EXTRAS
    assert f"forwarded extra fields {', '.join(OPENROUTER_EXTRAS)}" in plan.notes


# --------------------------------------------------------------------------- Hugging Face


@pytest.mark.parametrize("stream", [False, True])
def test_responses_client_on_huggingface_is_translated_to_chat(stream):
    raw = orjson.dumps(
        {"model": "hf:meta-llama/Llama-3.3-70B-Instruct", "input": "hi", "instructions": "be brief",
         "stream": stream, "store": False, "include": ["reasoning.encrypted_content"]}
    )  # fmt: skip
    plan, up = plan_request(registry(), R, raw)
    assert plan.error is None and up is not None
    assert (plan.mode, plan.upstream_format, plan.upstream_stream) == ("translated", CHAT, stream)
    assert up.url == "https://router.huggingface.co/v1/chat/completions"
    assert up.set_headers["authorization"] == "Bearer hf_x"
    sent = orjson.loads(up.body)
    assert sent["model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert not {"input", "store", "include", "instructions"} & set(sent)
    assert ("stream_options" in sent) is stream  # HF reports stream usage: ask for it


def test_anthropic_client_on_huggingface_is_translated_to_chat():
    raw = orjson.dumps({"model": "hf:m", "max_tokens": 9, "messages": [USER], "stream": True})
    plan, up = plan_request(registry(), A, raw)
    assert up is not None and (plan.mode, plan.upstream_format) == ("translated", CHAT)
    assert up.url == "https://router.huggingface.co/v1/chat/completions"


# --------------------------------------------------------------------------- OpenRouter headers


def test_openrouter_title_header_is_a_configured_default_like_x_title():
    raw = orjson.dumps({"model": "openrouter:a/b", "messages": [USER]})
    _, up = plan_request(registry(), C, raw)
    assert up is not None and up.default_headers == {"x-openrouter-title": "wireshift"}
    assert "x-openrouter-title" not in up.drop_headers and "x-openrouter-title" not in up.set_headers
    client = [("HTTP-Referer", "https://app.example"), ("X-OpenRouter-Title", "my-app")]
    sent = upstream_headers(client, up)
    assert [v for k, v in sent if k.lower() == "x-openrouter-title"] == ["my-app"]  # the client's value wins
    assert ("HTTP-Referer", "https://app.example") in sent
    assert ("x-openrouter-title", "wireshift") in upstream_headers([("HTTP-Referer", "r")], up)


# --------------------------------------------------------------------------- usage estimate


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "meta/llama"}
    return b"data: " + orjson.dumps({**body, "choices": choices, **extra}) + b"\n\n"


TEXT = "Hello there, how are you today?"  # 31 characters: 8 tokens at 4 a token, rounded up
CALL = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
#: What hosted NIM streams once stream_options is stripped: no usage chunk at all.
NO_USAGE = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": TEXT[:12]}),
    chunk({"content": TEXT[12:]}),
    chunk({}, "stop"),
    b"data: [DONE]\n\n",
]
REAL_USAGE = {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129}
MINTED = [itertools.count()]


def run(client: str, upstream: list[bytes], **ctx) -> list[dict]:
    """A C upstream stream through the pipeline for ``client``; the data objects written (ids
    minted by the encoders are ``<prefix>gen<n>``)."""
    MINTED[0] = itertools.count()
    context = StreamContext(model="nvidia:meta/llama", response_id="id-1", estimated_input_tokens=42, **ctx)
    translator = StreamTranslator(C, client, context)
    out = b"".join(translator.feed(part) for part in upstream) + translator.close()
    events = [e.data for e in SSEDecoder().feed(out)]
    return [orjson.loads(d) for d in events if d != b"[DONE]"]


def usages(frames: list[dict]) -> list[dict]:
    found = []
    for f in frames:
        for holder in (f, f.get("message") or {}, f.get("response") or {}):
            if isinstance(holder.get("usage"), dict):
                found.append(holder["usage"])
    return found


@pytest.fixture(autouse=True)
def fixed_clock_and_ids(monkeypatch):
    monkeypatch.setattr(openai_chat, "_now", lambda: 1_700_000_000)
    monkeypatch.setattr(openai_responses, "_now", lambda: 1_700_000_000)
    for module in (openai_chat, openai_responses, anthropic_messages):
        monkeypatch.setattr(module, "new_id", lambda prefix, nbytes=12: f"{prefix}gen{next(MINTED[0])}")


def test_anthropic_client_gets_an_estimated_usage_from_a_stream_without_usage():
    frames = run(A, NO_USAGE, estimate_usage=True)
    start, delta = usages(frames)
    assert start == {"input_tokens": 42, "output_tokens": 0, "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 0, "estimated": True}  # fmt: skip
    assert delta == {"input_tokens": 42, "output_tokens": 8, "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 0, "estimated": True}  # fmt: skip
    assert [f["type"] for f in frames[-2:]] == ["message_delta", "message_stop"]


def test_chat_client_with_include_usage_gets_an_estimated_usage_chunk():
    frames = run(C, NO_USAGE, estimate_usage=True, include_usage=True)
    last = frames[-1]
    assert last["choices"] == [] and last["id"] == "id-1"
    assert last["usage"] == {"prompt_tokens": 42, "completion_tokens": 8, "total_tokens": 50,
                             "prompt_tokens_details": {"cached_tokens": 0}, "estimated": True}  # fmt: skip
    assert "".join(f["choices"][0]["delta"].get("content") or "" for f in frames if f["choices"]) == TEXT


def test_responses_client_gets_an_estimated_usage_that_codex_can_parse():
    frames = run(R, NO_USAGE, estimate_usage=True)
    completed = frames[-1]
    assert completed["type"] == "response.completed"
    usage = completed["response"]["usage"]
    assert usage == {"input_tokens": 42, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                     "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 50,
                     "estimated": True}  # fmt: skip
    for frame in frames:  # the SDK's own types accept the extra key
        TypeAdapter(ResponseStreamEvent).validate_python(frame)


def test_sdk_types_accept_the_estimated_key():
    for frame in run(A, NO_USAGE, estimate_usage=True):
        TypeAdapter(RawMessageStreamEvent).validate_python(frame)
    last = ChatCompletionChunk.model_validate(run(C, NO_USAGE, estimate_usage=True, include_usage=True)[-1])
    assert last.usage is not None and last.usage.completion_tokens == 8
    assert last.usage.model_extra == {"estimated": True}


def test_tool_calls_and_reasoning_count_as_output():
    stream = [
        chunk({"role": "assistant", "reasoning_content": "Think" * 4}),  # 20 chars: 5 reasoning tokens
        chunk({"tool_calls": [CALL]}),  # name: 11 chars
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]}),  # 16 chars
        chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
    usage = run(C, stream, estimate_usage=True, include_usage=True)[-1]["usage"]
    assert usage["completion_tokens"] == 7 + 5 and usage["completion_tokens_details"] == {"reasoning_tokens": 5}
    assert usage["estimated"] is True


@pytest.mark.parametrize("client", [A, C, R])
def test_without_the_flag_nothing_changes(client):
    plain = run(client, NO_USAGE, include_usage=True)
    assert not any("estimated" in u for u in usages(plain))
    assert run(client, NO_USAGE, include_usage=True, estimate_usage=False) == plain


@pytest.mark.parametrize("client", [A, C, R])
def test_a_reported_usage_wins_over_the_estimate(client):
    late = [*NO_USAGE[:-1], chunk(None, usage=REAL_USAGE), NO_USAGE[-1]]  # after the finish chunk
    with_flag = run(client, late, estimate_usage=True, include_usage=True)
    if client == A:  # message_start's input figure is the request estimate either way, marked with the flag
        assert with_flag[0]["message"]["usage"]["estimated"] is True
        with_flag[0]["message"]["usage"].pop("estimated")
    assert with_flag == run(client, late, include_usage=True)
    final = usages(with_flag)[-1]
    assert "estimated" not in final and final.get("output_tokens", final.get("completion_tokens")) == 9


@pytest.mark.parametrize("client", [A, C, R])
def test_an_error_ending_gets_no_estimate(client):
    frames = run(client, NO_USAGE[:3], estimate_usage=True, include_usage=True)  # cut before the finish
    assert not any(u.get("estimated") and u.get("output_tokens", u.get("completion_tokens")) for u in usages(frames))


@pytest.mark.parametrize("client", [A, C, R])
def test_whole_responses_without_usage_are_estimated_too(client):
    body = orjson.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}]})  # fmt: skip
    ctx = StreamContext(model="m", estimated_input_tokens=42, estimate_usage=True)
    out, _ = translate_response(C, client, body, ctx)
    usage = orjson.loads(out)["usage"]
    assert usage["estimated"] is True and usage.get("output_tokens", usage.get("completion_tokens")) == 8
    plain, _ = translate_response(C, client, body, StreamContext(model="m", estimated_input_tokens=42))
    assert "estimated" not in orjson.loads(plain)["usage"]
    streamed, _ = synthesize_stream(C, client, body, ctx)  # a streaming client on a non-streaming upstream
    assert (
        usages([orjson.loads(e.data) for e in SSEDecoder().feed(streamed) if e.data != b"[DONE]"])[-1]["estimated"]
        is True
    )


def test_estimate_usage_of_a_response():
    resp = CanonicalResponse(content=[Text("abcde"), ToolCall("c", "fn", '{"a":1}')])
    assert estimate_usage(resp.content, 10) == Usage(input_tokens=10, output_tokens=4, estimated=True)  # 14 chars


def test_needs_usage_estimate_only_for_chat_upstreams_that_cannot_report_it():
    backends = registry().backends
    assert needs_usage_estimate(backends["nvidia"], CHAT)
    assert not needs_usage_estimate(backends["nvidia"], RESPONSES)
    assert not needs_usage_estimate(backends["openrouter"], CHAT)
    assert not needs_usage_estimate(backends["hf"], CHAT)
    cfg = parse_config({"backends": [{"kind": "custom-openai-chat-compatible", "backend_prefix": "d",
                                      "base_url": "http://h/v1", "drop_params": ["stream_options"]}]}, Path("t.yaml"))  # fmt: skip
    assert needs_usage_estimate(Registry.from_config(cfg, {}).backends["d"], CHAT)
