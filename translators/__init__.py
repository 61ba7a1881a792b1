"""Pure wire-format translators: canonical model, SSE codec, one module per wire format.

Each format module (``openai_chat``, ``openai_responses``, ``anthropic_messages``)
exports the same surface, so callers pick a module by format name (``get_format``):

- ``FORMAT``: the format's name;
- ``decode_request(body: dict) -> CanonicalRequest`` (raises ``TranslationError``);
- ``encode_request(req: CanonicalRequest, opts: EncodeOptions) -> dict``;
- ``decode_response(body: dict) -> CanonicalResponse``;
- ``encode_response(resp: CanonicalResponse, ctx: StreamContext) -> dict``;
- ``decode_error(status: int, body: bytes) -> CanonicalError``;
- ``encode_error(err: CanonicalError) -> tuple[int, bytes]`` (status for this format, JSON body);
- ``StreamDecoder()``: ``feed(ev: SSEEvent) -> list[Event]``, ``close() -> list[Event]``;
- ``StreamEncoder(ctx: StreamContext)``: ``encode(events: list[Event]) -> bytes``;
- ``sanitize_passthrough(body: dict) -> list[str]``: on the same-format fast path, remove what
  must not reach that format's upstream (e.g. wireshift's own thinking signatures); returns notes.

Nothing here performs I/O or imports mitmproxy.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FORMATS = ("openai_chat", "openai_responses", "anthropic_messages")


def get_format(name: str) -> ModuleType:
    """The translator module for a wire-format name; ``KeyError`` for an unknown one."""
    if name not in FORMATS:
        raise KeyError(name)
    return importlib.import_module(f"translators.{name}")
