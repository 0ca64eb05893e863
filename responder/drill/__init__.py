"""`respond drill`: the real playbook against an embedded fake account, checked and timed.

The drill goes through `service.respond`, the same entry point as `respond compromised`,
so a passing drill says the production path works, not a copy of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock

import boto3

from responder import playbook, report, service
from responder.aws import RetryPolicy
from responder.context import Options, RunContext, iso, parse_iso, responder_home
from responder.drill import world as world_mod
from responder.drill.cloudtrail import CloudTrailFake
from responder.errors import BadInput, ResponderError
from responder.journal.sqlite import SqliteJournal
from responder.steps.deny import POLICY_NAME, deny_policy
from responder.steps.results import KeyDisabled
from responder.view import IncidentView

SCENARIOS = ("basic",)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class DrillResult:
    scenario: str
    view: IncidentView
    incident: dict[str, Any]
    """The §2 object of the view, as --output json prints it."""
    checks: tuple[Check, ...]
    attacker: tuple[dict[str, Any], ...]
    home: str
    time_to_contain: float | None
    timeline: tuple[tuple[float, str, str], ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "time_to_contain_seconds": self.time_to_contain,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail}
                       for c in self.checks],
            "attacker": list(self.attacker),
            "timeline": [{"offset_seconds": t, "step": s, "status": st}
                         for t, s, st in self.timeline],
            "state_dir": self.home,
            "incident": self.incident,
        }

    def render(self) -> str:
        lines = [f"drill {self.scenario}: {'PASSED' if self.passed else 'FAILED'}",
                 "attacker (before the response):"]
        lines += [f"  {a['action']:<26} {a['region']:<10} {a['access_key_id']}"
                  for a in self.attacker]
        lines.append("timeline:")
        lines += [f"  +{t:7.3f}s  {s:<18} {st}" for t, s, st in self.timeline]
        if self.time_to_contain is not None:
            lines.append(f"time to contain: {self.time_to_contain:.3f}s")
        evidence = self.view.evidence
        if evidence:
            risky = ", ".join(f"{e['eventName']} ({e['accessKeyId']}, {e['region']})"
                              for e in evidence.high_risk)
            lines.append(f"evidence: {evidence.events} events in "
                         f"{len(evidence.regions)} regions, sha256 {(evidence.sha256 or '')[:16]}")
            lines.append(f"high-risk actions: {risky or 'none'}")
        lines.append("checks:")
        lines += [f"  [{'ok' if c.passed else 'FAIL'}] {c.name}"
                  + (f" ({c.detail})" if c.detail else "") for c in self.checks]
        lines.append(f"journal and logs: {self.home}")
        return "\n".join(lines)


@contextmanager
def fake_account() -> Iterator[Callable[[], boto3.Session]]:
    """moto in-process, shielded from the shell's AWS settings."""
    from moto import mock_aws  # noqa: PLC0415 - moto is only in the drill/test extras

    env = {
        "AWS_ACCESS_KEY_ID": world_mod.RESPONDER_KEY,
        "AWS_SECRET_ACCESS_KEY": "drill-responder-secret",
        "AWS_DEFAULT_REGION": world_mod.REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    drop = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION")
    with mock.patch.dict(os.environ, env):
        for name in drop:
            os.environ.pop(name, None)
        with mock_aws():
            yield lambda: boto3.Session(region_name=world_mod.REGION)


def _checks(session: boto3.Session, world: world_mod.World, view: IncidentView,
            attacker: list[dict[str, Any]]) -> tuple[Check, ...]:
    iam = session.client("iam")
    keys = {k["AccessKeyId"]: k["Status"]
            for k in iam.list_access_keys(UserName=world.victim)["AccessKeyMetadata"]}
    disabled = view.key_disabled
    checks = [
        Check("incident completed", view.status == "completed", view.status),
        Check("leaked key disabled (then deleted to make room for the new one)",
              keys.get(world.leaked_key, "Deleted") in {"Inactive", "Deleted"}
              and disabled is not None and disabled.status == "Inactive",
              keys.get(world.leaked_key, "Deleted")),
        Check("the user's other key is untouched", keys.get(world.other_key) == "Active",
              str(keys.get(world.other_key))),
    ]
    checks.append(_cutoff_check(iam, world, view))
    bystanders_ok = all(
        k["Status"] == "Active"
        for user in world.bystanders
        for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    )
    checks.append(Check("other users' keys untouched", bystanders_ok))
    checks.append(_quarantine_check(iam, view))
    checks.append(_replacement_check(session, view, keys))
    checks.append(_notification_check(session, world, view))
    checks.append(_evidence_check(view, attacker))
    return tuple(checks)


def _cutoff_check(iam: Any, world: world_mod.World, view: IncidentView) -> Check:
    """The deny policy is attached, and its cutoff falls after the key was disabled (plus
    the propagation margin), so a session minted while the disabling spread dies too."""
    name = "deny policy attached, cutoff after the key was disabled"
    revoked = view.sessions_revoked
    disabled = view.step_for(KeyDisabled)
    cutoff = parse_iso(revoked.token_issue_time_before) if revoked else None
    disabled_at = disabled.effective_at if disabled else None
    if cutoff is None or disabled_at is None:
        return Check(name, False, "containment not recorded")
    try:
        document = iam.get_user_policy(UserName=world.victim,
                                       PolicyName=POLICY_NAME)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return Check(name, False, "policy missing")
    if isinstance(document, str):
        document = json.loads(document)
    return Check(name, document == deny_policy(cutoff) and cutoff > disabled_at,
                 f"cutoff {iso(cutoff)}, key disabled {iso(disabled_at)}")


def _quarantine_check(iam: Any, view: IncidentView) -> Check:
    """The user the attacker created through its session can do nothing any more."""
    name = f"attacker's user {world_mod.ATTACKER_USER} quarantined"
    policies = iam.list_user_policies(UserName=world_mod.ATTACKER_USER)["PolicyNames"]
    attacker = view.attacker
    listed = attacker is not None and any(
        p.get("name") == world_mod.ATTACKER_USER for p in attacker.principals_quarantined)
    return Check(name, "responder-quarantine" in policies and listed,
                 f"inline policies {policies}")


def _replacement_check(session: boto3.Session, view: IncidentView,
                       keys: Mapping[str, str]) -> Check:
    """The new key is Active, its secret is in Secrets Manager, and it works."""
    name = "replacement key stored in Secrets Manager and working"
    replacement = view.replacement
    if replacement is None or not replacement.secret_ref:
        return Check(name, False, "no replacement issued")
    stored = json.loads(session.client("secretsmanager").get_secret_value(
        SecretId=replacement.secret_ref)["SecretString"])
    who = boto3.Session(aws_access_key_id=stored["AccessKeyId"],
                        aws_secret_access_key=stored["SecretAccessKey"],
                        region_name=world_mod.REGION).client("sts").get_caller_identity()
    target = view.target
    ok = (stored["AccessKeyId"] == replacement.access_key_id
          and keys.get(str(replacement.access_key_id)) == "Active"
          and target is not None and who["Account"] == target.account_id)
    return Check(name, ok, str(replacement.access_key_id))


def _notification_check(session: boto3.Session, world: world_mod.World,
                        view: IncidentView) -> Check:
    """The on-call inbox subscribed to the topic received this incident's notice."""
    messages = session.client("sqs").receive_message(
        QueueUrl=world.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
    ok = any(view.id in m["Body"] for m in messages)
    return Check("notification delivered to the on-call topic", ok,
                 f"{len(messages)} message(s) in the inbox")


def _evidence_check(view: IncidentView, attacker: list[dict[str, Any]]) -> Check:
    """Every attacker event, the ones made with the minted session included, is in the
    evidence file."""
    name = "attacker's events (and its session's) in the evidence"
    evidence = view.evidence
    if evidence is None or not evidence.path:
        return Check(name, False, "no evidence collected")
    with open(evidence.path, encoding="utf-8") as lines:
        found = {json.loads(line)["eventID"] for line in lines}
    missing = [a["action"] for a in attacker if a["event_id"] not in found]
    return Check(name, not missing, f"{len(attacker) - len(missing)}/{len(attacker)} found"
                 + (f"; missing {missing}" if missing else ""))


def run(scenario: str = "basic") -> DrillResult:
    """Build the world, let the attacker act, respond, check the outcome."""
    if scenario not in SCENARIOS:
        raise BadInput(f"unknown drill scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    home = responder_home() / "drills" / stamp
    trail = CloudTrailFake()
    with fake_account() as sessions, trail.installed():
        world = world_mod.build(sessions())
        attacker = world_mod.attack(world, trail)
        ctx = RunContext(
            session_factory=sessions,
            home=home,
            retry=RetryPolicy(max_attempts=5, initial_seconds=0.01, max_seconds=0.1),
            source="drill",
            options=Options(notify_topic=world.topic_arn),
        )
        journal = SqliteJournal(home / "responder.db")
        try:
            incident_id = service.respond(ctx, journal, playbook.load("compromised-key"),
                                          world.leaked_key).id
        except ResponderError as exc:
            if exc.incident_id is None:
                raise
            incident_id = exc.incident_id
        view = IncidentView.load(journal, incident_id)
        checks = _checks(sessions(), world, view, attacker)
    journal.close()
    timeline = tuple(
        (round((s.started_at - view.started_at).total_seconds(), 3), s.name, s.status)
        for s in view.steps if s.started_at is not None
    )
    contain = (round((view.contained_at - view.started_at).total_seconds(), 3)
               if view.contained_at else None)
    return DrillResult(scenario, view, report.incident_document(view), checks,
                       tuple(attacker), str(home), contain, timeline)
