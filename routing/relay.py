"""Loopback relay: hands a committed upstream stream to mitmproxy as a real, streamed response.

mitmproxy never streams a response an addon sets itself (mitmproxy-notes.md §7), so after
``routing.executor`` has committed to an upstream stream, the addon re-targets the flow to
``http://127.0.0.1:<port>/<token>`` and this server answers it with the held status, headers
and body chunks as they arrive. mitmproxy then runs its usual ``responseheaders`` / stream
callable path on it (per-chunk re-encoding, inspection).

When the upstream fails mid-stream or stalls past ``timeouts.idle`` the relay still ends the
body cleanly (a complete chunked message) after setting ``UpstreamStream.error``, so the addon
can append the client format's in-stream error event instead of a truncated body
(mitmproxy-notes.md §11). Tokens are random and single-use; the server listens on 127.0.0.1.

The server is a minimal HTTP/1.1 responder on asyncio streams, on purpose: it sits on the
per-chunk hot path and only ever talks to mitmproxy, which sends ``GET``/``POST`` requests with
a ``Content-Length`` body (RFC 9112 §6.3); the response is always chunked (§7.1) and the
connection kept alive. The benchmark (``scripts/bench``) measures what it costs.
"""

from __future__ import annotations

import asyncio
import secrets
from http import HTTPStatus

from routing.executor import DROP_RESPONSE_HEADERS, UpstreamStream

#: Bytes buffered toward mitmproxy before the relay waits for it to read.
_HIGH_WATER = 1 << 16
_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 46\r\n\r\n"
    b"wireshift relay: unknown or already used token"
)


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """Status line and headers of a chunked HTTP/1.1 response."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in DROP_RESPONSE_HEADERS]  # it frames the body
    lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _content_length(head: bytes) -> int:
    """The request's ``Content-Length`` (0 when absent); ``ValueError`` when unusable."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            raise ValueError("chunked request bodies are not supported")
    if length < 0:
        raise ValueError("negative content-length")
    return length


class Relay:
    """The loopback server. ``await start()`` once (in mitmproxy's event loop), ``hold(status,
    headers, stream) -> url`` per committed stream, ``discard(url)`` for one never fetched,
    ``await close()`` at shutdown."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, list[tuple[str, str]], UpstreamStream]] = {}
        self._server: asyncio.Server | None = None
        self._starting = asyncio.Lock()
        self.port = 0

    async def start(self) -> None:
        """Listen on a free 127.0.0.1 port (idempotent, also for concurrent first callers)."""
        async with self._starting:
            if self._server is None:
                # a client's request head may be large (cookies, long tool headers): allow 1 MiB
                self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20)
                self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop serving and release every stream still held."""
        for _, _, stream in self._held.values():
            stream.close()
        self._held.clear()
        if self._server is not None:
            self._server.close()
            self._server = None

    def hold(self, status: int, headers: list[tuple[str, str]], stream: UpstreamStream) -> str:
        """Keep ``stream`` for one fetch; returns the URL to re-target the flow to."""
        token = secrets.token_urlsafe(18)
        self._held[token] = (status, headers, stream)
        return f"http://127.0.0.1:{self.port}/{token}"

    def discard(self, url: str) -> None:
        """Release a held stream whose flow will never fetch it (e.g. the client went away)."""
        held = self._held.pop(url.rsplit("/", 1)[-1], None)
        if held is not None:
            held[2].close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection from mitmproxy: requests in turn (keep-alive) until it closes."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                if length:
                    await reader.readexactly(length)  # the upstream body, kept in the flow for inspection
                target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
                held = self._held.pop(target.decode("latin-1").lstrip("/"), None)
                if held is None:
                    writer.write(_NOT_FOUND)
                    await writer.drain()
                    continue
                if not await self._relay(writer, *held):
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # mitmproxy closed the connection, or sent something this relay does not serve
        finally:
            writer.close()

    @staticmethod
    async def _relay(
        writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], stream: UpstreamStream
    ) -> bool:
        """Write one held response; False when mitmproxy went away before its end."""
        transport = writer.transport
        try:
            writer.write(_head(status, headers))
            async for chunk in stream.chunks():
                if transport.is_closing():
                    return False  # the client went away: stop reading the upstream
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if transport.get_write_buffer_size() > _HIGH_WATER:
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            stream.close()
