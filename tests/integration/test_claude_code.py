"""The real Claude Code CLI through wireshift to an OpenAI-Chat emulated backend, one tool round trip.

Claude Code's real requests carry ``?beta=true``, thinking, ``max_tokens`` 128000 or 32000,
``role: "system"`` entries inside ``messages`` and ``cache_control`` (real-clients.md). The
emulator's ``agent`` scenario asks for a ``Bash`` call first and answers with the tool's output
once the result comes back, so a completed turn proves both directions of the translation.

Installs ``@anthropic-ai/claude-code@latest`` from npm into a cache outside the checkout; the test
is skipped, with the reason, only when npm cannot install it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Emulator, Proxy, npm_cli


def test_claude_code_completes_a_tool_round_trip_on_a_chat_backend(proxy: Proxy, emulator: Emulator, tmp_path):
    cli = npm_cli("@anthropic-ai/claude-code", "claude")
    emulator.clear()
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env = {
        "PATH": f"{node_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TERM": "dumb",
        "ANTHROPIC_BASE_URL": proxy.reverse_url,
        "ANTHROPIC_API_KEY": "sk-ant-client-key-that-must-not-leak",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    cmd = [
        str(cli),
        "-p",
        "Run the marker command and report its output.",
        "--output-format",
        "json",
        "--model",
        "wireshift-agent",
        "--allowedTools",
        "Bash",
    ]
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"Claude Code did not finish in 180 s\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}")
    assert proc.returncode == 0, f"stdout: {out[-3000:]}\nstderr: {err[-3000:]}\n{proxy.log_file.read_text()[-3000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    assert result.get("is_error") is False, result
    assert "Tool result received" in result["result"] and "wireshift-roundtrip" in result["result"]

    upstream = [r for r in emulator.requests() if r["path"] == "/v1/chat/completions" and r["body"]["model"] == "agent"]
    assert len(upstream) >= 2, "expected the tool call turn and the tool result turn"
    first, last = upstream[0]["body"], upstream[-1]["body"]
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert any(t["function"]["name"] == "Bash" for t in first["tools"])
    tool_msgs = [m for m in last["messages"] if m["role"] == "tool"]
    assert tool_msgs and "wireshift-roundtrip" in tool_msgs[-1]["content"]
    call_ids = [tc["id"] for m in last["messages"] if m["role"] == "assistant" for tc in m.get("tool_calls") or []]
    assert tool_msgs[-1]["tool_call_id"] in call_ids
    assert all("sk-ant-client-key" not in json.dumps(r["headers"]) for r in upstream)
