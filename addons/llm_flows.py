"""The wireshift mitmproxy addon: classify LLM flows, re-target them, re-encode responses.

Thin glue (architecture.md): decisions come from ``routing.plan_request`` (one
``ExecutionPlan`` per flow), upstream attempts from ``routing.executor`` (keys, failover,
timeouts), byte translation from ``translators.pipeline``. Hook use follows
mitmproxy-notes.md §2: in ``request`` the executor makes the upstream call; a whole answer
becomes the flow's response, a committed stream is handed over through ``routing.relay``
(the flow is re-targeted to it, so mitmproxy streams it); ``responseheaders`` installs the
stream re-encoder and fixes framing headers, ``response`` translates whole bodies and upstream
errors. With the option ``wireshift_executor=false`` mitmproxy forwards the re-targeted flow
itself (one attempt, no retry: the plain single-attempt path the benchmark compares against).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import certifi
import orjson
from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ReverseMode

from config.loader import DEFAULT_CONFIG_PATH, ConfigError, load_config
from routing.backends import Registry
from routing.executor import Executor, Outcome, UpstreamStream
from routing.plan import ExecutionPlan, UpstreamRequest, plan_request, upstream_headers
from routing.relay import Relay
from translators import anthropic_messages
from translators.canonical import CanonicalError, StreamContext, TranslationError, estimate_input_tokens
from translators.pipeline import (
    StreamTranslator,
    UpstreamStreamFailed,
    error_body,
    error_frame,
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


def _stream_callable(
    translator: StreamTranslator, encoding: str, held: UpstreamStream | None = None
) -> Callable[[bytes], bytes | Iterable[bytes]]:
    """mitmproxy ``flow.response.stream`` callable: network chunk in, client bytes out.

    Decompresses gzip/deflate when the upstream ignored ``accept-encoding: identity``; a body
    that cannot be decompressed ends the client stream with its format's error frame. ``held``
    is the relayed upstream stream, whose ``error`` (set when it died mid-way) ends the client
    stream with that error instead of a generic one.
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
            out = translator.feed(tail) if tail else b""
            if held is not None and held.error:
                return out + translator.abort(held.error)
            return out + translator.close()
        except zlib.error as exc:
            out = translator.abort(f"wireshift cannot decompress the upstream stream ({encoding}): {exc}")
            return out if (out or not chunk) else []

    return stream


def _event_end(data: bytes) -> int:
    """Index just past the last complete SSE event in ``data`` (0 when there is none); events end
    with a blank line: LF LF, CRLF CRLF or CR CR (WHATWG HTML, server-sent events §9.2.6)."""
    lf, crlf, cr = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n"), data.rfind(b"\r\r")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0, cr + 2 if cr >= 0 else 0)


def _relay_passthrough(
    client_format: str, held: UpstreamStream, ctx_: StreamContext
) -> Callable[[bytes], bytes | Iterable[bytes]]:
    """Stream callable for a same-format relayed stream: whole SSE events pass unchanged; the
    incomplete last event of a chunk waits for its end. When the upstream died mid-way that
    partial event is dropped and the client format's error event ends the stream, so the client
    never sees a broken event."""
    pending = b""

    def stream(chunk: bytes) -> bytes | Iterable[bytes]:
        nonlocal pending
        if chunk:
            data = pending + chunk if pending else chunk
            cut = _event_end(data)
            pending = data[cut:]
            return data[:cut] or []  # b"" mid-stream would end the body (mitmproxy-notes.md §3.2)
        if held.error:
            return error_frame(client_format, CanonicalError.of(502, held.error), ctx_)
        return pending

    return stream


