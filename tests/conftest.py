"""Shared fixtures: an in-process moto account, and a moto server for black-box CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import faulty_respond
import pytest
import structlog
from cloudtrail_faults import FaultyCloudTrail
from moto import mock_aws
from moto.server import ThreadedMotoServer

from responder import playbook
from responder.aws import RetryPolicy
from responder.aws.ratelimit import VirtualClock
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.run import service

REGION = "us-east-1"
RESPONDER_KEY = "AKIARESPONDERTEST001"
# The installed console script, beside this interpreter (works without an activated venv).
RESPOND = Path(sys.executable).parent / "respond"
# `respond` with the RESPONDER_FAULT_* hooks, which the product itself never reads.
FAULTY_RESPOND = Path(faulty_respond.__file__).resolve()
FAST_RETRY = RetryPolicy(max_attempts=6, initial_seconds=0.0, max_seconds=0.0)


DROPPED_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_REGION",
               "RESPONDER_SLACK_WEBHOOK")
ISOLATED_ENV = {
    "AWS_ACCESS_KEY_ID": RESPONDER_KEY,
    "AWS_SECRET_ACCESS_KEY": "responder-test-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

# `pytest` runs the in-process tests; the e2e and slow ones run with
# `pytest -m 'e2e or slow'`, as CI does (docs/decisions.md 41). A test is e2e when it asks
# for the moto server (a ThreadedMotoServer: `moto_server`, so `cli`, `server_account`,
# `pager`..., and `cli` runs `respond` as a subprocess), or when its file is one of these.
# tests/test_markers.py fails when a test file starts a process and is none of them.
E2E_FILES = {
    "test_cli_contract.py": "runs `respond` as a subprocess (no server), one per command",
    "test_cli_trouble.py": "`respond` subprocesses interrupted by signals: timing-bound",
    "test_faults_cli.py": "two `respond` subprocesses at once (Popen), throttling storms",
    "test_replace_across_journals.py": "two `respond` subprocesses at once, one paused",
    "test_drill.py": "whole drills (8-14 s a scenario), in process and as `respond drill`",
    "test_story.py": "a whole drill of three scenarios, for its module fixture",
    "test_html_browser.py": "headless Chromium, a browser process per page opened",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in E2E_FILES or "moto_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may see the developer's AWS config, credentials or endpoint."""
    for name in DROPPED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in ISOLATED_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESPONDER_HOME", str(tmp_path / "home"))


@dataclass(frozen=True)
class Account:
    """A user `alice` with two keys (the first one leaked) and a bystander `bob`."""

    session: boto3.Session
    leaked_key: str
    other_key: str
    bob_key: str

    @property
    def iam(self) -> Any:
        return self.session.client("iam", region_name=REGION)


def make_account(session: boto3.Session) -> Account:
    iam = session.client("iam", region_name=REGION)
    iam.create_user(UserName="alice")
    iam.create_user(UserName="bob")
    leaked = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    other = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    bob = iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
    return Account(session, leaked, other, bob)


def iam_state(iam: Any) -> dict[str, Any]:
    """Users, their keys (id, status), inline and attached policies: compare before/after."""
    state: dict[str, Any] = {}
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        state[name] = {
            "keys": sorted(
                (k["AccessKeyId"], k["Status"])
                for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            ),
            "inline": sorted(iam.list_user_policies(UserName=name)["PolicyNames"]),
            "attached": sorted(
                p["PolicyArn"]
                for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
            ),
        }
    return state


@pytest.fixture
def account() -> Iterator[Account]:
    """An in-process moto account (mock_aws) with an empty CloudTrail event history."""
    with mock_aws(), CloudTrailFake().installed():
        yield make_account(boto3.Session(region_name=REGION))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.db")
    yield j
    j.close()


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """RunContext over in-process moto; pass `session_factory` to inject faults."""

    def build(**overrides: Any) -> RunContext:
        clock = VirtualClock()  # rate limiters wait in virtual time
        fields: dict[str, Any] = {
            "session_factory": lambda: boto3.Session(region_name=REGION),
            "home": tmp_path / "home",
            "retry": FAST_RETRY,
            "monotonic": clock.monotonic,
            "sleep": clock.sleep,
        }
        fields.update(overrides)
        return RunContext(**fields)

    return build


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def server_trail() -> Iterator[FaultyCloudTrail]:
    """The CloudTrail fake answering LookupEvents on the moto server (and in-process)."""
    fake = FaultyCloudTrail()
    with fake.installed():
        yield fake


