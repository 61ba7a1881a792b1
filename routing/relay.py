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
"""

from __future__ import annotations

import secrets
import socket

from aiohttp import web

from routing.executor import UpstreamStream

#: Response headers the relay never copies (aiohttp frames the body itself).
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"})


class Relay:
    """The loopback server. ``await start()`` once (in mitmproxy's event loop), ``hold(status,
    headers, stream) -> url`` per committed stream, ``discard(url)`` for one never fetched,
    ``await close()`` at shutdown."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, list[tuple[str, str]], UpstreamStream]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on a free 127.0.0.1 port (idempotent)."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_route("*", "/{token}", self._serve)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def close(self) -> None:
        """Stop serving and release every stream still held."""
        for _, _, stream in self._held.values():
            stream.close()
        self._held.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        held = self._held.pop(request.match_info["token"], None)
        if held is None:
            return web.Response(status=404, text="wireshift relay: unknown or already used token")
        status, headers, stream = held
        resp = web.StreamResponse(status=status)
        for name, value in headers:
            if name.lower() not in _FRAMING:
                resp.headers.add(name, value)
        try:
            await resp.prepare(request)
            async for chunk in stream.chunks():
                await resp.write(chunk)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            stream.close()  # mitmproxy dropped the connection: the client went away
        return resp
