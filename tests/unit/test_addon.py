"""The addon's glue, driven with mitmproxy's own test helpers (mitmproxy-notes.md §10)."""

from pathlib import Path

import orjson
import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy import mode_specs
from mitmproxy.test import taddons, tflow, tutils

from addons.llm_flows import WireShift

CONFIG = """
backends:
  - kind: custom-openai-chat-compatible
    backend_prefix: chat
    base_url: http://127.0.0.1:7001/v1
    api_keys: [backend-key]
  - kind: custom-anthropic-compatible
    backend_prefix: anth
    base_url: http://127.0.0.1:7002
"""


def flow(path: str, body: dict | bytes, *, host="api.openai.com", mode="regular", headers=None):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    req = tutils.treq(
        method=b"POST",
        scheme=b"https",
        host=host,
        port=443,
        path=path.encode(),
        headers=http.Headers(((b"content-type", b"application/json"),)),
        content=content,
    )
    for k, v in (headers or {}).items():
        req.headers[k] = v
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse(mode)
    return f


class ConnectionStrategyOption:
    """Declares mitmproxy's ``connection_strategy`` (normally from Proxyserver, which would also
    start listeners) so the addon's configure can set it."""

    def load(self, loader):
        loader.add_option("connection_strategy", str, "eager", "", choices=("eager", "lazy"))


@pytest.fixture
def addon(tmp_path: Path):
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    a = WireShift()
    with taddons.context(ConnectionStrategyOption(), a) as tctx:
        tctx.configure(a, wireshift_config=str(cfg), wireshift_executor=False)
        yield a, tctx, tmp_path


def test_sets_lazy_connection_strategy(addon):
    _, tctx, _ = addon
    assert tctx.options.connection_strategy == "lazy"


