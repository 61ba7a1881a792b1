"""The 3x3 matrix: every client format (OpenAI Chat, OpenAI Responses, Anthropic Messages, each
through its official SDK) against every backend format (emulated), streaming and not, over the
scenarios of issue #3: text, one tool call, two parallel tool calls, reasoning then answer, and
an upstream error. Each client's result is normalised so one set of expectations serves all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anthropic
import openai
import pytest

from tests.integration.conftest import Emulator, Proxy
from tests.integration.test_e2e_sdk import TOOLS_A, TOOLS_C, USER, ant, oai

TOOLS_R = [{"type": "function", **TOOLS_C[0]["function"]}]
BACKENDS = {"chat": "emu-chat", "responses": "emu-responses", "anthropic": "emu-anthropic"}
CLIENTS = ("chat", "responses", "anthropic")


@dataclass
class Result:
    text: str = ""
    reasoning: str = ""
    calls: list[tuple[str, dict]] = field(default_factory=list)
    stop: str = ""  # normalised: "end", "tool" or "length"
    input_tokens: int = 0
    output_tokens: int = 0


def run_chat(proxy: Proxy, model: str, stream: bool) -> Result:
    client = oai(proxy)
    out = Result()
    if not stream:
        resp = client.chat.completions.create(model=model, messages=USER, tools=TOOLS_C)
        msg = resp.choices[0].message
        out.text, out.reasoning = msg.content or "", (msg.model_extra or {}).get("reasoning_content") or ""
        out.calls = [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or []]
        finish, usage = resp.choices[0].finish_reason, resp.usage
    else:
        args: dict[int, list[str]] = {}
        finish, usage = "", None
        for chunk in client.chat.completions.create(
            model=model, messages=USER, tools=TOOLS_C, stream=True, stream_options={"include_usage": True}
        ):
            usage = chunk.usage or usage
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            out.text += delta.content or ""
            out.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for tc in delta.tool_calls or []:
                entry = args.setdefault(tc.index, ["", ""])
                entry[0] += tc.function.name or "" if tc.function else ""
                entry[1] += tc.function.arguments or "" if tc.function else ""
            finish = chunk.choices[0].finish_reason or finish
        out.calls = [(args[i][0], json.loads(args[i][1])) for i in sorted(args)]
    out.stop = {"stop": "end", "tool_calls": "tool", "length": "length"}[finish]
    out.input_tokens, out.output_tokens = usage.prompt_tokens, usage.completion_tokens
    return out


def run_responses(proxy: Proxy, model: str, stream: bool) -> Result:
    client = oai(proxy)
    kwargs = {"model": model, "input": USER[0]["content"], "tools": TOOLS_R}
    if stream:
        with client.responses.stream(**kwargs) as s:
            resp = s.get_final_response()
    else:
        resp = client.responses.create(**kwargs)
    out = Result(text=resp.output_text)
    for item in resp.output:
        if item.type == "function_call":
            out.calls.append((item.name, json.loads(item.arguments)))
        elif item.type == "reasoning":
            out.reasoning += "".join(s.text for s in item.summary)
    if resp.status == "incomplete":
        out.stop = "length"
    else:
        out.stop = "tool" if out.calls else "end"
    out.input_tokens, out.output_tokens = resp.usage.input_tokens, resp.usage.output_tokens
    return out


def run_anthropic(proxy: Proxy, model: str, stream: bool) -> Result:
    client = ant(proxy)
    kwargs = {"model": model, "max_tokens": 4096, "messages": USER, "tools": TOOLS_A}
    if stream:
        with client.messages.stream(**kwargs) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kwargs)
    out = Result()
    for block in msg.content:
        if block.type == "text":
            out.text += block.text
        elif block.type == "thinking":
            out.reasoning += block.thinking
        elif block.type == "tool_use":
            out.calls.append((block.name, block.input))
    out.stop = {"end_turn": "end", "tool_use": "tool", "max_tokens": "length"}[msg.stop_reason]
    out.input_tokens = msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0)
    out.output_tokens = msg.usage.output_tokens
    return out


RUNNERS = {"chat": run_chat, "responses": run_responses, "anthropic": run_anthropic}
RATE_LIMIT = {"chat": openai.RateLimitError, "responses": openai.RateLimitError, "anthropic": anthropic.RateLimitError}

EXPECTED = {
    "text": Result(text="Hello from the wireshift reference backend.", stop="end"),
    "tool": Result(text="Let me check.", calls=[("get_weather", {"city": "Paris", "unit": "celsius"})], stop="tool"),
    "tools-parallel": Result(
        calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})], stop="tool"
    ),
    "reasoning": Result(text="The answer is 4.", reasoning="Let me think. 2+2=4.", stop="end"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("scenario", [*EXPECTED, "error-429"])
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("client", CLIENTS)
def test_matrix(proxy: Proxy, client: str, backend: str, scenario: str, stream: bool):
    model = f"{BACKENDS[backend]}:{scenario}"
    if scenario == "error-429":
        with pytest.raises(RATE_LIMIT[client]) as info:  # a key-less twin: no key to cool down
            RUNNERS[client](proxy, f"{BACKENDS[backend]}-nokey:{scenario}", stream)
        assert info.value.status_code == 429
        assert info.value.response.headers.get("retry-after") == "7"
        return
    got = RUNNERS[client](proxy, model, stream)
    want = EXPECTED[scenario]
    assert (got.text, got.calls, got.stop) == (want.text, want.calls, want.stop)
    assert got.reasoning == want.reasoning
    assert got.output_tokens > 0 and got.input_tokens > 0


@pytest.mark.parametrize("backend", ["chat", "anthropic", "responses"])
def test_responses_client_continues_after_function_call_output(proxy: Proxy, emulator: Emulator, backend: str):
    """Codex-style turn two: the full history with function_call and function_call_output items."""
    client = oai(proxy)
    model = f"{BACKENDS[backend]}:agent"
    first = client.responses.create(model=model, input=USER[0]["content"], tools=TOOLS_R)
    call = next(item for item in first.output if item.type == "function_call")
    emulator.clear()
    history = [
        {"role": "user", "content": USER[0]["content"]},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"},
    ]
    second = client.responses.create(model=model, input=history, tools=TOOLS_R)
    assert second.output_text == "Tool result received: 18C and sunny"
    sent = emulator.requests()[-1]["body"]
    if backend == "chat":
        tool_msgs = [m for m in sent["messages"] if m["role"] == "tool"]
        assert tool_msgs == [{"role": "tool", "tool_call_id": call.call_id, "content": "18C and sunny"}]
        assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
        assert assistant["tool_calls"][0]["id"] == call.call_id
    elif backend == "anthropic":
        result = sent["messages"][-1]["content"][0]
        assert result["type"] == "tool_result" and result["content"] == "18C and sunny"
        assert sent["messages"][-2]["content"][-1]["id"] == result["tool_use_id"]
    else:
        assert sent["input"][-1] == {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}


def test_previous_response_id_is_refused_clearly_when_translating(proxy: Proxy):
    with pytest.raises(openai.BadRequestError) as info:
        oai(proxy).responses.create(model="emu-chat:text", input="hi", previous_response_id="resp_123")
    assert info.value.status_code == 400
    assert "previous_response_id" in info.value.body["message"]


@pytest.mark.parametrize("backend", ["chat", "anthropic"])
def test_responses_namespace_tools_come_back_with_their_namespace(proxy: Proxy, emulator: Emulator, backend: str):
    """Codex dispatches by (namespace, name): flattened for the backend, restored for the client."""
    emulator.clear()
    tools = [
        {
            "type": "namespace",
            "name": "mcp__docs__",
            "description": "Docs server",
            "tools": [
                {
                    "type": "function",
                    "name": "search",
                    "description": "Search the docs",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ],
        }
    ]
    resp = oai(proxy).responses.create(model=f"{BACKENDS[backend]}:tool", input="hi", tools=tools)
    call = next(item for item in resp.output if item.type == "function_call")
    assert (call.name, call.namespace) == ("search", "mcp__docs__")
    sent = emulator.requests()[-1]["body"]["tools"][0]
    assert (sent.get("name") or sent["function"]["name"]) == "mcp__docs__search"
