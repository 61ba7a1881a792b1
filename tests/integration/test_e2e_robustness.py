"""Failure paths through a real mitmdump: invalid config, abrupt upstream death, bad input."""

from __future__ import annotations

import json
import subprocess

import anthropic
import httpx2
import openai
import pytest

from tests.integration.conftest import Emulator, Proxy, start_mitmdump, stop
from tests.integration.test_e2e_sdk import TOOLS_A, TOOLS_C, USER, ant, oai


def test_invalid_config_refuses_to_start(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "backends:\n  - kind: custom-openai-chat-compatible\n    backend_prefix: 'a/b'\n"
        "    base_url: http://127.0.0.1:1/v1\n"
    )
    log_file = tmp_path / "log.txt"
    proc, _, _ = start_mitmdump(config, tmp_path / "confdir", log_file)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop(proc)
        pytest.fail("mitmdump kept running with an invalid config")
    log = log_file.read_text()
    assert code != 0
    assert f"{config}: backends.0.backend_prefix: backend_prefix 'a/b' must not contain '/' or ':'" in log
    assert log.count("Traceback") <= 1  # one clear error, no recursion


def test_upstream_dying_mid_stream_is_an_error_not_a_clean_stop(proxy: Proxy):
    """The emulator aborts the TCP connection halfway: the client must see a failure."""
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        with ant(proxy).messages.stream(model="emu-chat:drop", max_tokens=64, messages=USER) as stream:
            for _ in stream:
                pass
    with pytest.raises((openai.APIError, httpx2.HTTPError)):
        for _ in oai(proxy).chat.completions.create(model="emu-anthropic:drop", messages=USER, stream=True):
            pass


def test_cut_stream_ends_with_an_error_event(proxy: Proxy):
    """The upstream ends cleanly but without a finish: the client gets its format's error frame."""
    body = {"model": "emu-chat:cut", "max_tokens": 64, "stream": True, "messages": USER}
    r = httpx2.post(f"{proxy.reverse_url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    frames = r.text.strip().split("\n\n")
    assert frames[-1].startswith("event: error\ndata: ")
    assert "message_stop" not in r.text
    body = {"model": "emu-anthropic:cut", "stream": True, "messages": USER}
    r = httpx2.post(f"{proxy.reverse_url}/v1/chat/completions", json=body)
    assert r.text.strip().split("\n\n")[-1].startswith('data: {"error":')
    assert "[DONE]" not in r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": "emu-chat:text", "messages": "not a list", "max_tokens": 5}),
        (
            "/v1/messages",
            {
                "model": "emu-chat:text",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}],
                    }
                ],
            },
        ),
        ("/v1/chat/completions", {"model": "emu-anthropic:text", "messages": [{"role": "user", "content": 5}]}),
        ("/v1/chat/completions", {"model": "emu-anthropic:text", "n": 3, "messages": USER}),
        ("/v1/chat/completions", {"model": 7, "messages": USER}),
    ],
)
def test_malformed_requests_get_a_client_format_400(proxy: Proxy, path: str, body: dict):
    r = httpx2.post(f"{proxy.reverse_url}{path}", json=body, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 400, r.text
    data = r.json()
    if path == "/v1/messages":
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    else:
        assert data["error"]["type"] == "invalid_request_error" and data["error"]["message"]


def test_streaming_client_on_a_backend_that_does_not_stream(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    with ant(proxy).messages.stream(model="emu-nostream:tool", max_tokens=64, messages=USER, tools=TOOLS_A) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].input == {"city": "Paris", "unit": "celsius"}
    chunks = list(oai(proxy).chat.completions.create(model="emu-nostream:text", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from the wireshift reference backend."
    )
    assert [r["body"].get("stream", False) for r in emulator.requests()] == [False, False]


def test_non_streaming_client_on_a_stream_only_backend(proxy: Proxy, emulator: Emulator):
    emulator.clear()
    resp = oai(proxy).chat.completions.create(model="emu-streamonly:tools-parallel", messages=USER, tools=TOOLS_C)
    assert resp.choices[0].finish_reason == "tool_calls"
    calls = resp.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert resp.usage.completion_tokens > 0
    assert emulator.requests()[-1]["body"]["stream"] is True
    with pytest.raises(openai.InternalServerError) as info:  # the folded stream ended in an error event
        oai(proxy).chat.completions.create(model="emu-streamonly:error-midstream", messages=USER)
    assert info.value.status_code == 503 and "Overloaded" in info.value.body["message"]
