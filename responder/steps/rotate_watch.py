"""A rotation's grace period: the old key is Inactive but kept, and GetAccessKeyLastUsed
says whether an application still reached for it after the applications were said to be
updated. Such a use means one was missed: the rotation halts and alerts, and the human
may re-activate the old key (`respond rotate --reactivate`) while that application is
moved, then `--continue`, which deactivates it again and starts a fresh grace period.

The step keeps its own state in what it journals: while it waits, its detail holds the
window (since, until); a `--continue` after an alert is the human saying the missed
application is fixed, which starts a new window from that moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import iso, parse_iso
from responder.errors import StepFailed, Waiting
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts_rotation import (
    AppsUpdated,
    Awaiting,
    OldKeyDeactivated,
    OldKeyQuiet,
    OldKeyReactivated,
    OldKeyUsed,
)
from responder.steps.rotate import continue_command, key_status

DEFAULT_GRACE_HOURS = 24.0


def _moment(value: Any) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) and value else None


@register("watch_old_key")
class WatchOldKey(Action):
    permissions = ("iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey",
                   "sns:Publish")
    kind = "rotation"
    result = OldKeyQuiet
    may_wait = True
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"grace_hours": {"type": "number", "minimum": 0}},
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        return (ApiCall("iam", "GetAccessKeyLastUsed",
                        {"AccessKeyId": inp.incident.access_key_id},
                        note=f"until the grace period "
                             f"({self._grace(inp).total_seconds() / 3600:g} h) ends"),)

    def _grace(self, inp: StepInput) -> timedelta:
        hours = inp.ctx.options.grace_hours
        if hours is None:
            hours = float(inp.settings.get("grace_hours", DEFAULT_GRACE_HOURS))
        return timedelta(hours=max(0.0, hours))

    def _window(self, inp: StepInput, api: Api, user: str) -> tuple[datetime, datetime]:
        """(since, until): uses at or after `since` are a missed application's; the old
        key is deleted once `until` has passed quietly."""
        now = inp.ctx.clock()
        old = inp.incident.access_key_id
        view = inp.view
        mine = next((s for s in view.steps if s.name == inp.step_name), None) if view else None
        waited = mine.facts if mine is not None and isinstance(mine.facts, Awaiting) else None
        alerted = mine is not None and mine.status == "failed" and "last_used" in mine.detail
        if key_status(api, user, old) == "Active":  # re-activated for a missed application
            if not inp.ctx.options.confirmed:
                nxt = continue_command(inp.incident.id)
                raise Waiting(self.name, f"{old} is Active again; once the missed application "
                              f"uses the new key, run `{nxt}` to deactivate it again",
                              Awaiting("applications", None, nxt, "the old key was "
                                       "re-activated").to_detail())
            api.call(ApiCall("iam", "UpdateAccessKey", {
                "UserName": user, "AccessKeyId": old, "Status": "Inactive"}, mutating=True))
            return now, now + self._grace(inp)
        if alerted and inp.ctx.options.confirmed:  # the human says the missed one is fixed
            return now, now + self._grace(inp)
        since = _moment(waited.since) if waited else None
        until = _moment(waited.until) if waited else None
        if since is not None and until is not None:
            return since, until
        apps = view.done(AppsUpdated) if view else None
        off = view.done(OldKeyDeactivated) if view else None
        start = _moment(off.at if off else None) or now
        return _moment(apps.at if apps else None) or start, start + self._grace(inp)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        user = inp.require_user(self.name)
        old = inp.incident.access_key_id
        since, until = self._window(inp, api, user)
        found = api.call(ApiCall("iam", "GetAccessKeyLastUsed", {"AccessKeyId": old}))
        last = found.get("AccessKeyLastUsed", {})
        used = last.get("LastUsedDate")
        used_at = used if isinstance(used, datetime) else _moment(used)
        if used_at is not None and used_at >= since:
            self._alert(inp, api, user, (since, used_at), last)
        nxt = continue_command(inp.incident.id)
        if inp.ctx.clock() < until:
            raise Waiting(self.name, f"grace period for {old} until {iso(until)}; then run "
                          f"`{nxt}` (add --watch to wait here)",
                          Awaiting("grace-period", iso(until), nxt, "no use of the old key "
                                   "since the applications were updated", iso(since))
                          .to_detail())
        return StepResult("done", OldKeyQuiet(old, iso(since), iso(until), iso(used_at)))

    def _alert(self, inp: StepInput, api: Api, user: str, when: tuple[datetime, datetime],
               last: Mapping[str, Any]) -> None:
        """Halt: an application still used the old key (`when`: since, used at). Said on
        SNS too, when a topic is set (once per use: an earlier attempt's publish of the
        same use is not repeated)."""
        since, used_at = when
        old = inp.incident.access_key_id
        where = f"{last.get('ServiceName', '?')} in {last.get('Region', '?')}"
        message = (f"{old} of {user} was used at {iso(used_at)} ({where}), after the "
                   f"applications were said to use the new key ({iso(since)}): an application "
                   f"was missed, and it fails now that the key is Inactive. Re-activate the old "
                   f"key with `respond rotate --reactivate {inp.incident.id} --yes` while it is "
                   f"moved, then `{continue_command(inp.incident.id)}`")
        alerted: list[str] = []
        topic = inp.ctx.options.notify_topic
        said = any(c.operation == "Publish" and c.outcome in {"ok", "sending"}
                   and str(iso(used_at)) in str(c.params.get("Message", ""))
                   for c in inp.history)
        if topic and not said:
            api.call(ApiCall("sns", "Publish", {
                "TopicArn": topic, "Subject": f"[aws-key-responder] rotation of {old}: an "
                "application still uses the old key", "Message": message}, mutating=True))
        if topic:
            alerted.append(f"sns:{topic}")
        raise StepFailed(self.name, message, OldKeyUsed(
            old, iso(since), iso(used_at), last.get("ServiceName"), last.get("Region"),
            tuple(alerted)).to_detail())


@register("reactivate_old_key")
class ReactivateOldKey(Action):
    """`respond rotate --reactivate`: the old key Active again for a missed application."""

    permissions = ("iam:ListAccessKeys", "iam:UpdateAccessKey")
    kind = "rotation"
    result = OldKeyReactivated

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        return (ApiCall("iam", "UpdateAccessKey", {
            "UserName": inp.require_user(self.name), "AccessKeyId": inp.incident.access_key_id,
            "Status": "Active"}, mutating=True),)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        user = inp.require_user(self.name)
        old = inp.incident.access_key_id
        status = key_status(api, user, old)
        if status == "Deleted":
            raise StepFailed(self.name, f"{old} was deleted: it cannot be re-activated; the "
                             "missed application needs the new key")
        if status == "Active":
            return StepResult("done", OldKeyReactivated(old, already=True))
        api.call(ApiCall("iam", "UpdateAccessKey", {
            "UserName": user, "AccessKeyId": old, "Status": "Active"}, mutating=True))
        return StepResult("done", OldKeyReactivated(old))
