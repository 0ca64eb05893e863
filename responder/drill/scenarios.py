"""The drill's scenarios: each a rehearsal of one attack this tool answers.

A scenario lets the attacker act (real calls against moto, recorded in the CloudTrail
fake), runs the real playbook through the production entry points (`service.respond`,
`service.resume`, `followup.sweep`), and returns the checks only it can make; the
checks every response must pass are added by the drill itself (responder/drill).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.context import RunContext
from responder.drill import instance
from responder.drill.checks import Check, key_status
from responder.drill.stage import Played, Stage
from responder.drill.world import ATTACKER_USER, REGION, attack
from responder.incident.shapes import EvidenceSummary
from responder.run import followup, service

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
_PASSWORD = "-".join(("Drill", "console", "Passw0rd!"))
"""The attacker's console password, in the fake account only."""
PIVOT_ROLE = "deploy"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    play: Callable[[Stage], Played]


def _two_keys(stage: Stage) -> Played:
    """The user already has a second key: replacement must still fit (IAM allows two)."""
    attack(stage.hands)
    incident = stage.respond()
    view = stage.view(incident)
    iam = stage.iam
    quarantined = "responder-quarantine" in iam.list_user_policies(
        UserName=ATTACKER_USER)["PolicyNames"]
    replacement = view.replacement
    return incident, [
        Check("the user's other key is untouched",
              key_status(iam, stage.world.victim, stage.world.other_key) == "Active"),
        Check("replacement issued while the user held two keys",
              replacement is not None and key_status(
                  iam, stage.world.victim, str(replacement.access_key_id)) == "Active",
              str(replacement.access_key_id if replacement else None)),
        Check(f"attacker's user {ATTACKER_USER} quarantined", quarantined),
    ]


def _recon(stage: Stage) -> Played:
    """Enumeration from a foreign address: who am I, which users, buckets, instances."""
    hands, key = stage.hands, stage.world.leaked_key
    leaked = hands.leaked
    leaked.client("sts").get_caller_identity()
    hands.record("GetCallerIdentity", key)
    leaked.client("iam").list_users()
    hands.record("ListUsers", key)
    leaked.client("s3").list_buckets()
    hands.record("ListBuckets", key)
    leaked.client("ec2").describe_instances()
    hands.record("DescribeInstances", key)
    incident = stage.respond()
    evidence = stage.view(incident).evidence
    summary = (evidence.summary if evidence else None) or EvidenceSummary()
    names = set(summary.by_event_name)
    wanted = {"GetCallerIdentity", "ListUsers", "ListBuckets", "DescribeInstances"}
    return incident, [
        Check("the summary names the enumeration", wanted <= names, ", ".join(sorted(names))),
        Check("the summary names the attacker's address",
              "198.51.100.23" in summary.source_ips),
    ]


def _persistence(stage: Stage) -> Played:
    """A user of its own, with a key, a console password and AdministratorAccess."""
    hands, key = stage.hands, stage.world.leaked_key
    iam = hands.leaked.client("iam")
    iam.create_user(UserName=ATTACKER_USER)
    hands.record("CreateUser", key, request_parameters={"userName": ATTACKER_USER},
                 response_elements={"user": {"userName": ATTACKER_USER}})
    made = iam.create_access_key(UserName=ATTACKER_USER)["AccessKey"]["AccessKeyId"]
    hands.record("CreateAccessKey", key, request_parameters={"userName": ATTACKER_USER},
                 response_elements={"accessKey": {"accessKeyId": made, "status": "Active",
                                                   "userName": ATTACKER_USER}})
    iam.create_login_profile(UserName=ATTACKER_USER, Password=_PASSWORD)
    hands.record("CreateLoginProfile", key, request_parameters={"userName": ATTACKER_USER})
    iam.attach_user_policy(UserName=ATTACKER_USER, PolicyArn=ADMIN_POLICY)
    hands.record("AttachUserPolicy", key, request_parameters={
        "userName": ATTACKER_USER, "policyArn": ADMIN_POLICY})
    incident = stage.respond()
    attacker = stage.view(incident).attacker
    admin = stage.iam
    undo = [h.undo for h in (attacker.needs_human if attacker else ())]
    return incident, [
        Check(f"the attacker's user {ATTACKER_USER} is quarantined",
              "responder-quarantine" in admin.list_user_policies(
                  UserName=ATTACKER_USER)["PolicyNames"]),
        Check("the attacker's key is Inactive",
              key_status(admin, ATTACKER_USER, made) == "Inactive", made),
        Check("the AdministratorAccess attachment is listed with its undo command",
              any("detach-user-policy" in u and ADMIN_POLICY in u for u in undo),
              "; ".join(undo)),
    ]


