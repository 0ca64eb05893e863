"""Reads fanned out over a thread pool (one worker per region, per lookup), and stopped
when the caller is interrupted.

A Ctrl-C or SIGTERM reaches the main thread only; the workers would page on while the
process waits to exit. So on any exception in the caller, `abandon` is called (the
workers check what it sets after each request in flight) and the pool is left without
waiting for them. One place for it: the evidence, harden's history and the audit's role
check all read CloudTrail region by region this way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_abandoning(one: Callable[[T], R], items: Sequence[T], *, workers: int,
                   abandon: Callable[[], None],
                   meanwhile: Callable[[], None] | None = None) -> list[R]:
    """`one` over `items` in a pool of at most `workers`, results in `items`' order;
    `meanwhile` runs in the calling thread while they work."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))))
    try:
        futures = [pool.submit(one, item) for item in items]
        if meanwhile is not None:
            meanwhile()
        done = [f.result() for f in futures]
    except BaseException:
        abandon()  # each worker stops after the request in flight
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return done
