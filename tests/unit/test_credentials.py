"""Key pool semantics (reference-projects.md §5.3): first usable key in order, 401/403 invalid
until restart, 429 cools down for Retry-After or 60 s and never shortens a longer cooldown."""

from email.utils import formatdate

from routing.credentials import DEFAULT_COOLDOWN, KeyPool, fingerprint, parse_retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_first_usable_key_wins_and_401_invalidates_for_good():
    clock = Clock()
    pool = KeyPool(["a", "b", "c"], clock)
    assert pool.acquire().key == "a"
    pool.report(fingerprint("a"), 401)
    assert pool.acquire().key == "b"
    pool.report(fingerprint("b"), 403)
    clock.now += 10**6
    assert pool.acquire().key == "c"
    pool.report(fingerprint("c"), 401)
    assert pool.acquire() is None
    assert pool.unavailable() == (401, None)


def test_429_cooldown_from_retry_after_never_shortened():
    clock = Clock()
    pool = KeyPool(["a", "b"], clock)
    pool.report(fingerprint("a"), 429, "120")
    pool.report(fingerprint("a"), 429, "5")  # shorter: ignored
    assert pool.acquire().key == "b"
    pool.report(fingerprint("b"), 429, None)  # no header: the default
    assert pool.acquire() is None
    assert pool.unavailable() == (429, DEFAULT_COOLDOWN)
    clock.now += DEFAULT_COOLDOWN
    assert pool.acquire().key == "b"
    clock.now += 60
    assert pool.acquire().key == "a"


def test_retry_after_http_date_and_garbage():
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None
    assert parse_retry_after(None, now) is None


def test_snapshot_is_secret_free_and_counts():
    clock = Clock()
    pool = KeyPool(["sk-secret-one", "sk-secret-two"], clock)
    pool.acquire()
    pool.report(fingerprint("sk-secret-one"), 429, "30")
    pool.report(fingerprint("sk-secret-one"), 500)
    pool.acquire()
    snap = pool.snapshot()
    assert "sk-secret" not in str(snap)
    assert snap[0] == {
        "fingerprint": fingerprint("sk-secret-one"),
        "state": "cooling_down",
        "cooldown_until": clock.now + 30,
        "requests": 1,
        "errors": 2,
    }
    assert snap[1]["state"] == "usable" and snap[1]["requests"] == 1
    pool.report("k:unknown", 401)  # another pool's key: ignored
    assert [s["state"] for s in pool.snapshot()] == ["cooling_down", "usable"]
