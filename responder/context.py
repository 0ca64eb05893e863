"""What flows between the layers: frozen records built once and read everywhere.

The CLI (or the Lambda handler, or the drill) builds a RunContext; the runner adds the
Incident and, after identify, the Target. Steps receive them and never reach back into
the CLI's arguments.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from responder.aws import RetryPolicy, SessionFactory


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


@dataclass(frozen=True)
class Options:
    """Per-run choices from the command line or the trigger, read by steps."""

    replace: bool = True
    notify_topic: str | None = None
    slack_webhook: str | None = None
    role_arn: str | None = None

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
        )

    def as_dict(self) -> dict[str, Any]:
        # The webhook URL is a credential; keep only whether one was given.
        return {
            "replace": self.replace,
            "notify_topic": self.notify_topic,
            "slack_webhook": bool(self.slack_webhook),
            "role_arn": self.role_arn,
        }


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

    def incident_dir(self, incident_id: str) -> Path:
        return self.home / "incidents" / incident_id


@dataclass(frozen=True)
class Incident:
    """The journaled incident a run works on."""

    id: str
    access_key_id: str
    playbook: str
    started_at: datetime
    resumed: bool = False


@dataclass(frozen=True)
class Target:
    """Who owns the key, as identify found it."""

    user_name: str
    account_id: str

