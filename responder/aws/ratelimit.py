"""A token bucket, because LookupEvents allows 2 requests per second per region and a
throttled request still counts: going faster only buys ThrottlingExceptions."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts up to `capacity`."""

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = capacity
        self._last = monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until a token is available, then take it."""
        while True:
            with self._lock:
                now = self._monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


def empty_bucket(rate: float, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> TokenBucket:
    """A LookupEvents bucket (`rate` per second, a burst of `rate`), emptied before the
    first page: the region's quota may have been spent a moment ago (by the evidence in
    the same run, a harden, an audit), and AWS counts per region, not per step or
    process. The first page waits 1/rate s; no burst ever lands on a spent quota."""
    made = TokenBucket(rate, capacity=rate, monotonic=monotonic, sleep=sleep)
    for _ in range(int(rate)):
        made.acquire()  # a full bucket hands these out without waiting
    return made


class VirtualClock:
    """A monotonic()/sleep() pair whose sleep advances time at once: tests and benchmarks
    run rate limiters at full speed and can still check the spacing they kept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        """Advance time, by at least one step of the float: a wait smaller than the
        clock's precision at its magnitude would otherwise leave it where it was, and a
        rate limiter waiting on it would spin forever (seen under load in harden)."""
        with self._lock:
            later = self.now + seconds
            self.now = later if seconds <= 0 or later > self.now else \
                math.nextafter(self.now, math.inf)
            self.slept += seconds
