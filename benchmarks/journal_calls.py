"""Journal round trips in the Lambda path: AWS calls before containment and per incident,
with the DynamoDB journal (the Lambda's) and with SQLite (the CLI's default).

    python benchmarks/journal_calls.py [--journal dynamodb|sqlite|both]
                                       [--dynamodb-latency-ms 10] [--output PATH]
                                       [--quick]

One GuardDuty finding about a fresh user's key goes through the Lambda handler against
in-process moto, with everything a deployment configures: an SNS topic, an evidence
bucket, EventBridge Scheduler for the sweeps, the function's ARN (so the account is
known and containment's pair is sent at once). A botocore `before-call` hook on the
handler's sessions counts every call in the order it leaves; "before containment" is
every call made before the first UpdateAccessKey (what the test counts);
"before request" adds the journal write that UpdateAccessKey's own request waits for
(its write-ahead record, sent from its before-send hook), and "round trips" counts
calls that overlapped in time once (sent from two threads at once; moto answers
in-process, so every DynamoDB call is held `--dynamodb-latency-ms` first, about an
in-region round trip; 0 measures nothing but the counts). The SQLite run makes the
same AWS calls and no DynamoDB one: its figure before containment is the floor.

Goals (issue 30): with DynamoDB, at most 4 journal round trips before UpdateAccessKey and
at most 60 DynamoDB calls per incident (tests/test_dynamodb_round_trips.py holds them).

Results: benchmarks/results/journal_calls.json (or `--output`), naming the `responder`
package measured. To measure another commit: `git archive COMMIT | tar -x -C DIR`,
`ln -s DIR/playbooks DIR/responder/playbooks` (an editable install maps
responder.playbooks to its own checkout), then run this script with PYTHONPATH=DIR. The
counts are the same on every run; the seconds are not (take several). `--quick` is
accepted for CI and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REGION = "us-east-1"
TABLE = "journal"
BUCKET = "evidence-bucket"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:responder"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/ResponderScheduler"
CONTAINMENT = "UpdateAccessKey"
LAMBDA_ENV = ("RESPONDER_TABLE", "RESPONDER_STATE", "RESPONDER_HOME",
              "RESPONDER_NOTIFY_TOPIC", "RESPONDER_EVIDENCE_BUCKET",
              "RESPONDER_SCHEDULER_ROLE_ARN", "RESPONDER_SCHEDULER_TARGET_ARN",
              "RESPONDER_RETRY_INITIAL_SECONDS", "RESPONDER_RETRY_MAX_SECONDS")


def guardduty_event(key: str, user: str, finding_id: str) -> dict[str, Any]:
    """The smallest GuardDuty EventBridge event the handler answers (high severity)."""
    return {
        "version": "0", "id": f"event-{finding_id}", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": "123456789012", "region": REGION,
        "time": "2024-05-14T09:20:31Z", "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": "123456789012", "region": REGION,
            "partition": "aws", "id": finding_id,
            "type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {
                "accessKeyId": key, "principalId": "AIDAEXAMPLE", "userType": "IAMUser",
                "userName": user}},
            "service": {"serviceName": "guardduty", "eventFirstSeen": "2024-05-14T09:02:11Z",
                        "eventLastSeen": "2024-05-14T09:14:52Z", "archived": False,
                        "count": 1},
            "severity": 8, "createdAt": "2024-05-14T09:15:07.552Z",
            "updatedAt": "2024-05-14T09:15:07.552Z", "title": "benchmark",
        },
    }


@dataclass
class Call:
    service: str
    operation: str
    thread: int
    started: float
    ended: float = float("inf")


class Calls:
    """Every AWS call the handler's sessions make, in the order they are made, with when
    each began and ended (before-call, after-call; a call made inside another, such as
    the journal write a request's before-send hook makes, is nested in it)."""

    def __init__(self, dynamodb_latency: float = 0.0) -> None:
        self.latency = dynamodb_latency
        self.began = time.perf_counter()
        self.made: list[Call] = []
        self._open: dict[int, list[Call]] = {}
        self._lock = threading.Lock()

    def before(self, model: Any, **_: Any) -> None:
        call = Call(model.service_model.service_name, model.name, threading.get_ident(),
                    time.perf_counter())
        with self._lock:
            self.made.append(call)
            self._open.setdefault(call.thread, []).append(call)
        if call.service == "dynamodb" and self.latency:
            time.sleep(self.latency)  # the network a DynamoDB request crosses

    def after(self, **_: Any) -> None:
        with self._lock:
            stack = self._open.get(threading.get_ident())
            if stack:
                stack.pop().ended = time.perf_counter()

    def summary(self) -> dict[str, Any]:
        operations = [c.operation for c in self.made]
        first = operations.index(CONTAINMENT) if CONTAINMENT in operations else len(operations)
        before = self.made[:first]
        dynamodb = [c.operation for c in self.made if c.service == "dynamodb"]
        # What must be answered before UpdateAccessKey's request leaves: the calls made
        # before it, and the journal write its own request waits for (nested in it).
        if first < len(self.made):
            containment = self.made[first]
            nested = [c for c in self.made[first + 1:] if c.thread == containment.thread
                      and containment.started < c.started < containment.ended]
        else:
            nested = []
        waited = [c for c in [*before, *nested] if c.service == "dynamodb"]
        leaves = max([c.ended for c in nested], default=self.made[first].started
                     if first < len(self.made) else float("nan"))
        return {
            "before_containment": len(before),
            "dynamodb_before_containment": sum(c.service == "dynamodb" for c in before),
            "dynamodb_before_request": len(waited),
            "dynamodb_round_trips_before_request": round_trips(waited),
            "seconds_before_request": round(leaves - self.began, 3),
            "before_containment_calls": [f"{c.service}:{c.operation}" for c in before],
            "before_request_dynamodb_calls": [c.operation for c in waited],
            "per_incident": len(self.made),
            "dynamodb_per_incident": len(dynamodb),
            "dynamodb_by_operation": dict(sorted(Counter(dynamodb).items())),
            "other_by_operation": dict(sorted(Counter(
                f"{c.service}:{c.operation}" for c in self.made
                if c.service != "dynamodb").items())),
        }


def round_trips(calls: list[Call]) -> int:
    """Calls that overlap in time (sent from two threads at once) count as one trip."""
    trips, reach = 0, float("-inf")
    for call in sorted(calls, key=lambda c: c.started):
        if call.started > reach:
            trips += 1
        reach = max(reach, call.ended)
    return trips


@contextmanager
def lambda_env(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in LAMBDA_ENV}
    for name in LAMBDA_ENV:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def counted(factory: Callable[..., Any], calls: Calls) -> Callable[..., Any]:
    """aws.session_factory whose sessions carry the counting hook."""
    def make_factory(*args: Any, **kwargs: Any) -> Callable[[], Any]:
        make = factory(*args, **kwargs)
        hooked: set[int] = set()

        def session() -> Any:
            made = make()
            if id(made) not in hooked:
                hooked.add(id(made))
                made.events.register("before-call", calls.before)
                made.events.register("after-call", calls.after)
            return made
        return session
    return make_factory


def measure(journal: str, dynamodb_latency_ms: float) -> dict[str, Any]:
    import boto3  # noqa: PLC0415 - after the environment is set
    from moto import mock_aws  # noqa: PLC0415

    from responder import lambda_handler  # noqa: PLC0415
    from responder.drill.cloudtrail import CloudTrailFake  # noqa: PLC0415
    from responder.journal.dynamodb import DynamoDbJournal  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="journal-calls-") as tmp, mock_aws(), \
            CloudTrailFake().installed():
        setup = boto3.Session(region_name=REGION)
        iam = setup.client("iam")
        iam.create_user(UserName="bob")
        key = iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
        topic = setup.client("sns").create_topic(Name="incidents")["TopicArn"]
        setup.client("s3").create_bucket(Bucket=BUCKET)
        env = {"RESPONDER_HOME": str(Path(tmp) / "home"), "RESPONDER_NOTIFY_TOPIC": topic,
               "RESPONDER_EVIDENCE_BUCKET": BUCKET, "RESPONDER_SCHEDULER_ROLE_ARN":
               SCHEDULER_ROLE, "RESPONDER_RETRY_INITIAL_SECONDS": "0",
               "RESPONDER_RETRY_MAX_SECONDS": "0"}
        if journal == "dynamodb":
            DynamoDbJournal.create_table(setup.client("dynamodb"), TABLE)
            env["RESPONDER_TABLE"] = TABLE
        else:
            env["RESPONDER_STATE"] = str(Path(tmp) / "responder.db")
        real = lambda_handler.session_factory
        calls = Calls(dynamodb_latency_ms / 1000)
        lambda_handler.session_factory = counted(real, calls)  # type: ignore[assignment]
        try:
            with lambda_env(env):
                doc = lambda_handler.handler(guardduty_event(key, "bob", f"gd-{journal}"),
                                             SimpleNamespace(invoked_function_arn=FUNCTION_ARN))
        finally:
            lambda_handler.session_factory = real  # type: ignore[assignment]
        if doc.get("status") != "completed":
            raise SystemExit(f"{journal}: the incident did not complete: {doc}")
    return {"journal": journal, "status": doc["status"],
            "dynamodb_latency_ms": dynamodb_latency_ms, **calls.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journal", choices=("dynamodb", "sqlite", "both"), default="both")
    parser.add_argument("--dynamodb-latency-ms", type=float, default=10.0,
                        help="hold each DynamoDB call this long (default 10)")
    parser.add_argument("--output", type=Path, default=RESULTS / "journal_calls.json")
    parser.add_argument("--quick", action="store_true", help="accepted for CI; counts are"
                        " the same whatever the run")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    import responder  # noqa: PLC0415
    from responder.logging import configure  # noqa: PLC0415

    configure(verbose=False)
    journals = ("dynamodb", "sqlite") if args.journal == "both" else (args.journal,)
    result: dict[str, Any] = {"responder": str(Path(responder.__file__).parent)}
    result.update({name: measure(name, args.dynamodb_latency_ms) for name in journals})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
