"""Backend kinds, their defaults and wire formats, resolved from config rows.

Defaults follow ``reference-projects.md`` §3 (Go-LIP's backend table): base URLs, env key
roots, which wire formats each kind accepts upstream, and how it authenticates. OpenAI kinds
take a base URL ending in ``/v1`` and append ``/chat/completions`` (or ``/responses``);
Anthropic kinds take the host root and append ``/v1/messages``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from config.models import Backend, BackendKind, Timeouts, WireshiftConfig
from routing.credentials import KeyPool

CHAT = "openai_chat"
RESPONSES = "openai_responses"
MESSAGES = "anthropic_messages"

#: Path appended to ``base_url`` per upstream wire format.
ENDPOINT_PATHS = {CHAT: "/chat/completions", RESPONSES: "/responses", MESSAGES: "/v1/messages"}


@dataclass(frozen=True, slots=True)
class KindDefaults:
    """What a kind brings when the config row is silent.

    ``formats``: wire formats the upstream accepts, preferred first. ``auth``: ``"bearer"``
    (``Authorization: Bearer``) or ``"x-api-key"`` (plus ``anthropic-version``).
    ``env_roots``: key env roots in order. ``one_indexed``: also read ``ROOT_1`` (the Python-LIP
    convention for NVIDIA, OpenRouter and Hugging Face). ``stream_usage``: may we send
    ``stream_options.include_usage`` (hosted NIM rejects it). ``max_tokens_field``: C field
    name for the output limit.
    """

    base_url: str | None
    formats: tuple[str, ...]
    auth: str = "bearer"
    env_roots: tuple[str, ...] = ()
    one_indexed: bool = False
    stream_usage: bool = True
    max_tokens_field: str = "max_tokens"
    requires_key: bool = True


KIND_DEFAULTS: dict[BackendKind, KindDefaults] = {
    BackendKind.NVIDIA: KindDefaults(
        "https://integrate.api.nvidia.com/v1",
        (CHAT, RESPONSES),
        env_roots=("NVIDIA_API_KEY",),
        one_indexed=True,
        stream_usage=False,
    ),
    BackendKind.OPENROUTER: KindDefaults(
        "https://openrouter.ai/api/v1",
        (CHAT, RESPONSES),
        env_roots=("OPENROUTER_API_KEY",),
        one_indexed=True,
    ),
    BackendKind.HUGGINGFACE: KindDefaults(
        "https://router.huggingface.co/v1",
        (CHAT,),
        env_roots=("HF_TOKEN", "HUGGINGFACE_API_KEY"),
        one_indexed=True,
    ),
    BackendKind.OPENAI: KindDefaults(
        "https://api.openai.com/v1",
        (CHAT, RESPONSES),
        env_roots=("OPENAI_API_KEY",),
        max_tokens_field="max_completion_tokens",
    ),
    BackendKind.ANTHROPIC: KindDefaults(
        "https://api.anthropic.com",
        (MESSAGES,),
        auth="x-api-key",
        env_roots=("ANTHROPIC_API_KEY",),
    ),
    BackendKind.CUSTOM_OPENAI_CHAT: KindDefaults(None, (CHAT,), requires_key=False),
    BackendKind.CUSTOM_OPENAI_RESPONSES: KindDefaults(None, (RESPONSES,), requires_key=False),
    BackendKind.CUSTOM_ANTHROPIC: KindDefaults(None, (MESSAGES,), auth="x-api-key", requires_key=False),
}


@dataclass(slots=True)
class BackendSpec:
    """A configured, enabled backend with defaults applied and keys resolved.

    ``keys`` is the ordered key pool (may be empty: custom kinds then send no auth header;
    built-ins answer a clear error). ``env_roots`` is kept for error messages.
    """

    prefix: str
    kind: BackendKind
    base_url: str
    formats: tuple[str, ...]
    auth: str
    keys: KeyPool
    env_roots: tuple[str, ...]
    requires_key: bool
    stream_usage: bool
    max_tokens_field: str
    max_output_tokens: int | None = None
    default_max_tokens: int | None = None
    models: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    drop_params: tuple[str, ...] = ()
    streaming: bool | str = True  # True, False (never streams) or "only" (always streams)
    timeouts: Timeouts = field(default_factory=Timeouts)  # routing.timeouts with this row's overrides

    def endpoint(self, wire_format: str) -> str:
        """Full upstream URL for ``wire_format``."""
        return self.base_url + ENDPOINT_PATHS[wire_format]


def env_keys(root: str, env: Mapping[str, str], one_indexed: bool = False) -> list[str]:
    """Keys from ``ROOT``, (``ROOT_1``), ``ROOT_2``, ``ROOT_3`` … stopping at the first missing
    or empty suffix from 2 on (reference-projects.md §5.2). Values are stripped; duplicates
    dropped in first-seen order."""
    found: list[str] = []
    names = [root] + ([f"{root}_1"] if one_indexed else [])
    for name in names:
        value = env.get(name, "").strip()
        if value:
            found.append(value)
    n = 2
    while value := env.get(f"{root}_{n}", "").strip():
        found.append(value)
        n += 1
    return list(dict.fromkeys(found))


def build_spec(row: Backend, env: Mapping[str, str], timeouts: Timeouts | None = None) -> BackendSpec:
    """Apply kind defaults to a config row and resolve its keys from ``env``; ``timeouts`` are
    the routing defaults the row's own ``timeouts`` override field by field."""
    defaults = KIND_DEFAULTS[row.kind]
    roots = (row.api_key_env_var_root,) if row.api_key_env_var_root else defaults.env_roots
    keys = [k.strip() for k in row.api_keys if k.strip()]
    for root in roots:
        keys += env_keys(root, env, defaults.one_indexed)
    base_url = row.base_url or defaults.base_url
    assert base_url is not None  # custom kinds are validated to carry one
    return BackendSpec(
        prefix=row.prefix,
        kind=row.kind,
        base_url=base_url,
        formats=defaults.formats,
        auth=defaults.auth,
        keys=KeyPool(list(dict.fromkeys(keys))),
        env_roots=roots,
        requires_key=defaults.requires_key,
        stream_usage=defaults.stream_usage,
        max_tokens_field=defaults.max_tokens_field,
        max_output_tokens=row.max_output_tokens,
        default_max_tokens=row.default_max_tokens,
        models=list(row.models),
        headers=dict(row.headers),
        drop_params=tuple(row.drop_params),
        streaming=row.streaming,
        timeouts=(timeouts or Timeouts()).model_copy(update=row.timeouts.model_dump(exclude_none=True)),
    )


