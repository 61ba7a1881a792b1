"""Compose format modules into response translators (pure; the addon feeds them bytes).

- ``StreamTranslator``: upstream SSE bytes -> client SSE bytes, chunk by chunk, never buffering
  more than one partial event. It never raises: a failure inside a decoder or encoder becomes
  the client format's in-stream error frame (mitmproxy would otherwise drop the chunk silently,
  mitmproxy-notes.md §3.5), and a stream that ends without a terminal event gets one.
- ``translate_response``: a whole non-streaming body.
- ``translate_error``: an upstream HTTP error body into the client's error envelope.
- ``synthesize_stream``: a whole upstream body replayed as a client stream (a streaming client
  whose upstream answered with JSON).
"""

from __future__ import annotations

from collections.abc import Collection

import orjson

from translators import get_format
from translators.canonical import (
    BlockStart,
    BlockStop,
    CanonicalError,
    CanonicalResponse,
    Delta,
    End,
    ErrorEvent,
    Event,
    Finish,
    ResponseAccumulator,
    StreamContext,
    ToolCall,
    Usage,
    UsageEstimator,
    UsageEvent,
    custom_input,
    estimate_usage,
    response_to_events,
)
from translators.sse import SSEDecoder


def _restore_call(
    call: ToolCall, tool_names: dict[str, str], custom_tools: frozenset[str], namespaced: dict[str, list[str]]
) -> bool:
    """Give a call back its client-side name (shortened upstream), kind (a client custom tool
    sent upstream as a function) and namespace (an R ``namespace`` tool's function, sent by its
    flat name: ``name`` becomes the inner name). True when the call is such a custom call."""
    call.name = tool_names.get(call.name, call.name)
    custom = call.name in custom_tools and call.kind == "function"
    if custom:
        call.kind = "custom"
    if (where := namespaced.get(call.name)) is not None:
        call.namespace, call.name = where
    return custom


def _restore_calls(
    blocks: list, tool_names: dict[str, str], custom_tools: frozenset[str], namespaced: dict[str, list[str]]
) -> None:
    for block in blocks:
        if isinstance(block, ToolCall) and _restore_call(block, tool_names, custom_tools, namespaced):
            block.arguments = custom_input(block.arguments)


class StreamTranslator:
    """Re-encodes one upstream stream for one client.

    ``feed(chunk) -> bytes`` per network chunk (possibly ``b""`` when nothing is complete yet);
    ``close() -> bytes`` once at the end of the upstream body. ``usage`` / ``stop_reason`` /
    ``error`` record what went by, for inspection.
    """

    __slots__ = (
        "_client_format",
        "_ctx",
        "_custom_args",
        "_custom_index",
        "_custom_tools",
        "_decoder",
        "_done",
        "_encoder",
        "_estimator",
        "_namespaced",
        "_sse",
        "_tool_names",
        "error",
        "stop_reason",
        "usage",
    )

    def __init__(
        self,
        upstream_format: str,
        client_format: str,
        ctx: StreamContext,
        tool_names: dict[str, str] | None = None,
        custom_tools: Collection[str] = (),
        *,
        namespaced_tools: dict[str, list[str]] | None = None,
    ) -> None:
        self._sse = SSEDecoder()
        self._decoder = get_format(upstream_format).StreamDecoder()
        self._encoder = get_format(client_format).StreamEncoder(ctx)
        self._client_format, self._ctx = client_format, ctx
        self._tool_names = tool_names or {}
        self._custom_tools = frozenset(custom_tools)
        self._namespaced = namespaced_tools or {}
        self._custom_index: int | None = None  # the open custom call whose arguments are buffered
        self._custom_args: list[str] = []
        self._done = False
        # usage the upstream did not report (``StreamContext.estimate_usage``), estimated here so
        # ``usage`` (inspection) sees it as well as the client
        self._estimator = UsageEstimator(ctx.estimated_input_tokens) if ctx.estimate_usage else None
        self.usage: Usage | None = None
        self.stop_reason: str | None = None
        self.error: CanonicalError | None = None

    @property
    def done(self) -> bool:
        """True once a terminal event (clean end or error) was written."""
        return self._done

    def feed(self, chunk: bytes) -> bytes:
        """Translate one network chunk of the upstream body."""
        if self._done:
            return b""
        try:
            events: list[Event] = []
            decoder = self._decoder
            for sse_event in self._sse.feed(chunk):
                events += decoder.feed(sse_event)
            return self._emit(events) if events else b""
        except Exception as exc:
            return self._fail(f"wireshift could not translate the upstream stream: {exc!r}")

    def close(self) -> bytes:
        """End of the upstream body: flush, and make sure the client stream has a terminal event."""
        if self._done:
            return b""
        try:
            events: list[Event] = []
            for sse_event in self._sse.close():
                events += self._decoder.feed(sse_event)
            events += self._decoder.close()
            out = self._emit(events)
        except Exception as exc:
            return self._fail(f"wireshift could not translate the upstream stream: {exc!r}")
        if not self._done:
            out += self._fail("upstream stream ended before completion")
        return out

    def abort(self, message: str) -> bytes:
        """The upstream failed at the transport level: the client format's error frame."""
        return b"" if self._done else self._fail(message)

    def _restore(self, events: list[Event]) -> list[Event]:
        """Client-side tool names and namespaces, and custom calls whose ``{"input": raw}``
        arguments are buffered until the block closes and then given as the raw input."""
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, BlockStart) and isinstance(ev.block, ToolCall):
                if _restore_call(ev.block, self._tool_names, self._custom_tools, self._namespaced):
                    self._custom_index, self._custom_args = ev.index, []
            elif self._custom_index is not None and getattr(ev, "index", None) == self._custom_index:
                if isinstance(ev, Delta):
                    self._custom_args.append(ev.value)
                    continue
                if isinstance(ev, BlockStop):
                    out.append(Delta(ev.index, "arguments", custom_input("".join(self._custom_args))))
                    self._custom_index = None
            out.append(ev)
        return out

    def _emit(self, events: list[Event]) -> bytes:
        if self._estimator is not None:
            events = self._estimator.observe(events)
        if self._tool_names or self._custom_tools or self._namespaced:
            events = self._restore(events)
        for ev in events:
            if isinstance(ev, UsageEvent):
                self.usage = ev.usage
            elif isinstance(ev, Finish):
                self.stop_reason = ev.stop_reason
            elif isinstance(ev, End):
                self._done = True
            elif isinstance(ev, ErrorEvent):
                self.error = ev.error
                self._done = True
        result: bytes = self._encoder.encode(events)
        return result

    def _fail(self, message: str) -> bytes:
        self._done = True
        self.error = CanonicalError.of(502, message)
        try:
            result: bytes = self._encoder.encode([ErrorEvent(self.error)])
            return result
        except Exception:
            # the encoder's own state is what failed: a fresh encoder still gives the client a
            # well-formed error frame instead of a silently dropped ending
            return error_frame(self._client_format, self.error, self._ctx)


