"""Calls AWS refused (CloudTrail wrote an errorCode) are marked refused wherever the
high-risk actions are shown, and contain-attacker neither acts on them nor offers an undo;
regions CloudTrail could not be read in are recorded as where containment may be
incomplete (issue 28, A and B)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, Pager, iam_state, make_account, make_pager
from moto import mock_aws

from responder.context import Options, RunContext
from responder.evidence.summary import Summary
from responder.incident.facts import AttackerContained
from responder.incident.shapes import marked
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.report import document as report
from responder.report.html import page
from responder.report.notice import build_notice
from responder.report.notify import render_text, slack_payload
from responder.run import service

CtxFactory = Callable[..., RunContext]
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
DENIED = "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: " \
         "iam:AttachUserPolicy on resource: user bob because no identity-based policy " \
         "allows the iam:AttachUserPolicy action"


@dataclass
class RefusingTrail(FaultyCloudTrail):
    """The CloudTrail fake, with chosen events handed out as AWS writes a refused call:
    errorCode and errorMessage at the top level of the record, no responseElements."""

    refused: dict[str, tuple[str, str]] = field(default_factory=dict)

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        result = super().lookup(region, request)
        for event in result["Events"]:
            if event["EventId"] in self.refused:
                record = json.loads(event["CloudTrailEvent"])
                record["errorCode"], record["errorMessage"] = self.refused[event["EventId"]]
                record["responseElements"] = None
                event["CloudTrailEvent"] = json.dumps(record)
        return result


@dataclass
class World:
    account: Account
    trail: RefusingTrail
    pager: Pager
    at: datetime

    def record(self, name: str, *, refused: tuple[str, str] | None = None,
               **extra: Any) -> dict[str, Any]:
        self.at += timedelta(seconds=1)
        event = self.trail.record(REGION, name, self.account.leaked_key, event_time=self.at,
                                  **extra)
        if refused is not None:
            self.trail.refused[event["eventID"]] = refused
        return event


@pytest.fixture
def world() -> Iterator[World]:
    trail = RefusingTrail(failing_regions=frozenset({"eu-west-1"}))
    with mock_aws(), trail.installed():
        session = boto3.Session(region_name=REGION)
        account = make_account(session)
        account.iam.create_user(UserName="carol")
        yield World(account, trail, make_pager(session),
                    datetime.now(UTC) - timedelta(minutes=10))


def _playbook(*regions: str) -> Playbook:
    return Playbook.from_dict({"name": "refused-test", "version": 1, "steps": [
        {"name": "identify", "action": "identify"},
        {"name": "disable-key", "action": "disable_access_key"},
        {"name": "revoke-sessions", "action": "attach_deny_policy"},
        {"name": "collect-evidence", "action": "collect_cloudtrail", "on_failure": "continue",
         "with": {"regions": list(regions or (REGION,))}},
        {"name": "contain-attacker", "action": "contain_attacker"},
        {"name": "notify", "action": "notify"},
    ]}, "test")


def _respond(world: World, make_ctx: CtxFactory, journal: SqliteJournal,
             *regions: str) -> IncidentView:
    ctx = make_ctx(options=Options(notify_topic=world.pager.topic_arn))
    record = service.respond(ctx, journal, _playbook(*regions), world.account.leaked_key)
    return IncidentView.load(journal, record.id, calls=True)


def _refused_attach(world: World) -> None:
    """The leaked key tries to make bob an administrator; AWS refuses (AccessDenied)."""
    world.record("AttachUserPolicy", refused=("AccessDenied", DENIED),
                 request_parameters={"userName": "bob", "policyArn": ADMIN})


def test_the_summary_says_which_high_risk_calls_were_refused() -> None:
    """A record with a top-level errorCode is a refused call: its high-risk entry carries
    refused=True and the errorCode, and reads as `Name (refused: Code)`."""
    summary = Summary()
    summary.add({"eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy",
                 "eventTime": "2026-03-01T11:00:00Z",
                 "errorCode": "AccessDenied", "errorMessage": DENIED,
                 "userIdentity": {"accessKeyId": "AKIAEXAMPLE"}})
    summary.add({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                 "eventTime": "2026-03-01T11:01:00Z",
                 "userIdentity": {"accessKeyId": "AKIAEXAMPLE"}})
    refused, done = summary.shape().high_risk
    assert (refused["refused"], refused["errorCode"]) == (True, "AccessDenied")
    assert (done["refused"], done["errorCode"]) == (False, None)
    assert marked(refused) == "AttachUserPolicy (refused: AccessDenied)"
    assert marked(done) == "CreateUser"


def test_a_refused_call_is_marked_in_the_notice_the_report_and_the_page(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    """AttachUserPolicy refused with AccessDenied: SNS text, Slack post, report.md and
    report.html list it as `AttachUserPolicy (refused: AccessDenied)`; contain-attacker
    lists it as refused with nothing to undo, and bob is left exactly as he was."""
    _refused_attach(world)
    world.record("AddUserToGroup", request_parameters={"userName": "carol",
                                                       "groupName": "admins"})
    before = iam_state(world.account.iam)
    view = _respond(world, make_ctx, journal)
    attacker = view.attacker
    assert attacker is not None
    assert [(h.event_name, h.undo) for h in attacker.needs_human] == [
        ("AddUserToGroup", "aws iam remove-user-from-group --group-name admins "
                           "--user-name carol")]
    assert [(r.event_name, r.error_code, r.access_key_id) for r in attacker.refused] == [
        ("AttachUserPolicy", "AccessDenied", world.account.leaked_key)]
    assert iam_state(world.account.iam)["bob"] == before["bob"]

    label = "AttachUserPolicy (refused: AccessDenied)"
    (message,) = [m["Message"] for m in world.pager.messages()]
    assert label in message
    notice = build_notice("completed", view)
    review = next(a for a in notice.next_actions if "high-risk" in a)
    assert label in review
    assert "AWS refused 1 of them" in review
    assert not any("AttachUserPolicy" in a and "Undo" in a for a in notice.next_actions)
    assert label in json.dumps(slack_payload(notice))
    assert label in render_text(notice)[1]

    md = report.write(view, Path(make_ctx().incident_dir(view.id))).read_text()
    assert f"| {label} |" in md
    attacker_section = md.split("## The attacker", 1)[1]
    assert "Refused by AWS (nothing changed, nothing to undo)" in attacker_section
    assert "| AttachUserPolicy |" in attacker_section
    assert "detach-user-policy" not in md
    html = page(view)
    assert label in html
    assert "Refused by AWS (nothing changed, nothing to undo)" in html


def test_refused_creations_are_neither_shut_nor_undone(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    """A refused CreateAccessKey on carol (her key exists: someone else made it), a refused
    CreateUser and a refused CreateLoginProfile: no key disabled, nobody quarantined, no
    undo offered; each is listed as refused, oldest first."""
    iam = world.account.iam
    carol_key = iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]
    world.record("CreateAccessKey", refused=("LimitExceeded", "too many keys"),
                 request_parameters={"userName": "carol"})
    world.record("CreateUser", refused=("EntityAlreadyExists", "carol exists"),
                 request_parameters={"userName": "carol"})
    world.record("CreateLoginProfile", refused=("AccessDenied", "not authorized"),
                 request_parameters={"userName": "bob"})
    before = iam_state(iam)
    attacker = _respond(world, make_ctx, journal).attacker
    assert attacker is not None
    assert (attacker.keys_disabled, attacker.principals_quarantined, attacker.needs_human) \
        == ((), (), ())
    assert [(r.event_name, r.error_code) for r in attacker.refused] == [
        ("CreateAccessKey", "LimitExceeded"), ("CreateUser", "EntityAlreadyExists"),
        ("CreateLoginProfile", "AccessDenied")]
    after = iam_state(iam)
    assert after["carol"] == before["carol"]
    assert (carol_key, "Active") in after["carol"]["keys"]
    assert after["bob"] == before["bob"]


def test_regions_left_unread_are_where_containment_may_be_incomplete(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    """CloudTrail cannot be read in eu-west-1: contain-attacker records it as unread, with
    the error; the notice and report.md say attacker containment may be incomplete
    there."""
    _refused_attach(world)
    view = _respond(world, make_ctx, journal, REGION, "eu-west-1")
    evidence, attacker = view.evidence, view.attacker
    assert evidence is not None
    assert attacker is not None
    assert set(evidence.regions_failed) == {"eu-west-1"}
    assert list(attacker.regions_unread) == ["eu-west-1"]
    assert "ServiceUnavailable" in attacker.regions_unread["eu-west-1"]
    step = next(s for s in view.steps if s.name == "contain-attacker")
    assert AttackerContained.from_detail(step.detail).regions_unread == attacker.regions_unread

    notice = build_notice("completed", view)
    incomplete = next(a for a in notice.next_actions if "may be incomplete" in a)
    assert "eu-west-1" in incomplete
    assert f"respond sweep {view.id}" in incomplete
    md = report.write(view, Path(make_ctx().incident_dir(view.id))).read_text()
    section = md.split("## The attacker", 1)[1].split("\n## ", 1)[0]
    assert "containment may be incomplete" in section
    assert "eu-west-1" in section


def test_an_older_journal_without_the_new_fields_still_reads() -> None:
    """contain-attacker's facts journaled before `refused` and `regions_unread` existed
    read back with empty defaults; an old high-risk entry without `refused` is marked by
    its errorCode alone."""
    facts = AttackerContained.from_detail({"keys_disabled": [], "needs_human": [],
                                           "events_considered": 3})
    assert (facts.refused, dict(facts.regions_unread)) == ((), {})
    assert marked({"eventName": "PutUserPolicy", "errorCode": "AccessDenied"}) \
        == "PutUserPolicy (refused: AccessDenied)"
    assert marked({"eventName": "PutUserPolicy", "errorCode": None}) == "PutUserPolicy"
