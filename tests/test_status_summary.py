"""`respond status`'s listing: one summary per incident, streamed (issue 32).

The listing used to print every incident's whole §2 document, built all at once: 1,000
incidents printed 60 MB and held 447 MB. Now each incident is a summary of a few
hundred bytes, read from its record and steps (never its calls) and printed before the
next is read; `respond status ID` still prints the whole document. Incidents are written
here through the journal API, as a run writes them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from responder import playbook
from responder.aws import ApiCall
from responder.cli import interrupts, main
from responder.cli.output import out_json_items
from responder.context import utcnow
from responder.incident.facts import (
    AttackerContained,
    EvidenceCollected,
    KeyDisabled,
    OwnerFound,
    SessionFound,
    SessionsRevoked,
    SweepFound,
)
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import HumanAction
from responder.journal import Journal
from responder.journal.dynamodb import DynamoDbJournal
from responder.journal.sqlite import SqliteJournal
from responder.report import listing

ACCOUNT = "123456789012"
PLAYBOOK = playbook.load("compromised-key").to_dict()
SESSION_PLAYBOOK = {"name": "compromised-session", "steps": [
    {"name": "identify-session", "action": "identify_session"},
    {"name": "revoke-session", "action": "revoke_session"}]}
KEYS = {"incident_id", "status", "access_key_id", "user_name", "role_name", "session_name",
        "account_id", "started_at", "contained_at", "current_step", "age_seconds", "age",
        "next_sweep_at", "counts"}
COUNTS = {"events", "steps_done", "steps_total", "sweeps_done", "needs_human"}
UNDO = (HumanAction(event_id="ev-1", event_name="CreateUser", what="user backdoor created",
                    undo="aws iam delete-user --user-name backdoor"),
        HumanAction(event_id="ev-2", event_name="PutBucketPolicy", what="bucket made public",
                    undo="aws s3api delete-bucket-policy --bucket data"))


def _call(journal: Journal, incident: str, step: str, at: datetime, n: int) -> None:
    """A journaled AWS call, as Api writes it (intent, then the outcome)."""
    handle = journal.intent(incident, step, ApiCall(
        "iam", "ListAccessKeys", {"UserName": "alice", "Marker": f"m{n}" * 20}), at)
    journal.result(handle, ok=True, attempts=1, now=at,
                   result={"AccessKeyMetadata": [{"AccessKeyId": f"AKIA{n:016d}"}] * 3})


def _step(journal: Journal, incident: str, name: str, at: datetime, detail: dict[str, Any],
          *, status: str = "done") -> None:
    journal.step_started(incident, name, at)
    for n in range(3):
        _call(journal, incident, name, at, n)
    journal.step_finished(incident, name, status=status,  # type: ignore[arg-type]
                          now=at, detail=detail,
                          error="AccessDenied: not authorized" if status == "failed" else None)


def write_incident(journal: Journal, number: int, started: datetime, kind: str) -> str:
    """One incident as a run leaves it. `kind`: completed (with a sweep), halted (at
    contain-attacker), session (a role's temporary key), rolled-back, abandoned (running,
    its lease lapsed)."""
    incident = f"inc-{kind}-{number:05d}"
    key = f"{'ASIA' if kind == 'session' else 'AKIA'}TEST{number:012d}"
    journal.create_incident(
        incident_id=incident, access_key_id=key,
        playbook=SESSION_PLAYBOOK if kind == "session" else PLAYBOOK, started_at=started,
        source="test", options={}, owner="test", lease_seconds=60)
    at = started + timedelta(seconds=1)
    if kind == "session":
        _step(journal, incident, "identify-session", at, SessionFound(
            principal_type="AssumedRole", account_id=ACCOUNT, role_name="deployer",
            session_name="ci-run-7").to_detail())
        journal.update_incident(incident, at, status="halted", account_id=ACCOUNT)
        journal.release_lease(incident, "test")
        return incident
    _step(journal, incident, "identify", at, OwnerFound("alice", ACCOUNT).to_detail())
    if kind == "abandoned":
        return incident  # running, its lease about to lapse
    _step(journal, incident, "disable-key", at, KeyDisabled().to_detail())
    _step(journal, incident, "revoke-sessions", at, SessionsRevoked(
        policy_name="responder-revoke-older-sessions",
        token_issue_time_before="2026-12-01T00:00:00Z").to_detail())
    journal.update_incident(incident, at, user_name="alice", account_id=ACCOUNT,
                            contained_at=at)
    _step(journal, incident, "collect-evidence", at, EvidenceCollected(
        events=120, regions=("us-east-1", "eu-west-1"), path=f"/x/{incident}/ct.jsonl",
        sha256="ab" * 32).to_detail())
    if kind == "halted":
        _step(journal, incident, "contain-attacker", at, {}, status="failed")
        journal.update_incident(incident, at, status="halted", error="contain-attacker failed")
        journal.release_lease(incident, "test")
        return incident
    _step(journal, incident, "contain-attacker", at,
          AttackerContained(needs_human=UNDO, events_considered=120).to_detail())
    for name in ("replace-key", "notify", "harden"):
        _step(journal, incident, name, at, {})
    journal.add_step(incident, "sweep-1", "sweep_cloudtrail", at)
    _step(journal, incident, "sweep-1", at + timedelta(minutes=15), SweepFound(
        new_events=3, events_total=123, sha256="cd" * 32, keys=(key,),
        attacker=AttackerContained(needs_human=UNDO[:1])).to_detail())
    if kind == "rolled-back":
        journal.add_step(incident, "rollback", "rollback_containment", at)
        _step(journal, incident, "rollback", at, RolledBack(reason="a test key").to_detail())
    journal.update_incident(incident, at, status="completed")
    journal.release_lease(incident, "test")
    return incident


def write_journal(path: Path, count: int, kinds: tuple[str, ...] = ("completed",)
                  ) -> list[str]:
    """`count` incidents a minute apart, the last one newest, kinds in turn."""
    journal = SqliteJournal(path)
    journal._db.execute("PRAGMA synchronous=OFF")  # a test's file: no need to survive a crash
    first = utcnow() - timedelta(minutes=count + 5)
    ids = [write_incident(journal, n, first + timedelta(minutes=n), kinds[n % len(kinds)])
           for n in range(count)]
    journal.close()
    return ids


class Sink(io.TextIOBase):
    """stdout that counts and keeps nothing (captured output would count as memory)."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def writable(self) -> bool:
        return True


