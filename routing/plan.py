"""Selector resolution and the ``ExecutionPlan``: every decision about one request, made once.

``plan_request`` takes the client's wire format and body bytes and returns the plan plus the
upstream request to send (or, when the plan answers locally, the error to show). Everything
downstream (the addon's header rewrite, the stream re-encoder, flow annotations) reads the
plan and never re-derives a decision.

Selector grammar (reference-projects.md §2.1, §12): ``backend_prefix:model`` split at the
first ``:`` when the part before it is a known prefix (the model keeps later ``/`` and ``:``);
otherwise the first matching alias glob; otherwise ``routing.default_backend``. A model string
may hold failover candidates ``a|b|c`` (each a selector or alias) or name a ``routing.routes``
entry; ``route_candidates`` expands it and ``routing.executor`` tries them in order.
"""

from __future__ import annotations

import fnmatch
import math
import uuid
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from config.models import BackendKind
from routing.backends import MESSAGES, RESPONSES, BackendSpec, Registry
from routing.quirks import apply_request_quirks, forward_extra_fields, needs_usage_estimate
from translators import FORMATS, get_format
from translators.canonical import (
    CanonicalError,
    CanonicalRequest,
    EncodeOptions,
    ToolCall,
    TranslationError,
    estimate_input_tokens,
    functionize_custom_tools,
    shorten_tool_name,
)
from translators.openai_responses import namespaced_tools

#: Request headers that carry a client's credentials; never forwarded to a backend.
CLIENT_AUTH_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
#: Vendor-specific headers only meaningful to that vendor's own API.
ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access")
OPENAI_HEADERS = ("openai-organization", "openai-project")
ANTHROPIC_VERSION = "2023-06-01"

#: Hop-by-hop and framing headers: never copied between the client and upstream connections
#: (RFC 9110 §7.6.1); the HTTP client sets its own Host and Content-Length.
HOP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
     "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "expect", "content-encoding"}
)  # fmt: skip

#: Body fields that hold the output-token limit, per format.
MAX_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


@dataclass(slots=True)
class Route:
    """A resolved selector: the backend and the model name to send it."""

    backend: BackendSpec
    model: str


def resolve(model: str, registry: Registry) -> Route | None:
    """Resolve a client model string to a route, or ``None`` when nothing matches."""
    head, sep, rest = model.partition(":")
    if sep and head in registry.backends:
        return Route(registry.backends[head], rest)
    for pattern, selector in registry.aliases.items():
        if fnmatch.fnmatchcase(model, pattern):
            prefix, _, target = selector.partition(":")
            return Route(registry.backends[prefix], target)
    if registry.default_backend is not None:
        return Route(registry.backends[registry.default_backend], model)
    return None


def route_candidates(model: str, registry: Registry) -> list[str]:
    """The failover candidates of a client model string, in order: a ``routing.routes`` name
    gives its list; ``a|b|c`` gives its non-empty parts (stripped); anything else is itself."""
    if model in registry.routes:
        return list(registry.routes[model])
    if "|" in model:
        return [part for p in model.split("|") if (part := p.strip())]
    return [model]


