"""The token bucket that keeps LookupEvents at 2 requests/s per region."""

from __future__ import annotations

import itertools

import pytest

from responder.aws.ratelimit import TokenBucket, VirtualClock


def test_spacing_never_exceeds_the_rate() -> None:
    """After the first request, each one waits half a second at 2/s: 11 take 5 s."""
    clock = VirtualClock()
    bucket = TokenBucket(2.0, monotonic=clock.monotonic, sleep=clock.sleep)
    stamps = []
    for _ in range(11):
        bucket.acquire()
        stamps.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.5 - 1e-9
    assert stamps[-1] - stamps[0] == pytest.approx(5.0)


def test_idle_time_refills_only_up_to_capacity() -> None:
    """A long pause does not bank a burst beyond capacity."""
    clock = VirtualClock()
    bucket = TokenBucket(2.0, capacity=1, monotonic=clock.monotonic, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 60
    bucket.acquire()
    start = clock.now
    bucket.acquire()
    assert clock.now - start == pytest.approx(0.5)


def test_invalid_rate_is_rejected() -> None:
    """A zero rate would block forever; refuse it."""
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)


def test_the_virtual_clock_always_moves_forward() -> None:
    """A wait below the float's precision at the clock's magnitude still advances it, so
    a rate limiter waiting on it cannot spin forever."""
    clock = VirtualClock()
    clock.now = 1e9
    before = clock.now
    clock.sleep(1e-12)
    assert clock.now > before
    bucket = TokenBucket(2.0, capacity=2.0, monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(10):
        bucket.acquire()
    assert clock.now - 1e9 >= 4.0  # 8 tokens beyond the first 2, at 2 per second