@pytest.fixture
def respond(capsys: pytest.CaptureFixture[str], fresh_structlog: None
            ) -> Iterator[Callable[..., tuple[int, str]]]:
    """responder.cli.main in this process: (exit code, stdout). What main changes for
    the process (signal handlers, umask; structlog: fresh_structlog) is put back."""
    del fresh_structlog
    handlers = {s: signal.getsignal(s) for s in (*interrupts.SIGNALS, signal.SIGALRM)}
    mask = os.umask(0o022)
    os.umask(mask)

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(argv))
        return code, capsys.readouterr().out

    yield run
    os.umask(mask)
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


KINDS = ("completed", "halted", "session", "rolled-back", "abandoned")


@pytest.fixture
def state(tmp_path: Path) -> str:
    path = tmp_path / "journal.db"
    write_journal(path, len(KINDS), KINDS)
    return str(path)


def _listed(respond: Callable[..., tuple[int, str]], *argv: str) -> dict[str, Any]:
    code, out = respond("status", *argv, "--output", "json")
    assert code == 0, out
    found: dict[str, Any] = json.loads(out)
    return found


def _no_repr(value: Any) -> None:
    """Text, numbers, null and the summary's own objects only: nothing Python made."""
    if isinstance(value, dict):
        for item in value.values():
            _no_repr(item)
        return
    assert value is None or isinstance(value, (str, int)), value
    if isinstance(value, str):
        assert not value.startswith(("(", "[", "{", "<")), value
        assert "datetime" not in value, value
        assert "None" not in value, value


