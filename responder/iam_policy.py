"""The IAM policies, generated from what the registered steps declare, one per use, each
action on only the resources it needs.

`python -m responder.iam_policy` rewrites docs/iam-policy.json (every use at once: the
role other accounts give the responder) and docs/policies/<use>.json; tests fail when a
step's declarations, these documents and the SAM template's role drift apart.

Which resources an action may name is data (SCOPES), decided once per action: an action
that can name a resource names exactly the ones this tool writes or reads (the evidence
bucket's `incidents/` prefix, the notice topic, `responder/*` secrets, the scheduler's
role and group); the IAM writes on users and roles are denied on the responder's own
roles and on the caller itself, so nothing the tool may do can grant it more. An action
IAM authorizes only on `*` (LookupEvents, the Describe calls, GetCallerIdentity) is
listed in UNSCOPED, so every action is a decision someone made.
"""

from __future__ import annotations

import json
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from responder.audit.credential_report import PERMISSIONS as AUDIT_PERMISSIONS
from responder.audit.run import ORG_PERMISSIONS
from responder.audit.run import PERMISSIONS as AUDIT_RUN_PERMISSIONS
from responder.audit.security_hub import PERMISSIONS as SECURITY_HUB_PERMISSIONS
from responder.run.verify import PERMISSIONS as VERIFY_PERMISSIONS
from responder.steps import REGISTRY, required_permissions


@dataclass(frozen=True)
class Scope:
    """The resources one action may name (templates over PLACES), and a condition."""

    name: str
    """The statements' id: `ResponderAct<name>`."""
    resources: tuple[str, ...]
    condition: Mapping[str, Any] = field(default_factory=dict)


_USER = Scope("Users", ("arn:{partition}:iam::{account}:user/*",))
_ROLE = Scope("Roles", ("arn:{partition}:iam::{account}:role/*",))
_GROUP = Scope("Groups", ("arn:{partition}:iam::{account}:group/*",))
_POLICY = Scope("Policies", ("arn:{partition}:iam::{account}:policy/*",))
_PROPOSED = Scope("ProposedPolicies",
                  ("arn:{partition}:iam::{account}:policy/responder-proposed-*",))
_SECRETS = Scope("Secrets", ("arn:{partition}:secretsmanager:*:{account}:secret:responder/*",))
_EVIDENCE = Scope("Evidence", ("arn:{partition}:s3:::{bucket}/incidents/*",))
_READ_OBJECTS = Scope("EvidenceAndTrailLogs", ("arn:{partition}:s3:::{bucket}/incidents/*",
                                               "arn:{partition}:s3:::{trail_bucket}/*"))
_ANYWHERE = Scope("Anywhere", ("*",))

SCOPES: Mapping[str, Scope] = {
    **dict.fromkeys((
        "iam:AttachUserPolicy", "iam:CreateAccessKey", "iam:DeleteAccessKey",
        "iam:DeleteUserPolicy", "iam:GetAccessKeyLastUsed", "iam:GetLoginProfile",
        "iam:GetUser", "iam:GetUserPolicy", "iam:ListAccessKeys",
        "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser", "iam:ListMFADevices",
        "iam:ListUserPolicies", "iam:ListUserTags", "iam:PutUserPolicy", "iam:TagUser",
        "iam:UntagUser", "iam:UpdateAccessKey"), _USER),
    **dict.fromkeys(("iam:DeleteRolePolicy", "iam:GetRole", "iam:GetRolePolicy",
                     "iam:PutRolePolicy"), _ROLE),
    **dict.fromkeys(("iam:GetGroupPolicy", "iam:ListAttachedGroupPolicies",
                     "iam:ListGroupPolicies"), _GROUP),
    **dict.fromkeys(("iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions"),
                    _POLICY),
    **dict.fromkeys(("iam:CreatePolicy", "iam:CreatePolicyVersion",
                     "iam:DeletePolicyVersion"), _PROPOSED),
    "sts:AssumeRole": Scope("ResponderRoles",
                            ("arn:{partition}:iam::*:role/{responder_role}",)),
    "securityhub:BatchImportFindings": Scope("OwnProduct", (
        "arn:{partition}:securityhub:*:{account}:product/{account}/default",)),
    "securityhub:GetFindings": Scope(
        "Hub", ("arn:{partition}:securityhub:*:{account}:hub/default",)),
    "iam:PassRole": Scope("SchedulerRole", ("{scheduler_role}",), {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}),
    **dict.fromkeys(("cloudtrail:GetTrailStatus", "cloudtrail:StartLogging"), Scope(
        "Trails", ("arn:{partition}:cloudtrail:*:{account}:trail/*",))),
    **dict.fromkeys(("guardduty:GetDetector", "guardduty:UpdateDetector"), Scope(
        "Detectors", ("arn:{partition}:guardduty:*:{account}:detector/*",))),
    "s3:PutObject": _EVIDENCE,
    "s3:GetObject": _READ_OBJECTS,  # harden --data-events reads a trail's log files
    "s3:ListBucket": Scope("TrailLogs", ("arn:{partition}:s3:::{trail_bucket}",)),
    "sns:Publish": Scope("Topic", ("{topic}",)),
    "scheduler:CreateSchedule": Scope(
        "Schedules", ("arn:{partition}:scheduler:*:{account}:schedule/{schedule_group}/*",)),
    **dict.fromkeys(("secretsmanager:CreateSecret", "secretsmanager:DescribeSecret",
                     "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"),
                    _SECRETS),
}
UNSCOPED = frozenset({
    "cloudtrail:LookupEvents", "ec2:DescribeAddresses", "ec2:DescribeInstances",
    "ec2:DescribeNatGateways",
    "ec2:DescribeRegions", "ec2:DescribeRouteTables", "sts:GetAccessKeyInfo",
    "sts:GetCallerIdentity", "iam:GenerateCredentialReport", "iam:GetCredentialReport",
    # Config's recorder actions name no resource type IAM can scope
    "config:DescribeConfigurationRecorderStatus", "config:StartConfigurationRecorder",
    # The organization's own calls: IAM takes no resource for them
    "organizations:ListAccounts", "organizations:DescribeOrganization",
})
"""Actions IAM authorizes on `*` only."""

