"""Selector resolution, key resolution, and the decisions an ExecutionPlan records."""

from pathlib import Path

import orjson
import pytest

from config.loader import parse_config
from routing.backends import Registry, env_keys
from routing.plan import plan_request, resolve


def registry(env=None, **routing):
    cfg = parse_config(
        {
            "backends": [
                {
                    "kind": "custom-openai-chat-compatible",
                    "backend_prefix": "chat",
                    "base_url": "http://127.0.0.1:1/v1",
                    "api_keys": ["sk-backend-chat"],
                    "max_output_tokens": 8192,
                },
                {
                    "kind": "custom-anthropic-compatible",
                    "backend_prefix": "anth",
                    "base_url": "http://127.0.0.1:2",
                    "api_key_env_var_root": "ANTH_KEY",
                },
                {"kind": "nvidia"},
                {"kind": "openrouter", "enabled": False},
            ],
            "routing": routing,
        },
        Path("t.yaml"),
    )
    return Registry.from_config(cfg, env or {})


def test_selector_splits_at_first_known_prefix_and_keeps_the_rest():
    reg = registry()
    route = resolve("nvidia:moonshotai/kimi-k2:free", reg)
    assert route is not None and route.backend.prefix == "nvidia" and route.model == "moonshotai/kimi-k2:free"
    assert resolve("openrouter:x", reg) is None  # disabled backends are not prefixes
    assert resolve("gpt-4o", reg) is None


def test_aliases_then_default_backend():
    reg = registry(default_backend="chat", aliases={"claude-*": "anth:claude-via-alias"})
    route = resolve("claude-sonnet-4", reg)
    assert route is not None and (route.backend.prefix, route.model) == ("anth", "claude-via-alias")
    route = resolve("unknown:thing", reg)
    assert route is not None and (route.backend.prefix, route.model) == ("chat", "unknown:thing")


def test_env_keys_contiguous_and_one_indexed():
    env = {"K": "a", "K_2": "b", "K_4": "d", "N": "x", "N_1": "y", "N_2": "z", "N_3": " "}
    assert env_keys("K", env) == ["a", "b"]
    assert env_keys("N", env, one_indexed=True) == ["x", "y", "z"]
    assert env_keys("N", env) == ["x", "z"]


def test_literal_keys_come_before_env_keys():
    reg = registry({"ANTH_KEY": "env-1", "ANTH_KEY_2": "env-2", "NVIDIA_API_KEY_1": "nv-1"})
    assert len(reg.backends["anth"].keys) == 2
    assert len(reg.backends["nvidia"].keys) == 1


def body(**kw):
    return orjson.dumps({"messages": [{"role": "user", "content": "hi"}], **kw})


def test_same_format_fast_path_swaps_model_url_and_credentials_only():
    reg = registry()
    raw = body(model="chat:my-model", stream=True, max_tokens=100000, weird_field={"keep": 1})
    plan, up = plan_request(reg, "openai_chat", raw)
    assert plan.mode == "same-format" and up is not None
    assert up.url == "http://127.0.0.1:1/v1/chat/completions"
    sent = orjson.loads(up.body)
    assert sent["model"] == "my-model"
    assert sent["weird_field"] == {"keep": 1}
    assert sent["max_tokens"] == 8192  # clamped to max_output_tokens
    assert plan.notes == ["max_tokens clamped 100000 -> 8192"]
    assert up.set_headers["authorization"] == "Bearer sk-backend-chat"
    assert "authorization" not in up.drop_headers and "x-api-key" in up.drop_headers
    assert "sk-backend-chat" not in str(plan.to_metadata())
    assert plan.credential and plan.credential.startswith("k:")


