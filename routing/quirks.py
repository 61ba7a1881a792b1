"""Per-backend request rewrites that no wire format rule covers (reference-projects.md §3).

Applied to the upstream body after encoding, on both the translated and the same-format path.
Issue #4 extends this (OpenRouter headers and fields, usage estimation); keep it a table of
small functions, one per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from config.models import BackendKind
from routing.backends import CHAT, BackendSpec


def _nvidia(body: dict[str, Any], wire_format: str) -> None:
    """Hosted NIM rejects ``stream_options`` (``extra_forbidden``) and wants ``max_tokens``."""
    if wire_format != CHAT:
        return
    body.pop("stream_options", None)
    if "max_completion_tokens" in body:
        limit = body.pop("max_completion_tokens")
        body.setdefault("max_tokens", limit)


QUIRKS: dict[BackendKind, Callable[[dict[str, Any], str], None]] = {
    BackendKind.NVIDIA: _nvidia,
}


def apply_request_quirks(backend: BackendSpec, body: dict[str, Any], wire_format: str) -> list[str]:
    """Rewrite ``body`` (in place) for ``backend``'s known quirks in ``wire_format``, then remove
    the config's ``drop_params``. Returns notes of the fields dropped."""
    quirk = QUIRKS.get(backend.kind)
    if quirk is not None:
        quirk(body, wire_format)
    return [f"dropped {name} (drop_params)" for name in backend.drop_params if body.pop(name, None) is not None]