@pytest.fixture
def server_account(moto_server: str, server_trail: FaultyCloudTrail) -> Account:
    """A fresh account on the moto server (the server is reset for each test)."""
    return fresh_server_account(moto_server)


def fresh_server_account(moto_server: str) -> Account:
    """Reset the moto server and create the standard account on it."""
    import urllib.request

    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")  # noqa: S310
    urllib.request.urlopen(reset).close()  # noqa: S310 - loopback moto server only
    session = boto3.Session(
        aws_access_key_id="AKIASETUPONLY0000001",
        aws_secret_access_key="setup",
        region_name=REGION,
    )
    real_client = session.client

    def client(service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", moto_server)
        return real_client(service, **kwargs)  # type: ignore[call-overload]

    session.client = client  # type: ignore[method-assign]
    return make_account(session)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli(moto_server: str, tmp_path: Path) -> Callable[..., CliResult]:
    """Run `respond ...` as a subprocess against the moto server (AWS_ENDPOINT_URL)."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> CliResult:
        return run_respond(moto_server, dict(os.environ), *args, env=env, stdin=stdin)

    return run


def respond_command(env: Mapping[str, str]) -> list[str]:
    """The installed console script, or the fault launcher when `env` asks for faults:
    the real script would ignore RESPONDER_FAULT_* and the test would prove nothing."""
    if faulty_respond.wanted(env):
        return [sys.executable, str(FAULTY_RESPOND)]
    return [str(RESPOND)]


def run_respond(moto_server: str, base_env: dict[str, str], *args: str,
                env: dict[str, str] | None = None, stdin: str | None = None) -> CliResult:
    """`respond ...` as a subprocess against the moto server, retries without waiting."""
    full_env = {**base_env, "AWS_ENDPOINT_URL": moto_server,
                "RESPONDER_RETRY_INITIAL_SECONDS": "0", "RESPONDER_RETRY_MAX_SECONDS": "0",
                **(env or {})}
    proc = subprocess.run(
        [*respond_command(full_env), *args], env=full_env, capture_output=True, text=True,
        input=stdin, timeout=120, check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def logged_calls(log: Path, kind: str = "call") -> list[str]:
    """The operations a fault-launcher log names as calls (or, with kind="ok", as calls
    that succeeded: what RESPONDER_FAULT_CRASH_AFTER counts), in order."""
    if not log.exists():
        return []
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()
            if line.startswith(kind + " ")]


def reference_run(moto_server: str, home: Path,
                  args_for: Callable[[Account], tuple[str, ...]]) -> tuple[Account, CliResult]:
    """One uninterrupted `respond` on a fresh server account, in its own home, with every
    AWS call logged to home/calls.log (read it with logged_calls)."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(ISOLATED_ENV, RESPONDER_HOME=str(home),
               RESPONDER_FAULT_LOG=str(home / "calls.log"))
    with CloudTrailFake().installed():
        account = fresh_server_account(moto_server)
        result = run_respond(moto_server, env, *args_for(account))
        assert result.code == 0, result.stderr
    return account, result