GUARDED = ("iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutUserPolicy",
           "iam:DeleteUserPolicy", "iam:AttachUserPolicy", "iam:CreateAccessKey",
           "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:TagUser", "iam:UntagUser")
"""IAM writes that would grant the responder more if aimed at itself: denied there."""
OWN = ("arn:{partition}:iam::*:role/{responder_role}", "{own_role}")
"""The responder's own roles: the cross-account role in every account, and whatever
principal runs it (`${aws:PrincipalArn}`: the function's role, an on-call role)."""


@dataclass(frozen=True)
class Use:
    """One way the tool is run, and the registered actions and extra reads it needs."""

    name: str
    what: str
    actions: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


_CONTAIN = ("identify", "disable_access_key", "attach_deny_policy", "collect_cloudtrail",
            "contain_attacker", "replace_access_key", "notify", "harden",
            "identify_session", "revoke_session", "schedule_sweeps", "sweep_cloudtrail",
            "archive_evidence")
USES: tuple[Use, ...] = (
    Use("oncall", "respond compromised / finding / sweep / resume / close from a laptop: "
        "containment, evidence, the attacker's changes, notice, proposals",
        _CONTAIN, VERIFY_PERMISSIONS),
    Use("lambda", "the GuardDuty / Health / Security Hub function: the same as on call "
        "(its template adds the journal table and the cross-account role)",
        _CONTAIN, VERIFY_PERMISSIONS),
    Use("audit", "respond audit: the credential report",
        extra=(*AUDIT_PERMISSIONS, *AUDIT_RUN_PERMISSIONS)),
    Use("audit-org", "respond audit --org, from the management account or a delegated "
        "administrator: the organization's accounts and the responder's role in each "
        "(each account's role then needs the audit policy)", extra=ORG_PERMISSIONS),
    Use("audit-security-hub", "respond audit --to-security-hub: in each account audited",
        extra=SECURITY_HUB_PERMISSIONS),
    Use("audit-deactivate", "respond audit --deactivate-unused DAYS --yes: each unused key "
        "set Inactive in its own incident (in the key's account), re-read afterwards",
        ("identify", "retire_unused_key"), VERIFY_PERMISSIONS),
    Use("harden-apply", "respond harden USER --apply --yes: the proposal put in place",
        ("harden",), settings={"apply": True}),
    Use("harden-data-events", "respond harden USER --data-events s3://BUCKET/PREFIX: a "
        "trail's log files read for the user's data events", ("harden",),
        settings={"data_events": "s3://REPLACE_WITH_TRAIL_BUCKET"}),
    Use("rollback", "respond rollback ID --yes: a false positive's containment undone",
        ("rollback_containment",), VERIFY_PERMISSIONS),
    Use("rotate", "respond rotate: routine rotation", (
        "identify", "replace_access_key", "await_update", "test_access_key",
        "deactivate_old_key", "watch_old_key", "delete_old_key", "reactivate_old_key")),
)
BY_NAME = {u.name: u for u in USES}

DOCS_PLACES = {"partition": "aws", "account": "*", "bucket": "REPLACE_WITH_EVIDENCE_BUCKET",
               "topic": "arn:aws:sns:*:*:REPLACE_WITH_TOPIC_NAME",
               "scheduler_role": "arn:aws:iam::*:role/REPLACE_WITH_SCHEDULER_ROLE",
               "schedule_group": "default", "responder_role": "KeyResponder",
               "own_role": "${aws:PrincipalArn}", "trail_bucket": "REPLACE_WITH_TRAIL_BUCKET"}
"""What docs/ prints for each place. Each REPLACE_WITH_... is a valid ARN that matches
nothing until replaced (README): a policy pasted unedited grants less, never more."""
TEMPLATE_PLACES = {"partition": "${AWS::Partition}", "account": "${AWS::AccountId}",
                   "bucket": "${EvidenceBucket}", "topic": "${IncidentTopic}",
                   "scheduler_role": "${SchedulerRole.Arn}", "schedule_group": "default",
                   "responder_role": "${ResponderRoleName}",
                   "own_role": "${!aws:PrincipalArn}", "trail_bucket": ""}