@dataclass(slots=True)
class ExecutionPlan:
    """Every decision about one request.

    ``mode``: ``translated`` (client and upstream formats differ, or the transport is converted:
    ``upstream_stream`` differs from ``client_stream``), ``same-format`` (fast path:
    model, URL and credentials change), ``passthrough`` (unrouted request to the vendor's own
    host, forwarded untouched) or ``local`` (answered by the proxy: ``error`` is set).
    ``credential`` is a key *fingerprint*, never the key. ``tool_names`` maps shortened tool
    names sent upstream back to the client's originals; ``custom_tools`` names the client's
    freeform tools sent upstream as functions, whose calls are turned back into custom calls.
    ``namespaced_tools`` maps the flat names of an R client's ``namespace`` tool functions to
    ``[namespace, inner name]``, so their calls go back to the client by namespace. ``notes``
    lists adjustments made (clamps, drops) for inspection. ``candidates`` are the route's
    selectors in failover order (``route_candidates``); ``attempts`` records each upstream try
    (``routing.executor.Attempt.to_dict``: backend, model, url, key fingerprint, status or
    error, milliseconds); the other fields describe the candidate that answered.
    """

    request_id: str
    client_format: str
    client: str | None = None
    mode: str = "local"
    client_model: str = ""
    client_stream: bool = False
    backend: str | None = None
    upstream_model: str | None = None
    upstream_format: str | None = None
    upstream_url: str | None = None
    upstream_stream: bool = False
    credential: str | None = None
    include_usage: bool = True
    estimated_input_tokens: int = 0
    estimate_usage: bool = False
    tool_names: dict[str, str] = field(default_factory=dict)
    custom_tools: list[str] = field(default_factory=list)
    namespaced_tools: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: CanonicalError | None = None
    candidates: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def to_metadata(self) -> dict[str, Any]:
        """A tnetstring-serialisable, secret-free dict for ``flow.metadata``."""
        data = asdict(self)
        data["error"] = asdict(self.error) if self.error else None
        return data

    def summary(self) -> str:
        """One line for the flow comment: ``client -> backend:model (format, stream)``."""
        if self.mode == "local":
            return f"wireshift {self.client_format}: local error {self.error.status if self.error else '?'}"
        if self.mode == "passthrough":
            return f"wireshift {self.client_format}: passthrough (unrouted {self.client_model!r})"
        stream = "stream" if self.client_stream else "non-stream"
        tries = f", attempt {len(self.attempts)}" if len(self.attempts) > 1 else ""
        return (
            f"wireshift {self.client_format} -> {self.backend}:{self.upstream_model} "
            f"[{self.mode}, {self.upstream_format}, {stream}{tries}]"
        )


@dataclass(slots=True)
class UpstreamRequest:
    """What the addon sends upstream: full ``url``, headers to ``set`` and to ``drop``, ``body``,
    and ``default_headers`` (the backend's configured ones, e.g. OpenRouter's ``HTTP-Referer`` /
    ``X-Title``) to add only where the client did not send its own value."""

    url: str
    set_headers: dict[str, str]
    drop_headers: tuple[str, ...]
    body: bytes
    default_headers: dict[str, str] = field(default_factory=dict)


def upstream_headers(client_headers: Iterable[tuple[str, str]], upstream: UpstreamRequest) -> list[tuple[str, str]]:
    """The header list to send upstream: the client's headers (repeats kept, in order) without
    hop-by-hop ones and ``upstream.drop_headers``, then ``set_headers``, then the
    ``default_headers`` the client did not send itself."""
    skip = HOP_HEADERS.union(upstream.drop_headers, upstream.set_headers)
    out = [(k, v) for k, v in client_headers if k.lower() not in skip]
    sent = {k.lower() for k, _ in out}
    out += upstream.set_headers.items()
    out += [(k, v) for k, v in upstream.default_headers.items() if k not in sent]
    return out


def _fail(plan: ExecutionPlan, status: int, message: str, **kw: Any) -> tuple[ExecutionPlan, None]:
    plan.mode = "local"
    plan.error = CanonicalError.of(status, message, **kw)
    return plan, None


