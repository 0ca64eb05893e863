"""What flows between the layers: frozen records built once and read everywhere.

The CLI (or the Lambda handler, or the drill) builds a RunContext; the runner adds the
Incident and, after identify, the Target. Steps receive them and never reach back into
the CLI's arguments.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from responder.aws import RetryPolicy, SessionFactory, assuming


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, the one timestamp format of journal, logs and output."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def responder_home() -> Path:
    """`$RESPONDER_HOME`, defaulting to ~/.local/state/responder (DESIGN §2)."""
    env = os.environ.get("RESPONDER_HOME")
    return Path(env) if env else Path.home() / ".local" / "state" / "responder"


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SessionHint:
    """What a finding (or `--principal`) already says about a leaked temporary key's
    session. identify falls back on it when CloudTrail has no event for the key yet (it
    delivers events minutes late); revoke-session takes the instance's network from it
    instead of asking EC2. Stored with the incident's options, so a resume has it too."""

    principal_arn: str | None = None
    """arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, or arn:aws:iam::ACCOUNT:user/NAME
    for a user's session (GetSessionToken)."""
    role_id: str | None = None
    """AROA...: the role's unique id, when the finding's principalId names it."""
    instance_id: str | None = None
    region: str | None = None
    """Where the instance runs (the finding's region)."""
    vpc_id: str | None = None
    private_ip: str | None = None
    """The instance's primary private IPv4 address."""
    public_ips: tuple[str, ...] = ()
    """The instance's own public addresses, as the finding lists them."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "principal_arn": self.principal_arn, "role_id": self.role_id,
            "instance_id": self.instance_id, "region": self.region, "vpc_id": self.vpc_id,
            "private_ip": self.private_ip, "public_ips": list(self.public_ips),
        }

    @classmethod
    def from_dict(cls, data: Any) -> SessionHint | None:
        """Read back leniently (a journal of an older version has no hint at all)."""
        if not isinstance(data, Mapping):
            return None
        ips = data.get("public_ips")
        return cls(
            principal_arn=_text_or_none(data.get("principal_arn")),
            role_id=_text_or_none(data.get("role_id")),
            instance_id=_text_or_none(data.get("instance_id")),
            region=_text_or_none(data.get("region")),
            vpc_id=_text_or_none(data.get("vpc_id")),
            private_ip=_text_or_none(data.get("private_ip")),
            public_ips=tuple(str(i) for i in ips) if isinstance(ips, list | tuple) else (),
        )


@dataclass(frozen=True)
class Options:
    """Per-run choices from the command line or the trigger, read by steps."""

    replace: bool = True
    notify_topic: str | None = None
    slack_webhook: str | None = None
    role_arn: str | None = None
    session: SessionHint | None = None
    """For a temporary key: what the finding or `--principal` says about its session."""
    evidence_bucket: str | None = None
    """S3 bucket the incident's files are copied to (--evidence-bucket)."""
    confirmed: bool = False
    """`respond rotate --continue`: a human says the applications use the new key (or
    that a missed one is fixed). Said by this invocation only, never stored."""
    check_command: str | None = None
    """A rotation's check that the applications use the new key (--check-command)."""
    grace_hours: float | None = None
    """A rotation's grace period before the old key is deleted (--grace-hours)."""
    finding_first_seen: str | None = None
    """When the triggering finding's activity was first seen (harden's cutoff)."""

    def resumed_with(self, stored: Mapping[str, Any]) -> Options:
        """Options for resuming an incident started with `stored` (its as_dict()): what
        this invocation says wins (`--no-replace` turns replacement off for the rest of the
        incident: the way out of a replace-key that cannot succeed); the webhook URL was
        never stored, so it must come again (RESPONDER_SLACK_WEBHOOK)."""
        return Options(
            replace=self.replace and bool(stored.get("replace", True)),
            notify_topic=self.notify_topic or stored.get("notify_topic"),
            slack_webhook=self.slack_webhook,
            role_arn=self.role_arn or stored.get("role_arn"),
            session=self.session or SessionHint.from_dict(stored.get("session")),
            evidence_bucket=self.evidence_bucket or stored.get("evidence_bucket"),
            confirmed=self.confirmed,
            check_command=self.check_command or stored.get("check_command"),
            grace_hours=self.grace_hours if self.grace_hours is not None
            else stored.get("grace_hours"),
            finding_first_seen=self.finding_first_seen or stored.get("finding_first_seen"),
        )

    def as_dict(self) -> dict[str, Any]:
        # The webhook URL is a credential; keep only whether one was given.
        return {
            "replace": self.replace,
            "notify_topic": self.notify_topic,
            "slack_webhook": bool(self.slack_webhook),
            "role_arn": self.role_arn,
            "session": self.session.as_dict() if self.session is not None else None,
            "evidence_bucket": self.evidence_bucket,
            **({"check_command": self.check_command} if self.check_command else {}),
            **({"grace_hours": self.grace_hours} if self.grace_hours is not None else {}),
            **({"finding_first_seen": self.finding_first_seen}
               if self.finding_first_seen else {}),
        }


@dataclass(frozen=True)
class Scheduler:
    """Where one-time EventBridge Scheduler schedules send a sweep: the Lambda deployment
    invokes itself (`target_arn`) through the role the scheduler assumes."""

    target_arn: str
    role_arn: str
    group: str = "default"


@dataclass(frozen=True)
class RunContext:
    """How to reach AWS and where to keep state, fixed for the whole run."""

    session_factory: SessionFactory
    home: Path
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = utcnow
    options: Options = field(default_factory=Options)
    lease_seconds: float = 60.0
    source: str = "cli"
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    """Rate limiters wait with these; tests pass a virtual clock so no test sleeps."""
    progress: Callable[[str, Mapping[str, Any]], None] | None = None
    """Long steps report progress here; the CLI draws it on a terminal."""
    role_arn_template: str | None = None
    """e.g. arn:aws:iam::{account_id}:role/KeyResponder: how to reach another account."""
    scheduler: Scheduler | None = None
    """Set in Lambda: sweeps are scheduled with EventBridge Scheduler instead of waiting
    for `respond sweep` or --watch."""
    home_account: str | None = None
    """The account these credentials act in, when known without asking AWS (the Lambda
    function's own, from its ARN; the role's, once acting through one)."""

    def incident_dir(self, incident_id: str) -> Path:
        return self.home / "incidents" / incident_id

    def via_role(self, role_arn: str) -> RunContext:
        """The same run, acting through `role_arn` (remembered so a resume uses it again)."""
        return dataclasses.replace(
            self,
            session_factory=assuming(self.session_factory, role_arn),
            options=dataclasses.replace(self.options, role_arn=role_arn),
            home_account=role_arn.split(":")[4] or None,
        )