def test_retargets_and_swaps_credentials(addon):
    a, _, _ = addon
    f = flow(
        "/v1/messages?beta=true",
        {"model": "chat:m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
        host="api.anthropic.com",
        headers={"x-api-key": "client-key", "anthropic-beta": "x"},
    )
    a.request(f)
    assert f.response is None
    assert f.request.url == "http://127.0.0.1:7001/v1/chat/completions"
    assert f.request.headers["authorization"] == "Bearer backend-key"
    assert "x-api-key" not in f.request.headers and "anthropic-beta" not in f.request.headers
    sent = orjson.loads(f.request.content)
    assert sent["model"] == "m" and sent["messages"] == [{"role": "user", "content": "hi"}]
    meta = f.metadata["wireshift"]
    assert meta["mode"] == "translated" and meta["backend"] == "chat"
    assert "backend-key" not in str(meta) and "client-key" not in str(meta)
    assert f.comment.startswith("wireshift anthropic_messages -> chat:m")


def test_custom_backend_without_key_sends_no_auth(addon):
    a, _, _ = addon
    f = flow(
        "/v1/messages",
        {"model": "anth:m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer client-key"},
    )
    a.request(f)
    assert "authorization" not in f.request.headers and "x-api-key" not in f.request.headers


def test_unrouted_vendor_host_passes_through_in_regular_mode(addon):
    a, _, _ = addon
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    f = flow("/v1/chat/completions", body, headers={"authorization": "Bearer client-key"})
    a.request(f)
    assert f.response is None
    assert f.request.url == "https://api.openai.com/v1/chat/completions"
    assert f.request.headers["authorization"] == "Bearer client-key"
    assert f.metadata["wireshift"]["mode"] == "passthrough"


def test_unrouted_is_404_in_client_format_elsewhere(addon):
    a, _, _ = addon
    body = {"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    f = flow("/v1/messages", body, host="127.0.0.1", mode="reverse:http://127.0.0.1:9")
    a.request(f)
    assert f.response is not None and f.response.status_code == 404
    err = orjson.loads(f.response.content)
    assert err["type"] == "error" and err["error"]["type"] == "not_found_error"
    assert "anth, chat" in err["error"]["message"]


def test_non_llm_traffic_untouched_in_regular_mode(addon):
    a, _, _ = addon
    f = flow("/v1/embeddings", {"model": "chat:m"}, host="example.com")
    a.request(f)
    assert f.response is None and f.request.host == "example.com" and "wireshift" not in f.metadata


def test_reverse_mode_local_paths(addon):
    a, _, _ = addon
    f = flow("/v1/messages/count_tokens?beta=true", {"model": "x", "messages": []}, mode="reverse:http://127.0.0.1:9")
    a.request(f)
    assert f.response is not None and f.response.status_code == 200
    assert orjson.loads(f.response.content)["input_tokens"] > 0


def test_reload_with_bad_config_keeps_last_good(addon):
    a, tctx, tmp_path = addon
    before = a.registry
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "backends:\n  - kind: custom-openai-chat-compatible\n    backend_prefix: 'a/b'\n    base_url: http://x\n"
    )
    tctx.configure(a, wireshift_config=str(bad))
    assert a.registry is before


def test_invalid_config_at_start_refuses(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends:\n  - kind: nope\n")
    a = WireShift()
    with taddons.context(a) as tctx:
        with pytest.raises(exceptions.OptionsError, match="unknown backend kind"):
            tctx.configure(a, wireshift_config=str(bad))


def test_unexpected_exception_becomes_client_format_error(addon, monkeypatch):
    a, _, _ = addon

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("addons.llm_flows.plan_request", boom)
    f = flow("/v1/messages", {"model": "chat:m", "max_tokens": 5, "messages": []}, host="api.anthropic.com")
    a.request(f)
    assert f.response is not None and f.response.status_code == 500
    body = orjson.loads(f.response.content)
    assert body["type"] == "error" and "boom" in body["error"]["message"]


def test_head_answer_has_no_body(addon):
    a, _, _ = addon
    f = flow("/api/hello", b"", mode="reverse:http://127.0.0.1:9")
    f.request.method = "HEAD"
    a.request(f)
    assert f.response is not None and f.response.status_code == 200 and f.response.content == b""


def test_count_tokens_estimates_from_content(addon):
    a, _, _ = addon
    body = {"model": "x", "messages": [{"role": "user", "content": "y" * 4000}]}
    f = flow("/v1/messages/count_tokens", body, mode="reverse:http://127.0.0.1:9")
    a.request(f)
    assert 1000 <= orjson.loads(f.response.content)["input_tokens"] < 1100
    bad = flow("/v1/messages/count_tokens", b"{nope", mode="reverse:http://127.0.0.1:9")
    a.request(bad)
    assert bad.response.status_code == 400 and orjson.loads(bad.response.content)["type"] == "error"


def test_llm_requests_are_never_streamed_upstream(addon):
    a, _, _ = addon
    f = flow("/v1/messages?beta=true", {"model": "chat:m"})
    f.request.stream = True  # as stream_large_bodies would
    a.requestheaders(f)
    assert f.request.stream is False


def test_large_translated_response_is_not_left_streamed_untranslated(addon):
    """stream_large_bodies sets response.stream=True before responseheaders; a translated JSON
    body must still be buffered and translated."""
    a, _, _ = addon
    f = flow(
        "/v1/messages",
        {"model": "chat:m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        host="api.anthropic.com",
    )
    a.request(f)
    upstream = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    f.response = http.Response.make(200, orjson.dumps(upstream), {"content-type": "application/json"})
    f.response.stream = True
    a.responseheaders(f)
    assert f.response.stream is False
    a.response(f)
    out = orjson.loads(f.response.content)
    assert out["type"] == "message" and out["content"] == [{"type": "text", "text": "hello"}]


def test_gzip_stream_split_anywhere_and_corrupt_body():
    import gzip

    from addons.llm_flows import _stream_callable
    from translators.canonical import StreamContext
    from translators.pipeline import StreamTranslator

    sse = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        b'"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}\n\n'
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        b'"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    packed = gzip.compress(sse)

    def run(chunks):
        stream = _stream_callable(StreamTranslator("openai_chat", "anthropic_messages", StreamContext("m")), "gzip")
        out = b""
        for chunk in [*chunks, b""]:
            result = stream(chunk)
            assert result != b"" or chunk == b""  # never end an HTTP/1 body early
            out += result if isinstance(result, bytes) else b"".join(result)
        return out

    out = run([packed[:10], packed[10:]])  # the gzip header alone in the first read
    assert b'"text":"Hello"' in out and out.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    broken = run([packed[:10], b"\x00" * 40])
    assert b"event: error" in broken and b"cannot decompress" in broken and b"message_stop" not in broken


def test_regular_mode_intercepts_only_vendor_and_backend_hosts(addon):
    a, _, _ = addon
    body = {"model": "chat:m", "input": "hi"}
    other = flow("/responses", body, host="shop.example.com")
    a.request(other)
    assert other.request.host == "shop.example.com" and "wireshift" not in other.metadata
    backend_host = flow("/v1/chat/completions", {"model": "chat:m", "messages": []}, host="127.0.0.1")
    a.request(backend_host)
    assert backend_host.metadata["wireshift"]["backend"] == "chat"


def test_configured_headers_are_defaults_the_client_can_override(tmp_path):
    cfg = tmp_path / "h.yaml"
    cfg.write_text(
        "backends:\n  - kind: custom-openai-chat-compatible\n    backend_prefix: or\n    base_url: http://127.0.0.1:7009/v1\n"
        "    api_keys: [k]\n    headers: {HTTP-Referer: 'https://wireshift.example', X-Title: wireshift,"
        " Authorization: 'Bearer config-cannot-override-the-key'}\n"
    )
    a = WireShift()
    with taddons.context(ConnectionStrategyOption(), a) as tctx:
        tctx.configure(a, wireshift_config=str(cfg), wireshift_executor=False)
        f = flow("/v1/chat/completions", {"model": "or:m", "messages": []}, headers={"X-Title": "my-app"})
        a.request(f)
    assert f.request.headers["X-Title"] == "my-app"
    assert f.request.headers["HTTP-Referer"] == "https://wireshift.example"
    assert f.request.headers["authorization"] == "Bearer k"


async def test_client_disconnect_cancels_the_upstream_execution(tmp_path):
    """The executor runs as a task of the client connection; a client that went away cancels it
    (no retries, the upstream released) and the flow is left unanswered."""
    import asyncio

    started, cancelled = asyncio.Event(), asyncio.Event()

    class Hanging:
        async def execute(self, *args, **kwargs):
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    a = WireShift()
    with taddons.context(ConnectionStrategyOption(), a) as tctx:
        tctx.configure(a, wireshift_config=str(cfg))
        a._executor = Hanging()  # type: ignore[assignment]
        f = flow("/v1/chat/completions", {"model": "chat:x", "messages": []})
        hook = a.request(f)
        assert hook is not None
        task = asyncio.ensure_future(hook)
        await asyncio.wait_for(started.wait(), 5)
        a.client_disconnected(f.client_conn)
        await asyncio.wait_for(task, 5)
        assert cancelled.is_set() and f.response is None and a._running == {}


def test_relayed_same_format_stream_never_shows_a_broken_event():
    from addons.llm_flows import _relay_passthrough
    from routing.executor import UpstreamStream
    from translators.canonical import StreamContext

    held = UpstreamStream(response=None, first=b"", idle=1.0)  # type: ignore[arg-type]
    stream = _relay_passthrough("openai_chat", held, StreamContext(model="m"))
    assert stream(b'data: {"a": 1}\n\ndata: {"b"') == b'data: {"a": 1}\n\n'
    assert stream(b': 2}\r\n\r\ndata: {"c') == b'data: {"b": 2}\r\n\r\n'
    held.error = "upstream connection failed mid-stream"
    tail = stream(b"")
    assert tail.startswith(b'data: {"error":') and b'{"c' not in tail
