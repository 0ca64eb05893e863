"""The drill's fake account: a few users, one leaked key, an attacker that uses it.

Everything here runs inside moto's in-process mock, so a drill can never reach a real
account whatever credentials or endpoint the shell has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from responder.drill.cloudtrail import CloudTrailFake

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
    topic_arn: str
    inbox_url: str


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
    topic, inbox = _oncall_channel(session)
    return World(
        account_id=account,
        victim="alice",
        leaked_key=leaked["AccessKeyId"],
        leaked_secret=leaked["SecretAccessKey"],
        other_key=other["AccessKeyId"],
        bystanders=("bob", "ci-deploy"),
        topic_arn=topic,
        inbox_url=inbox,
    )


def _oncall_channel(session: boto3.Session) -> tuple[str, str]:
    """An SNS topic for incidents with an SQS queue subscribed: the drill's pager."""
    sns = session.client("sns", region_name=REGION)
    sqs = session.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="security-incidents")["TopicArn"]
    inbox = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    return topic, inbox


ATTACKER_IP = "198.51.100.23"
ATTACKER_AGENT = "python-requests/2.31 (kali)"
ATTACKER_USER = "support-backup"
"""The user the attacker creates (through a session) to stay in after the key dies."""


def attack(world: World, trail: CloudTrailFake) -> list[dict[str, Any]]:
    """What an attacker does in the first minute with a leaked key: look around, mint
    a session that outlives the key, persist with a new user, probe another region.

    Each call is made for real against moto and recorded in the CloudTrail fake, as
    CloudTrail would record it. Returns what was done, with the event ids.
    """
    attacker = boto3.Session(
        aws_access_key_id=world.leaked_key,
        aws_secret_access_key=world.leaked_secret,
        region_name=REGION,
    )
    base = datetime.now(UTC) - timedelta(minutes=3)
    done: list[dict[str, Any]] = []

    def record(region: str, name: str, key: str, offset: int, **extra: Any) -> None:
        event = trail.record(region, name, key, event_time=base + timedelta(seconds=offset),
                             user_name=world.victim, source_ip=ATTACKER_IP,
                             user_agent=ATTACKER_AGENT, **extra)
        done.append({"action": f"{event['eventSource'].split('.')[0]}:{name}",
                     "region": region, "access_key_id": key, "event_id": event["eventID"]})

    sts = attacker.client("sts")
    sts.get_caller_identity()
    record(REGION, "GetCallerIdentity", world.leaked_key, 0)
    attacker.client("iam").list_users()
    record(REGION, "ListUsers", world.leaked_key, 5)
    token = sts.get_session_token(DurationSeconds=129600)["Credentials"]
    # moto hands out a fixed AKIA id for session tokens; real STS answers ASIA...
    temporary_key = "ASIA" + token["AccessKeyId"][4:]
    record(REGION, "GetSessionToken", world.leaked_key, 9,
           request_parameters={"durationSeconds": 129600},
           response_elements={"credentials": {"accessKeyId": temporary_key,
                                              "expiration": str(token["Expiration"])}})
    session = boto3.Session(
        aws_access_key_id=temporary_key,
        aws_secret_access_key=token["SecretAccessKey"],
        aws_session_token=token["SessionToken"],
        region_name=REGION,
    )
    session.client("iam").create_user(UserName=ATTACKER_USER)
    record(REGION, "CreateUser", temporary_key, 20,
           request_parameters={"userName": ATTACKER_USER},
           response_elements={"user": {"userName": ATTACKER_USER}})
    attacker.client("ec2", region_name="eu-west-1").describe_instances()
    record("eu-west-1", "DescribeInstances", world.leaked_key, 31)
    return done
