"""Turning back on what the attacker turned off to blind the defenders: a trail's
logging, a GuardDuty detector, a Config recorder.

Only these three, because turning them on again is safe whoever turned them off (no
data changes, nothing is deleted, the owner can stop them again with one command), and
an attacker who stopped them is counting on the silence. Each is read first (already on:
nothing is done, and that is said), turned on, and read again: `restored` is claimed
only when the second read shows it on. Everything else the attacker weakened stays a
human's decision, listed with its command.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed
from responder.incident.shapes import RestoredDefense


@dataclass(frozen=True)
class Defense:
    """How to read one kind of defense and turn it on, as API calls."""

    noun: str
    read: Callable[[str], ApiCall]
    is_on: Callable[[Mapping[str, Any]], bool | None]
    """The read's answer -> on, off, or None when the answer does not name it (gone)."""
    turn_on: Callable[[str], ApiCall]
    turn_off: str
    """The command that turns it off again, `{name}` and `{region}` to fill: what a
    rollback prints and leaves to a human (it never turns a defense off itself)."""

    def off_command(self, name: str, region: str) -> str:
        return self.turn_off.format(name=shlex.quote(name), region=shlex.quote(region))

    @property
    def permissions(self) -> tuple[str, ...]:
        return (self.read("x").iam_action, self.turn_on("x").iam_action)


def _recording(found: Mapping[str, Any]) -> bool | None:
    statuses = found.get("ConfigurationRecordersStatus") or []
    return bool(statuses[0].get("recording")) if statuses else None


DEFENSES: dict[str, Defense] = {
    "trail": Defense(
        "CloudTrail trail",
        lambda name: ApiCall("cloudtrail", "GetTrailStatus", {"Name": name}),
        lambda found: bool(found.get("IsLogging")),
        lambda name: ApiCall("cloudtrail", "StartLogging", {"Name": name}, mutating=True),
        "aws cloudtrail stop-logging --region {region} --name {name}"),
    "detector": Defense(
        "GuardDuty detector",
        lambda name: ApiCall("guardduty", "GetDetector", {"DetectorId": name}),
        lambda found: found.get("Status") == "ENABLED",
        lambda name: ApiCall("guardduty", "UpdateDetector", {"DetectorId": name,
                                                            "Enable": True}, mutating=True),
        "aws guardduty update-detector --region {region} --detector-id {name} --no-enable"),
    "recorder": Defense(
        "Config recorder",
        lambda name: ApiCall("config", "DescribeConfigurationRecorderStatus",
                             {"ConfigurationRecorderNames": [name]}),
        _recording,
        lambda name: ApiCall("config", "StartConfigurationRecorder",
                             {"ConfigurationRecorderName": name}, mutating=True),
        "aws configservice stop-configuration-recorder --region {region} "
        "--configuration-recorder-name {name}"),
}
PERMISSIONS = tuple(p for d in DEFENSES.values() for p in d.permissions)
READ_PERMISSIONS = tuple(d.read("x").iam_action for d in DEFENSES.values())
"""What verification needs to read them again."""


def state(api: Api, kind: str, name: str, region: str) -> str:
    """`on`, `off`, `gone`, or why it could not be read."""
    defense = DEFENSES[kind]
    try:
        on = defense.is_on(api.call(defense.read(name), region=region))
    except AwsCallFailed as exc:
        gone = exc.code in {"TrailNotFoundException", "NoSuchConfigurationRecorderException",
                            "BadRequestException", "ResourceNotFoundException"}
        return "gone" if gone else f"unreadable ({exc.code})"
    return "gone" if on is None else "on" if on else "off"


@dataclass(frozen=True)
class Outcome:
    """One defense after the attempt: restored (with `already`), or why not."""

    restored: RestoredDefense | None
    why_not: str = ""


def restore(api: Api, kind: str, name: str, region: str, event_id: str | None) -> Outcome:
    """Read, turn on when off, read again; claimed only when the last read shows it on."""
    before = state(api, kind, name, region)
    if before == "on":
        return Outcome(RestoredDefense(kind, name, region, True, event_id))
    if before != "off":
        return Outcome(None, f"{DEFENSES[kind].noun} {name} is {before}")
    try:
        api.call(DEFENSES[kind].turn_on(name), region=region)
    except AwsCallFailed as exc:
        return Outcome(None, f"turning {DEFENSES[kind].noun} {name} on was refused "
                             f"({exc.code})")
    after = state(api, kind, name, region)
    if after != "on":
        return Outcome(None, f"{DEFENSES[kind].noun} {name} read {after} after it was "
                             "turned on")
    return Outcome(RestoredDefense(kind, name, region, False, event_id))
