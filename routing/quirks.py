"""Per-backend request rewrites that no wire format rule covers (reference-projects.md §3).

``apply_request_quirks`` is applied to the upstream body after encoding, on both the translated
and the same-format path. ``forward_extra_fields`` runs on the translated path only (a
same-format body already carries every client field): it puts the client's ``extra_body``
vendor extensions (``CanonicalRequest.extensions``) back into the encoded body for the kinds
that want them. ``needs_usage_estimate`` tells the response side when the upstream cannot
report stream usage. Keep each a table of small functions or sets, one entry per kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from config.models import BackendKind
from routing.backends import CHAT, RESPONSES, BackendSpec


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


# --------------------------------------------------------------------------- extra body fields

#: OpenRouter's own request fields, passed through to it unchanged (reference-projects.md §3.2:
#: Go-LIP's list, plus ``transforms``, the ``usage`` accounting switch and the sampling
#: parameters of OpenRouter's "Parameters" reference that no other format maps).
OPENROUTER_FIELDS = frozenset({
    "provider", "models", "route", "plugins", "prediction", "debug", "service_tier", "session_id",
    "stop_server_tools_when", "trace", "include", "user", "response_format", "reasoning", "transforms", "usage",
    "top_k", "min_p", "top_a", "repetition_penalty", "seed", "frequency_penalty", "presence_penalty", "logit_bias",
})  # fmt: skip
#: Hosted NIM ``extra_body`` bounds (reference-projects.md §3.1, Go-LIP ``openrouterwire``).
NVIDIA_MAX_FIELDS = 32
NVIDIA_MAX_NAME_BYTES = 64
NVIDIA_MAX_VALUE_BYTES = 16 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: An extra field is not forwarded when the encoder already set one of these (same meaning,
#: another spelling): ``reasoning`` next to a mapped ``reasoning_effort``.
_SUPERSEDED_BY = {"reasoning": ("reasoning_effort",)}


def _openrouter_field(name: str, value: Any) -> str | None:
    return None if name in OPENROUTER_FIELDS else "not an OpenRouter field"


def _nvidia_field(name: str, value: Any) -> str | None:
    if len(name.encode()) > NVIDIA_MAX_NAME_BYTES or not _NAME.fullmatch(name):
        return "name not allowed"
    try:
        size = len(orjson.dumps(value))
    except TypeError:
        return "not JSON"
    return "value over 16 KiB" if size > NVIDIA_MAX_VALUE_BYTES else None


#: Per kind: the upstream wire formats that take extra fields, the per-field check (``None`` =
#: forward, else the reason to drop) and the maximum number of fields forwarded.
EXTRA_FIELDS: dict[BackendKind, tuple[frozenset[str], Callable[[str, Any], str | None], int | None]] = {
    BackendKind.OPENROUTER: (frozenset({CHAT, RESPONSES}), _openrouter_field, None),
    BackendKind.NVIDIA: (frozenset({CHAT, RESPONSES}), _nvidia_field, NVIDIA_MAX_FIELDS),
}


def forward_extra_fields(
    backend: BackendSpec, body: dict[str, Any], extra: dict[str, Any], wire_format: str
) -> list[str]:
    """Copy the client's vendor-extension fields ``extra`` (a decoded request's
    ``CanonicalRequest.extensions``: top-level fields the client format does not define) into
    the encoded upstream ``body`` (in place) when ``backend``'s kind wants them in
    ``wire_format``.

    OpenRouter (reference-projects.md §3.2) takes the fields of ``OPENROUTER_FIELDS``; NVIDIA
    NIM (§3.1, ``extra_body`` passthrough) any field, bounded: at most 32, names up to 64 bytes
    matching ``[A-Za-z_][A-Za-z0-9_]*``, values up to 16 KiB serialised. Other kinds take none:
    a field unknown to one format must not break another vendor. Everywhere ``null`` values are
    dropped and a field the encoder already set wins (also over another spelling of it:
    ``reasoning`` against ``reasoning_effort``). Returns notes (what was forwarded, what was
    dropped and why) for ``ExecutionPlan.notes``.
    """
    policy = EXTRA_FIELDS.get(backend.kind)
    if policy is None or not extra:
        return []
    formats, check, limit = policy
    if wire_format not in formats:
        return []
    sent: list[str] = []
    dropped: dict[str, list[str]] = {}  # reason -> names
    for name, value in extra.items():
        if value is None or name in body or any(k in body for k in _SUPERSEDED_BY.get(name, ())):
            continue
        reason = check(name, value)
        if reason is None and limit is not None and len(sent) >= limit:
            reason = f"over {limit} fields"
        if reason is not None:
            dropped.setdefault(reason, []).append(name)
            continue
        body[name] = value
        sent.append(name)
    notes = [f"forwarded extra fields {', '.join(sent)}"] if sent else []
    return notes + [f"dropped extra fields {_names(names)} ({reason})" for reason, names in dropped.items()]


def _names(names: list[str], shown: int = 8) -> str:
    """Names for a note: at most ``shown`` of them, each cut to 64 characters (client-chosen)."""
    text = ", ".join(repr(n[:64]) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


# --------------------------------------------------------------------------- usage


def needs_usage_estimate(backend: BackendSpec, wire_format: str) -> bool:
    """Whether a stream from ``backend`` in ``wire_format`` may end without usage, so the client
    side must estimate it (``StreamContext.estimate_usage``): a Chat upstream reports stream
    usage only when asked with ``stream_options.include_usage``, which hosted NIM rejects
    (``stream_usage`` false, reference-projects.md §3.1) and ``drop_params`` may remove. R and A
    streams always carry usage (wire-formats.md §2.8)."""
    return wire_format == CHAT and (not backend.stream_usage or "stream_options" in backend.drop_params)