def _headers(fields: list[tuple[str, str]]) -> http.Headers:
    """mitmproxy headers from (name, value) pairs, in order, repeats kept."""
    return http.Headers([(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in fields])


def _redact(name: str, value: str, fingerprint: str | None) -> str:
    """A credential header as shown in the flow: the key's fingerprint, never the key."""
    shown = f"[redacted {fingerprint or 'key'}]"
    return f"Bearer {shown}" if name == "authorization" and value.startswith("Bearer ") else shown


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
        self._relayed: dict[str, tuple[str, UpstreamStream]] = {}  # flow id -> (relay url, stream)
        self._running: dict[str, set[asyncio.Task[Outcome]]] = {}  # client connection id -> executions
        self._executor: Executor | None = None
        self._relay = Relay()

    # ------------------------------------------------------------------ options

    def load(self, loader: object) -> None:
        loader.add_option(  # type: ignore[attr-defined]
            "wireshift_config",
            str,
            "",
            "Path of the wireshift YAML config; empty means the embedded config/wireshift.yaml.",
        )
        loader.add_option(  # type: ignore[attr-defined]
            "wireshift_executor",
            bool,
            True,
            "wireshift makes the upstream calls itself: key rotation, failover and timeouts before the "
            "first output byte, streaming kept. Off: mitmproxy forwards each request once, no retry.",
        )

    def _executor_for(self) -> Executor:
        if self._executor is None:
            options = ctx.options.keys()
            insecure = "ssl_insecure" in options and ctx.options.ssl_insecure
            cafile = ctx.options.ssl_verify_upstream_trusted_ca if "ssl_verify_upstream_trusted_ca" in options else None
            verify: ssl.SSLContext | bool = False
            if not insecure:
                verify = ssl.create_default_context(cafile=cafile or certifi.where())
            self._executor = Executor(verify)
        return self._executor

    async def done(self) -> None:
        if self._executor is not None:
            await self._executor.close()
        await self._relay.close()

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

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        # returns a coroutine only when an upstream call is to be made (mitmproxy awaits it):
        # local answers, passthrough and the direct path stay synchronous
        try:
            return self._request(flow)
        except Exception as exc:
            self._internal_error(flow, "request", exc, 500)
            return None

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
        self._release(flow)
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

    def _request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response is not None or self.registry is None:
            return None
        req = flow.request
        path = req.path.split("?", 1)[0]
        reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
        client_format = LLM_PATHS.get(path) if req.method == "POST" else None
        if client_format is None:
            if reverse:
                self._answer_local_path(flow, path)
            return None
        if not reverse and req.pretty_host not in self._intercept_hosts:
            return None  # regular mode: another host's /responses or /chat/completions is not ours
        body = req.get_content(strict=False) or b""
        if ctx.options.wireshift_executor:
            return self._execute(flow, client_format, body, passthrough_ok=not reverse)
        plan, upstream = plan_request(
            self.registry, client_format, body, passthrough_ok=not reverse, client=_known_client(req.headers)
        )
        self._annotate_plan(flow, plan)
        if plan.mode == "passthrough":
            return None
        if upstream is None:
            self._answer_error(flow, plan.client_format, plan.error or CanonicalError.of(500, "no plan"))
            return None
        self._plans[flow.id] = plan
        self._rewrite_request(req, upstream, plan, redact=False)
        req.url = upstream.url
        return None

    async def _execute(self, flow: http.HTTPFlow, client_format: str, body: bytes, *, passthrough_ok: bool) -> None:
        """Run the upstream attempts (``routing.executor``) and hand the outcome to mitmproxy.
        The execution is a task of the client connection: ``client_disconnected`` cancels it,
        so a client that went away stops its retries and releases the upstream."""
        assert self.registry is not None
        req = flow.request
        task = asyncio.ensure_future(
            self._executor_for().execute(
                self.registry,
                client_format,
                body,
                req.headers.items(multi=True),
                passthrough_ok=passthrough_ok,
                client=_known_client(req.headers),
            )
        )
        conn = flow.client_conn.id
        self._running.setdefault(conn, set()).add(task)
        outcome: Outcome | None = None
        try:
            outcome = await task
            if outcome.stream is not None:
                await self._relay.start()
            self._deliver(flow, outcome)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # mitmproxy itself is cancelling this hook
            flow.comment = "wireshift: the client went away before the upstream answered"
        except Exception as exc:
            if outcome is not None and outcome.stream is not None and flow.id not in self._relayed:
                outcome.stream.close()
            self._internal_error(flow, "request", exc, 500)
        finally:
            running = self._running.get(conn)
            if running is not None:
                running.discard(task)
                if not running:
                    del self._running[conn]

    def client_disconnected(self, client: connection.Client) -> None:
        for task in self._running.pop(client.id, ()):
            task.cancel()

    def _deliver(self, flow: http.HTTPFlow, outcome: Outcome) -> None:
        plan = outcome.plan
        self._annotate_plan(flow, plan)
        if plan.mode == "passthrough":
            return
        if not outcome.answered or outcome.upstream is None:
            self._answer_error(flow, plan.client_format, plan.error or CanonicalError.of(502, "no upstream answer"))
            return
        req = flow.request
        # the flow shows the real upstream request (credentials redacted) for inspection
        self._rewrite_request(req, outcome.upstream, plan, redact=True)
        req.url = outcome.upstream.url
        self._plans[flow.id] = plan
        if outcome.stream is not None:
            if not self._relay.port:
                raise RuntimeError("relay not started")
            url = self._relay.hold(outcome.status, outcome.headers, outcome.stream)
            self._relayed[flow.id] = (url, outcome.stream)
            req.url = url
            return
        headers = _headers(outcome.headers)
        flow.response = http.Response.make(outcome.status, outcome.body, headers)

    @staticmethod
    def _rewrite_request(req: http.Request, upstream: UpstreamRequest, plan: ExecutionPlan, *, redact: bool) -> None:
        """Apply the upstream request to the flow: its headers by ``routing.plan.upstream_headers``
        (the same rule the executor sends by; Host is kept for mitmproxy's re-targeting) and body.
        ``redact`` shows credentials as the key's fingerprint (the executor sends the real ones)."""
        fields = upstream_headers(req.headers.items(multi=True), upstream)
        if redact:
            fields = [
                (k, _redact(k, v, plan.credential) if k in ("authorization", "x-api-key") else v) for k, v in fields
            ]
        host = req.headers.get("host")
        req.headers = _headers(fields)
        if host is not None:
            req.headers.insert(0, "host", host)
        req.content = upstream.body  # sets Content-Length

    @staticmethod
    def _annotate_plan(flow: http.HTTPFlow, plan: ExecutionPlan) -> None:
        flow.metadata[METADATA_KEY] = plan.to_metadata()
        flow.comment = plan.summary()

    def _release(self, flow: http.HTTPFlow) -> None:
        """Forget a relayed stream; release it if the relay never served it."""
        relayed = self._relayed.pop(flow.id, None)
        if relayed is not None:
            self._relay.discard(relayed[0])
            relayed[1].close()

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
        relayed = self._relayed.get(flow.id)
        backend = self.registry.backends.get(plan.backend or "") if self.registry else None
        if backend is not None and plan.credential and not plan.attempts:  # the executor reports its own
            backend.keys.report(plan.credential, resp.status_code, resp.headers.get("retry-after"))
        is_sse = "text/event-stream" in resp.headers.get("content-type", "")
        encoding = resp.headers.get("content-encoding", "").strip().lower()
        if plan.mode == "same-format" and is_sse and resp.status_code < 400:
            resp.stream = True if relayed is None else _relay_passthrough(
                plan.client_format, relayed[1], self._stream_context(plan)
            )  # fmt: skip
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
        resp.stream = _stream_callable(translator, encoding, relayed[1] if relayed else None)
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
        relayed = self._relayed.get(flow.id)
        self._release(flow)
        resp = flow.response
        if plan is None or resp is None:
            return
        if relayed is not None:
            if plan.upstream_url:  # the exchange is over: show the real upstream, not the relay
                flow.request.url = plan.upstream_url
            if relayed[1].error:
                flow.marked = ":warning:"
                flow.comment = f"{plan.summary()} ERROR {relayed[1].error[:200]}"
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
        self._release(flow)
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
            estimate_usage=plan.estimate_usage,
        )

    @staticmethod
    def _annotate(flow: http.HTTPFlow, plan: ExecutionPlan, usage: object, err: CanonicalError | None) -> None:
        tokens = ""
        if usage is not None:
            tokens = f" in={usage.prompt_total} out={usage.output_tokens}"  # type: ignore[attr-defined]
            tokens += " (estimated)" if getattr(usage, "estimated", False) else ""
        flow.comment = plan.summary() + tokens + (f" ERROR {err.message[:200]}" if err else "")
        if err is not None:
            flow.marked = ":warning:"
