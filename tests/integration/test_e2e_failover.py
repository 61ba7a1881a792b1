"""Upstream execution through a real mitmdump (issue 4): key pools, pre-output retry and
failover with streaming kept, no retry after output, timeouts, transport policy, quirks.

The emulator answers a key ``emu-status-<code>[-<retry-after>]`` with that status; the test
config (conftest.TEST_CONFIG) gives each scenario its own backend so pools don't interact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx2
import openai
import pytest

from tests.integration.conftest import Emulator, Proxy, start_mitmdump, stop, wait_port
from tests.integration.test_e2e_sdk import USER, ant, oai

HELLO = "Hello from the wireshift reference backend."


def headers(recorded: dict) -> dict[str, str]:
    """A recorded request's headers by lower-case name."""
    return {k.lower(): v for k, v in recorded["headers"].items()}


def keys_seen(emulator: Emulator) -> list[str]:
    return [headers(r).get("authorization") or headers(r).get("x-api-key", "") for r in emulator.requests()]


def pool_state(proxy: Proxy, prefix: str) -> list[dict]:
    return httpx2.get(f"{proxy.reverse_url}/wireshift/status").json()["backends"][prefix]["keys"]


def sse_frames(text: str) -> list[str]:
    return [f for f in text.strip().split("\n\n") if f]


