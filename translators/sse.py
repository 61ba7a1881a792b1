"""Incremental Server-Sent Events codec.

Implements the event-stream parsing rules of the WHATWG HTML spec ("Server-sent events",
§9.2.6 *Interpreting an event stream*) as far as LLM APIs use them, and wire-formats.md §4.5:
events may be split anywhere across network chunks (including inside a CRLF pair or a UTF-8
sequence), lines end in LF, CRLF or CR, ``:`` lines are comments (keep-alives), a field
without a colon has an empty value, one leading space after the colon is removed, several
``data:`` lines join with ``\\n``, and blocks without data are skipped.

Bytes in, bytes out: ``SSEEvent.data`` stays ``bytes`` so ``orjson.loads`` can take it
directly (hot path: no regex, slicing only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: ``event`` is the ``event:`` field (``None`` when absent), ``data`` the
    joined ``data:`` lines as raw UTF-8 bytes."""

    event: str | None
    data: bytes


class SSEDecoder:
    """Feeds network chunks, returns complete events.

    ``feed(chunk) -> list[SSEEvent]`` for each chunk; ``close() -> list[SSEEvent]`` at end of
    stream dispatches a last event that lacked its terminating blank line. ``comments`` counts
    comment lines seen (keep-alives), for callers that want to forward them.
    """

    __slots__ = ("_buf", "_cr_pending", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._cr_pending = False
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add a chunk; return the events it completed (possibly none)."""
        if not chunk:
            return []
        if self._cr_pending:
            chunk = b"\r" + chunk
            self._cr_pending = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                # may be the first half of a CRLF split across chunks: decide on the next feed
                chunk = chunk[:-1]
                self._cr_pending = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return []
        self._buf = buf[end + 2 :]
        return self._parse_blocks(buf[:end])

    def close(self) -> list[SSEEvent]:
        """End of stream: dispatch a trailing event that was not followed by a blank line."""
        buf = self._buf
        self._buf = b""
        self._cr_pending = False
        if not buf.strip():
            return []
        return self._parse_blocks(buf)

    def _parse_blocks(self, text: bytes) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        for block in text.split(b"\n\n"):
            if not block:
                continue
            ev = self._parse_block(block)
            if ev is not None:
                out.append(ev)
        return out

    def _parse_block(self, block: bytes) -> SSEEvent | None:
        # fast path: the overwhelmingly common single "data: ..." line
        if block.startswith(b"data: ") and b"\n" not in block:
            return SSEEvent(None, block[6:])
        event: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if not line:
                continue
            if line[0] == 58:  # ":" comment
                self.comments += 1
                continue
            colon = line.find(b":")
            if colon < 0:
                name, value = line, b""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
            # "id" and "retry" carry nothing LLM clients use
        if not data:
            return None
        return SSEEvent(event, data[0] if len(data) == 1 else b"\n".join(data))


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame: ``event: <event>\\ndata: <data>\\n\\n`` (no ``event:`` line when ``None``).

    ``data`` must not contain newlines (orjson output never does).
    """
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


#: SSE comment frame used as a keep-alive (C and R clients ignore comments).
KEEPALIVE_COMMENT = b": keep-alive\n\n"
