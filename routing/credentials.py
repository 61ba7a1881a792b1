"""Backend credentials: an ordered key pool with 401/429 handling and secret-free fingerprints.

Pool semantics follow reference-projects.md §5.3 (Go-LIP's credential pool): the first usable
key in order wins (priority failover, not round robin); a 401 or 403 from the upstream makes a
key unusable until restart; a 429 cools it down for its ``Retry-After`` (delta-seconds or an
HTTP date) or ``DEFAULT_COOLDOWN`` seconds, and a longer cooldown is never shortened. Keys never
appear in logs, flow metadata, errors or the status snapshot; ``fingerprint`` does.

``routing.executor`` retries the same request with the next key before any output reached the
client (``acquire(exclude=...)``); a rejected key is also skipped by every later request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: Cooldown after a 429 without a usable ``Retry-After``, in seconds.
DEFAULT_COOLDOWN = 60.0


def fingerprint(key: str) -> str:
    """Short, non-reversible id of a key: ``"k:" + 8 hex of sha256``."""
    return "k:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date, RFC 9110
    §10.2.3); ``None`` when absent, unparsable or not in the future."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return seconds if seconds > 0 else None


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


@dataclass(slots=True)
class _KeyState:
    key: str
    fingerprint: str
    invalid: bool = False
    cooldown_until: float = 0.0
    requests: int = 0
    errors: int = 0


class KeyPool:
    """Ordered keys of one backend (config ``api_keys`` first, then env).

    ``acquire()`` returns the first usable key and counts a request on it; ``report(fp, status,
    retry_after)`` records the upstream's answer to a request made with that key; ``snapshot()``
    gives the secret-free state for the status endpoint. ``clock`` is injectable for tests
    (seconds since the epoch).
    """

    __slots__ = ("_clock", "_states")

    def __init__(self, keys: list[str], clock: Callable[[], float] = time.time) -> None:
        self._states = [_KeyState(k, fingerprint(k)) for k in keys]
        self._clock = clock

    def __len__(self) -> int:
        return len(self._states)

    def __repr__(self) -> str:
        return f"KeyPool({[s.fingerprint for s in self._states]})"

    def acquire(self, exclude: Collection[str] = ()) -> Credential | None:
        """The key to use now, or ``None`` when the pool is empty or every key is unusable;
        ``exclude`` holds fingerprints already tried for this request."""
        now = self._clock()
        for state in self._states:
            if not state.invalid and state.cooldown_until <= now and state.fingerprint not in exclude:
                state.requests += 1
                return Credential(state.key)
        return None

    def unavailable(self) -> tuple[int, float | None]:
        """Why ``acquire`` found nothing: ``(401, None)`` when every key was rejected, else
        ``(429, seconds until the first cooldown ends)``."""
        now = self._clock()
        waits = [s.cooldown_until - now for s in self._states if not s.invalid]
        return (429, max(min(waits), 0.0)) if waits else (401, None)

    def report(self, key_fingerprint: str, status: int, retry_after: str | None = None) -> None:
        """Record the upstream status of a request made with the key ``key_fingerprint``."""
        state = next((s for s in self._states if s.fingerprint == key_fingerprint), None)
        if state is None or status < 400:
            return
        state.errors += 1
        if status in (401, 403):
            state.invalid = True
        elif status == 429:
            now = self._clock()
            wait = parse_retry_after(retry_after, now) or DEFAULT_COOLDOWN
            state.cooldown_until = max(state.cooldown_until, now + wait)

    def snapshot(self) -> list[dict[str, object]]:
        """Per key: ``fingerprint``, ``state`` (usable / cooling_down / invalid),
        ``cooldown_until`` (epoch seconds or ``None``), ``requests`` and ``errors``."""
        now = self._clock()
        out: list[dict[str, object]] = []
        for s in self._states:
            cooling = s.cooldown_until > now
            state = "invalid" if s.invalid else "cooling_down" if cooling else "usable"
            out.append({
                "fingerprint": s.fingerprint,
                "state": state,
                "cooldown_until": round(s.cooldown_until, 3) if cooling else None,
                "requests": s.requests,
                "errors": s.errors,
            })  # fmt: skip
        return out
