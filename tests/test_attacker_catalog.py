"""contain-attacker over the catalog: every entry's recorded event lands where the entry
says (shut, restored, named as a credential to rotate, or listed with its undo), a call
AWS refused is never acted on, and the defenses an attacker turned off are turned on
again in moto, observed before and after, verified, and left on by a rollback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, Account, iam_state, make_account
from moto import mock_aws
from test_contain_attacker import _contain

from responder.attacker.rules import Findings, analyse
from responder.catalog.model import Meaning, Response
from responder.catalog.registry import CATALOG
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.incident.verification import Verification
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.steps.rollback import undo_plan

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
ACCOUNT_ID = "123456789012"
LEAKED = "AKIAIOSFODNN7EXAMPLE"
ENTRIES = {e.id: e for e in CATALOG}


def _record(entry_id: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"{entry_id}.json").read_text("utf-8"))
    return dict(data["record"])


def _analysed(record: dict[str, Any]) -> Findings:
    return analyse([record], leaked_key=LEAKED, victim="alice", account_id=ACCOUNT_ID,
                   own_keys=frozenset())


def _landed(found: Findings) -> set[str]:
    """Where the findings put the event."""
    places = {"keys": found.keys, "users": found.users, "roles": found.roles,
              "sessions": found.sessions or found.foreign, "cutoff": found.covered_by_cutoff,
              "human": found.needs_human, "credentials": found.credentials,
              "restore": found.restore, "refused": found.refused}
    return {name for name, value in places.items() if value}


EXPECTED = {"key": {"keys"}, "user": {"users"}, "role": {"roles"}, "cutoff": {"cutoff"},
            "login": {"human"}, "trail": {"restore"}, "detector": {"restore"},
            "recorder": {"restore"}}


@pytest.mark.parametrize("entry_id", sorted(ENTRIES))
def test_each_entry_lands_where_it_says(entry_id: str) -> None:
    entry = ENTRIES[entry_id]
    found = _analysed(_record(entry_id))
    if entry.handler == "session":  # in this account, another, or service-linked: listed
        assert _landed(found) & {"sessions", "human"}
    elif entry.handler:
        assert _landed(found) == EXPECTED[entry.handler]
    elif entry.meaning is Meaning.READS_CREDENTIALS:
        assert _landed(found) == {"credentials"}
        assert all(c["rotate"] and not c["name"].startswith("<") for c in found.credentials)
    else:
        assert _landed(found) == {"human"}
        (item,) = found.needs_human
        assert item["entry"] == entry_id
        assert item["meaning"] == entry.meaning.value
    assert [g["principal"] for g in found.granted] == json.loads(
        (FIXTURES / f"{entry_id}.json").read_text("utf-8"))["expect"]["outside"]
    assert found.events_considered == 1


@pytest.mark.parametrize("entry_id", sorted(ENTRIES))
def test_a_refused_call_is_never_acted_on(entry_id: str) -> None:
    """CloudTrail wrote an errorCode: AWS changed nothing, so nothing is shut, restored,
    rotated, granted or undone; the call is listed as refused."""
    record = {**_record(entry_id), "errorCode": "AccessDenied",
              "errorMessage": "User is not authorized", "responseElements": None}
    found = _analysed(record)
    assert _landed(found) == {"refused"}
    assert found.granted == []
    assert found.refused[0]["error_code"] == "AccessDenied"


# -- in moto: the whole catalog replayed, and the defenses restored ---------------------------


class World:
    def __init__(self, account: Account, trail: CloudTrailFake) -> None:
        self.account, self.trail = account, trail
        self.at = datetime.now(UTC) - timedelta(minutes=30)

    def replay(self, record: dict[str, Any]) -> dict[str, Any]:
        """The fixture's event, as made with the leaked key now."""
        self.at += timedelta(seconds=1)
        return self.trail.record(
            str(record.get("awsRegion") or REGION), str(record["eventName"]),
            self.account.leaked_key, event_time=self.at, event_source=record["eventSource"],
            request_parameters=record.get("requestParameters"),
            response_elements=record.get("responseElements"))

    def session(self) -> boto3.Session:
        return self.account.session


@pytest.fixture
def world() -> Iterator[World]:
    trail = CloudTrailFake()
    with mock_aws(), trail.installed():
        yield World(make_account(boto3.Session(region_name=REGION)), trail)