def error_frame(client_format: str, error: CanonicalError, ctx: StreamContext) -> bytes:
    """The client format's in-stream error event(s) on their own, from a fresh encoder: what a
    stream passed through unchanged gets appended when its upstream dies mid-way; ``b""`` if
    even that fails."""
    try:
        frame: bytes = get_format(client_format).StreamEncoder(ctx).encode([ErrorEvent(error)])
        return frame
    except Exception:
        return b""


class UpstreamStreamFailed(Exception):
    """A whole upstream stream being folded into one response ended with an error event;
    ``error`` is what the client should see."""

    def __init__(self, error: CanonicalError) -> None:
        super().__init__(error.message)
        self.error = error


def _fold_stream(upstream_format: str, body: bytes) -> CanonicalResponse:
    """A whole upstream SSE body as one response (stream -> non-stream transport conversion)."""
    sse, decoder = SSEDecoder(), get_format(upstream_format).StreamDecoder()
    events: list[Event] = []
    for sse_event in sse.feed(body) + sse.close():
        events += decoder.feed(sse_event)
    events += decoder.close()
    folded = ResponseAccumulator()
    folded.feed(events)
    if folded.error is not None:
        raise UpstreamStreamFailed(folded.error)
    return folded.response


def _decode_whole(
    upstream_format: str,
    body: bytes,
    tool_names: dict[str, str] | None,
    custom_tools: Collection[str],
    namespaced_tools: dict[str, list[str]] | None,
    upstream_stream: bool = False,
) -> CanonicalResponse:
    resp: CanonicalResponse = (
        _fold_stream(upstream_format, body)
        if upstream_stream
        else get_format(upstream_format).decode_response(orjson.loads(body))
    )
    if tool_names or custom_tools or namespaced_tools:
        _restore_calls(resp.content, tool_names or {}, frozenset(custom_tools), namespaced_tools or {})
    return resp


def translate_response(
    upstream_format: str,
    client_format: str,
    body: bytes,
    ctx: StreamContext,
    tool_names: dict[str, str] | None = None,
    custom_tools: Collection[str] = (),
    *,
    namespaced_tools: dict[str, list[str]] | None = None,
    upstream_stream: bool = False,
) -> tuple[bytes, CanonicalResponse]:
    """Re-encode a whole response body as the client's non-streaming response; with
    ``upstream_stream`` the body is an SSE stream, folded into one response. Raises
    ``ValueError`` (incl. JSON errors) or ``TranslationError`` for bodies it cannot read, and
    ``UpstreamStreamFailed`` for a folded stream that ended in an error."""
    resp = _decode_whole(upstream_format, body, tool_names, custom_tools, namespaced_tools, upstream_stream)
    return orjson.dumps(get_format(client_format).encode_response(resp, ctx)), resp


def synthesize_stream(
    upstream_format: str,
    client_format: str,
    body: bytes,
    ctx: StreamContext,
    tool_names: dict[str, str] | None = None,
    custom_tools: Collection[str] = (),
    *,
    namespaced_tools: dict[str, list[str]] | None = None,
) -> tuple[bytes, CanonicalResponse]:
    """A whole upstream body replayed as the client's SSE stream (delivered in one piece)."""
    resp = _decode_whole(upstream_format, body, tool_names, custom_tools, namespaced_tools)
    if resp.usage is None and ctx.estimate_usage:
        resp.usage = estimate_usage(resp.content, ctx.estimated_input_tokens)
    encoder = get_format(client_format).StreamEncoder(ctx)
    return encoder.encode(response_to_events(resp)), resp


def error_body(client_format: str, err: CanonicalError) -> tuple[int, bytes]:
    """The client format's status and JSON error body for ``err``."""
    result: tuple[int, bytes] = get_format(client_format).encode_error(err)
    return result


def translate_error(
    upstream_format: str, client_format: str, status: int, body: bytes, retry_after: str | None = None
) -> tuple[int, bytes, CanonicalError]:
    """An upstream HTTP error re-enveloped for the client, keeping the status (wire-formats.md
    §6.1) and ``retry_after``."""
    err: CanonicalError = get_format(upstream_format).decode_error(status, body)
    if retry_after and not err.retry_after:
        err.retry_after = retry_after
    out_status, out_body = error_body(client_format, err)
    return out_status, out_body, err
