"""`respond harden` on a user with a small and a big CloudTrail history, 10k vs 100k
events, in a fake account that throttles LookupEvents at 2 requests/s per region.

    python benchmarks/harden.py [--small 10000] [--big 100000] [--leaked-share 0.1] [--quick]

The account is built in-process (moto, the drill's CloudTrail fake): alice holds two
keys, the leaked one and her application's; one event in ten of her history is the
leaked key's, the rest the application key's, spread over the 88 days before the
compromise time, in us-east-1 (harden's default region here). LookupEvents answers from a
token bucket per region, 2 per second with a burst of 2, as AWS does, and throttles
anything faster. Time is virtual (ParallelClock): the rate limiters' waits advance it at
once, each thread its own, so nothing sleeps and regions read in parallel overlap as
they would against AWS.

Two measurements per size:

1. `respond harden alice` on its own (run.harden.standalone): every page.
2. `respond compromised` on the leaked key (the compromised-key playbook, in-process):
   its harden step takes the key's events from the evidence and stops the lookup by
   user name at 500 events; how much harden adds to the incident.

Each reports real seconds (this machine's work: moto, parsing, the proposal), virtual
seconds (what LookupEvents' quota makes the reads wait) and their sum (a bound: against
AWS each page's latency overlaps the wait for the next token), LookupEvents calls and how
many were throttled (counted by botocore event hooks, not by the fake). The goal (issue
32): no throttled call, and harden adding no more than a few seconds to an incident at
100,000 events. Reading every page is bound by the quota: 100,000 events in one region
are 2,000 pages, 1,000 s at 2 per second, whatever the client does.

Results: benchmarks/results/harden.json. `--quick` uses 1,000 and 5,000 events (CI: it
runs and writes valid JSON; the figures are not checked).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from responder import playbook
from responder.aws import RetryPolicy
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake, FakeError
from responder.journal.sqlite import SqliteJournal
from responder.logging import configure
from responder.run import harden as run_harden
from responder.run import service

RESULTS = Path(__file__).resolve().parent / "results"
REGION = "us-east-1"
ACTIONS = (("GetObject", "s3.amazonaws.com", {"bucketName": "reports", "key": "r.csv"}),
           ("PutObject", "s3.amazonaws.com", {"bucketName": "reports", "key": "r.out"}),
           ("Query", "dynamodb.amazonaws.com", {"tableName": "orders"}),
           ("DescribeInstances", "ec2.amazonaws.com", {}))


class ParallelClock:
    """Virtual monotonic()/sleep() for threads that run in parallel.

    responder.aws.ratelimit.VirtualClock is one timeline: two regions' threads waiting
    half a second each advance it by a whole second, and a request can reach the fake
    later, in virtual time, than its token was taken, which a throttling fake then counts
    against the pacing it is meant to check. Here each thread has its own time, advanced
    by its own sleeps; a thread starts at the latest time any thread reached, and the
    thread that made the clock (which only waits for the others) always reads that
    latest time."""

    def __init__(self) -> None:
        self.latest = 1000.0
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._lock = threading.Lock()

    def _now(self) -> float:
        if threading.get_ident() == self._owner:
            return self.latest
        now: float | None = getattr(self._local, "now", None)
        if now is None:
            now = self._local.now = self.latest
        return now

    def monotonic(self) -> float:
        with self._lock:
            return self._now()

    def sleep(self, seconds: float) -> None:
        # At least a nanosecond: a wait below the clock's float resolution would not move
        # it, and a token bucket would wait for it again forever.
        with self._lock:
            now = self._now() + max(1e-9, seconds)
            if threading.get_ident() != self._owner:
                self._local.now = now
            self.latest = max(self.latest, now)


@dataclass
class ThrottlingTrail(CloudTrailFake):
    """The drill's CloudTrail fake behind a token bucket per region, on `clock`: `rate`
    LookupEvents per second, bursts of `burst`; anything faster is a ThrottlingException,
    as CloudTrail answers it."""

    clock: ParallelClock = field(default_factory=ParallelClock)
    rate: float = 2.0
    burst: float = 2.0
    throttled: collections.Counter[str] = field(
        default_factory=collections.Counter, init=False, compare=False)
    _buckets: dict[str, tuple[float, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _gate: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False)

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._gate:
            now = self.clock.monotonic()
            tokens, last = self._buckets.get(region, (self.burst, now))
            now = max(now, last)
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1 - 1e-9:
                self._buckets[region] = (tokens, now)
                self.throttled[region] += 1
                raise FakeError("ThrottlingException", 400, "Rate exceeded")
            self._buckets[region] = (tokens - 1, now)
        return super().lookup(region, request)

    def clear_throttling(self) -> None:
        """Forget the requests made while building the world (not the product's)."""
        with self._gate:
            self._buckets.clear()
            self.throttled.clear()


@dataclass
class Lookups:
    """LookupEvents as botocore saw them (event hooks on every session the run makes):
    calls by lookup attribute, throttled answers, and each call's virtual time."""

    clock: ParallelClock
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    throttled: collections.Counter[str] = field(default_factory=collections.Counter)
    last_at: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _before(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        attrs = params.get("LookupAttributes") or [{}]
        kind = str(attrs[0].get("AttributeKey", "none"))
        context["lookup_attribute"] = kind
        with self._lock:
            self.calls[kind] += 1
            self.last_at[kind] = max(self.last_at.get(kind, 0.0), self.clock.monotonic())

    def _after(self, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") in {"ThrottlingException", "Throttling"}:
            with self._lock:
                self.throttled[str(context.get("lookup_attribute", "none"))] += 1

    def session_factory(self) -> Callable[[], boto3.Session]:
        def make() -> boto3.Session:
            session = boto3.Session(region_name=REGION)
            session.events.register("before-parameter-build.cloudtrail.LookupEvents",
                                    self._before)
            session.events.register("after-call.cloudtrail.LookupEvents", self._after)
            return session

        return make


def record_history(trail: CloudTrailFake, *, leaked: str, other: str, events: int,
                   newest: datetime, share: float = 0.1, days: float = 88.0,
                   user: str = "alice") -> None:
    """`events` of the user's own calls in us-east-1, evenly over `days` up to `newest`:
    `share` of them with the leaked key, the rest with the other key."""
    step = timedelta(days=days) / max(events, 1)
    for n in range(events):
        name, source, params = ACTIONS[n % len(ACTIONS)]
        trail.record(REGION, name, leaked if n % 100 < share * 100 else other,
                     event_time=newest - n * step, event_source=source, user_name=user,
                     source_ip="192.0.2.10", request_parameters=dict(params))


def _world(events: int, trail: ThrottlingTrail, *, newest: datetime,
           share: float = 0.1) -> tuple[str, str]:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="alice")
    leaked = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    other = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    record_history(trail, leaked=leaked, other=other, events=events, newest=newest,
                   share=share)
    for attribute, value in (("Username", "alice"), ("AccessKeyId", leaked)):  # index now
        trail.lookup(REGION, {"LookupAttributes": [
            {"AttributeKey": attribute, "AttributeValue": value}], "MaxResults": 1})
    trail.clear_throttling()
    return leaked, other


def _context(home: Path, clock: ParallelClock, lookups: Lookups) -> RunContext:
    return RunContext(session_factory=lookups.session_factory(), home=home,
                      retry=RetryPolicy(max_attempts=6, initial_seconds=0.0, max_seconds=0.0),
                      monotonic=clock.monotonic, sleep=clock.sleep)


def standalone(events: int) -> dict[str, Any]:
    """`respond harden alice`: every page of the user's history."""
    clock = ParallelClock()
    trail = ThrottlingTrail(clock=clock)
    lookups = Lookups(clock)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as home, mock_aws(), trail.installed():
        _world(events, trail, newest=now - timedelta(hours=25))
        started, virtual = time.perf_counter(), clock.latest
        done = run_harden.standalone(_context(Path(home), clock, lookups), "alice", {})
        real = time.perf_counter() - started
        virtual = clock.latest - virtual
    hard = done.document.hardening
    window = hard.window if hard is not None else None
    return {"events": events, "real_s": round(real, 2), "virtual_s": round(virtual, 1),
            "seconds": round(real + virtual, 1),
            "lookups": dict(lookups.calls), "throttled": sum(lookups.throttled.values()),
            "throttled_by_fake": sum(trail.throttled.values()),
            "events_read": window.events_read if window else None,
            "read_from": window.read_from if window else None,
            "read_to": window.read_to if window else None,
            "truncated": hard.truncated if hard else None,
            "actions": len(hard.used_actions) if hard else None}


def in_incident(events: int, share: float = 0.1) -> dict[str, Any]:
    """`respond compromised` on the leaked key: what its harden step adds. `share` of
    the history is the leaked key's: what collect-evidence reads and harden parses."""
    clock = ParallelClock()
    trail = ThrottlingTrail(clock=clock)
    lookups = Lookups(clock)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as home, mock_aws(), trail.installed():
        leaked, _ = _world(events, trail, newest=now - timedelta(hours=25), share=share)
        journal = SqliteJournal(Path(home) / "journal.db")
        started, virtual = time.perf_counter(), clock.latest
        record = service.respond(_context(Path(home), clock, lookups), journal,
                                 playbook.load("compromised-key"), leaked)
        real = time.perf_counter() - started
        virtual = clock.latest - virtual
        steps = {s.name: s for s in journal.steps(record.id)}
        journal.close()
    harden = steps["harden"]
    if harden.started_at is None or harden.ended_at is None:
        raise RuntimeError(f"harden did not run: {harden}")
    harden_real = (harden.ended_at - harden.started_at).total_seconds()
    # The steps between collect-evidence and harden wait for nothing: harden's virtual
    # time is from the evidence's last lookup to its own last.
    harden_virtual = max(0.0, lookups.last_at.get("Username", 0.0)
                         - lookups.last_at.get("AccessKeyId", 0.0))
    window = harden.detail.get("window") or {}
    return {"events": events, "leaked_share": share, "status": record.status,
            "incident_real_s": round(real, 2), "incident_virtual_s": round(virtual, 1),
            "incident_seconds": round(real + virtual, 1),
            "harden_real_s": round(harden_real, 2), "harden_virtual_s": round(harden_virtual, 1),
            "harden_seconds": round(harden_real + harden_virtual, 1),
            "harden_status": harden.status,
            "lookups": dict(lookups.calls), "throttled": sum(lookups.throttled.values()),
            "throttled_by_fake": sum(trail.throttled.values()),
            "events_read": window.get("events_read"),
            "events_estimated": window.get("events_estimated"),
            "evidence_events": window.get("evidence_events"),
            "read_from": window.get("read_from"), "read_to": window.get("read_to")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 events")
    parser.add_argument("--leaked-share", type=float, default=0.1,
                        help="the share of the history made with the leaked key (default 0.1)"
                        "; 1.0 is the worst case for harden inside an incident: it parses "
                        "every event from the evidence")
    args = parser.parse_args()
    configure(verbose=False)
    os.environ.update(AWS_ACCESS_KEY_ID="AKIABENCHRESPONDER01", AWS_DEFAULT_REGION=REGION,
                      AWS_SECRET_ACCESS_KEY="x")  # noqa: S106 - in-process moto only
    os.environ.pop("AWS_ENDPOINT_URL", None)
    small, big = (1_000, 5_000) if args.quick else (args.small, args.big)
    alone = {"small": standalone(small), "big": standalone(big)}
    incident = {"small": in_incident(small, args.leaked_share),
                "big": in_incident(big, args.leaked_share)}
    result = {
        "quick": args.quick, "rate_per_region": 2.0,
        "standalone": {**alone, "seconds_ratio": round(
            alone["big"]["seconds"] / max(alone["small"]["seconds"], 1e-9), 2)},
        "in_incident": {**incident, "harden_seconds_ratio": round(
            incident["big"]["harden_seconds"] / max(incident["small"]["harden_seconds"],
                                                    1e-9), 2)},
        "throttled": sum(r["throttled"] for r in (*alone.values(), *incident.values())),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "harden.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
