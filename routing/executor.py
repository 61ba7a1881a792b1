"""Upstream execution: try route candidates and keys until one answers, before any output.

mitmproxy cannot re-send a flow once response headers arrived (mitmproxy-notes.md §8), so the
addon hands the upstream exchange to ``Executor.execute``, which makes the calls itself with
aiohttp and returns one ``Outcome``:

- For each candidate of the route (``plan.route_candidates``: ``a|b|c`` or a ``routing.routes``
  name) and, within it, each usable key of the backend's pool, ``plan_request`` plans one
  attempt and the request is sent.
- A failure before the first output byte moves on: a connect error, no body bytes within
  ``timeouts.first_byte``, status 401/403/408/429/5xx, a stream that closes before its first
  event, or a stream whose first event is such an error (OpenRouter-style "200 then error").
  The key pool hears every status (401/403 retire the key, 429 cools it down). Other statuses
  (400, 404, 422 …), also as a stream's first event, are the answer.
- Where it moves: a key's own failure (401/403/429) goes to the backend's next usable key, but
  after two 401/403 in one request the request itself is the likely cause, and the rest of the
  pool is spared. A server-side failure (5xx, 408) goes to the next candidate, or on the last
  candidate to its next key. Connect errors, timeouts and streams without any event go to the
  next candidate: another key would meet the same server.
- What counts as output is what the client would see: for a streaming answer the first SSE
  event, held in ``UpstreamStream.first`` and relayed with the rest of the stream; for a whole
  body, all of it. Nothing is retried after that: the relay ends a failed stream and the addon
  writes the client format's in-stream error.
- When everything is exhausted the outcome carries the last upstream error response (status,
  headers incl. ``retry-after``, body), or a local ``CanonicalError`` (502 connect, 504 timeout)
  when no upstream answered at all.

Attempts are recorded secret-free in ``plan.attempts``. The reference design is Go-LIP's open
loop with stream peeking and ``RecoverablePreOutputError`` (reference-projects.md §5.3).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from routing.backends import Registry
from routing.plan import ExecutionPlan, UpstreamRequest, plan_request, upstream_headers
from translators import get_format
from translators.canonical import CanonicalError, ErrorEvent
from translators.sse import SSEDecoder

#: Upstream statuses that move on to the next key, then the next candidate.
RETRY_STATUSES = frozenset({401, 403, 408, 429})
#: Statuses that say the key itself failed (its pool is told; the next key may succeed).
KEY_STATUSES = frozenset({401, 403, 429})
#: How many keys one request may see rejected with 401/403 before the request is presumed the cause.
MAX_AUTH_FAILURES = 2
#: Response headers not handed on: hop-by-hop and framing (aiohttp has already decoded the body).
DROP_RESPONSE_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding", "trailer", "upgrade"}
)
#: The most body bytes read while peeking for a stream's first event.
PEEK_LIMIT = 1 << 20


def is_retryable(status: int) -> bool:
    """True for statuses a pre-output retry may cure: 401/403/408/429 and every 5xx."""
    return status in RETRY_STATUSES or status >= 500


@dataclass(slots=True)
class Attempt:
    """One upstream try, secret-free: ``credential`` is a key fingerprint; ``status`` is the
    upstream's HTTP status (``None`` when none arrived), ``error`` why it did not count."""

    backend: str | None
    model: str | None
    url: str | None
    credential: str | None
    status: int | None = None
    error: str | None = None
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """For ``ExecutionPlan.attempts`` (tnetstring-serialisable)."""
        return {
            "backend": self.backend,
            "model": self.model,
            "url": self.url,
            "credential": self.credential,
            "status": self.status,
            "error": self.error,
            "ms": round(self.ms, 1),
        }


@dataclass(slots=True)
class UpstreamStream:
    """A committed upstream stream: ``first`` holds the bytes read while peeking (at least one
    whole SSE event); the rest is read from ``response``. ``error`` is set by whoever drains it
    (the relay) when the upstream fails mid-stream; ``idle`` is the silence allowed between
    chunks, in seconds."""

    response: aiohttp.ClientResponse
    first: bytes
    idle: float
    error: str | None = None
    closed: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """Async iterator over the body: ``first``, then each chunk as it arrives. A stall longer
        than ``idle`` or a broken connection sets ``error`` and ends the iteration (never raises
        for upstream failures)."""
        if self.first:
            yield self.first
        content = self.response.content
        try:
            while True:
                async with asyncio.timeout(self.idle):
                    chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except TimeoutError:
            self.error = f"upstream sent nothing for {self.idle:g}s (timeouts.idle)"
        except (aiohttp.ClientError, OSError) as exc:
            self.error = f"upstream connection failed mid-stream: {_describe(exc)}"
        finally:
            self.close()

    def close(self) -> None:
        """Release the upstream connection (idempotent)."""
        if not self.closed:
            self.closed = True
            self.response.close()