def _session_pivot(stage: Stage) -> Played:
    """GetSessionToken and AssumeRole, then both temporary keys used."""
    hands, world = stage.hands, stage.world
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{world.account_id}:root"},
        "Action": "sts:AssumeRole"}]}
    role = stage.iam.create_role(RoleName=PIVOT_ROLE,
                                 AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    token_session = hands.session_token()
    token_session.client("s3").list_buckets()
    hands.record("ListBuckets", hands.temporary_key)
    assumed = hands.leaked.client("sts").assume_role(RoleArn=role["Arn"],
                                                     RoleSessionName="pivot")
    role_key = "ASIA" + assumed["Credentials"]["AccessKeyId"][4:]
    role_id = assumed["AssumedRoleUser"]["AssumedRoleId"]
    hands.record("AssumeRole", world.leaked_key, request_parameters={
        "roleArn": role["Arn"], "roleSessionName": "pivot"}, response_elements={
        "assumedRoleUser": {"assumedRoleId": role_id, "arn": assumed["AssumedRoleUser"]["Arn"]},
        "credentials": {"accessKeyId": role_key}})
    hands.record("ListUsers", role_key)
    incident = stage.respond()
    view = stage.view(incident)
    evidence, attacker = view.evidence, view.attacker
    revoked = [s for r in (attacker.sessions_revoked if attacker else ())
               for s in r.sessions]
    keys = set(evidence.temporary_key_ids) if evidence else set()
    return incident, [
        Check("the evidence holds both sessions' events",
              {hands.temporary_key, role_key} <= keys, ", ".join(sorted(keys))),
        Check("the role session is revoked by name", role_id in revoked, ", ".join(revoked)),
    ]


OUTSIDE_ACCOUNT = "999988887777"
"""The account the attacker shares a snapshot with (nobody's: the drill is offline)."""
SECRET_NAME = "prod/payments/db-credentials"  # noqa: S105 - a name, in the fake account


def _exfiltration(stage: Stage) -> Played:
    """A snapshot of a production volume shared with an outside account, and a secret
    read: the response names both, with the commands that undo the share and rotate the
    secret."""
    hands, key = stage.hands, stage.world.leaked_key
    admin = stage.sessions()
    volume = admin.client("ec2").create_volume(AvailabilityZone=f"{REGION}a", Size=8)
    snapshot = str(admin.client("ec2").create_snapshot(VolumeId=volume["VolumeId"])
                   ["SnapshotId"])
    admin.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString="drill-only")
    add = {"add": {"items": [{"userId": OUTSIDE_ACCOUNT}]}}
    hands.leaked.client("ec2").modify_snapshot_attribute(
        SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add",
        UserIds=[OUTSIDE_ACCOUNT])
    hands.record("ModifySnapshotAttribute", key, request_parameters={
        "snapshotId": snapshot, "createVolumePermission": add,
        "attributeType": "CREATE_VOLUME_PERMISSION"},
        response_elements={"_return": True})
    hands.leaked.client("secretsmanager").get_secret_value(SecretId=SECRET_NAME)
    hands.record("GetSecretValue", key, request_parameters={"secretId": SECRET_NAME})
    incident = stage.respond()
    attacker = stage.view(incident).attacker
    read = [c for c in (attacker.credentials_read if attacker else ()) if c.name == SECRET_NAME]
    granted = {g.principal for g in (attacker.granted_to if attacker else ())}
    share = [h for h in (attacker.needs_human if attacker else ()) if h.resource == snapshot]
    undo = share[0].undo if share else ""
    return incident, [
        Check("the secret read is named, with the command that rotates it",
              bool(read) and "rotate-secret" in read[0].rotate, read[0].rotate if read else
              "not named"),
        Check(f"the outside account {OUTSIDE_ACCOUNT} is named", OUTSIDE_ACCOUNT in granted,
              ", ".join(sorted(granted))),
        Check("the snapshot share is listed with the command that removes it",
              "modify-snapshot-attribute" in undo and "--operation-type remove" in undo
              and OUTSIDE_ACCOUNT in undo, undo or "not listed"),
    ]


