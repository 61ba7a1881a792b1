"""Canonical objects <-> tagged JSON for golden fixtures: ``{"_type": "ToolCall", "id": …}``.

Fields equal to their default are omitted, so fixtures show only what matters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from translators import canonical


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def to_tagged(value: Any) -> Any:
    """Canonical object (or list/dict of them) -> JSON-able tagged data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"_type": type(value).__name__}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v != _default(f):
                out[f.name] = to_tagged(v)
        return out
    if isinstance(value, list):
        return [to_tagged(v) for v in value]
    if isinstance(value, dict):
        return {k: to_tagged(v) for k, v in value.items()}
    return value


def from_tagged(value: Any) -> Any:
    """Inverse of ``to_tagged``."""
    if isinstance(value, dict):
        if "_type" in value:
            cls = getattr(canonical, value["_type"])
            return cls(**{k: from_tagged(v) for k, v in value.items() if k != "_type"})
        return {k: from_tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_tagged(v) for v in value]
    return value