@pytest.mark.slow
def test_the_whole_catalog_replayed_in_one_incident(
    world: World, journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    """Every entry's event made by the leaked key: the run completes, each listed change
    is listed once with its undo, each credential read is named, each outside principal
    is named, and no IAM user the attacker did not create is touched."""
    listed, credentials, outside = set(), set(), set()
    for entry_id, entry in sorted(ENTRIES.items()):
        record = world.replay(_record(entry_id))
        expect = json.loads((FIXTURES / f"{entry_id}.json").read_text("utf-8"))["expect"]
        outside |= set(expect["outside"])
        if entry.response is Response.LIST and entry.meaning is Meaning.READS_CREDENTIALS:
            credentials.add(record["eventID"])
        elif entry.response is Response.LIST:
            listed.add(record["eventID"])
    before = iam_state(world.account.iam)
    _, facts = _contain(make_ctx(), journal, world.account.leaked_key)
    assert {h.event_id for h in facts.needs_human} >= listed
    assert {c.event_id for c in facts.credentials_read} == credentials
    assert {g.principal for g in facts.granted_to} == outside
    after = iam_state(world.account.iam)
    assert after["bob"] == before["bob"]
    assert [k for k in after["alice"]["keys"] if k[1] == "Active"] == [
        k for k in before["alice"]["keys"] if k[0] != world.account.leaked_key]


def _defenses(session: boto3.Session) -> str:
    """A trail, a GuardDuty detector and a Config recorder, each on."""
    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="org-trail-logs")
    cloudtrail = session.client("cloudtrail", region_name=REGION)
    cloudtrail.create_trail(Name="org-trail", S3BucketName="org-trail-logs")
    cloudtrail.start_logging(Name="org-trail")
    guardduty = session.client("guardduty", region_name=REGION)
    detector = str(guardduty.create_detector(Enable=True)["DetectorId"])
    config = session.client("config", region_name=REGION)
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/config"})
    config.put_delivery_channel(DeliveryChannel={"name": "default",
                                                 "s3BucketName": "org-trail-logs"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    return detector


def _state(session: boto3.Session, detector: str) -> tuple[bool, str, bool]:
    trail = session.client("cloudtrail", region_name=REGION).get_trail_status(Name="org-trail")
    found = session.client("guardduty", region_name=REGION).get_detector(DetectorId=detector)
    recorder = session.client("config", region_name=REGION) \
        .describe_configuration_recorder_status(ConfigurationRecorderNames=["default"])
    return (bool(trail["IsLogging"]), str(found["Status"]),
            bool(recorder["ConfigurationRecordersStatus"][0]["recording"]))


def _blinded(world: World) -> str:
    """A trail, a detector and a recorder, each on; then the attacker stops the trail,
    disables the detector and stops the recorder (in moto, and recorded as CloudTrail
    writes it). The detector's id."""
    session = world.session()
    detector = _defenses(session)
    session.client("cloudtrail", region_name=REGION).stop_logging(Name="org-trail")
    session.client("guardduty", region_name=REGION).update_detector(
        DetectorId=detector, Enable=False)
    session.client("config", region_name=REGION).stop_configuration_recorder(
        ConfigurationRecorderName="default")
    for entry_id, request in (
            ("cloudtrail.StopLogging", {"name": "org-trail"}),
            ("guardduty.UpdateDetector.disable", {"detectorId": detector, "enable": False}),
            ("config.StopConfigurationRecorder", {"configurationRecorderName": "default"})):
        world.replay({**_record(entry_id), "requestParameters": request})
    return detector


@pytest.mark.slow
def test_defenses_the_attacker_turned_off_are_on_again_and_verified(
    world: World, journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    session = world.session()
    detector = _blinded(world)
    assert _state(session, detector) == (False, "DISABLED", False)
    incident, facts = _contain(make_ctx(), journal, world.account.leaked_key)
    assert _state(session, detector) == (True, "ENABLED", True)
    assert sorted((d.kind, d.name, d.already) for d in facts.restored) == [
        ("detector", detector, False), ("recorder", "default", False),
        ("trail", "org-trail", False)]
    seen = Verification.from_detail(journal.get(incident).verification or {})
    assert seen.ok
    assert {c.subject for c in seen.checks} >= {
        f"CloudTrail trail org-trail in {REGION}",
        f"GuardDuty detector {detector} in {REGION}", f"Config recorder default in {REGION}"}
    plan = undo_plan(IncidentView.load(journal, incident))
    assert any("CloudTrail trail org-trail" in line and "stays on" in line
               and "aws cloudtrail stop-logging --region us-east-1 --name org-trail" in line
               for line in plan)


@pytest.mark.slow
def test_a_defense_already_on_again_is_said_and_not_touched(
    world: World, journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    session = world.session()
    _blinded(world)
    session.client("cloudtrail", region_name=REGION).start_logging(Name="org-trail")
    _, facts = _contain(make_ctx(), journal, world.account.leaked_key)
    trail = next(d for d in facts.restored if d.kind == "trail")
    assert trail.already is True


@pytest.mark.slow
def test_a_defense_gone_is_listed_for_a_human_with_why(
    world: World, journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    session = world.session()
    _blinded(world)
    session.client("cloudtrail", region_name=REGION).delete_trail(Name="org-trail")
    _, facts = _contain(make_ctx(), journal, world.account.leaked_key)
    assert "trail" not in {d.kind for d in facts.restored}
    (item,) = [h for h in facts.needs_human if h.entry == "cloudtrail.StopLogging"]
    assert "not turned on: CloudTrail trail org-trail is gone" in item.what
    assert item.undo == "aws cloudtrail start-logging --region us-east-1 --name org-trail"