"""What the SAM template's role says (each an !Sub string; `${!...}` is a literal). A place
left empty drops the resources that name it: the function reads no trail's log files."""


def actions_of(use: Use) -> list[str]:
    """Every IAM action the use needs, sorted."""
    found = {a for name in use.actions for a in REGISTRY[name].needed(use.settings)}
    return sorted(found | set(use.extra))


def everything() -> list[str]:
    """What any use needs: the role other accounts give the responder."""
    return sorted({a for use in USES for a in actions_of(use)})


def statements(actions: list[str], places: Mapping[str, str]) -> list[dict[str, Any]]:
    """One Allow statement per scope, and the deny that keeps the IAM writes off the
    responder itself."""
    groups: dict[str, list[str]] = {}
    scopes: dict[str, Scope] = {}
    for action in actions:
        scope = SCOPES.get(action, _ANYWHERE)
        scopes[scope.name] = scope
        groups.setdefault(scope.name, []).append(action)
    out: list[dict[str, Any]] = []
    for name, listed in sorted(groups.items(), key=lambda g: (g[0] != "Anywhere", g[0])):
        scope = scopes[name]
        resources = [r.format(**places) for r in scope.resources
                     if all(places.get(f) for _, f, _, _ in string.Formatter().parse(r) if f)]
        statement: dict[str, Any] = {
            "Sid": f"Responder{name}", "Effect": "Allow", "Action": listed,
            "Resource": resources[0] if len(resources) == 1 else resources}
        if scope.condition:
            statement["Condition"] = dict(scope.condition)
        out.append(statement)
    guarded = [a for a in GUARDED if a in actions]
    if guarded:
        out.append({"Sid": "ResponderNeverOnItself", "Effect": "Deny", "Action": guarded,
                    "Resource": [r.format(**places) for r in OWN]})
    return out


def document(use: str | None = None, places: Mapping[str, str] = DOCS_PLACES
             ) -> dict[str, Any]:
    """The policy of one use (None: every use at once), with `places` filled in."""
    actions = actions_of(BY_NAME[use]) if use else everything()
    return {"Version": "2012-10-17", "Statement": statements(actions, places)}


def render(use: str | None = None) -> str:
    return json.dumps(document(use), indent=2) + "\n"


def template_statements() -> list[dict[str, Any]]:
    """The Lambda's statements as the SAM template holds them (CloudFormation's long
    form: a resource naming a parameter or resource is an Fn::Sub)."""
    def sub(value: str) -> Any:
        return {"Fn::Sub": value} if "${" in value else value

    out = statements(actions_of(BY_NAME["lambda"]), TEMPLATE_PLACES)
    for statement in out:
        resource = statement["Resource"]
        statement["Resource"] = [sub(r) for r in resource] if isinstance(resource, list) \
            else sub(resource)
    return out


BEGIN = "            # BEGIN generated by `python -m responder.iam_policy`: the lambda use"
END = "            # END generated"


def template_yaml() -> str:
    """template_statements() as the lines between BEGIN and END in deploy/template.yaml."""
    def value(item: Any) -> str:
        return f'!Sub "{item["Fn::Sub"]}"' if isinstance(item, dict) else json.dumps(item)

    lines = [BEGIN]
    for statement in template_statements():
        lines += [f"            - Sid: {statement['Sid']}",
                  f"              Effect: {statement['Effect']}", "              Action:"]
        lines += [f"                - {a}" for a in statement["Action"]]
        resource = statement["Resource"]
        if isinstance(resource, list):
            lines += ["              Resource:", *(f"                - {value(r)}"
                                                  for r in resource)]
        else:
            lines.append(f"              Resource: {value(resource)}")
        for operator, pairs in statement.get("Condition", {}).items():
            lines += ["              Condition:", f"                {operator}:"]
            lines += [f"                  {k}: {json.dumps(v)}" for k, v in pairs.items()]
    return "\n".join([*lines, END]) + "\n"


def with_template_statements(template: str) -> str:
    """The template's text with the generated block put in (between BEGIN and END)."""
    head, _, rest = template.partition(BEGIN + "\n")
    _, _, tail = rest.partition(END + "\n")
    return head + template_yaml() + tail


def undecided() -> list[str]:
    """Declared actions with no decision about their resources (a test keeps it empty)."""
    return sorted({*required_permissions(), *everything()} - set(SCOPES) - UNSCOPED)


if __name__ == "__main__":  # pragma: no cover
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    (docs / "iam-policy.json").write_text(render())
    (docs / "policies").mkdir(exist_ok=True)
    for each in USES:
        (docs / "policies" / f"{each.name}.json").write_text(render(each.name))
    template = docs.parent / "deploy" / "template.yaml"
    template.write_text(with_template_statements(template.read_text("utf-8")))
    sys.stdout.write("docs/iam-policy.json, docs/policies/*.json and the template's role "
                     "written\n")