class DrillCrash(BaseException):
    """The drill killing its own runner (BaseException: no step may catch it)."""


def _crashing(ctx: RunContext, operation: str) -> RunContext:
    """`ctx` whose sessions crash the runner once `operation` has succeeded."""
    crashed: list[str] = []

    def crash(**_: Any) -> None:
        if not crashed:
            crashed.append(operation)
            raise DrillCrash(operation)

    def hooked() -> Any:
        session = ctx.session_factory()
        session.events.register(f"after-call.iam.{operation}", crash)
        return session

    return dataclasses.replace(ctx, session_factory=hooked)


def _crash_midway(stage: Stage) -> Played:
    """The runner dies once the key is disabled; `respond resume` finishes the job."""
    attack(stage.hands)
    with contextlib.suppress(DrillCrash):
        stage.respond(_crashing(stage.ctx, "UpdateAccessKey"))
    (record,) = stage.journal.recent()
    crashed_status = record.status
    service.resume(stage.ctx, stage.journal, record.id)
    view = stage.view(record.id)
    updates = [c for c in view.calls if c.operation == "UpdateAccessKey"
               and c.outcome in {"ok", "sending"}]
    return record.id, [
        Check("the runner was killed after disabling the key", crashed_status == "running",
              crashed_status),
        Check("the resume finished the response", view.status == "completed", view.status),
        Check("UpdateAccessKey was sent once, not again on resume", len(updates) == 1,
              f"{len(updates)} sent"),
    ]


def _late_delivery(stage: Stage) -> Played:
    """A key the attacker made before the response, whose event CloudTrail delivers
    only afterwards: the sweep finds it and disables the key."""
    hands, key = stage.hands, stage.world.leaked_key
    hands.leaked.client("sts").get_caller_identity()
    hands.record("GetCallerIdentity", key)
    made = hands.leaked.client("iam").create_access_key(
        UserName="bob")["AccessKey"]["AccessKeyId"]
    hands.record("CreateAccessKey", key, later=True, request_parameters={"userName": "bob"},
                 response_elements={"accessKey": {"accessKeyId": made, "userName": "bob",
                                                  "status": "Active"}})
    incident = stage.respond()
    missed = key_status(stage.iam, "bob", made)
    hands.deliver()
    swept = followup.sweep(stage.ctx, stage.journal, incident)
    found = stage.view(incident).sweeps_found
    return incident, [
        Check("the late key was not yet known to the response", missed == "Active", missed),
        Check("the sweep found the late event", swept.status == "done" and bool(found)
              and found[-1].new_events >= 1, swept.status),
        Check("the sweep disabled the attacker's key",
              key_status(stage.iam, "bob", made) == "Inactive", made),
    ]


SCENARIOS: Mapping[str, Scenario] = {s.name: s for s in (
    Scenario("leaked-key-recon", "enumeration from a foreign IP; the evidence names it",
             _recon),
    Scenario("persistence", "a user with a key, a console password and AdministratorAccess",
             _persistence),
    Scenario("session-pivot", "GetSessionToken and AssumeRole, both sessions used", _session_pivot),
    Scenario("two-keys", "the user holds two keys; replacement still succeeds", _two_keys),
    Scenario("crash-midway", "the runner is killed after disabling the key, then resumed",
             _crash_midway),
    Scenario("instance-exfiltration", "an instance role's session used from outside AWS, "
             "answered from the GuardDuty finding", instance.play),
    Scenario("exfiltration", "a snapshot shared with an outside account and a secret "
             "read; both are named, with the undo and the rotation", _exfiltration),
    Scenario("late-delivery", "CloudTrail delivers an attacker event after the response; "
             "the sweep contains it", _late_delivery),
)}