def test_each_summary_has_its_fields_with_their_types(
        respond: Callable[..., tuple[int, str]], state: str) -> None:
    """Every summary has the same keys; times are ISO-8601, counts integers, and what
    is not known is null, never missing or a Python repr."""
    listed = _listed(respond, "--all", "--state", state)
    assert set(listed) == {"incidents"}
    for summary in listed["incidents"]:
        assert set(summary) == KEYS, summary
        assert set(summary["counts"]) == COUNTS
        _no_repr(summary)
        for name in ("started_at", "contained_at", "next_sweep_at"):
            if summary[name] is not None:
                assert datetime.fromisoformat(summary[name].replace("Z", "+00:00")).tzinfo
        assert isinstance(summary["age_seconds"], int)
        assert summary["age_seconds"] >= 0
        assert summary["age"].split()[1].rstrip("s") in {"second", "minute", "hour", "day"}
        assert all(isinstance(v, int) for k, v in summary["counts"].items() if k != "events")


def test_each_kind_of_incident_is_summed_up_as_it_stands(
        respond: Callable[..., tuple[int, str]], state: str) -> None:
    """Open incidents first (newest first), then finished ones; the status as `status
    ID` shows it (an abandoned run is halted) or rolled-back; the counts from the steps."""
    by = {s["incident_id"].split("-0")[0].removeprefix("inc-"): s
          for s in _listed(respond, "--all", "--state", state)["incidents"]}
    order = [s["incident_id"] for s in _listed(respond, "--all", "--state", state)["incidents"]]
    assert [o.split("-0")[0].removeprefix("inc-") for o in order] == [
        "abandoned", "session", "halted", "rolled-back", "completed"]
    done = by["completed"]
    assert (done["status"], done["user_name"], done["current_step"]) == (
        "completed", "alice", None)
    assert (done["role_name"], done["session_name"]) == (None, None)
    assert done["contained_at"] is not None
    assert done["counts"] == {"events": 123, "steps_done": 8, "steps_total": 8,
                              "sweeps_done": 1, "needs_human": 2}
    assert done["next_sweep_at"] is not None  # the 60-minute sweep is still due
    halted = by["halted"]
    assert (halted["status"], halted["current_step"]) == ("halted", "contain-attacker")
    assert halted["counts"] == {"events": 120, "steps_done": 4, "steps_total": 8,
                                "sweeps_done": 0, "needs_human": 0}
    session = by["session"]
    assert (session["user_name"], session["role_name"], session["session_name"]) == (
        None, "deployer", "ci-run-7")
    assert (session["counts"]["events"], session["contained_at"]) == (None, None)
    assert by["rolled-back"]["status"] == "rolled-back"
    assert by["rolled-back"]["next_sweep_at"] is None
    assert by["abandoned"]["status"] == "halted"


def test_status_id_still_prints_the_whole_document(
        respond: Callable[..., tuple[int, str]], state: str) -> None:
    """`respond status ID --output json` is the §2 object, steps' details and all."""
    first = _listed(respond, "--all", "--state", state)["incidents"][-1]
    code, out = respond("status", first["incident_id"], "--output", "json", "--state", state)
    assert code == 0
    doc = json.loads(out)
    assert {"steps", "evidence", "verification", "replacement", "sweeps", "error"} <= set(doc)
    assert doc["steps"][0]["detail"] == {"last_used": {}, "user_name": "alice",
                                         "account_id": ACCOUNT}
    assert doc["evidence"]["events"] == first["counts"]["events"]


def test_the_listing_is_laid_out_as_one_json_object_would_be(
        respond: Callable[..., tuple[int, str]], state: str) -> None:
    """Written one summary at a time, the listing is byte for byte what json.dumps of
    the whole object (indent 2) prints; an empty journal is `{"incidents": []}`."""
    code, out = respond("status", "--all", "--output", "json", "--state", state)
    assert code == 0
    assert out == json.dumps(json.loads(out), indent=2) + "\n"
    empty = str(Path(state).with_name("empty.db"))
    assert respond("status", "--output", "json", "--state", empty)[1] == \
        json.dumps({"incidents": []}, indent=2) + "\n"


def test_the_table_and_the_json_agree(
        respond: Callable[..., tuple[int, str]], state: str) -> None:
    """The human table is the same summaries: status, step and the hidden count."""
    summaries = _listed(respond, "--limit", "1", "--state", state)["incidents"]
    code, table = respond("status", "--limit", "1", "--state", state)
    assert code == 0
    rows = table.splitlines()
    assert rows[0] == listing.HEADER
    assert [r.split()[:2] for r in rows[1:-1]] == [
        [s["incident_id"], s["status"]] for s in summaries]
    assert rows[-1] == "(1 older finished incidents not shown: --limit N or --all)"
    assert "role/deployer" in table


