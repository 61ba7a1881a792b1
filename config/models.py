"""Pydantic models of the wireshift YAML config (``config/wireshift.yaml`` is the default).

Schema (issue #2; custom-backend rules after ``reference-projects.md`` §4.4)::

    backends:
      - kind: nvidia | openrouter | huggingface | openai | anthropic
              | custom-openai-chat-compatible (alias custom-openai-legacy-compatible)
              | custom-openai-responses-compatible | custom-anthropic-compatible
        backend_prefix: str        # required for custom kinds; built-ins default to the kind
        base_url: http(s) URL      # built-ins have defaults
        api_key_env_var_root: str  # keys ROOT, ROOT_2, ROOT_3 … (contiguous)
        api_keys: [str]            # literal keys, tried first
        models: [str]              # optional static model list
        max_output_tokens: int     # cap applied to the client's max_tokens
        default_max_tokens: int    # max_tokens sent to Anthropic kinds when the client gave none
        headers: {str: str}        # extra upstream headers; a client's own value wins
                                   # (e.g. OpenRouter's HTTP-Referer / X-Title)
        drop_params: [str]         # top-level upstream body fields to remove (e.g. reasoning_effort
                                   # for a backend that rejects it)
        streaming: true | false | only  # true: streams and answers whole; false: never streams;
                                   # only: always streams
        timeouts: {connect, first_byte, idle}  # seconds; override routing.timeouts per field
        enabled: bool
    routing:
      default_backend: str | null  # backend_prefix for models without a known prefix
      aliases: {glob: selector}    # glob on the client's model -> "prefix:model"
      transport_fallback: compatibility | exact  # convert stream <-> non-stream, or refuse
      routes: {name: [selector]}   # named failover routes: the model "name" tries each in order
      max_attempts: int            # upstream attempts per request over all keys and candidates
      timeouts:                    # seconds
        connect: float             # TCP + TLS connect (10)
        first_byte: float          # request sent -> first body bytes (600)
        idle: float                # between two body chunks once output started (300)

Validation errors are raised by pydantic and rendered by ``config.loader`` with the file, the
key path and the rule broken.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class BackendKind(StrEnum):
    """Backend kinds. Built-ins have defaults (``routing.backends.BUILTIN_DEFAULTS``)."""

    NVIDIA = "nvidia"
    OPENROUTER = "openrouter"
    HUGGINGFACE = "huggingface"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    CUSTOM_OPENAI_CHAT = "custom-openai-chat-compatible"
    CUSTOM_OPENAI_RESPONSES = "custom-openai-responses-compatible"
    CUSTOM_ANTHROPIC = "custom-anthropic-compatible"

    @property
    def is_custom(self) -> bool:
        """Custom kinds need an explicit ``backend_prefix`` and ``base_url``."""
        return self.value.startswith("custom-")


#: Accepted spellings that map to a kind (Go-LIP's name for the Chat kind).
KIND_ALIASES = {"custom-openai-legacy-compatible": BackendKind.CUSTOM_OPENAI_CHAT}

#: Prefixes a custom backend may not take: every built-in kind name, plus names used by the
#: reference projects for their standard backends (reference-projects.md §2.3).
RESERVED_PREFIXES = frozenset(
    {k.value for k in BackendKind if not k.is_custom}
    | {
        "openai-responses",
        "openai-legacy",
        "gemini",
        "bedrock",
        "acp",
        "ollama",
        "ollama-cloud",
        "llamacpp",
        "lmstudio",
        "vllm",
        "local-stub",
    }
)

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Timeouts(BaseModel):
    """Upstream timeouts in seconds (``routing.timeouts``). ``connect``: TCP and TLS;
    ``first_byte``: from sending the request to the first body bytes (a failure before it is
    retried on the next key or route candidate); ``idle``: the longest silence between two body
    chunks once output started (the client then gets its format's in-stream error)."""

    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat = 10.0
    first_byte: PositiveFloat = 600.0
    idle: PositiveFloat = 300.0


class TimeoutOverrides(BaseModel):
    """Per-backend ``timeouts``: any field given replaces the ``routing.timeouts`` one."""

    model_config = ConfigDict(extra="forbid")

    connect: PositiveFloat | None = None
    first_byte: PositiveFloat | None = None
    idle: PositiveFloat | None = None


class Backend(BaseModel):
    """One backend row. See the module docstring for the fields."""

    model_config = ConfigDict(extra="forbid")

    kind: BackendKind
    backend_prefix: str | None = None
    base_url: str | None = None
    api_key_env_var_root: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    max_output_tokens: PositiveInt | None = None
    default_max_tokens: PositiveInt | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    drop_params: list[str] = Field(default_factory=list)
    streaming: bool | Literal["only"] = True
    timeouts: TimeoutOverrides = Field(default_factory=TimeoutOverrides)
    enabled: bool = True

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_alias(cls, value: Any) -> Any:
        if isinstance(value, str) and value in KIND_ALIASES:
            return KIND_ALIASES[value]
        if isinstance(value, str) and value not in {k.value for k in BackendKind}:
            known = ", ".join(sorted([k.value for k in BackendKind] + list(KIND_ALIASES)))
            raise ValueError(f"unknown backend kind {value!r}; known kinds: {known}")
        return value

    @field_validator("backend_prefix")
    @classmethod
    def _prefix_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("backend_prefix must not be empty")
        if "/" in value or ":" in value:
            raise ValueError(f"backend_prefix {value!r} must not contain '/' or ':'")
        return value

    @field_validator("base_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        # the message never repeats userinfo or a query: they may hold an expanded ${SECRET}
        shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url {shown!r} must be an absolute http(s) URL with a host")
        if parts.username or parts.password or parts.fragment or parts.query:
            raise ValueError(f"base_url {shown!r} must not carry credentials, a query or a fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _custom_rules(self) -> Backend:
        if self.kind.is_custom:
            if self.backend_prefix is None:
                raise ValueError(f"backend_prefix is required for kind {self.kind.value}")
            if self.backend_prefix in RESERVED_PREFIXES:
                raise ValueError(
                    f"backend_prefix {self.backend_prefix!r} is reserved for a built-in backend; choose another name"
                )
            if self.base_url is None:
                raise ValueError(f"base_url is required for kind {self.kind.value}")
        return self

    @property
    def prefix(self) -> str:
        """The effective prefix: ``backend_prefix``, or the kind name for built-ins."""
        return self.backend_prefix or self.kind.value


class Routing(BaseModel):
    """Routing defaults: ``default_backend`` (a prefix), glob ``aliases`` to selectors,
    ``transport_fallback`` (``compatibility`` converts between a streaming client and a backend
    that cannot stream, or one that only streams; ``exact`` refuses the mismatch), named failover
    ``routes``, ``max_attempts`` and the upstream ``timeouts``."""

    model_config = ConfigDict(extra="forbid")

    default_backend: str | None = None
    aliases: dict[str, str] = Field(default_factory=dict)
    transport_fallback: Literal["compatibility", "exact"] = "compatibility"
    routes: dict[str, list[str]] = Field(default_factory=dict)
    max_attempts: PositiveInt = 6
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("routes")
    @classmethod
    def _route_shape(cls, routes: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, candidates in routes.items():
            if not name or any(c in name for c in "|:"):
                raise ValueError(f"route name {name!r} must be non-empty without '|' or ':'")
            if not candidates or any(not c or "|" in c for c in candidates):
                raise ValueError(f"route {name!r} must list one or more selectors, each without '|'")
        return routes


class WireshiftConfig(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(extra="forbid")

    backends: list[Backend] = Field(default_factory=list)
    routing: Routing = Field(default_factory=Routing)

    @model_validator(mode="after")
    def _cross_rules(self) -> WireshiftConfig:
        seen: dict[str, int] = {}
        for i, backend in enumerate(self.backends):
            if not backend.enabled:
                continue
            prefix = backend.prefix
            if prefix in seen:
                raise ValueError(
                    f"duplicate backend_prefix {prefix!r} among enabled backends "
                    f"(backends.{seen[prefix]} and backends.{i})"
                )
            seen[prefix] = i
        default = self.routing.default_backend
        if default is not None and default not in seen:
            raise ValueError(
                f"routing.default_backend {default!r} is not an enabled backend_prefix "
                f"(known: {', '.join(sorted(seen)) or 'none'})"
            )
        for pattern, selector in self.routing.aliases.items():
            head = selector.split(":", 1)[0]
            if ":" not in selector or head not in seen:
                raise ValueError(
                    f"routing.aliases[{pattern!r}] = {selector!r} must be 'prefix:model' with an "
                    f"enabled backend_prefix (known: {', '.join(sorted(seen)) or 'none'})"
                )
        for name, candidates in self.routing.routes.items():
            for selector in candidates:
                head, sep, _ = selector.partition(":")
                if sep and head not in seen and selector not in self.routing.aliases:
                    raise ValueError(
                        f"routing.routes[{name!r}] candidate {selector!r} names no enabled backend_prefix "
                        f"(known: {', '.join(sorted(seen)) or 'none'})"
                    )
        return self
