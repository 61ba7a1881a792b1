"""Config validation: errors name the file, the key path and the rule broken."""

from pathlib import Path

import pytest

from config.loader import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config

P = Path("cfg.yaml")


def custom(prefix="acme", kind="custom-openai-chat-compatible", **kw):
    return {"kind": kind, "backend_prefix": prefix, "base_url": "https://api.acme.example/v1", **kw}


def test_default_config_loads_and_expands_env():
    cfg = load_config(DEFAULT_CONFIG_PATH, env={"WIRESHIFT_EMULATOR_URL": "http://127.0.0.1:9999"})
    assert [b.prefix for b in cfg.backends] == [
        "ref-chat",
        "ref-responses",
        "ref-anthropic",
        "nvidia",
        "openrouter",
        "huggingface",
    ]
    assert cfg.backends[0].base_url == "http://127.0.0.1:9999/v1"
    assert cfg.backends[2].base_url == "http://127.0.0.1:9999"
    assert cfg.routing.default_backend == "ref-chat"


def test_env_default_used_when_unset():
    cfg = load_config(DEFAULT_CONFIG_PATH, env={})
    assert cfg.backends[0].base_url == "http://127.0.0.1:8765/v1"


def test_legacy_kind_alias_and_builtin_prefix_default():
    cfg = parse_config({"backends": [custom(kind="custom-openai-legacy-compatible"), {"kind": "nvidia"}]}, P)
    assert cfg.backends[0].kind.value == "custom-openai-chat-compatible"
    assert cfg.backends[1].prefix == "nvidia"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"backends": [custom(prefix="a/b")]},
            "cfg.yaml: backends.0.backend_prefix: backend_prefix 'a/b' must not contain '/' or ':'",
        ),
        ({"backends": [custom(prefix="a:b")]}, "must not contain '/' or ':'"),
        ({"backends": [custom(prefix="  ")]}, "backends.0.backend_prefix: backend_prefix must not be empty"),
        (
            {"backends": [{"kind": "custom-anthropic-compatible", "base_url": "http://x"}]},
            "backends.0: backend_prefix is required",
        ),
        ({"backends": [custom(prefix="nvidia")]}, "backend_prefix 'nvidia' is reserved"),
        ({"backends": [{"kind": "bogus"}]}, "backends.0.kind: unknown backend kind 'bogus'"),
        (
            {"backends": [custom(), custom()]},
            "duplicate backend_prefix 'acme' among enabled backends (backends.0 and backends.1)",
        ),
        (
            {"backends": [{"kind": "nvidia", "base_url": "ftp://x"}]},
            "backends.0.base_url: base_url 'ftp://x' must be an absolute http(s) URL",
        ),
        ({"backends": [custom(base_url="https://u:p@x/v1")]}, "must not carry credentials"),
        ({"backends": [custom(colour="red")]}, "backends.0.colour: Extra inputs are not permitted"),
        ({"routing": {"default_backend": "nope"}}, "routing.default_backend 'nope' is not an enabled backend_prefix"),
        ({"backends": [custom()], "routing": {"aliases": {"claude-*": "ghost:m"}}}, "routing.aliases['claude-*']"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_invalid_configs_are_explained(data, expected):
    with pytest.raises(ConfigError) as exc:
        parse_config(data, P)
    assert expected in str(exc.value)
    assert str(exc.value).startswith("cfg.yaml:")


def test_duplicate_prefix_allowed_when_one_is_disabled():
    cfg = parse_config({"backends": [custom(), custom(enabled=False)]}, P)
    assert len(cfg.backends) == 2


def test_unreadable_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_url_errors_never_echo_credentials_or_query():
    for url in ("https://user:s3cret@api.example/v1", "https://api.example/v1?key=s3cret"):
        with pytest.raises(ConfigError) as exc:
            parse_config({"backends": [custom(base_url=url)]}, P)
        assert "s3cret" not in str(exc.value) and "https://api.example/v1" in str(exc.value)
