"""The real Codex CLI (Responses API only) through wireshift to an OpenAI-Chat emulated backend,
completing a turn with one tool round trip.

Codex sends `developer` messages, a `namespace` tool and a `web_search` tool, `include:
["reasoning.encrypted_content"]` and no output limit, and runs tools from the complete item in
`response.output_item.done` (real-clients.md). The emulator's `agent` scenario asks for a shell
call first and answers with the tool's output once the `function_call_output` comes back.

Installs ``@openai/codex@latest`` from npm into a cache outside the checkout; the test is
skipped, with the reason, only when npm cannot install it.
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


def test_codex_completes_a_tool_round_trip_on_a_chat_backend(proxy: Proxy, emulator: Emulator, tmp_path):
    cli = npm_cli("@openai/codex", "codex")
    emulator.clear()
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env = {
        "PATH": f"{node_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "TERM": "dumb",
        "PEER_API_KEY": "sk-codex-client-key-that-must-not-leak",
    }
    provider = (
        f'model_providers.peer={{name="peer",base_url="{proxy.reverse_url}/v1",'
        'env_key="PEER_API_KEY",wire_api="responses"}'
    )
    cmd = [
        str(cli), "exec", "--skip-git-repo-check", "--json", "--ephemeral",
        "--dangerously-bypass-approvals-and-sandbox", "-m", "wireshift-agent",
        "-c", "analytics.enabled=false", "-c", "model_provider=peer", "-c", provider,
        "Run the marker command and report its output.",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"Codex did not finish in 180 s\nstdout: {out[-3000:]}\nstderr: {err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the native binary can outlive the Node wrapper
        except ProcessLookupError:
            pass
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    types = [e.get("type") for e in events]
    detail = f"exit {proc.returncode}\nstdout: {out[-3000:]}\nstderr: {err[-3000:]}"
    assert "turn.completed" in types, detail
    assert "turn.failed" not in types and "error" not in types, detail
    commands = [
        e["item"] for e in events if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"
    ]
    assert commands and "wireshift-roundtrip" in commands[0].get("aggregated_output", ""), detail
    messages = [
        e["item"]["text"]
        for e in events
        if e.get("type") == "item.completed" and e["item"].get("type") == "agent_message"
    ]
    assert any("Tool result received" in m and "wireshift-roundtrip" in m for m in messages), detail

    upstream = [r for r in emulator.requests() if r["path"] == "/v1/chat/completions" and r["body"]["model"] == "agent"]
    assert len(upstream) >= 2, "expected the tool call turn and the tool result turn"
    last = upstream[-1]["body"]
    tool_msgs = [m for m in last["messages"] if m["role"] == "tool"]
    assert tool_msgs and "wireshift-roundtrip" in tool_msgs[-1]["content"]
    assert all("sk-codex-client-key" not in json.dumps(r["headers"]) for r in upstream)