@dataclass(slots=True)
class Outcome:
    """What ``Executor.execute`` ends with. ``plan`` describes the candidate that answered (or
    the last one tried); ``upstream`` its request. Exactly one of: ``stream`` (a committed
    upstream SSE stream to relay, with ``status``/``headers``), ``status``/``headers``/``body``
    (a whole upstream response: success or the last error), or ``plan.error`` (to answer
    locally); none of them for a ``passthrough`` plan."""

    plan: ExecutionPlan
    upstream: UpstreamRequest | None = None
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: UpstreamStream | None = None

    @property
    def answered(self) -> bool:
        """True when an upstream response (whole or streamed) is to be handed to the client."""
        return self.status != 0


class _PreOutputFailure(Exception):
    """An attempt failed before any output; ``status`` 0 means no HTTP response."""

    def __init__(self, message: str, status: int = 0, local_status: int = 502) -> None:
        super().__init__(message)
        self.status = status
        self.local_status = local_status


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _response_headers(resp: aiohttp.ClientResponse) -> list[tuple[str, str]]:
    return [(k, v) for k, v in resp.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS]


def _raise_if_retryable(error: CanonicalError | None) -> None:
    """A stream that begins with ``error``: a retryable one is a pre-output failure."""
    if error is not None and is_retryable(status := error.status or 502):
        raise _PreOutputFailure(f"stream began with an error: {error.message}", status, status)


def _stream_failed_early(upstream_format: str, data: bytes) -> tuple[bool, CanonicalError | None]:
    """Peek at the buffered start of a stream: ``(has an event, the error it starts with)``."""
    decoder = get_format(upstream_format).StreamDecoder()
    for sse_event in SSEDecoder().feed(data):
        events = decoder.feed(sse_event)
        if events:
            first_error = next((e.error for e in events if isinstance(e, ErrorEvent)), None)
            return True, first_error
    return False, None