def test_rejected_key_then_next_key_serves_one_clean_stream(proxy: Proxy, emulator: Emulator):
    """Key A answers 401: the same request goes out again with key B, and the streaming client
    sees a single clean stream; A is retired for later requests."""
    emulator.clear()
    chunks = list(oai(proxy).chat.completions.create(model="emu-k401:text", messages=USER, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert keys_seen(emulator) == ["Bearer emu-status-401", "Bearer k401-good"]
    oai(proxy).chat.completions.create(model="emu-k401:text", messages=USER)
    assert keys_seen(emulator)[2:] == ["Bearer k401-good"]
    states = pool_state(proxy, "emu-k401")
    assert [k["state"] for k in states] == ["invalid", "usable"]
    assert "emu-status" not in str(states) and "k401-good" not in str(states)


def test_rate_limited_key_cools_down_and_is_skipped(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    with ant(proxy).messages.stream(model="emu-k429:text", max_tokens=64, messages=USER) as stream:
        assert stream.get_final_text() == HELLO
    ant(proxy).messages.create(model="emu-k429:text", max_tokens=64, messages=USER)
    assert keys_seen(emulator) == ["emu-status-429-30", "k429-good", "k429-good"]
    first = pool_state(proxy, "emu-k429")[0]
    assert first["state"] == "cooling_down" and 20 < first["cooldown_until"] - time.time() <= 30


def test_every_key_exhausted_gives_a_client_format_429_with_retry_after(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    with pytest.raises(openai.RateLimitError) as info:
        oai(proxy).chat.completions.create(model="emu-kall:text", messages=USER)
    assert info.value.response.headers["retry-after"] == "9"  # the last upstream error's
    assert len(emulator.requests()) == 2
    with pytest.raises(openai.RateLimitError) as info:
        oai(proxy).chat.completions.create(model="emu-kall:text", messages=USER, stream=True)
    assert "cooling down" in info.value.body["message"]
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 5  # the first key back
    assert len(emulator.requests()) == 2  # answered by the proxy itself


def test_failover_across_backends_of_different_wire_formats(proxy: Proxy, emulator: Emulator):
    """A named route: a dead backend (connect error), a 503 from a Chat backend, then an
    Anthropic backend serves; the OpenAI client's stream is re-encoded from Anthropic."""
    emulator.clear()
    with oai(proxy).chat.completions.with_streaming_response.create(
        model="failover-demo", messages=USER, stream=True
    ) as resp:
        assert resp.headers["x-wireshift-backend"] == "emu-anthropic"
        chunks = list(resp.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == HELLO
    assert {c.model for c in chunks} == {"failover-demo"}
    assert [r["path"] for r in emulator.requests()] == ["/v1/chat/completions", "/v1/messages"]
    # and the other way: an Anthropic client whose first candidate is same-format
    emulator.clear()
    with ant(proxy).messages.stream(
        model="emu-anthropic-nokey:error-529|emu-chat:tool", max_tokens=64, messages=USER,
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    ) as stream:  # fmt: skip
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].input == {"city": "Paris", "unit": "celsius"}
    assert [r["path"] for r in emulator.requests()] == ["/v1/messages", "/v1/chat/completions"]


def test_no_retry_once_output_started(proxy: Proxy, emulator: Emulator):
    """The first candidate dies after a few chunks: the client gets its format's error event
    (not a truncated body) and the second candidate is never called."""
    for path, body, last in [
        ("/v1/chat/completions", {"model": "emu-chat:drop|emu-anthropic:text", "messages": USER}, 'data: {"error":'),
        ("/v1/messages", {"model": "emu-chat:drop|emu-anthropic:text", "max_tokens": 64, "messages": USER},
         "event: error\n"),
        ("/v1/chat/completions", {"model": "emu-anthropic:drop|emu-chat:text", "messages": USER}, 'data: {"error":'),
    ]:  # fmt: skip
        emulator.clear()
        r = httpx2.post(f"{proxy.reverse_url}{path}", json={**body, "stream": True}, timeout=30)
        assert r.status_code == 200
        frames = sse_frames(r.text)
        assert len(frames) > 2 and frames[-1].startswith(last), r.text
        assert "connection" in frames[-1].lower() or "mid-stream" in frames[-1]
        assert len(emulator.requests()) == 1
    # the SDKs surface it as an error, not as a short but clean answer
    emulator.clear()
    with pytest.raises(openai.APIError, match="mid-stream"):
        for _ in oai(proxy).chat.completions.create(
            model="emu-chat:drop|emu-anthropic:text", messages=USER, stream=True
        ):
            pass
    with pytest.raises(anthropic.APIError, match="mid-stream"):
        with ant(proxy).messages.stream(model="emu-anthropic:drop|emu-chat:text", max_tokens=64, messages=USER) as s:
            s.until_done()
    assert [r["path"] for r in emulator.requests()] == ["/v1/chat/completions", "/v1/messages"]


def test_first_byte_timeout_fails_over_and_idle_timeout_ends_the_stream(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    started = time.monotonic()
    out = oai(proxy).chat.completions.with_raw_response.create(model="emu-fast:stall-3000|emu-chat:text", messages=USER)
    assert time.monotonic() - started < 2.5
    assert out.headers["x-wireshift-backend"] == "emu-chat"
    assert out.parse().choices[0].message.content == HELLO
    r = httpx2.post(
        f"{proxy.reverse_url}/v1/messages",
        json={"model": "emu-fast:slow-1500", "max_tokens": 64, "stream": True, "messages": USER},
        timeout=30,
    )
    frames = sse_frames(r.text)
    assert "tick 0" in r.text and "tick 1" not in r.text
    assert frames[-1].startswith("event: error\n") and "timeouts.idle" in frames[-1]


def test_unreachable_backend_is_a_client_format_502_not_an_html_page(proxy: Proxy):
    with pytest.raises(anthropic.APIStatusError) as info:
        ant(proxy).messages.create(model="emu-dead:text", max_tokens=64, messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["type"] == "error" and "cannot connect" in info.value.body["error"]["message"]


def test_exhausted_route_gives_the_last_upstream_error(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    with pytest.raises(anthropic.APIStatusError) as info:
        ant(proxy).messages.create(
            model="emu-chat-nokey:error-500|emu-anthropic-nokey:error-529", max_tokens=64, messages=USER
        )
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"
    assert len(emulator.requests()) == 2


def test_nvidia_quirks_reach_the_upstream(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    chunks = list(
        oai(proxy).chat.completions.create(
            model="nvidia:text", messages=USER, stream=True, max_completion_tokens=50,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    # NIM cannot be asked for stream usage, so the client gets an estimate, marked as such
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].completion_tokens > 0 and usage[0].prompt_tokens > 0
    assert (usage[0].model_extra or {}).get("estimated") is True
    sent = emulator.requests()[-1]
    assert sent["path"] == "/v1/chat/completions" and headers(sent)["authorization"] == "Bearer nv-key"
    assert "stream_options" not in sent["body"] and "max_completion_tokens" not in sent["body"]
    assert sent["body"]["max_tokens"] == 50


def test_openrouter_headers_and_fields(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    provider = {"order": ["moonshotai"], "allow_fallbacks": False}
    ant(proxy).messages.create(model="openrouter:text", max_tokens=64, messages=USER, extra_body={"provider": provider})
    oai(proxy).chat.completions.create(model="openrouter:text", messages=USER, extra_headers={"X-Title": "my-agent"})
    assert emulator.requests()[0]["body"]["provider"] == provider  # an OpenRouter field survives A -> Chat
    first, second = map(headers, emulator.requests())
    assert first["http-referer"] == "https://wireshift.test" and first["x-title"] == "wireshift-tests"
    assert second["x-title"] == "my-agent" and second["authorization"] == "Bearer or-key"


# ----------------------------------------------------------------------------- transport policy "exact"


@pytest.fixture(scope="module")
def exact_proxy(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("exact")
    config = tmp / "exact.yaml"
    config.write_text(
        f"""
backends:
  - kind: custom-openai-chat-compatible
    backend_prefix: nostream
    base_url: {emulator.url}/v1
    streaming: false
  - kind: custom-anthropic-compatible
    backend_prefix: streamonly
    base_url: {emulator.url}
    streaming: only
routing:
  transport_fallback: exact
"""
    )
    proc, reverse_port, _ = start_mitmdump(config, tmp / "confdir", tmp / "log.txt")
    try:
        wait_port(reverse_port, proc)
        yield f"http://127.0.0.1:{reverse_port}"
    finally:
        stop(proc)


def test_exact_transport_policy_refuses_mismatches_in_client_format(exact_proxy: str):
    client = openai.OpenAI(api_key="k", base_url=f"{exact_proxy}/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="nostream:text", messages=USER, stream=True)
    assert info.value.body["param"] == "stream" and "does not stream" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="streamonly:text", messages=USER)
    assert "only streams" in info.value.body["message"]
    # matching transports pass
    assert client.chat.completions.create(model="nostream:text", messages=USER).choices[0].message.content == HELLO
    chunks = list(client.chat.completions.create(model="streamonly:text", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == HELLO


def test_chunked_request_body_is_relayed(proxy: Proxy):
    """A client that sends its body chunked (no Content-Length) still gets its stream."""

    def chunks():
        yield b'{"model": "emu-chat:text", "stream": true, '
        yield b'"messages": [{"role": "user", "content": "hi"}]}'

    for path in ("/v1/chat/completions", "/v1/messages"):
        r = httpx2.post(
            f"{proxy.reverse_url}{path}",
            content=chunks(),
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
            timeout=30,
        )
        assert r.status_code == 200 and r.request.headers.get("transfer-encoding") == "chunked"
        assert "Hello " in r.text and r.headers["content-type"].startswith("text/event-stream")
