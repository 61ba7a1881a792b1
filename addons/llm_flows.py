"""The wireshift mitmproxy addon: classify LLM flows, re-target them, re-encode responses.

Thin glue (architecture.md): decisions come from ``routing.plan_request`` (one
``ExecutionPlan`` per flow), byte translation from ``translators.pipeline``. Hook use follows
mitmproxy-notes.md §2: rewrite in ``request``, install the stream re-encoder and fix framing
headers in ``responseheaders``, translate buffered bodies and upstream errors in ``response``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ReverseMode

from config.loader import DEFAULT_CONFIG_PATH, ConfigError, load_config
from routing.backends import Registry
from routing.plan import ExecutionPlan, plan_request
from translators import anthropic_messages
from translators.canonical import CanonicalError, StreamContext, TranslationError, estimate_input_tokens
from translators.pipeline import (
    StreamTranslator,
    UpstreamStreamFailed,
    error_body,
    synthesize_stream,
    translate_error,
    translate_response,
)

log = logging.getLogger("wireshift")

#: Exact request paths (query string ignored) -> client wire format.
LLM_PATHS = {
    "/v1/chat/completions": "openai_chat",
    "/chat/completions": "openai_chat",
    "/v1/responses": "openai_responses",
    "/responses": "openai_responses",
    "/v1/messages": "anthropic_messages",
}
#: In regular-proxy mode only LLM paths on these hosts (plus every configured backend's host) are
#: intercepted; an unrouted request to them passes through untouched.
VENDOR_HOSTS = frozenset({"api.openai.com", "api.anthropic.com"})
METADATA_KEY = "wireshift"


def _guess_format(flow: http.HTTPFlow) -> str:
    """Error envelope for non-LLM paths: Anthropic when the client looks like one."""
    headers = flow.request.headers
    if "anthropic-version" in headers or "x-api-key" in headers or flow.request.path.startswith("/v1/messages"):
        return "anthropic_messages"
    return "openai_chat"


def _known_client(headers: http.Headers) -> str | None:
    """Which known client sent this (wire-formats.md §7.4: for quirks only, never for translation)."""
    agent = headers.get("user-agent", "").lower()
    if agent.startswith("codex") or "codex" in headers.get("originator", "").lower():
        return "codex"
    if agent.startswith("claude-cli"):
        return "claude-code"
    return None


def _tool_restore(plan: ExecutionPlan) -> dict[str, Any]:
    """How tool calls coming back are restored for the client (pipeline keyword arguments):
    shortened names, freeform tools sent as functions, flattened namespaces."""
    return {"tool_names": plan.tool_names, "custom_tools": plan.custom_tools, "namespaced_tools": plan.namespaced_tools}


def _json_response(status: int, body: bytes, extra: dict[str, str] | None = None) -> http.Response:
    headers = {"content-type": "application/json", **(extra or {})}
    return http.Response.make(status, body, headers)


#: Content encodings the stream callable can undo chunk by chunk (zlib auto-detects gzip/zlib).
STREAMABLE_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})


def _stream_callable(translator: StreamTranslator, encoding: str) -> Callable[[bytes], bytes | Iterable[bytes]]:
    """mitmproxy ``flow.response.stream`` callable: network chunk in, client bytes out.

    Decompresses gzip/deflate when the upstream ignored ``accept-encoding: identity``; a body
    that cannot be decompressed ends the client stream with its format's error frame.
    """
    decomp = zlib.decompressobj(wbits=47) if encoding not in ("", "identity") else None

    def stream(chunk: bytes) -> bytes | Iterable[bytes]:
        try:
            if chunk:
                data = decomp.decompress(chunk) if decomp else chunk
                out = translator.feed(data) if data else b""
                # b"" mid-stream would end an HTTP/1 chunked body (mitmproxy-notes.md §3.2)
                return out or []
            tail = decomp.flush() if decomp else b""
            return (translator.feed(tail) if tail else b"") + translator.close()
        except zlib.error as exc:
            out = translator.abort(f"wireshift cannot decompress the upstream stream ({encoding}): {exc}")
            return out if (out or not chunk) else []

    return stream


def _file_stamp(path: str | None) -> tuple[str, float] | None:
    """(resolved path, mtime) of the config file, to skip reloading an unchanged file."""
    file = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        return str(file.resolve()), file.stat().st_mtime
    except OSError:
        return None


class WireShift:
    """mitmproxy addon. Option ``wireshift_config``: path of the YAML config (default: embedded)."""

    def __init__(self) -> None:
        self.registry: Registry | None = None
        self._loaded: tuple[str, float] | None = None
        self._intercept_hosts: frozenset[str] = VENDOR_HOSTS
        self._plans: dict[str, ExecutionPlan] = {}
        self._streams: dict[str, StreamTranslator] = {}

    # ------------------------------------------------------------------ options

    def load(self, loader: object) -> None:
        loader.add_option(  # type: ignore[attr-defined]
            "wireshift_config",
            str,
            "",
            "Path of the wireshift YAML config; empty means the embedded config/wireshift.yaml.",
        )

    def configure(self, updated: set[str]) -> None:
        if "wireshift_config" in updated:
            self._load_config(ctx.options.wireshift_config or None)
        # Set only after a successful load: an OptionsError raised inside an option update we
        # triggered ourselves would be rolled back into this hook again, recursively.
        if "connection_strategy" in ctx.options.keys() and ctx.options.connection_strategy != "lazy":
            # eager connects break re-targeting when the reverse/CONNECT target is unreachable
            ctx.options.update(connection_strategy="lazy")

    def _load_config(self, path: str | None) -> None:
        """Load (or reload) the config. Invalid at start: refuse to start; on reload: keep the last
        good config and say so."""
        stamp = _file_stamp(path)
        if self.registry is not None and stamp == self._loaded:
            return  # mitmproxy re-announces options at start; the file did not change
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            if self.registry is None:
                raise exceptions.OptionsError(f"wireshift: invalid config, refusing to start:\n{exc}") from None
            log.error("wireshift: invalid config, keeping the last good one:\n%s", exc)
            return
        self.registry = Registry.from_config(cfg)
        self._intercept_hosts = VENDOR_HOSTS | self.registry.hosts()
        self._loaded = stamp
        log.info("wireshift: %d backend(s): %s", len(self.registry.backends), ", ".join(self.registry.backends))

    # ------------------------------------------------------------------ hooks
    # Each hook is guarded: an unexpected exception must reach the client as an error in its
    # own format, never as a mitmproxy "Addon error" with the flow half-rewritten.

    def request(self, flow: http.HTTPFlow) -> None:
        try:
            self._request(flow)
        except Exception as exc:
            self._internal_error(flow, "request", exc, 500)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        try:
            self._responseheaders(flow)
        except Exception as exc:
            self._internal_error(flow, "responseheaders", exc, None)

    def response(self, flow: http.HTTPFlow) -> None:
        try:
            self._response(flow)
        except Exception as exc:
            self._internal_error(flow, "response", exc, 502)

    def _internal_error(self, flow: http.HTTPFlow, hook: str, exc: Exception, status: int | None) -> None:
        log.exception("wireshift: internal error in %s hook", hook)
        plan = self._plans.pop(flow.id, None)
        self._streams.pop(flow.id, None)
        if status is None:
            return
        client_format = plan.client_format if plan else _guess_format(flow)
        err = CanonicalError.of(status, f"wireshift internal error ({hook}): {exc!r}")
        code, body = error_body(client_format, err)
        flow.response = _json_response(code, body)
        flow.marked = ":warning:"

    # ------------------------------------------------------------------ request

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # LLM request bodies are rewritten whole in request(); a streamed request (e.g. from
        # stream_large_bodies) would already be on its way to the original target.
        if flow.request.method == "POST" and flow.request.path.split("?", 1)[0] in LLM_PATHS:
            flow.request.stream = False

    def _request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or self.registry is None:
            return
        req = flow.request
        path = req.path.split("?", 1)[0]
        reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
        client_format = LLM_PATHS.get(path) if req.method == "POST" else None
        if client_format is None:
            if reverse:
                self._answer_local_path(flow, path)
            return
        if not reverse and req.pretty_host not in self._intercept_hosts:
            return  # regular mode: another host's /responses or /chat/completions is not ours
        passthrough_ok = not reverse
        plan, upstream = plan_request(
            self.registry,
            client_format,
            req.get_content(strict=False) or b"",
            passthrough_ok=passthrough_ok,
            client=_known_client(req.headers),
        )
        flow.metadata[METADATA_KEY] = plan.to_metadata()
        flow.comment = plan.summary()
        if plan.mode == "passthrough":
            return
        if upstream is None:
            self._answer_error(flow, plan.client_format, plan.error or CanonicalError.of(500, "no plan"))
            return
        self._plans[flow.id] = plan
        req.url = upstream.url
        for name in upstream.drop_headers:
            req.headers.pop(name, None)
        for name, value in upstream.set_headers.items():
            req.headers[name] = value
        for name, value in upstream.default_headers.items():
            req.headers.setdefault(name, value)  # the client's own value wins
        req.headers.pop("content-encoding", None)
        req.content = upstream.body

    def _answer_local_path(self, flow: http.HTTPFlow, path: str) -> None:
        """Reverse mode has no real upstream for other paths: answer them here."""
        if path == "/v1/messages/count_tokens" and flow.request.method == "POST":
            # an estimate until a real counter lands; never 404 (wire-formats.md §7.1)
            try:
                req = anthropic_messages.decode_request(orjson.loads(flow.request.get_content(strict=False) or b""))
            except (ValueError, TranslationError) as exc:
                err = exc.error if isinstance(exc, TranslationError) else CanonicalError.of(400, f"invalid JSON: {exc}")
                self._answer_error(flow, "anthropic_messages", err)
                return
            tokens = max(1, estimate_input_tokens(req))
            flow.response = _json_response(200, orjson.dumps({"input_tokens": tokens}))
            return
        if path == "/wireshift/status" and self.registry is not None:
            flow.response = _json_response(200, orjson.dumps(self.registry.status(), option=orjson.OPT_INDENT_2))
            return
        if path in ("/health", "/api/hello"):
            # a HEAD answer carries no body (HTTP/1 keep-alive framing)
            body = b"" if flow.request.method == "HEAD" else b'{"status":"ok"}'
            flow.response = _json_response(200, body)
            return
        err = CanonicalError.of(404, f"wireshift does not serve {flow.request.method} {path}", code="not_found")
        self._answer_error(flow, _guess_format(flow), err)

    def _answer_error(self, flow: http.HTTPFlow, client_format: str, err: CanonicalError) -> None:
        status, body = error_body(client_format, err)
        extra = {"retry-after": err.retry_after} if err.retry_after else None
        flow.response = _json_response(status, body, extra)
        flow.marked = ":warning:"

    # ------------------------------------------------------------------ response

    def _responseheaders(self, flow: http.HTTPFlow) -> None:
        plan = self._plans.get(flow.id)
        resp = flow.response
        if plan is None or resp is None:
            return
        resp.headers["x-wireshift-backend"] = plan.backend or ""
        resp.headers["x-wireshift-upstream-model"] = plan.upstream_model or ""
        backend = self.registry.backends.get(plan.backend or "") if self.registry else None
        if backend is not None and plan.credential:
            backend.keys.report(plan.credential, resp.status_code, resp.headers.get("retry-after"))
        is_sse = "text/event-stream" in resp.headers.get("content-type", "")
        encoding = resp.headers.get("content-encoding", "").strip().lower()
        if plan.mode == "same-format" and is_sse and resp.status_code < 400:
            resp.stream = True
            return
        if (
            plan.mode != "translated"
            or resp.status_code >= 400
            or not is_sse
            or not plan.client_stream  # a stream folded into one response for a non-streaming client
            or encoding not in STREAMABLE_ENCODINGS
        ):
            # translated in response() from the whole body; stream_large_bodies may have set
            # stream=True before this hook, which would skip that translation
            resp.stream = plan.mode == "same-format" and resp.status_code < 400 and bool(resp.stream)
            return
        translator = StreamTranslator(
            plan.upstream_format or "", plan.client_format, self._stream_context(plan), **_tool_restore(plan)
        )
        self._streams[flow.id] = translator
        resp.stream = _stream_callable(translator, encoding)
        resp.headers.pop("content-encoding", None)
        resp.headers.pop("content-length", None)
        if flow.request.http_version.startswith("HTTP/1"):
            resp.headers["transfer-encoding"] = "chunked"
        resp.headers["content-type"] = "text/event-stream"
        resp.headers["cache-control"] = "no-cache"
        resp.headers["x-accel-buffering"] = "no"

    def _response(self, flow: http.HTTPFlow) -> None:
        plan = self._plans.pop(flow.id, None)
        translator = self._streams.pop(flow.id, None)
        resp = flow.response
        if plan is None or resp is None:
            return
        if translator is not None:
            self._annotate(flow, plan, translator.usage, translator.error)
            return
        if resp.stream:
            return
        if resp.status_code >= 400:
            self._translate_error_response(flow, plan)
        elif plan.mode == "translated":
            self._translate_buffered(flow, plan)

    def _translate_error_response(self, flow: http.HTTPFlow, plan: ExecutionPlan) -> None:
        resp = flow.response
        assert resp is not None
        flow.marked = ":warning:"
        status, body, err = translate_error(
            plan.upstream_format or plan.client_format,
            plan.client_format,
            resp.status_code,
            resp.get_content(strict=False) or b"",
            resp.headers.get("retry-after"),
        )
        flow.comment = f"{plan.summary()} upstream error {resp.status_code}: {err.message[:200]}"
        if plan.mode != "translated":
            return  # already in the client's own format
        resp.status_code = status
        resp.headers["content-type"] = "application/json"
        resp.headers.pop("content-encoding", None)
        resp.content = body

    def _translate_buffered(self, flow: http.HTTPFlow, plan: ExecutionPlan) -> None:
        resp = flow.response
        assert resp is not None
        body = resp.get_content(strict=False) or b""
        ctx_ = self._stream_context(plan)
        upstream_sse = "text/event-stream" in resp.headers.get("content-type", "")
        try:
            if upstream_sse and plan.client_stream:
                # an upstream stream we could not re-encode on the fly (e.g. brotli): whole body
                translator = StreamTranslator(
                    plan.upstream_format or "", plan.client_format, ctx_, **_tool_restore(plan)
                )
                out = translator.feed(body) + translator.close()
                self._annotate(flow, plan, translator.usage, translator.error)
                resp.headers.pop("content-encoding", None)
                resp.content = out
                return
            if plan.client_stream:
                out, canonical = synthesize_stream(
                    plan.upstream_format or "", plan.client_format, body, ctx_, **_tool_restore(plan)
                )
                resp.headers["content-type"] = "text/event-stream"
            else:
                out, canonical = translate_response(
                    plan.upstream_format or "",
                    plan.client_format,
                    body,
                    ctx_,
                    **_tool_restore(plan),
                    upstream_stream=upstream_sse,
                )
                resp.headers["content-type"] = "application/json"
        except UpstreamStreamFailed as failed:
            status, out = error_body(plan.client_format, failed.error)
            resp.status_code = status
            resp.headers["content-type"] = "application/json"
            flow.marked = ":warning:"
            canonical = None
        except Exception as exc:
            log.warning("wireshift: cannot translate upstream response: %r", exc)
            err = CanonicalError.of(502, f"wireshift could not translate the upstream response: {exc}")
            status, out = error_body(plan.client_format, err)
            resp.status_code = status
            resp.headers["content-type"] = "application/json"
            flow.marked = ":warning:"
            canonical = None
        resp.headers.pop("content-encoding", None)
        resp.content = out
        if canonical is not None:
            self._annotate(flow, plan, canonical.usage, None)

    def error(self, flow: http.HTTPFlow) -> None:
        plan = self._plans.pop(flow.id, None)
        translator = self._streams.pop(flow.id, None)
        if plan is None:
            return
        flow.marked = ":warning:"
        message = flow.error.msg if flow.error else "unknown error"
        flow.comment = f"{plan.summary()} failed: {message}"
        if translator is not None:
            translator.abort(message)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _stream_context(plan: ExecutionPlan) -> StreamContext:
        return StreamContext(
            model=plan.client_model,
            include_usage=plan.include_usage,
            estimated_input_tokens=plan.estimated_input_tokens,
            client=plan.client,
        )

    @staticmethod
    def _annotate(flow: http.HTTPFlow, plan: ExecutionPlan, usage: object, err: CanonicalError | None) -> None:
        tokens = ""
        if usage is not None:
            tokens = f" in={usage.prompt_total} out={usage.output_tokens}"  # type: ignore[attr-defined]
        flow.comment = plan.summary() + tokens + (f" ERROR {err.message[:200]}" if err else "")
        if err is not None:
            flow.marked = ":warning:"