def test_a_listing_cut_short_is_still_one_json_object(
        capsys: pytest.CaptureFixture[str]) -> None:
    """An item that cannot be made after others were written: the object is closed
    after those, and the error goes on; before any, nothing is written."""
    def items(good: int) -> Iterator[dict[str, Any]]:
        for n in range(good):
            yield {"n": n}
        raise RuntimeError("journal gone")

    with pytest.raises(RuntimeError):
        out_json_items("incidents", items(2))
    assert json.loads(capsys.readouterr().out) == {"incidents": [{"n": 0}, {"n": 1}]}
    with pytest.raises(RuntimeError):
        out_json_items("incidents", items(0))
    assert capsys.readouterr().out == ""


def test_an_incident_gone_since_the_listing_is_left_out(tmp_path: Path) -> None:
    """DynamoDB's TTL may take an incident between the listing and its read."""
    ids = write_journal(tmp_path / "j.db", 2)
    journal = SqliteJournal(tmp_path / "j.db")
    found = list(listing.summaries(journal, ["inc-gone", *ids], utcnow()))
    assert [s.incident_id for s in found] == ids


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
def test_both_journals_list_open_incidents_first_newest_first(
        backend: str, tmp_path: Path) -> None:
    """Journal.listing: (id, is_open), the open ones first, each group newest first, on
    either backend, and the same as the default built on recent(); each_call() gives
    what calls() gives, a page at a time."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            journal: Journal = SqliteJournal(tmp_path / "j.db")
        else:
            stack.enter_context(mock_aws())
            client = boto3.client("dynamodb", region_name="us-east-1")
            DynamoDbJournal.create_table(client, "journal")
            journal = DynamoDbJournal("journal", client=client)
        t0 = datetime(2026, 12, 1, tzinfo=UTC)
        for n, kind in enumerate(("completed", "halted", "completed", "session")):
            write_incident(journal, n, t0 + timedelta(minutes=n), kind)
        expected = [("inc-session-00003", True), ("inc-halted-00001", True),
                    ("inc-completed-00002", False), ("inc-completed-00000", False)]
        assert list(journal.listing()) == expected
        assert list(Journal.listing(journal)) == expected
        for incident, _ in expected:  # and each_call() reads what calls() reads
            assert list(journal.each_call(incident)) == journal.calls(incident)
            assert list(journal.each_call(incident, "identify")) == \
                journal.calls(incident, "identify")


def test_a_summary_is_small(respond: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    """Under 2 KB of JSON per incident, whatever its steps journaled."""
    path = tmp_path / "j.db"
    write_journal(path, 50, KINDS)
    code, out = respond("status", "--all", "--output", "json", "--state", str(path))
    assert code == 0
    assert len(json.loads(out)["incidents"]) == 50
    assert len(out.encode()) / 50 < 2048


def _peak(state: Path) -> int:
    """tracemalloc's peak over `respond status --all --output json`, stdout counted only;
    CPython's tuple free lists filled first (benchmarks/status.py, fill_free_lists)."""
    kept = [tuple(range(size)) for size in range(1, 20) for _ in range(2000)]
    del kept
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(Sink()):
            assert main(["status", "--all", "--output", "json", "--state", str(state)]) == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_with_the_number_of_incidents(
        respond: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    """300 incidents peak within 1.5x of 10 (it was 100x at 1,000: every document was
    held at once). A warm-up listing first, so imports and first-call caches are not
    counted."""
    sizes = {n: tmp_path / f"j{n}.db" for n in (1, 10, 300)}
    for n, path in sizes.items():
        write_journal(path, n, KINDS)
    with contextlib.redirect_stdout(Sink()):
        main(["status", "--all", "--output", "json", "--state", str(sizes[1])])
    small, large = _peak(sizes[10]), _peak(sizes[300])
    assert large <= 1.5 * small, (small, large)
