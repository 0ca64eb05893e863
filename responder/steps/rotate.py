"""The steps of a routine rotation (playbooks/rotate-key.yaml) around the old key: wait
for the applications, test the new key, deactivate the old one, delete it.

The new key itself is made by replace_access_key (its claim tags and secret versions
keep it exactly-once across crashes and journals); these steps read it from the view.
Each observes AWS before it acts, so a rotation resumed after a crash never does a step
twice: a key already Inactive is not deactivated again, a key already gone not deleted.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.aws.sessions import Session
from responder.context import iso
from responder.errors import AwsCallFailed, StepFailed, Waiting
from responder.iam.snapshot import access_keys
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import KeyReplaced
from responder.incident.facts_rotation import (
    AppsUpdated,
    Awaiting,
    NewKeyTested,
    OldKeyDeactivated,
    OldKeyDeleted,
)

CHECK_TIMEOUT_SECONDS = 300.0
NOT_YET_VALID = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch"})
"""What STS answers a key IAM has not propagated yet (a few seconds after it is made)."""


def continue_command(incident_id: str) -> str:
    return f"respond rotate --continue {incident_id}"


def key_status(api: Api, user: str, key_id: str) -> str:
    """The key's status for its user: Active, Inactive, or Deleted (not listed)."""
    return access_keys(api, user).get(key_id, "Deleted")


def new_key(inp: StepInput, step: str) -> KeyReplaced:
    """The key this rotation issued, as create-key recorded it."""
    made = inp.view.replacement if inp.view is not None else None
    if made is None or not made.access_key_id or not made.secret_ref:
        raise StepFailed(step, "the new key is not recorded: create-key has not finished")
    return made


@register("await_update")
class AwaitUpdate(Action):
    """Between the new key and the old key's deactivation, people (or a check) move the
    applications to the new key; nothing here can know when that is done."""

    permissions = ("iam:ListAccessKeys",)
    kind = "rotation"
    result = AppsUpdated
    may_wait = True
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "check_command": {"type": "string", "minLength": 1},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        return (ApiCall("iam", "ListAccessKeys", {"UserName": inp.require_user(self.name)},
                        note="the new key must still be there and Active"),)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        now = iso(inp.ctx.clock())
        made = new_key(inp, self.name)
        status = key_status(api, inp.require_user(self.name), str(made.access_key_id))
        if status != "Active":  # nothing can move to a key that is gone or off
            raise StepFailed(self.name, f"the new key {made.access_key_id} is {status}: the "
                             "applications cannot move to it. Re-activate it, or start over "
                             "(delete it, then `respond rotate` the old key again)")
        if inp.ctx.options.confirmed:
            return StepResult("done", AppsUpdated("human", now))
        command = inp.ctx.options.check_command or inp.settings.get("check_command")
        nxt = continue_command(inp.incident.id)
        if command:
            failed = self._check(inp, str(command))
            if failed is None:
                return StepResult("done", AppsUpdated("check", now, str(command)))
            raise Waiting(self.name, f"the check command {failed}; fix it, or once the "
                          f"applications use the new key run `{nxt}`",
                          Awaiting("applications", None, nxt, f"check command {failed}")
                          .to_detail())
        raise Waiting(self.name, f"move the applications to {made.access_key_id} (its secret "
                      f"is in {made.secret_ref}), then run `{nxt}`",
                      Awaiting("applications", None, nxt, "no one has said the applications "
                               "use the new key yet").to_detail())

    def _check(self, inp: StepInput, command: str) -> str | None:
        """Run the check command; None when it passed, else what went wrong. It is given
        the key ids and the secret's ARN, never the secret."""
        made = new_key(inp, self.name)
        env = {**os.environ,
               "RESPONDER_ROTATION_ID": inp.incident.id,
               "RESPONDER_USER_NAME": inp.require_user(self.name),
               "RESPONDER_OLD_ACCESS_KEY_ID": inp.incident.access_key_id,
               "RESPONDER_NEW_ACCESS_KEY_ID": str(made.access_key_id),
               "RESPONDER_SECRET_ARN": str(made.secret_ref)}
        timeout = float(inp.settings.get("timeout_seconds", CHECK_TIMEOUT_SECONDS))
        try:
            done = subprocess.run(shlex.split(command), env=env, capture_output=True,  # noqa: S603 - the operator's own command
                                  text=True, timeout=timeout, check=False)
        except (OSError, ValueError) as exc:
            return f"could not run ({type(exc).__name__}: {exc})"
        except subprocess.TimeoutExpired:
            return f"did not finish within {timeout:g} s"
        return None if done.returncode == 0 else f"exited {done.returncode}"