def plan_request(
    registry: Registry,
    client_format: str,
    body: bytes,
    *,
    passthrough_ok: bool = False,
    request_id: str | None = None,
    client: str | None = None,
    selector: str | None = None,
    exclude_keys: Collection[str] = (),
) -> tuple[ExecutionPlan, UpstreamRequest | None]:
    """Decide how to serve one LLM request.

    ``client_format`` is a ``translators.FORMATS`` name, ``body`` the client's raw JSON.
    ``passthrough_ok`` allows an unrouted request to go on untouched (regular-proxy mode toward
    the vendor's own host). ``client`` names a known client (``"codex"``, ``"claude-code"``)
    whose quirks the response encoders honour. ``selector`` is the route candidate to plan
    (default: the first of ``route_candidates`` of the body's ``model``; the client still sees
    its own model string); ``exclude_keys`` are key fingerprints already tried for this request.
    Returns the plan and the upstream request; the upstream request is ``None`` for ``local``
    (``plan.error`` says what to answer) and ``passthrough`` plans. Never raises for bad input.
    """
    plan = ExecutionPlan(request_id=request_id or uuid.uuid4().hex, client_format=client_format, client=client)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _fail(plan, 400, f"request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _fail(plan, 400, "request body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return _fail(plan, 400, "'model' is required and must be a non-empty string", param="model")
    plan.client_model = model
    plan.client_stream = data.get("stream") is True
    plan.candidates = route_candidates(model, registry)
    if selector is None:
        if not plan.candidates:
            return _fail(plan, 400, f"model {model!r} holds no route candidate", param="model")
        selector = plan.candidates[0]

    route = resolve(selector, registry)
    if route is None:
        if passthrough_ok and len(plan.candidates) == 1:
            plan.mode = "passthrough"
            return plan, None
        known = ", ".join(sorted(registry.backends)) or "none"
        return _fail(
            plan,
            404,
            f"model {selector!r} cannot be routed: it has no known backend prefix, matches no alias and no "
            f"default_backend is set. Use 'prefix:model' with one of: {known}",
            param="model",
            code="model_not_found",
        )
    backend = route.backend
    plan.backend, plan.upstream_model = backend.prefix, route.model
    if not route.model:
        return _fail(
            plan, 400, f"model {selector!r} names backend {backend.prefix!r} but no model after ':'", param="model"
        )

    credential = backend.keys.acquire(exclude_keys)
    if credential is None and len(backend.keys):
        status, wait = backend.keys.unavailable()
        if status == 401:
            return _fail(
                plan,
                401,
                f"every API key of backend {backend.prefix!r} was rejected by the upstream "
                "(401/403); fix the keys and restart wireshift",
            )
        seconds = max(1, math.ceil(wait or 0))
        return _fail(
            plan,
            429,
            f"every API key of backend {backend.prefix!r} is cooling down after a 429; try again in {seconds}s",
            retry_after=str(seconds),
        )
    if credential is None and backend.requires_key:
        roots = " or ".join(backend.env_roots) or "api_keys in the config"
        return _fail(plan, 401, f"backend {backend.prefix!r} has no API key configured: set {roots}")
    plan.credential = credential.fingerprint if credential else None

    if client_format in backend.formats:
        upstream_format = client_format
    else:
        candidates = [f for f in backend.formats if f in FORMATS]
        if not candidates:
            return _fail(
                plan,
                501,
                f"backend {backend.prefix!r} speaks {', '.join(backend.formats)}, "
                f"which wireshift cannot translate {client_format} to yet",
            )
        upstream_format = candidates[0]
    plan.upstream_format = upstream_format
    plan.upstream_url = backend.endpoint(upstream_format)
    plan.estimate_usage = needs_usage_estimate(backend, upstream_format)
    plan.upstream_stream = plan.client_stream if backend.streaming is True else backend.streaming == "only"
    if plan.upstream_stream != plan.client_stream:
        wanted, offered = ("streaming", "does not stream") if plan.client_stream else ("non-streaming", "only streams")
        if registry.transport_fallback == "exact":
            return _fail(plan, 400, f"backend {backend.prefix!r} {offered} and routing.transport_fallback is "
                                    f"'exact': send a {'non-' if plan.client_stream else ''}streaming request",
                         param="stream")  # fmt: skip
        plan.notes.append(f"transport: {wanted} client on a backend that {offered} (converted)")

    if upstream_format == client_format and plan.upstream_stream == plan.client_stream:
        plan.mode = "same-format"
        _clamp_body_max_tokens(data, backend, plan)
        # e.g. wireshift's own thinking signatures must not reach a real Anthropic upstream
        plan.notes += get_format(client_format).sanitize_passthrough(data)
        data["model"] = route.model
        upstream_body = data
        if plan.estimate_usage and plan.client_stream and _asks_stream_usage(data):
            # the backend's quirks strip stream_options: re-encode the stream (C -> C) with an estimate
            plan.mode, plan.include_usage = "translated", True
            plan.estimated_input_tokens = _raw_estimate(client_format, data)
    else:
        plan.mode = "translated"
        try:
            upstream_body = _translate_request(data, client_format, upstream_format, route, plan)
        except TranslationError as exc:
            plan.mode = "local"
            plan.error = exc.error
            return plan, None
    plan.notes += apply_request_quirks(backend, upstream_body, upstream_format)

    set_headers, drop = _upstream_headers(
        backend, credential.key if credential else None, client_format, upstream_format
    )
    defaults = {k.lower(): v for k, v in backend.headers.items() if k.lower() not in set_headers}
    return plan, UpstreamRequest(plan.upstream_url, set_headers, drop, orjson.dumps(upstream_body), defaults)


def _clamp(value: int | None, backend: BackendSpec, plan: ExecutionPlan) -> int | None:
    cap = backend.max_output_tokens
    if cap is not None and value is not None and value > cap:
        plan.notes.append(f"max_tokens clamped {value} -> {cap}")
        return cap
    return value


def _clamp_body_max_tokens(data: dict[str, Any], backend: BackendSpec, plan: ExecutionPlan) -> None:
    for name in MAX_TOKEN_FIELDS:
        value = data.get(name)
        if isinstance(value, int):
            data[name] = _clamp(value, backend, plan)


def _translate_request(
    data: dict[str, Any], client_format: str, upstream_format: str, route: Route, plan: ExecutionPlan
) -> dict[str, Any]:
    backend = route.backend
    req: CanonicalRequest = get_format(client_format).decode_request(data)
    req.model = route.model
    req.stream = plan.upstream_stream
    req.max_tokens = _clamp(req.max_tokens, backend, plan)
    plan.include_usage = req.include_usage
    plan.estimated_input_tokens = estimate_input_tokens(req)
    plan.namespaced_tools = namespaced_tools(req)  # by client-side names, before shortening
    plan.tool_names = _shorten_tool_names(req)
    if upstream_format != RESPONSES:
        plan.custom_tools = functionize_custom_tools(req)
    default_max = backend.default_max_tokens or 32000
    if backend.max_output_tokens is not None:
        default_max = min(default_max, backend.max_output_tokens)
    opts = EncodeOptions(
        max_tokens_field=backend.max_tokens_field,
        stream_usage=backend.stream_usage,
        default_max_tokens=default_max,
        include_extra=upstream_format == client_format,  # same format, converted transport
    )
    result: dict[str, Any] = get_format(upstream_format).encode_request(req, opts)
    plan.notes += forward_extra_fields(backend, result, req.extensions, upstream_format)
    return result


def _asks_stream_usage(data: dict[str, Any]) -> bool:
    options = data.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _raw_estimate(client_format: str, data: dict[str, Any]) -> int:
    """Input-token estimate of a same-format body (0 when it does not decode)."""
    try:
        return estimate_input_tokens(get_format(client_format).decode_request(data))
    except TranslationError:
        return 0


def _shorten_tool_names(req: CanonicalRequest) -> dict[str, str]:
    """Shorten tool names over 64 chars in tools, tool_choice and history; return short -> original."""
    mapping = {short: t.name for t in req.tools if (short := shorten_tool_name(t.name)) != t.name}
    if not mapping:
        return {}
    reverse = {orig: short for short, orig in mapping.items()}
    for tool in req.tools:
        tool.name = reverse.get(tool.name, tool.name)
    if req.tool_choice and req.tool_choice.name:
        req.tool_choice.name = reverse.get(req.tool_choice.name, req.tool_choice.name)
    for msg in req.messages:
        for block in msg.content:
            if isinstance(block, ToolCall):
                block.name = reverse.get(block.name, block.name)
    return mapping


def _upstream_headers(
    backend: BackendSpec, key: str | None, client_format: str, upstream_format: str
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Headers to set and drop: the backend's key replaces the client's; vendor headers go
    only to that vendor's format; identity encoding so streams can be re-encoded."""
    drop: list[str] = [*CLIENT_AUTH_HEADERS, "content-length"]
    set_headers: dict[str, str] = {}
    if upstream_format == MESSAGES:
        if client_format != MESSAGES:
            drop += ANTHROPIC_HEADERS
            set_headers["anthropic-version"] = ANTHROPIC_VERSION
    else:
        drop += ANTHROPIC_HEADERS
    if backend.kind != BackendKind.OPENAI:
        drop += OPENAI_HEADERS  # vendor identifiers go only to that vendor (wire-formats.md §2.10)
    if key is not None:
        if backend.auth == "x-api-key":
            set_headers["x-api-key"] = key
        else:
            set_headers["authorization"] = f"Bearer {key}"
    set_headers["accept-encoding"] = "identity"
    return set_headers, tuple(h for h in drop if h not in set_headers)