@dataclass(slots=True)
class Registry:
    """Enabled backends by prefix plus the routing settings: what ``routing.plan`` consults."""

    backends: dict[str, BackendSpec]
    default_backend: str | None
    aliases: dict[str, str]
    transport_fallback: str = "compatibility"
    routes: dict[str, list[str]] = field(default_factory=dict)
    max_attempts: int = 6

    def hosts(self) -> frozenset[str]:
        """Host names of the enabled backends' base URLs."""
        return frozenset(h for b in self.backends.values() if (h := urlsplit(b.base_url).hostname))

    def status(self) -> dict[str, object]:
        """Secret-free state for the status endpoint: per backend its kind, formats and key pool."""
        return {
            "default_backend": self.default_backend,
            "backends": {
                prefix: {"kind": b.kind.value, "base_url": b.base_url, "formats": list(b.formats),
                         "keys": b.keys.snapshot()}
                for prefix, b in self.backends.items()
            },
        }  # fmt: skip

    @classmethod
    def from_config(cls, cfg: WireshiftConfig, env: Mapping[str, str] | None = None) -> Registry:
        """Build from a validated config; keys are read from ``env`` (default ``os.environ``)."""
        environ = os.environ if env is None else env
        routing = cfg.routing
        backends = {row.prefix: build_spec(row, environ, routing.timeouts) for row in cfg.backends if row.enabled}
        return cls(
            backends,
            routing.default_backend,
            dict(routing.aliases),
            routing.transport_fallback,
            {name: list(c) for name, c in routing.routes.items()},
            routing.max_attempts,
        )
