"""The instance-exfiltration scenario: an EC2 instance role's session used from outside
AWS, answered as GuardDuty reports it, through `respond finding`'s path (trigger.py).

The leaked session must die away from the instance and keep working on it: the deny
names that one session and is conditioned on the instance's own network, so the check
reads the role's policies in moto and the instance's state, not the responder's word.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from responder import findings
from responder.drill.checks import Check
from responder.drill.cloudtrail_records import role_session_identity
from responder.drill.world import ATTACKER_IP, REGION
from responder.iam.role_policy import REVOKE_POLICY as ROLE_DENY
from responder.run import trigger

if TYPE_CHECKING:
    from responder.drill.stage import Played, Stage

ROLE = "web-instance-role"
SESSION_KEY = "ASIADRILLWEBINST0001"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def _launch(stage: Stage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The role, its instance profile and a running instance in a VPC of its own."""
    session = stage.sessions()
    iam: Any = session.client("iam")
    ec2: Any = session.client("ec2", region_name=REGION)
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)["Role"]
    iam.create_instance_profile(InstanceProfileName="web-instance-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="web-instance-profile",
                                     RoleName=ROLE)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 IamInstanceProfile={"Name": "web-instance-profile"}
                                 )["Instances"][0]
    return role, instance


def _finding(stage: Stage, role: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    """GuardDuty's InstanceCredentialExfiltration.OutsideAWS, as EventBridge delivers it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    account = stage.world.account_id
    return {
        "version": "0", "id": "drill-instance-exfiltration", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": account, "time": now, "region": REGION,
        "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": account, "region": REGION, "partition": "aws",
            "id": "drill0instance0exfiltration0001",
            "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {
                    "accessKeyId": SESSION_KEY,
                    "principalId": f"{role['RoleId']}:{instance['InstanceId']}",
                    "userName": ROLE, "userType": "AssumedRole"},
                "instanceDetails": {
                    "instanceId": instance["InstanceId"], "instanceState": "running",
                    "networkInterfaces": [{
                        "privateIpAddress": instance["PrivateIpAddress"],
                        "subnetId": instance["SubnetId"], "vpcId": instance["VpcId"]}]},
            },
            "service": {
                "serviceName": "guardduty", "resourceRole": "TARGET", "archived": False,
                "count": 1, "eventFirstSeen": now, "eventLastSeen": now,
                "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {
                    "api": "ListBuckets", "serviceName": "s3.amazonaws.com",
                    "callerType": "Remote IP",
                    "remoteIpDetails": {"ipAddressV4": ATTACKER_IP}}}},
            "severity": 8, "createdAt": now, "updatedAt": now,
            "title": f"Credentials for the EC2 instance role {ROLE} were used from an "
                     "external IP address.",
        },
    }


def play(stage: Stage) -> Played:
    role, instance = _launch(stage)
    hands = stage.hands
    issued = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    identity = role_session_identity(stage.world.account_id, role["Arn"], role["RoleId"],
                                     instance["InstanceId"], SESSION_KEY, issued_at=issued)
    stolen = hands.session(SESSION_KEY, "drill-stolen-secret", "drill-stolen-token")
    stolen.client("s3").list_buckets()
    hands.record("ListBuckets", SESSION_KEY, identity=identity)
    stolen.client("iam").list_roles()
    hands.record("ListRoles", SESSION_KEY, identity=identity)
    (outcome,) = trigger.respond_all(stage.ctx, stage.journal, findings.parse_each(
        _finding(stage, role, instance), origin="drill finding"))
    incident = outcome.document.document.incident_id or ""
    if not incident:
        raise RuntimeError(f"the finding opened no incident: {outcome.error}")
    return incident, _checks(stage, role, instance)


def _checks(stage: Stage, role: dict[str, Any], instance: dict[str, Any]) -> list[Check]:
    session = stage.sessions()
    iam: Any = session.client("iam")
    ec2: Any = session.client("ec2", region_name=REGION)
    names = iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    document: dict[str, Any] = {}
    if ROLE_DENY in names:
        raw = iam.get_role_policy(RoleName=ROLE, PolicyName=ROLE_DENY)["PolicyDocument"]
        document = json.loads(raw) if isinstance(raw, str) else raw
    statements = [s for s in document.get("Statement", []) if s.get("Effect") == "Deny"]
    text = json.dumps(statements)
    state = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])[
        "Reservations"][0]["Instances"][0]["State"]["Name"]
    session_id = f"{role['RoleId']}:{instance['InstanceId']}"
    return [
        Check("the leaked session is denied on its role, by name", session_id in text,
              ROLE_DENY if statements else "no deny on the role"),
        Check("the deny holds only away from the instance (its VPC and address)",
              bool(statements) and all(s.get("Condition") for s in statements)
              and instance["VpcId"] in text and instance["PrivateIpAddress"] in text,
              f"{len(statements)} statement(s)"),
        Check("the instance keeps working (running, its role not quarantined)",
              state == "running" and "responder-quarantine" not in names, state),
    ]
