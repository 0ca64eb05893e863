"""Leaked temporary keys laid down for real: a role (and an instance) made in moto, the
key's events recorded in the CloudTrail fake with the userIdentity CloudTrail writes for
them. Shared by the session black-box tests and the session crash matrix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import REGION, Account

from responder.drill.cloudtrail import CloudTrailFake
from responder.drill.cloudtrail_records import role_session_identity

ACCOUNT_ID = "123456789012"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def make_role(account: Account, name: str) -> dict[str, Any]:
    return dict(account.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"])


def leak_role_session(account: Account, trail: CloudTrailFake, key: str, session: str,
                      role_name: str = "app") -> dict[str, Any]:
    """Role `role_name`, whose session `session` (key `key`) listed buckets 4 minutes ago."""
    role = make_role(account, role_name)
    at = datetime.now(UTC) - timedelta(minutes=4)
    identity = role_session_identity(ACCOUNT_ID, role["Arn"], role["RoleId"], session, key,
                                     issued_at=(at - timedelta(minutes=30)).isoformat())
    trail.record(REGION, "ListBuckets", key, event_time=at, user_name=session,
                 identity=identity)
    return role


@dataclass(frozen=True)
class Instance:
    instance_id: str
    vpc_id: str
    private_ip: str


def launch_instance(account: Account) -> Instance:
    """An instance in a subnet of its own VPC (no public address, no NAT)."""
    ec2 = account.session.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                             SubnetId=subnet)["Instances"][0]
    return Instance(made["InstanceId"], vpc, made["PrivateIpAddress"])


def inline_policies(account: Account, kind: str, name: str) -> dict[str, dict[str, Any]]:
    """A role's or user's inline policies, by name."""
    iam = account.iam
    if kind == "role":
        names = iam.list_role_policies(RoleName=name)["PolicyNames"]
        return {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for p in names}
    names = iam.list_user_policies(UserName=name)["PolicyNames"]
    return {p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
            for p in names}
