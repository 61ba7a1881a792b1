"""Backend credentials: an ordered key pool and secret-free fingerprints.

This is the seam for issue #4 (401 invalidation, 429 cooldowns, status endpoint): today the
first key wins. Keys never appear in logs, flow metadata or errors; ``fingerprint`` does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def fingerprint(key: str) -> str:
    """Short, non-reversible id of a key: ``"k:" + 8 hex of sha256``."""
    return "k:" + hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(slots=True)
class Credential:
    """One key chosen for one attempt. ``repr`` hides the secret."""

    key: str

    @property
    def fingerprint(self) -> str:
        """See ``fingerprint``."""
        return fingerprint(self.key)

    def __repr__(self) -> str:
        return f"Credential({self.fingerprint})"


class KeyPool:
    """Ordered keys of one backend (config ``api_keys`` first, then env). First usable wins."""

    __slots__ = ("_keys",)

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyPool({[fingerprint(k) for k in self._keys]})"

    def acquire(self) -> Credential | None:
        """The key to use now, or ``None`` when the pool is empty."""
        return Credential(self._keys[0]) if self._keys else None
