"""The drill's fake account: a few users, one leaked key, an attacker that uses it.

Everything here runs inside moto's in-process mock, so a drill can never reach a real
account whatever credentials or endpoint the shell has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

REGION = "us-east-1"
RESPONDER_KEY = "AKIADRILLRESPONDER01"


@dataclass(frozen=True)
class World:
    account_id: str
    victim: str
    leaked_key: str
    leaked_secret: str
    other_key: str
    bystanders: tuple[str, ...]


def build(session: boto3.Session) -> World:
    """Users alice (two keys, one leaked), bob and ci-deploy (a key each)."""
    iam = session.client("iam", region_name=REGION)
    for name in ("alice", "bob", "ci-deploy"):
        iam.create_user(UserName=name)
    iam.create_group(GroupName="developers")
    iam.add_user_to_group(GroupName="developers", UserName="alice")
    iam.put_user_policy(
        UserName="alice",
        PolicyName="s3-read",
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}],
        }),
    )
    leaked = iam.create_access_key(UserName="alice")["AccessKey"]
    other = iam.create_access_key(UserName="alice")["AccessKey"]
    for name in ("bob", "ci-deploy"):
        iam.create_access_key(UserName=name)
    account = session.client("sts", region_name=REGION).get_caller_identity()["Account"]
    return World(
        account_id=account,
        victim="alice",
        leaked_key=leaked["AccessKeyId"],
        leaked_secret=leaked["SecretAccessKey"],
        other_key=other["AccessKeyId"],
        bystanders=("bob", "ci-deploy"),
    )


def attack(world: World) -> list[dict[str, Any]]:
    """What an attacker does in the first minute with a leaked key: look around, mint
    a session that outlives the key, try to persist. Returns what it did."""
    attacker = boto3.Session(
        aws_access_key_id=world.leaked_key,
        aws_secret_access_key=world.leaked_secret,
        region_name=REGION,
    )
    sts = attacker.client("sts")
    done: list[dict[str, Any]] = []
    who = sts.get_caller_identity()
    done.append({"action": "sts:GetCallerIdentity", "arn": who["Arn"]})
    token = sts.get_session_token(DurationSeconds=129600)["Credentials"]
    done.append({"action": "sts:GetSessionToken", "temporary_key": token["AccessKeyId"]})
    attacker.client("iam").list_users()
    done.append({"action": "iam:ListUsers"})
    return done
