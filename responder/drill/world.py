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


class Attacker:
    """The attacker's hands: each call is made for real against moto with the stolen
    credentials, then recorded in the CloudTrail fake as CloudTrail would record it, a
    few seconds apart, from the attacker's address. `done` is what it did, in order."""

    def __init__(self, world: World, trail: CloudTrailFake, *, minutes_ago: int = 3) -> None:
        self.world = world
        self.trail = trail
        self.at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        self.done: list[dict[str, Any]] = []
        self.temporary_key = ""
        self._late: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def session(self, key: str, secret: str, token: str | None = None) -> boto3.Session:
        return boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                             aws_session_token=token, region_name=REGION)

    @property
    def leaked(self) -> boto3.Session:
        return self.session(self.world.leaked_key, self.world.leaked_secret)

    def record(self, name: str, key: str, *, region: str = REGION, later: bool = False,
               **extra: Any) -> dict[str, Any]:
        """Record one event (`later`: made now, but not yet in the trail; see deliver)."""
        self.at += timedelta(seconds=3)
        event = {"region": region, "name": name, "key": key, "at": self.at, "extra": extra}
        action = {"action": name, "region": region, "access_key_id": key,
                  "at": self.at.isoformat().replace("+00:00", "Z"), "event_id": None,
                  "late": later}
        self.done.append(action)
        if not later:
            self._deliver(event, action)
        else:
            self._late.append((event, action))
        return action

    def deliver(self) -> None:
        """CloudTrail finally delivers the events it was late with."""
        for event, action in self._late:
            self._deliver(event, action)
        self._late.clear()

    def _deliver(self, event: dict[str, Any], action: dict[str, Any]) -> None:
        made = self.trail.record(event["region"], event["name"], event["key"],
                                 event_time=event["at"], user_name=self.world.victim,
                                 source_ip=ATTACKER_IP, user_agent=ATTACKER_AGENT,
                                 **event["extra"])
        action["action"] = f"{made['eventSource'].split('.')[0]}:{event['name']}"
        action["event_id"] = made["eventID"]

    def session_token(self) -> boto3.Session:
        """GetSessionToken with the leaked key: a session that outlives the key."""
        token = self.leaked.client("sts").get_session_token(
            DurationSeconds=129600)["Credentials"]
        # moto hands out a fixed AKIA id for session tokens; real STS answers ASIA...
        temporary = "ASIA" + token["AccessKeyId"][4:]
        self.record("GetSessionToken", self.world.leaked_key,
                    request_parameters={"durationSeconds": 129600},
                    response_elements={"credentials": {"accessKeyId": temporary,
                                                       "expiration": str(token["Expiration"])}})
        self.temporary_key = temporary
        return self.session(temporary, token["SecretAccessKey"], token["SessionToken"])


def attack(hands: Attacker) -> None:
    """What an attacker does in the first minute with a leaked key: look around, mint
    a session that outlives the key, persist with a new user, probe another region."""
    world = hands.world
    hands.leaked.client("sts").get_caller_identity()
    hands.record("GetCallerIdentity", world.leaked_key)
    hands.leaked.client("iam").list_users()
    hands.record("ListUsers", world.leaked_key)
    session = hands.session_token()
    session.client("iam").create_user(UserName=ATTACKER_USER)
    hands.record("CreateUser", hands.temporary_key,
                 request_parameters={"userName": ATTACKER_USER},
                 response_elements={"user": {"userName": ATTACKER_USER}})
    hands.leaked.client("ec2", region_name="eu-west-1").describe_instances()
    hands.record("DescribeInstances", world.leaked_key, region="eu-west-1")