@register("test_access_key")
class TestAccessKey(Action):
    """The new key as applications will get it: read from Secrets Manager and used to
    sign sts:GetCallerIdentity. Only a key that works lets the old one be deactivated."""

    permissions = ("secretsmanager:GetSecretValue", "sts:GetCallerIdentity")
    kind = "rotation"
    result = NewKeyTested
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "attempts": {"type": "integer", "minimum": 1, "maximum": 30},
            "wait_seconds": {"type": "number", "minimum": 0},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        return (ApiCall("secretsmanager", "GetSecretValue", {"SecretId": "<the new key's secret>"}),
                ApiCall("sts", "GetCallerIdentity", note="signed with the new key"))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        user = inp.require_user(self.name)
        made = new_key(inp, self.name)
        stored = api.call(ApiCall("secretsmanager", "GetSecretValue",
                                  {"SecretId": made.secret_ref}))
        try:
            value = json.loads(str(stored.get("SecretString", "")))
            key_id, secret = str(value["AccessKeyId"]), str(value["SecretAccessKey"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StepFailed(self.name, f"{made.secret_ref} does not hold an access key "
                             "(AccessKeyId, SecretAccessKey)") from exc
        if key_id != made.access_key_id:
            raise StepFailed(self.name, f"{made.secret_ref} holds {key_id}, not the new key "
                             f"{made.access_key_id}: someone changed it; not going on")
        session = Session(region_name=api.session.region_name, aws_access_key_id=key_id,
                          aws_secret_access_key=secret)
        attempts = int(inp.settings.get("attempts", 10))
        for attempt in range(1, attempts + 1):
            try:
                me = api.with_session(session).call(ApiCall("sts", "GetCallerIdentity"))
            except AwsCallFailed as exc:
                if exc.code not in NOT_YET_VALID or attempt == attempts:
                    raise StepFailed(self.name, f"the new key {key_id} does not work: "
                                     f"{exc.code}: {exc.aws_message}") from exc
                inp.ctx.sleep(float(inp.settings.get("wait_seconds", 3.0)))
                continue
            arn = str(me.get("Arn", ""))
            if not arn.endswith(f":user/{user}") and not arn.endswith(f"/{user}"):
                raise StepFailed(self.name, f"the new key {key_id} signs as {arn}, not as "
                                 f"{user}: not going on")
            return StepResult("done", NewKeyTested(key_id, arn, attempt))
        raise AssertionError("unreachable")  # pragma: no cover


@register("deactivate_old_key")
class DeactivateOldKey(Action):
    """Inactive, not deleted: an application that was missed shows itself while the key
    can still be re-activated (the grace period watches for it)."""

    permissions = ("iam:ListAccessKeys", "iam:UpdateAccessKey")
    kind = "rotation"
    result = OldKeyDeactivated

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        return (ApiCall("iam", "UpdateAccessKey", {
            "UserName": inp.require_user(self.name), "AccessKeyId": inp.incident.access_key_id,
            "Status": "Inactive"}, mutating=True),)

    def observe(self, inp: StepInput, api: Api) -> StepResult | None:
        if not inp.revisit:
            return None
        old = inp.incident.access_key_id
        status = key_status(api, inp.require_user(self.name), old)
        if status == "Active":
            return None
        at = inp.acted_at("UpdateAccessKey") or inp.ctx.clock()
        return StepResult("done", OldKeyDeactivated(old, iso(at), already=True))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        old = inp.incident.access_key_id
        at = inp.ctx.clock()
        api.call(ApiCall("iam", "UpdateAccessKey", {
            "UserName": inp.require_user(self.name), "AccessKeyId": old, "Status": "Inactive",
        }, mutating=True))
        return StepResult("done", OldKeyDeactivated(old, iso(at)))


@register("delete_old_key")
class DeleteOldKey(Action):
    """The end of a rotation: after a quiet grace period the old key goes for good."""

    permissions = ("iam:ListAccessKeys", "iam:DeleteAccessKey")
    kind = "rotation"
    result = OldKeyDeleted

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        return (ApiCall("iam", "DeleteAccessKey", {
            "UserName": inp.require_user(self.name), "AccessKeyId": inp.incident.access_key_id},
            mutating=True, note="only while it is still Inactive"),)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        user = inp.require_user(self.name)
        old = inp.incident.access_key_id
        status = key_status(api, user, old)
        if status == "Deleted":
            return StepResult("done", OldKeyDeleted(old, already=True))
        if status == "Active":
            raise StepFailed(self.name, f"{old} is Active again (re-activated after the grace "
                             "period?): not deleting a key in use. Deactivate it, or delete "
                             "it by hand once nothing uses it")
        try:
            api.call(ApiCall("iam", "DeleteAccessKey", {"UserName": user, "AccessKeyId": old},
                             mutating=True))
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                raise
            return StepResult("done", OldKeyDeleted(old, already=True))
        return StepResult("done", OldKeyDeleted(old))
