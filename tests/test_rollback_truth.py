"""`respond rollback` tells the truth (issue 28, C): every claim is what AWS showed when
re-read after acting, every reason given is kept, the plan lists each item once (what a
sweep shut included) and the rollback undoes it; after it, the notice stops telling people
to move to the new key and says the containment was undone, and why."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, make_account
from moto import mock_aws

from responder.context import RunContext
from responder.incident.facts_rollback import RolledBack
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.report import document as report
from responder.report.html import page
from responder.report.notice import build_notice
from responder.run import followup, service
from responder.steps.deny import POLICY_NAME as DENY
from responder.steps.rollback import undo_plan

CtxFactory = Callable[..., RunContext]
SESSION_KEY = "ASIATRUTHSESSION0001"


@dataclass
class Hooks:
    """botocore hooks on every session the responder makes: fail an operation, or answer
    it with success without sending it (AWS never applies it), and count calls."""

    failing: dict[str, str] = field(default_factory=dict)
    swallowed: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def _before(self, model: Any, **_: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls.append(model.name)
        if model.name in self.failing:
            code = self.failing[model.name]
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, model.name)
        if model.name in self.swallowed:
            return (AWSResponse("https://iam.amazonaws.com/", 200, {}, None),
                    {"ResponseMetadata": {"HTTPStatusCode": 200}})
        return None

    def session_factory(self) -> Callable[[], boto3.Session]:
        def make() -> boto3.Session:
            session = boto3.Session(region_name=REGION)
            session.events.register("before-call", self._before)
            return session
        return make


@dataclass
class World:
    account: Account
    trail: FaultyCloudTrail
    hooks: Hooks
    journal: SqliteJournal
    ctx: RunContext

    @property
    def iam(self) -> Any:
        return self.account.iam

    def status(self, user: str, key: str) -> str:
        keys = self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        return next((k["Status"] for k in keys if k["AccessKeyId"] == key), "Deleted")

    def backdoor(self, leaked: str) -> str:
        """Through a session of `leaked` the attacker creates user backdoor and its key."""
        at = datetime.now(UTC) - timedelta(minutes=5)
        self.trail.record(REGION, "GetSessionToken", leaked, event_time=at,
                          response_elements={"credentials": {"accessKeyId": SESSION_KEY}})
        self.iam.create_user(UserName="backdoor")
        self.trail.record(REGION, "CreateUser", SESSION_KEY, event_time=at + timedelta(seconds=1),
                          request_parameters={"userName": "backdoor"})
        key = str(self.iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"])
        self.trail.record(REGION, "CreateAccessKey", SESSION_KEY,
                          event_time=at + timedelta(seconds=2),
                          request_parameters={"userName": "backdoor"},
                          response_elements={"accessKey": {"accessKeyId": key}})
        return key

    def respond(self, key: str, *, replace: bool = False) -> str:
        steps: list[dict[str, Any]] = [
            {"name": "identify", "action": "identify"},
            {"name": "disable-key", "action": "disable_access_key"},
            {"name": "revoke-sessions", "action": "attach_deny_policy"},
            {"name": "collect-evidence", "action": "collect_cloudtrail",
             "on_failure": "continue", "with": {"regions": [REGION]}},
            {"name": "contain-attacker", "action": "contain_attacker"},
        ]
        if replace:
            steps.append({"name": "replace-key", "action": "replace_access_key",
                          "with": {"store": "secretsmanager"}})
        record = service.respond(self.ctx, self.journal, Playbook.from_dict(
            {"name": "truth-test", "version": 1, "steps": steps}, "test"), key)
        assert record.contained_at is not None, record.error
        return record.id

    def rollback(self, incident: str, reason: str) -> followup.Swept:
        return followup.rollback(self.ctx, self.journal, incident, reason)

    def facts(self, incident: str) -> RolledBack:
        view = IncidentView.load(self.journal, incident)
        found = view.rolled_back
        assert found is not None
        return found


@pytest.fixture
def world(make_ctx: CtxFactory, journal: SqliteJournal) -> Iterator[World]:
    trail = FaultyCloudTrail()
    hooks = Hooks()
    with mock_aws(), trail.installed():
        account = make_account(boto3.Session(region_name=REGION))
        account.iam.create_user(UserName="carol")
        yield World(account, trail, hooks, journal,
                    make_ctx(session_factory=hooks.session_factory()))


def test_a_rollback_cut_short_then_finished_says_the_deny_is_gone(world: World) -> None:
    """The first rollback deletes the deny, then UpdateAccessKey is denied: it fails. Run
    again, it finds the deny gone: deny_removed is what GetUserPolicy answers now (yes),
    not whether this attempt deleted it; both reasons are kept, oldest first."""
    leaked = world.account.leaked_key
    incident = world.respond(leaked)
    world.hooks.failing["UpdateAccessKey"] = "AccessDenied"
    cut = world.rollback(incident, "a test fixture's key")
    assert cut.status == "failed"
    assert f"then `respond rollback {incident} --yes`" in (cut.error or "")
    assert DENY not in world.iam.list_user_policies(UserName="alice")["PolicyNames"]
    assert world.status("alice", leaked) == "Inactive"
    world.hooks.failing.clear()
    done = world.rollback(incident, "confirmed with the team")
    assert done.status == "done", done.error
    facts = world.facts(incident)
    assert facts.deny_removed is True
    assert facts.key_status == "Active" == world.status("alice", leaked)
    assert [r.reason for r in facts.history] == ["a test fixture's key",
                                                 "confirmed with the team"]
    assert facts.reason == "confirmed with the team"
    assert all(r.at for r in facts.history)


def test_a_second_rollback_keeps_the_first_reason(world: World, tmp_path: Path) -> None:
    """Two rollbacks: report.json and report.md keep both reasons in order, and the second
    still says the deny is removed (it was, by the first)."""
    incident = world.respond(world.account.leaked_key)
    assert world.rollback(incident, "first: a fixture key").status == "done"
    assert world.rollback(incident, "second: double-checked").status == "done"
    facts = world.facts(incident)
    assert [r.reason for r in facts.history] == ["first: a fixture key",
                                                 "second: double-checked"]
    assert facts.deny_removed is True
    view = IncidentView.load(world.journal, incident, calls=True)
    md = report.write(view, tmp_path).read_text()
    section = md.split("## Rolled back (a false positive)", 1)[1].split("\n## ", 1)[0]
    assert section.index("first: a fixture key") < section.index("second: double-checked")
    assert "session deny removed: yes" in section
    reasons = json.loads((tmp_path / "report.json").read_text())["rollback"]["reasons"]
    assert [r["reason"] for r in reasons] == ["first: a fixture key", "second: double-checked"]
    assert "second: double-checked" in page(view)


def test_the_plan_lists_each_item_once_and_what_a_sweep_shut(world: World) -> None:
    """The backdoor key is both a created key and the quarantined user's key: listed once.
    A key a sweep disabled (CloudTrail delivered its CreateAccessKey late) is in the plan
    and made Active again by the rollback; nothing is deleted or detached."""
    leaked = world.account.leaked_key
    backdoor_key = world.backdoor(leaked)
    incident = world.respond(leaked)
    late_key = str(world.iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"])
    world.trail.record(REGION, "CreateAccessKey", leaked,
                       event_time=datetime.now(UTC) - timedelta(minutes=1),
                       request_parameters={"userName": "carol"},
                       response_elements={"accessKey": {"accessKeyId": late_key}})
    swept = followup.sweep(world.ctx, world.journal, incident)
    assert swept.status == "done", swept.error
    assert world.status("carol", late_key) == "Inactive"

    plan = undo_plan(IncidentView.load(world.journal, incident))
    assert len(plan) == len(set(plan)), plan
    assert plan.count(f"make key {backdoor_key} of backdoor Active again") == 1
    assert f"make key {late_key} of carol Active again" in plan
    assert "delete responder-quarantine from user backdoor" in plan

    world.hooks.calls.clear()
    assert world.rollback(incident, "false positive").status == "done"
    assert world.status("carol", late_key) == "Active"
    assert world.status("backdoor", backdoor_key) == "Active"
    facts = world.facts(incident)
    assert {(k.user_name, k.access_key_id) for k in facts.keys_reactivated} == {
        ("backdoor", backdoor_key), ("carol", late_key)}
    assert len(facts.keys_reactivated) == 2
    assert [(q.type, q.name) for q in facts.quarantines_removed] == [("user", "backdoor")]
    forbidden = {"DeleteAccessKey", "DeleteUser", "DetachUserPolicy", "DeleteLoginProfile"}
    assert not forbidden & set(world.hooks.calls)


def test_claims_come_from_aws_not_from_the_calls_made(world: World) -> None:
    """AWS answers UpdateAccessKey and DeleteUserPolicy with success but applies neither:
    the rollback re-reads and says so (key Inactive, deny not removed, the backdoor key
    not reactivated), and the notice tells to run it again."""
    leaked = world.account.leaked_key
    backdoor_key = world.backdoor(leaked)
    incident = world.respond(leaked)
    world.hooks.swallowed |= {"UpdateAccessKey", "DeleteUserPolicy"}
    assert world.rollback(incident, "false positive").status == "done"
    facts = world.facts(incident)
    assert facts.key_status == "Inactive" == world.status("alice", leaked)
    assert facts.deny_removed is False
    assert facts.keys_reactivated == ()
    assert facts.verified_at is not None
    assert any(f"key {backdoor_key} of backdoor is Inactive" in x for x in facts.left_alone)
    assert any(f"{DENY} is still on user alice" in x for x in facts.left_alone)
    text = "\n".join(build_notice("completed", IncidentView.load(world.journal, incident))
                     .next_actions)
    assert f"respond rollback {incident} --yes" in text
    assert "session deny NOT removed" in text


def test_after_a_rollback_the_notice_says_it_was_undone_and_why(world: World) -> None:
    """bob's only key is replaced (not deleted), then rolled back: the next actions no
    longer tell people to move to the new key; they say the containment was undone, why,
    and that the replacement key is not needed."""
    bob = world.account.bob_key
    incident = world.respond(bob, replace=True)
    view = IncidentView.load(world.journal, incident)
    assert any("Update the applications" in a
               for a in build_notice("completed", view).next_actions)
    assert world.rollback(incident, "bob's key was never public").status == "done"
    view = IncidentView.load(world.journal, incident)
    notice = build_notice("completed", view)
    text = "\n".join(notice.next_actions)
    assert notice.rolled_back is not None
    assert "Update the applications" not in text
    assert "The containment was undone" in text
    assert "bob's key was never public" in text
    assert f"key {bob} Active" in text
    assert view.replacement is not None
    assert f"replacement key {view.replacement.access_key_id} is not needed" in text
    assert "temporary credentials" not in text


def test_a_deleted_key_means_moving_to_the_new_key_still(world: World) -> None:
    """alice has two keys, so replace-key deleted the leaked one: after the rollback it
    stays deleted, and the notice says to move the applications to the new key."""
    leaked = world.account.leaked_key
    incident = world.respond(leaked, replace=True)
    assert world.status("alice", leaked) == "Deleted"
    assert "leave the key" in "\n".join(undo_plan(IncidentView.load(world.journal, incident)))
    assert world.rollback(incident, "false positive").status == "done"
    facts = world.facts(incident)
    assert facts.key_status == "Deleted"
    text = "\n".join(build_notice("completed", IncidentView.load(world.journal, incident))
                     .next_actions)
    assert f"{leaked} stays deleted: move the applications" in text


def test_aws_own_quarantine_is_named_and_never_detached(world: World) -> None:
    """AWS had attached its quarantine policy to alice: the plan says it stays, the
    rollback never calls DetachUserPolicy, and the facts say it was not touched."""
    quarantine = "AWSCompromisedKeyQuarantineV3"
    arn = world.iam.create_policy(PolicyName=quarantine, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:*",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    world.iam.attach_user_policy(UserName="alice", PolicyArn=arn)
    incident = world.respond(world.account.leaked_key)
    plan = undo_plan(IncidentView.load(world.journal, incident))
    assert f"leave {quarantine} attached to user alice (AWS's own quarantine: never " \
           "detached)" in plan
    world.hooks.calls.clear()
    assert world.rollback(incident, "false positive").status == "done"
    assert "DetachUserPolicy" not in world.hooks.calls
    attached = world.iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == [quarantine]
    assert any(quarantine in x and "not touched" in x for x in world.facts(incident).left_alone)
