"""routing.executor and routing.relay against the emulator served in-process on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from config.loader import ConfigError, parse_config
from routing.backends import Registry
from routing.executor import Executor, Outcome, is_retryable
from routing.plan import UpstreamRequest, route_candidates, upstream_headers
from routing.relay import Relay
from scripts.emulator import REQUESTS, make_app

USER = [{"role": "user", "content": "hi"}]
HELLO = "Hello from the wireshift reference backend."


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry(emu: str, **routing) -> Registry:
    chat = {"kind": "custom-openai-chat-compatible", "base_url": f"{emu}/v1"}
    cfg = parse_config(
        {
            "backends": [
                {**chat, "backend_prefix": "chat", "api_keys": ["good"]},
                {**chat, "backend_prefix": "pool", "api_keys": ["emu-status-401", "emu-status-503", "good-c"]},
                {**chat, "backend_prefix": "down", "api_keys": ["emu-status-503", "good-d"]},
                {**chat, "backend_prefix": "auth", "api_keys": ["emu-status-403", "emu-status-401", "good-e"]},
                {**chat, "backend_prefix": "bare"},
                {"kind": "custom-anthropic-compatible", "backend_prefix": "anth", "base_url": emu},
                {**chat, "backend_prefix": "dead", "base_url": f"http://127.0.0.1:{dead_port()}/v1"},
                {**chat, "backend_prefix": "fast", "timeouts": {"first_byte": 0.3, "idle": 0.3}},
            ],
            "routing": routing,
        },
        Path("t.yaml"),
    )
    return Registry.from_config(cfg, {})


@pytest.fixture
async def emu() -> AsyncIterator[tuple[str, list]]:
    app = make_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", app[REQUESTS]
    finally:
        await server.close()


@pytest.fixture
async def executor() -> AsyncIterator[Executor]:
    ex = Executor(verify=False)
    yield ex
    await ex.close()


def auth(seen) -> list[str]:
    return [{k.lower(): v for k, v in r["headers"].items()}["authorization"] for r in seen]


def body(model: str, **kw) -> bytes:
    return orjson.dumps({"model": model, "messages": USER, **kw})


async def run(ex: Executor, reg: Registry, model: str, fmt: str = "openai_chat", **kw) -> Outcome:
    if fmt == "anthropic_messages":
        kw.setdefault("max_tokens", 32)
    return await ex.execute(reg, fmt, body(model, **kw), [("user-agent", "test"), ("authorization", "Bearer client")])


async def drain(outcome: Outcome) -> bytes:
    assert outcome.stream is not None
    return b"".join([c async for c in outcome.stream.chunks()])


async def test_key_rotation_before_output_and_attempts_are_secret_free(emu, executor):
    url, seen = emu
    reg = registry(url)
    out = await run(executor, reg, "pool:text", stream=True)
    assert out.status == 200 and out.stream is not None and b"data: " in out.stream.first
    assert HELLO.split()[0] in (await drain(out)).decode()
    assert auth(seen) == ["Bearer emu-status-401", "Bearer emu-status-503", "Bearer good-c"]
    assert [a["status"] for a in out.plan.attempts] == [401, 503, 200]
    assert "emu-status" not in str(out.plan.to_metadata()) and "good-c" not in str(out.plan.to_metadata())
    # 401 retired the first key; a 503 is not the key's fault, so it stays usable
    assert [k["state"] for k in reg.backends["pool"].keys.snapshot()] == ["invalid", "usable", "usable"]
    seen.clear()
    await run(executor, reg, "pool:text")
    assert auth(seen) == ["Bearer emu-status-503", "Bearer good-c"]


async def test_candidates_in_order_and_the_answering_format_wins(emu, executor):
    url, seen = emu
    out = await run(executor, registry(url), "dead:text|bare:error-500|anth:tool", tools=[])
    assert out.status == 200 and out.plan.backend == "anth" and out.plan.upstream_format == "anthropic_messages"
    assert out.plan.mode == "translated" and out.plan.client_model == "dead:text|bare:error-500|anth:tool"
    assert [(a["backend"], a["status"]) for a in out.plan.attempts] == [("dead", None), ("bare", 500), ("anth", 200)]
    assert "cannot connect" in out.plan.attempts[0]["error"]
    assert [r["path"] for r in seen] == ["/v1/chat/completions", "/v1/messages"]


async def test_named_route_and_non_retryable_status_is_the_answer(emu, executor):
    url, seen = emu
    reg = registry(url, routes={"r": ["bare:error-404", "chat:text"]})
    out = await run(executor, reg, "r")
    assert out.status == 404 and out.stream is None and b"does not exist" in out.body
    assert len(seen) == 1  # a 404 is not retried


async def test_exhausted_gives_the_last_upstream_error_or_a_local_one(emu, executor):
    url, _ = emu
    out = await run(executor, registry(url), "bare:error-503|anth:error-429")
    assert out.status == 429 and ("retry-after", "7") in [(k.lower(), v) for k, v in out.headers]
    out = await run(executor, registry(url), "dead:text")
    assert not out.answered and out.plan.mode == "local" and out.plan.error is not None
    assert out.plan.error.status == 502 and "cannot connect" in out.plan.error.message
    out = await run(executor, registry(url), "nowhere:x|dead:text")  # unroutable, then unreachable
    assert out.plan.error is not None and out.plan.error.status == 502


async def test_max_attempts_bounds_the_tries(emu, executor):
    url, seen = emu
    out = await run(executor, registry(url, max_attempts=2), "bare:error-500|bare:error-503|chat:text")
    assert out.status == 503 and len(seen) == 2


async def test_first_byte_timeout_moves_on_and_idle_timeout_ends_a_stream(emu, executor):
    url, _ = emu
    out = await run(executor, registry(url), "fast:stall-2000|chat:text")
    assert out.status == 200 and out.plan.backend == "chat"
    assert "timeouts.first_byte" in out.plan.attempts[0]["error"]
    out = await run(executor, registry(url), "fast:slow-1000|chat:text", stream=True)
    assert out.plan.backend == "fast"  # committed at its first event
    data = await drain(out)
    assert b"tick 0" in data and b"tick 1" not in data
    assert out.stream is not None and "timeouts.idle" in (out.stream.error or "")


async def test_a_drop_after_output_is_not_retried(emu, executor):
    url, seen = emu
    out = await run(executor, registry(url), "bare:drop|chat:text", stream=True)
    assert out.plan.backend == "bare"
    await drain(out)
    assert out.stream is not None and "mid-stream" in (out.stream.error or "")
    assert len(seen) == 1


GOOD_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"ok"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)
STREAMS = {  # model -> what a 200 text/event-stream answer carries
    "down": b': OPENROUTER PROCESSING\n\ndata: {"error": {"message": "provider down", "code": 502}}\n\n',
    "toolong": b'data: {"error": {"message": "context too long", "code": 400}}\n\n',
    "good": GOOD_STREAM,
}


@pytest.fixture
async def sse_server() -> AsyncIterator[str]:
    """A Chat backend whose 200 streams are canned by model (``STREAMS``)."""

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        model = (await request.json())["model"]
        resp = aiohttp.web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(STREAMS[model])
        await resp.write_eof()
        return resp

    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def test_a_stream_beginning_with_a_retryable_error_event_fails_over(sse_server, executor):
    out = await run(executor, registry(sse_server), "bare:down|chat:good", stream=True)
    assert out.status == 200 and out.plan.backend == "chat" and out.stream is not None
    assert b'"content":"ok"' in await drain(out)
    assert (
        out.plan.attempts[0]["status"] == 200 and "began with an error: provider down" in out.plan.attempts[0]["error"]
    )
    # the same for a non-streaming client (the stream is folded whole)
    out = await run(executor, registry(sse_server), "bare:down|chat:good")
    assert out.plan.backend == "chat" and b"[DONE]" in out.body


async def test_a_stream_beginning_with_a_client_error_is_the_answer(sse_server, executor):
    out = await run(executor, registry(sse_server), "chat:toolong|bare:good", stream=True)
    assert out.plan.backend == "chat" and len(out.plan.attempts) == 1 and out.stream is not None
    assert b"context too long" in await drain(out)


async def test_server_failure_goes_to_the_next_candidate_before_the_next_key(emu, executor):
    url, _ = emu
    out = await run(executor, registry(url), "down:text|chat:text")
    assert out.status == 200 and [(a["backend"], a["status"]) for a in out.plan.attempts] == [
        ("down", 503), ("chat", 200)
    ]  # fmt: skip
    out = await run(executor, registry(url), "down:text")  # the last candidate: its next key
    assert out.status == 200 and [a["status"] for a in out.plan.attempts] == [503, 200]


async def test_two_auth_failures_in_one_request_spare_the_rest_of_the_pool(emu, executor):
    url, seen = emu
    reg = registry(url)
    out = await run(executor, reg, "auth:text")
    assert out.status == 401 and [a["status"] for a in out.plan.attempts] == [403, 401]
    assert [k["state"] for k in reg.backends["auth"].keys.snapshot()] == ["invalid", "invalid", "usable"]
    out = await run(executor, reg, "auth:text")
    assert out.status == 200 and auth(seen)[-1] == "Bearer good-e"


async def test_local_plans_never_call_upstream(emu, executor):
    url, seen = emu
    out = await executor.execute(registry(url), "openai_chat", b"{not json", [])
    assert out.plan.mode == "local" and out.plan.error is not None and out.plan.error.status == 400
    out = await executor.execute(registry(url), "openai_chat", body("gpt-4o"), [], passthrough_ok=True)
    assert out.plan.mode == "passthrough"
    assert not seen


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    server = Relay()
    await server.start()
    yield server
    await server.close()


async def test_relay_serves_a_held_stream_once_and_ends_a_failed_one_cleanly(emu, executor, relay):
    url, _ = emu
    out = await run(executor, registry(url), "bare:drop", stream=True)
    assert out.stream is not None
    held = relay.hold(out.status, out.headers, out.stream)
    async with aiohttp.ClientSession() as session:
        async with session.post(held, data=b"{}" * 5000) as resp:  # mitmproxy sends the upstream body
            assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
            data = await resp.read()  # a complete body: no ClientPayloadError
        assert b"data: " in data and out.stream.error and "mid-stream" in out.stream.error
        async with session.get(held) as again:  # the token is used up
            assert again.status == 404


async def test_relay_discard_releases_an_unfetched_stream(emu, executor, relay):
    url, _ = emu
    out = await run(executor, registry(url), "bare:slow-50", stream=True)
    assert out.stream is not None
    relay.discard(relay.hold(out.status, out.headers, out.stream))
    assert out.stream.closed and out.stream.response.closed  # the upstream connection is let go


def test_route_candidates_and_retryable_statuses(tmp_path):
    reg = registry("http://127.0.0.1:1", routes={"fast": ["chat:a", "anth:b"]})
    assert route_candidates("fast", reg) == ["chat:a", "anth:b"]
    assert route_candidates(" chat:a | |anth:b ", reg) == ["chat:a", "anth:b"]
    assert route_candidates("nvidia:moonshotai/kimi-k2:free", reg) == ["nvidia:moonshotai/kimi-k2:free"]
    assert [s for s in (400, 401, 403, 404, 408, 422, 429, 500, 503, 529) if is_retryable(s)] == [
        401, 403, 408, 429, 500, 503, 529
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"routes": {"a|b": ["chat:x"]}}, "must be non-empty without"),
        ({"routes": {"r": []}}, "one or more selectors"),
        ({"routes": {"r": ["nope:x"]}}, "names no enabled backend_prefix"),
        ({"timeouts": {"connect": 0}}, "routing.timeouts.connect"),
        ({"max_attempts": 0}, "routing.max_attempts"),
    ],
)
def test_invalid_routing_settings_are_refused(routing, message):
    with pytest.raises(ConfigError, match=message.replace("|", r"\|")):
        registry("http://127.0.0.1:1", **routing)


def test_upstream_headers_drop_hop_by_hop_and_client_auth_and_keep_repeats():
    up = UpstreamRequest(
        "http://u/v1/chat/completions",
        {"authorization": "Bearer backend", "accept-encoding": "identity"},
        ("authorization", "x-api-key", "content-length"),
        b"{}",
        {"x-title": "wireshift", "http-referer": "https://w"},
    )
    client = [("Host", "proxy"), ("Authorization", "Bearer client"), ("X-Title", "mine"), ("Accept", "a"),
              ("Accept", "b"), ("Connection", "keep-alive"), ("Content-Length", "2"), ("X-Api-Key", "k")]  # fmt: skip
    assert upstream_headers(client, up) == [
        ("X-Title", "mine"), ("Accept", "a"), ("Accept", "b"),
        ("authorization", "Bearer backend"), ("accept-encoding", "identity"), ("http-referer", "https://w"),
    ]  # fmt: skip
