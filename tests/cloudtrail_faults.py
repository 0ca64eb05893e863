"""The CloudTrail fake with the failures the evidence step must survive, for tests only.

The drill's fake (responder.drill.cloudtrail) answers every request; here `lookup`, the
one door the moto handler comes through, first counts the request and may fail it:
seeded throttling, so a storm repeats run after run, and regions that are down.
"""

from __future__ import annotations

import collections
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from responder.drill.cloudtrail import CloudTrailFake, FakeError


@dataclass
class FaultyCloudTrail(CloudTrailFake):
    """CloudTrailFake plus injectable faults and `calls`, to assert how hard the product
    hit the API (including calls that were throttled or failed)."""

    throttle_rate: float = 0.0
    failing_regions: frozenset[str] = frozenset()
    seed: int = 0
    calls: collections.Counter[str] = field(
        default_factory=collections.Counter, init=False, compare=False)
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _faults_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.throttle_rate <= 1.0:
            raise ValueError(f"throttle_rate must be within 0..1, got {self.throttle_rate}")
        self.failing_regions = frozenset(self.failing_regions)
        self._rng = random.Random(self.seed)  # noqa: S311 - fault injection, not crypto

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Count the call in `calls[region]`; a failing region answers 503 and a throttled
        call 400, before the fake looks at the request."""
        with self._faults_lock:
            self.calls[region] += 1
            if region in self.failing_regions:
                raise FakeError("ServiceUnavailableException", 503,
                                f"CloudTrail is unavailable in {region}")
            if self.throttle_rate and self._rng.random() < self.throttle_rate:
                raise FakeError("ThrottlingException", 400, "Rate exceeded")
        return super().lookup(region, request)

    def clear(self) -> None:
        """Drop all events and counters, and reseed: the fake is as if newly built."""
        with self._faults_lock:
            super().clear()
            self.calls.clear()
            self._rng = random.Random(self.seed)  # noqa: S311 - fault injection, not crypto