def record_backdoor(account: Account, trail: CloudTrailFake, session_key: str) -> str:
    """Through a GetSessionToken session (`session_key`) the leaked key creates user
    backdoor with an access key, made for real and recorded in the fake as CloudTrail
    would; returns backdoor's key. Events start three minutes ago, a second apart."""
    iam = account.iam
    at = datetime.now(UTC) - timedelta(minutes=3)
    trail.record(REGION, "GetSessionToken", account.leaked_key, event_time=at,
                 response_elements={"credentials": {"accessKeyId": session_key}})
    iam.create_user(UserName="backdoor")
    trail.record(REGION, "CreateUser", session_key, event_time=at + timedelta(seconds=1),
                 request_parameters={"userName": "backdoor"})
    key = str(iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"])
    trail.record(REGION, "CreateAccessKey", session_key, event_time=at + timedelta(seconds=2),
                 request_parameters={"userName": "backdoor"},
                 response_elements={"accessKey": {"accessKeyId": key}})
    return key


@pytest.fixture
def fresh_structlog() -> Iterator[None]:
    """The test starts and ends with structlog unconfigured and nothing bound (modules
    that test logging itself use it for every test)."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@contextmanager
def responded_to_a_backdoor(home: Path) -> Iterator[IncidentView]:
    """A real compromised-key response (moto, the CloudTrail fake) to a key whose
    session made a backdoor user: the incident's view, loaded with its calls, while the
    fake account (and the journal under `home`) still exist."""
    trail = CloudTrailFake()
    with pytest.MonkeyPatch.context() as env, mock_aws(), trail.installed():
        for name in DROPPED_ENV:
            env.delenv(name, raising=False)
        for name, value in {**ISOLATED_ENV, "RESPONDER_HOME": str(home / "home")}.items():
            env.setenv(name, value)
        account = make_account(boto3.Session(region_name=REGION))
        record_backdoor(account, trail, "ASIAATTACKERSESSION1")
        clock = VirtualClock()
        ctx = RunContext(session_factory=lambda: boto3.Session(region_name=REGION),
                         home=home / "home", retry=FAST_RETRY, monotonic=clock.monotonic,
                         sleep=clock.sleep)
        journal = SqliteJournal(home / "journal.db")
        try:
            record = service.respond(ctx, journal, playbook.load("compromised-key"),
                                     account.leaked_key)
            yield IncidentView.load(journal, record.id, calls=True)
        finally:
            journal.close()


class Crash(BaseException):
    """Stands in for a killed process: nothing in the product catches it."""


def crash(parsed: dict[str, Any]) -> None:
    """A response rewrite (Faults.rewrite) that kills the run right after AWS answered."""
    raise Crash


class Faults:
    """botocore hooks that fail chosen operations and count every call made.

    Attached to each session the runner creates (via `session_factory`), so faults reach
    the product through its real boto3 clients, not through patched product code.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._rules: dict[str, list[Any]] = {}
        self._rewrites: dict[str, Callable[[dict[str, Any]], None]] = {}

    def fail(self, operation: str, code: str, *, times: int | None = None,
             status: int = 400) -> None:
        """Make `operation` fail with `code` (the next `times` calls, or always)."""
        self._rules[operation] = [code, times, status]

    def rewrite(self, operation: str, edit: Callable[[dict[str, Any]], None]) -> None:
        """Edit the parsed response of `operation` in place (e.g. drop a field)."""
        self._rewrites[operation] = edit

    def clear(self) -> None:
        self._rules.clear()
        self._rewrites.clear()

    def count(self, operation: str) -> int:
        return self.calls.count(operation)

    def _before(self, model: Any, **_: Any) -> None:
        from botocore.exceptions import ClientError

        self.calls.append(model.name)
        rule = self._rules.get(model.name)
        if rule is None or rule[1] == 0:
            return
        if rule[1] is not None:
            rule[1] -= 1
        raise ClientError(
            {"Error": {"Code": rule[0], "Message": f"injected {rule[0]}"},
             "ResponseMetadata": {"HTTPStatusCode": rule[2]}},
            model.name,
        )

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        edit = self._rewrites.get(model.name)
        if edit is not None:
            edit(parsed)

    def session_factory(self) -> Callable[[], boto3.Session]:
        def make() -> boto3.Session:
            session = boto3.Session(region_name=REGION)
            session.events.register("before-call", self._before)
            session.events.register("after-call", self._after)
            return session

        return make


@pytest.fixture
def faults() -> Faults:
    return Faults()


@dataclass(frozen=True)
class Pager:
    topic_arn: str
    queue_url: str
    sqs: Any

    def messages(self) -> list[dict[str, Any]]:
        found = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in found.get("Messages", [])]


@pytest.fixture
def pager(server_account: Account) -> Pager:
    """An SNS topic with an SQS queue subscribed, on the moto server."""
    return make_pager(server_account.session)


def make_pager(session: boto3.Session) -> Pager:
    """Topic `incidents` with queue `pager` subscribed (SNS envelopes, not raw)."""
    sns = session.client("sns", region_name=REGION)
    sqs = session.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="incidents")["TopicArn"]
    queue = sqs.create_queue(QueueName="pager")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return Pager(topic, queue, sqs)