class Executor:
    """Runs upstream attempts for the addon. One per addon; ``close()`` at shutdown.

    ``verify``: an ``ssl.SSLContext`` for upstream TLS, or ``False`` to skip verification
    (mitmproxy's ``ssl_insecure``). The aiohttp session is created on first use, in the running
    event loop (mitmproxy's).
    """

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._verify, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        """Close the HTTP session and its pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def execute(
        self,
        registry: Registry,
        client_format: str,
        body: bytes,
        client_headers: Iterable[tuple[str, str]],
        *,
        passthrough_ok: bool = False,
        client: str | None = None,
    ) -> Outcome:
        """Plan and run the request over the route's candidates and keys (module docstring).

        ``body`` is the client's raw JSON, ``client_headers`` its headers as (name, value)
        pairs. Never raises for upstream failures or bad input; cancellation propagates.
        """
        headers = list(client_headers)
        plan, upstream = plan_request(registry, client_format, body, passthrough_ok=passthrough_ok, client=client)
        if plan.mode == "passthrough" or not plan.candidates:
            return Outcome(plan)  # untouched, or a request no candidate can help (bad JSON, no model)
        attempts: list[Attempt] = []
        last_http: Outcome | None = None  # the last upstream error response
        last_local = plan  # the last failure without one (cannot route, no key, connect error …)
        budget = registry.max_attempts
        for index, selector in enumerate(plan.candidates):
            last_candidate = index == len(plan.candidates) - 1
            tried: list[str] = []  # key fingerprints this candidate already used
            auth_failures = 0
            while budget > 0:
                if index or tried:
                    plan, upstream = plan_request(
                        registry, client_format, body, client=client, selector=selector, exclude_keys=tried
                    )
                if upstream is None:
                    if not tried:
                        last_local = plan  # this candidate could not be tried at all
                    break
                budget -= 1
                attempt = Attempt(plan.backend, plan.upstream_model, upstream.url, plan.credential)
                attempts.append(attempt)
                started = time.monotonic()
                try:
                    outcome = await self._attempt(registry, plan, upstream, headers, attempt)
                except _PreOutputFailure as failure:
                    attempt.ms = (time.monotonic() - started) * 1000
                    attempt.error = str(failure)
                    plan.error = CanonicalError.of(failure.local_status, f"backend {plan.backend!r}: {failure}")
                    last_local = plan
                    status = failure.local_status if failure.status else 0  # 0: no upstream status to weigh
                    if plan.credential and status in KEY_STATUSES:
                        # announced as the stream's first event, e.g. a rate limit
                        registry.backends[plan.backend or ""].keys.report(plan.credential, status)
                else:
                    attempt.ms = (time.monotonic() - started) * 1000
                    if outcome.status < 400 or not is_retryable(outcome.status):
                        return self._finish(outcome, attempts)
                    last_http, status = outcome, outcome.status
                if plan.credential is None or not status or status == 504:
                    break  # no other key, or a connect error or timeout another key would meet too
                if status in KEY_STATUSES:
                    auth_failures += status != 429
                    if auth_failures >= MAX_AUTH_FAILURES:
                        break  # the request, not the key, is the likely cause: spare the rest of the pool
                elif not last_candidate:
                    break  # a server-side failure: the next candidate first
                tried.append(plan.credential)
        if last_http is not None:
            return self._finish(last_http, attempts)
        last_local.mode = "local"
        if last_local.error is None:
            last_local.error = CanonicalError.of(502, f"no route candidate of {plan.client_model!r} could be tried")
        return self._finish(Outcome(last_local), attempts)

    @staticmethod
    def _finish(outcome: Outcome, attempts: list[Attempt]) -> Outcome:
        outcome.plan.attempts = [a.to_dict() for a in attempts]
        return outcome

    async def _attempt(
        self,
        registry: Registry,
        plan: ExecutionPlan,
        upstream: UpstreamRequest,
        client_headers: list[tuple[str, str]],
        attempt: Attempt,
    ) -> Outcome:
        """One upstream call. Returns the committed outcome (success, or an HTTP error whose
        body was read) or raises ``_PreOutputFailure``."""
        backend = registry.backends[plan.backend or ""]
        timeouts = backend.timeouts
        session = self._client()
        deadline = asyncio.get_running_loop().time() + timeouts.first_byte  # to the first body bytes
        try:
            async with asyncio.timeout_at(deadline):
                resp = await session.post(
                    upstream.url,
                    data=upstream.body,
                    headers=upstream_headers(client_headers, upstream),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect),
                    allow_redirects=False,
                    auto_decompress=True,
                )
        except aiohttp.ServerTimeoutError:  # also a TimeoutError: caught first
            raise _PreOutputFailure(
                f"connect timed out after {timeouts.connect:g}s (timeouts.connect)", 0, 504
            ) from None
        except TimeoutError:
            raise _PreOutputFailure(
                f"no response within {timeouts.first_byte:g}s (timeouts.first_byte)", 0, 504
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _PreOutputFailure(f"cannot connect to the upstream: {_describe(exc)}", 0, 502) from None
        attempt.status = resp.status
        if plan.credential:
            backend.keys.report(plan.credential, resp.status, resp.headers.get("retry-after"))
        outcome = Outcome(plan, upstream, resp.status, _response_headers(resp))
        is_sse = "text/event-stream" in resp.headers.get("content-type", "")
        try:
            if resp.status < 400 and is_sse and plan.client_stream:
                first = await self._peek(resp, plan.upstream_format or "", deadline, timeouts.first_byte)
                outcome.stream = UpstreamStream(resp, first, timeouts.idle)
                return outcome
            outcome.body = await self._read_all(resp, deadline, timeouts.idle)
        except BaseException:
            resp.close()
            raise
        resp.release()
        if resp.status < 400 and is_sse:  # a stream folded for a non-streaming client
            has_event, error = _stream_failed_early(plan.upstream_format or "", outcome.body)
            if not has_event:
                raise _PreOutputFailure("upstream stream ended before any event", resp.status)
            _raise_if_retryable(error)
        return outcome

    @staticmethod
    async def _peek(resp: aiohttp.ClientResponse, upstream_format: str, deadline: float, first_byte: float) -> bytes:
        """Read until the stream's first event (by ``deadline``, loop time); raise when it is a
        retryable error or the stream ends or fails first."""
        buffered = b""
        try:
            async with asyncio.timeout_at(deadline):
                while len(buffered) < PEEK_LIMIT:
                    chunk = await resp.content.readany()
                    if not chunk:
                        break
                    buffered += chunk
                    has_event, error = _stream_failed_early(upstream_format, buffered)
                    if has_event:
                        _raise_if_retryable(error)
                        return buffered  # a non-retryable error event is the answer, in the stream
        except TimeoutError:
            raise _PreOutputFailure(
                f"no stream event within {first_byte:g}s (timeouts.first_byte)", resp.status, 504
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _PreOutputFailure(f"stream failed before its first event: {_describe(exc)}", resp.status) from None
        if len(buffered) >= PEEK_LIMIT:
            return buffered  # no event in 1 MiB: let the translator report what it is
        raise _PreOutputFailure("upstream stream ended before any event", resp.status)

    @staticmethod
    async def _read_all(resp: aiohttp.ClientResponse, deadline: float, idle: float) -> bytes:
        """The whole body; ``deadline`` (loop time) bounds the wait for the first bytes, ``idle``
        each later silence. A failure is pre-output: the client has seen nothing yet."""
        parts: list[bytes] = []
        loop = asyncio.get_running_loop()
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    chunk = await resp.content.readany()
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
                deadline = loop.time() + idle
        except TimeoutError:
            raise _PreOutputFailure("upstream body stalled (timeouts.first_byte / idle)", resp.status, 504) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _PreOutputFailure(f"upstream body failed: {_describe(exc)}", resp.status) from None