def test_nvidia_quirks_on_same_format_path():
    reg = registry({"NVIDIA_API_KEY": "nvapi-test"})
    raw = body(model="nvidia:meta/llama", stream=True, stream_options={"include_usage": True}, max_completion_tokens=50)
    _plan, up = plan_request(reg, "openai_chat", raw)
    assert up is not None
    sent = orjson.loads(up.body)
    assert "stream_options" not in sent and sent["max_tokens"] == 50 and "max_completion_tokens" not in sent
    assert up.url == "https://integrate.api.nvidia.com/v1/chat/completions"


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1]", 400, "must be a JSON object"),
        (orjson.dumps({"messages": []}), 400, "'model' is required"),
        (body(model="gpt-4o"), 404, "cannot be routed"),
        (body(model="nvidia:meta/llama"), 401, "set NVIDIA_API_KEY"),
        (body(model="chat:"), 400, "no model after ':'"),
    ],
)
def test_local_errors(raw, status, fragment):
    plan, up = plan_request(registry(), "openai_chat", raw)
    assert up is None and plan.mode == "local" and plan.error is not None
    assert plan.error.status == status
    assert fragment in plan.error.message


def test_unrouted_lists_known_prefixes_and_passthrough_when_allowed():
    plan, _ = plan_request(registry(), "openai_chat", body(model="gpt-4o"))
    assert plan.error is not None and "anth, chat, nvidia" in plan.error.message
    plan, up = plan_request(registry(), "openai_chat", body(model="gpt-4o"), passthrough_ok=True)
    assert plan.mode == "passthrough" and up is None


def test_drop_params_and_openai_headers_stay_with_openai():
    cfg = parse_config(
        {
            "backends": [
                {
                    "kind": "custom-openai-chat-compatible",
                    "backend_prefix": "c",
                    "base_url": "http://h/v1",
                    "drop_params": ["reasoning_effort", "absent"],
                }
            ]
        },
        Path("t.yaml"),
    )
    raw = orjson.dumps({"model": "c:m", "reasoning_effort": "high", "messages": [{"role": "user", "content": "x"}]})
    plan, up = plan_request(Registry.from_config(cfg, {}), "openai_chat", raw)
    assert up is not None and "reasoning_effort" not in orjson.loads(up.body)
    assert plan.notes == ["dropped reasoning_effort (drop_params)"]
    assert "openai-organization" in up.drop_headers and "openai-project" in up.drop_headers
    openai_cfg = parse_config({"backends": [{"kind": "openai", "api_keys": ["k"]}]}, Path("t.yaml"))
    _, up = plan_request(Registry.from_config(openai_cfg, {}), "openai_chat", raw.replace(b"c:m", b"openai:m"))
    assert up is not None and "openai-organization" not in up.drop_headers


def test_translated_estimate_ignores_base64_length():
    image = "data:image/png;base64," + "A" * 400_000
    raw = orjson.dumps(
        {
            "model": "anth:m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "x" * 400},
                        {"type": "image_url", "image_url": {"url": image}},
                    ],
                }
            ],
        }
    )
    plan, _ = plan_request(registry({"ANTH_KEY": "k"}), "openai_chat", raw)
    assert 1600 < plan.estimated_input_tokens < 2000  # 100 text tokens + one image, not 100k


@pytest.mark.parametrize("policy", ["compatibility", "exact"])
def test_transport_negotiation(policy):
    cfg = parse_config(
        {"backends": [
            {"kind": "custom-openai-chat-compatible", "backend_prefix": "never", "base_url": "http://h/v1",
             "streaming": False},
            {"kind": "custom-anthropic-compatible", "backend_prefix": "only", "base_url": "http://h",
             "streaming": "only"}],
         "routing": {"transport_fallback": policy}},
        Path("t.yaml"),
    )  # fmt: skip
    reg = Registry.from_config(cfg, {})
    streaming = body(model="never:m", stream=True, stream_options={"include_usage": True})
    plan, up = plan_request(reg, "openai_chat", streaming)
    if policy == "exact":
        assert up is None and plan.error is not None and plan.error.status == 400 and plan.error.param == "stream"
        assert "does not stream" in plan.error.message
        return
    assert up is not None and plan.mode == "translated"  # same format, but the transport is converted
    assert (plan.client_stream, plan.upstream_stream) == (True, False)
    sent = orjson.loads(up.body)
    assert "stream" not in sent and "stream_options" not in sent
    assert plan.notes == ["transport: streaming client on a backend that does not stream (converted)"]
    plan, up = plan_request(reg, "openai_chat", body(model="only:m"))
    assert up is not None and (plan.client_stream, plan.upstream_stream) == (False, True)
    assert orjson.loads(up.body)["stream"] is True
