"""replace-key: give the user a working key whose secret only Secrets Manager ever holds.

Exactly-once across crashes: the secret version id is derived from the incident and the
new key id, so storing twice is a no-op, and on resume the journal (the ListAccessKeys
taken before CreateAccessKey, and CreateAccessKey's own result) tells which key this
incident created. A key we created whose secret was never stored is useless (its secret
died with the process): it is deleted and recreated. No key but the compromised one and
our own orphan is ever deleted.

Exactly-once across journals: AWS itself holds the record (replacement_record: a claim
tagged on the user before CreateAccessKey, the replacement tagged after the secret is
stored). Any responder, whatever its journal, first reads those tags: a replacement
recorded for this key whose key is still Active and whose secret still holds it is
adopted; another incident's fresh claim halts this one (resume adopts its result).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from responder.aws import Api, ApiCall
from responder.context import iso
from responder.errors import AwsCallFailed, StepFailed
from responder.iam import snapshot as iam_snapshot
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import KeyReplaced, ReplacementHalted
from responder.journal import CallRecord
from responder.steps import replacement_record as records
from responder.steps.replacement_record import Claim, Replacement, UserTags

DEFAULT_SECRET_NAME = "responder/{user}/access-key"  # noqa: S105 - a name, not a secret
IAM_KEY_LIMIT = 2
_VERSION_NAMESPACE = uuid.UUID("6c1f64a2-4b55-4d0e-9d6b-2f3f4f0b7a11")


def secret_name(inp: StepInput, user: str) -> str:
    return str(inp.settings.get("secret_name", DEFAULT_SECRET_NAME)).format(user=user)


def version_token(incident_id: str, key_id: str) -> str:
    """The secret version for this key in this incident: the same on every retry."""
    return str(uuid.uuid5(_VERSION_NAMESPACE, f"{incident_id}:{key_id}"))


def _ok_results(history: tuple[CallRecord, ...], operation: str) -> list[CallRecord]:
    return [c for c in history if c.operation == operation and c.outcome == "ok"]


@register("replace_access_key")
class ReplaceAccessKey(Action):
    permissions = (
        "iam:ListAccessKeys",
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
        *records.PERMISSIONS,
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
    )
    kind = "replacement"
    result = KeyReplaced
    needs = ("evidence",)  # deleting the compromised key to make room waits for its trail
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "store": {"enum": ["secretsmanager"]},
            "secret_name": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9/_+=.@{}-]+$"},
            "delete_compromised": {"enum": ["after_evidence", "never"]},
        },
    }

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> str | None:
        template = str(settings.get("secret_name", DEFAULT_SECRET_NAME))
        try:
            template.format(user="alice")
        except (KeyError, IndexError, ValueError) as exc:
            return (f"field 'with.secret_name': {template!r} is not a valid name template "
                    f"({type(exc).__name__}: {exc}); the only placeholder is {{user}}")
        return None

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        if not inp.ctx.options.replace:
            return ()
        user = inp.require_user(self.name)
        name = secret_name(inp, user)
        compromised = inp.incident.access_key_id
        claim = Claim(inp.incident.id, compromised, inp.ctx.clock())
        done = Replacement(compromised, "<new key id>", inp.incident.id)
        return (
            ApiCall("iam", "ListUserTags", {"UserName": user},
                    note="a replacement another responder recorded for this key is adopted"),
            ApiCall("iam", "ListAccessKeys", {"UserName": user}),
            ApiCall("iam", "TagUser", {"UserName": user, "Tags": [
                {"Key": claim.tag_key, "Value": claim.tag_value}]}, mutating=True,
                note="the claim, read back (ListUserTags) before creating anything"),
            ApiCall("iam", "DeleteAccessKey",
                    {"UserName": user, "AccessKeyId": inp.incident.access_key_id},
                    mutating=True, note="only if the user already has 2 keys, and only once "
                    "evidence collection has finished and read every region"),
            ApiCall("iam", "CreateAccessKey", {"UserName": user}, mutating=True),
            ApiCall("secretsmanager", "CreateSecret",
                    {"Name": name, "SecretString": "<the new key; never shown>"}, mutating=True,
                    note="PutSecretValue instead if the secret exists"),
            ApiCall("iam", "TagUser", {"UserName": user, "Tags": [
                {"Key": records.RECORD_KEY, "Value": done.tag_value}]}, mutating=True),
            ApiCall("iam", "UntagUser", {"UserName": user, "TagKeys": [claim.tag_key]},
                    mutating=True),
        )

    def run(self, inp: StepInput, api: Api) -> StepResult:
        if not inp.ctx.options.replace:
            return StepResult.skipped("--no-replace")
        user = inp.require_user(self.name)
        try:
            # None: another responder recorded a replacement while we claimed; look again.
            return self._attempt(inp, api, user) or self._attempt(inp, api, user) or \
                self._busy(inp, user, "recorded a replacement while this one was claiming "
                           "the key")
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity" or not self._user_gone(api, user):
                raise
            # Deleted meanwhile: nobody is left to give a key to. Recorded, not halted on.
            return StepResult.skipped(f"user {user} no longer exists: no replacement issued")

    def _user_gone(self, api: Api, user: str) -> bool:
        try:
            iam_snapshot.access_keys(api, user)
        except AwsCallFailed as exc:
            return exc.code == "NoSuchEntity"
        return False

    def _attempt(self, inp: StepInput, api: Api, user: str) -> StepResult | None:
        """Observe AWS (tags, keys, secret), adopt what is there, else claim and replace."""
        compromised = inp.incident.access_key_id
        name = secret_name(inp, user)
        tags = records.read(api, user)
        keys = iam_snapshot.access_keys(api, user)
        recorded = tags.replacement_of(compromised)
        theirs = recorded if recorded and recorded.incident_id != inp.incident.id else None
        # Another responder's recorded key is not one this incident may have created.
        ours = self._created_by_us(inp, [k for k in keys
                                         if theirs is None or k != theirs.access_key_id])
        arn = self._recorded_secret(api, name, recorded, keys)
        if recorded is not None and arn is not None:
            if ours is not None and ours != recorded.access_key_id:
                self._delete(api, user, ours)  # ours lost the race: no orphan left behind
            records.release(api, user, self._releasable(inp, tags, claimed=False))
            return self._result(api, user, recorded.access_key_id, arn,
                                compromised not in keys, adopted=True,
                                adopted_from=theirs.incident_id if theirs else None)
        other = tags.in_flight(compromised, inp.incident.id, inp.ctx.clock())
        if other is not None:
            self._busy(inp, user, f"(incident {other.incident_id}, claimed "
                       f"{iso(other.at)}) is replacing it right now")
        if ours is not None:
            arn = self._stored(api, name, version_token(inp.incident.id, ours))
            if arn is not None:
                return self._commit(inp, api, user, tags=tags, key_id=ours, arn=arn,
                                    claimed=False, deleted=compromised not in keys,
                                    adopted=True)
            # Created, but its secret died with the process that created it.
            self._delete(api, user, ours)
            keys.pop(ours, None)
        full = len(keys) >= IAM_KEY_LIMIT
        if full:
            self._check_room(inp, user, list(keys))  # before claiming: a refusal holds nobody
        claimed = self._claim(inp, api, user, tags)
        if claimed is None:
            return None
        if full:
            self._delete(api, user, compromised)
        created = api.call(ApiCall("iam", "CreateAccessKey", {"UserName": user}, mutating=True),
                           not_found_is_transient=True)["AccessKey"]
        try:
            arn = self._store(inp, api, name, user, created)
        except AwsCallFailed as exc:
            raise StepFailed(
                self.name,
                f"created {created['AccessKeyId']} but could not store its secret in {name} "
                f"({exc.code}: {exc.aws_message}); `respond resume` deletes and recreates it",
                ReplacementHalted(created["AccessKeyId"]).to_detail(),
            ) from exc
        return self._commit(inp, api, user, tags=claimed, key_id=created["AccessKeyId"],
                            arn=arn, claimed=True, deleted=full or compromised not in keys,
                            adopted=False)

    def _claim(self, inp: StepInput, api: Api, user: str, seen: UserTags) -> UserTags | None:
        """Tag this incident's claim and read the tags back: whoever then sees another
        fresh claim on the key withdraws. None if a replacement was recorded meanwhile."""
        compromised = inp.incident.access_key_id
        mine = Claim(inp.incident.id, compromised, inp.ctx.clock())
        records.claim(api, self.name, user, mine)
        now = records.read(api, user)
        other = now.in_flight(compromised, inp.incident.id, inp.ctx.clock())
        appeared = now.replacement_of(compromised) not in (None,
                                                           seen.replacement_of(compromised))
        if other is None and not appeared:
            return now
        records.release(api, user, [mine.tag_key])
        if other is not None:
            self._busy(inp, user, f"(incident {other.incident_id}, claimed {iso(other.at)}) "
                       "is replacing it right now")
        return None

    def _busy(self, inp: StepInput, user: str, what: str) -> NoReturn:
        """Halt: another responder owns this replacement; resuming later adopts its key."""
        raise StepFailed(self.name, f"another responder {what}: not creating a second "
                         f"replacement for {inp.incident.access_key_id} of {user}. `respond "
                         f"resume {inp.incident.id}` later adopts its replacement (a claim "
                         f"older than {records.CLAIM_SECONDS / 60:.0f} minutes is taken over)")

    def _releasable(self, inp: StepInput, tags: UserTags, *, claimed: bool) -> list[str]:
        """Claims to remove: ours (the replacement is recorded), and others' stale ones."""
        own = records.claim_key(inp.incident.id)
        mine = [own] if claimed or tags.own(inp.incident.id) is not None else []
        return [*mine, *tags.stale(inp.incident.id, inp.ctx.clock())]

    def _commit(self, inp: StepInput, api: Api, user: str, *, tags: UserTags, key_id: str,
                arn: str, claimed: bool, deleted: bool, adopted: bool) -> StepResult:
        """Record the stored replacement on the user, then drop the claims it settles."""
        records.record(api, self.name, user,
                       Replacement(inp.incident.access_key_id, key_id, inp.incident.id))
        records.release(api, user, self._releasable(inp, tags, claimed=claimed))
        return self._result(api, user, key_id, arn, deleted, adopted=adopted)

    def _recorded_secret(self, api: Api, name: str, recorded: Replacement | None,
                         keys: Mapping[str, str]) -> str | None:
        """The secret's ARN if the recorded replacement is live: its key still Active and
        the secret's current version the one that responder stored (DescribeSecret only:
        the value is never read)."""
        if recorded is None or keys.get(recorded.access_key_id) != "Active":
            return None
        return self._stored(api, name, version_token(recorded.incident_id,
                                                     recorded.access_key_id))

    @staticmethod
    def _result(api: Api, user: str, key_id: str, arn: str, deleted: bool, *,
                adopted: bool, adopted_from: str | None = None) -> StepResult:
        """Done; with the user's IAM picture after replacement, for the report."""
        return StepResult("done", KeyReplaced(key_id, arn, deleted, adopted,
                                              iam_snapshot.take(api, user), adopted_from))

    @staticmethod
    def _delete(api: Api, user: str, key_id: str) -> None:
        try:
            api.call(ApiCall("iam", "DeleteAccessKey", {"UserName": user, "AccessKeyId": key_id},
                             mutating=True))
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":  # already gone: the goal is reached
                raise

    def _created_by_us(self, inp: StepInput, keys: list[str]) -> str | None:
        """The key an earlier attempt of this step created, if it still exists (`keys`
        leaves out the key another responder recorded, which is not ours to find)."""
        for call in reversed(_ok_results(inp.history, "CreateAccessKey")):
            key_id = (call.result or {}).get("AccessKey", {}).get("AccessKeyId")
            if key_id in keys:
                return str(key_id)
        pending = [c for c in inp.history
                   if c.operation == "CreateAccessKey" and c.outcome in {"pending", "sending"}]
        if not pending:
            return None
        # The process died inside CreateAccessKey: compare with the list taken before it.
        intent = pending[-1]
        before = [c for c in _ok_results(inp.history, "ListAccessKeys")
                  if c.intent_at <= intent.intent_at]
        if not before:
            return None
        known = {k["AccessKeyId"] for k in (before[-1].result or {}).get("AccessKeyMetadata", [])}
        new = [k for k in keys if k not in known and k != inp.incident.access_key_id]
        if len(new) > 1:
            raise StepFailed(self.name, f"keys {new} appeared while this step was interrupted; "
                             "cannot tell which one it created. Delete the wrong one by hand, "
                             "then `respond resume`")
        return new[0] if new else None

    def _check_room(self, inp: StepInput, user: str, keys: list[str]) -> None:
        """IAM allows two keys: the compromised one may make room, only when that is safe."""
        compromised = inp.incident.access_key_id
        if compromised not in keys:
            raise StepFailed(self.name, f"{user} already has two keys ({', '.join(keys)}), "
                             "neither of them the compromised one; not deleting either. Remove "
                             "one by hand or resume with --no-replace")
        if inp.settings.get("delete_compromised", "after_evidence") == "never":
            raise StepFailed(self.name, f"{user} has two keys and the playbook keeps the "
                             "compromised one (delete_compromised: never). Delete the user's "
                             f"other key or {compromised} by hand, then `respond resume`")
        if inp.view is None or inp.view.evidence is None:
            raise StepFailed(self.name, f"{user} has two keys, so {compromised} must be deleted "
                             "to make room, but evidence collection has not finished: deleting "
                             "first would lose the key's trail. Re-run collection (`respond "
                             "resume`) or resume with --no-replace")
        if unread := inp.view.regions_unread:
            self._unread_halt(inp, user, [k for k in keys if k != compromised], unread)

    def _unread_halt(self, inp: StepInput, user: str, others: list[str],
                     unread: Mapping[str, str]) -> NoReturn:
        """Two keys, but CloudTrail unread somewhere: deleting is final (no rollback
        brings the key back, IAM forgets its last use), so, as for evidence not collected
        at all, it waits until the evidence is whole, or a human chooses."""
        incident = inp.incident.id
        where = "; ".join(f"{region} ({error})" for region, error in unread.items())
        home = " (IAM and STS calls are recorded there)" if "us-east-1" in unread else ""
        raise StepFailed(self.name, (
            f"{user} has two keys, so {inp.incident.access_key_id} must be deleted to make "
            f"room, but CloudTrail could not be read in {where}{home}: the leaked key is "
            f"not deleted while its trail there is unread. `respond sweep {incident}` or "
            f"`respond resume {incident}` reads {', '.join(unread)} again (a resume then "
            f"replaces the key); or delete {user}'s other key "
            f"{', '.join(others) or '(none)'} by hand, then `respond resume {incident}`; or "
            "resume with --no-replace"))

    @staticmethod
    def _stored(api: Api, name: str, version: str) -> str | None:
        """The secret's ARN if `version` is its current version."""
        try:
            found = api.call(ApiCall("secretsmanager", "DescribeSecret", {"SecretId": name}))
        except AwsCallFailed as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise
        stages = found.get("VersionIdsToStages", {}).get(version, [])
        return str(found["ARN"]) if "AWSCURRENT" in stages else None

    def _store(self, inp: StepInput, api: Api, name: str, user: str,
               created: Mapping[str, Any]) -> str:
        token = version_token(inp.incident.id, created["AccessKeyId"])
        value = json.dumps({
            "AccessKeyId": created["AccessKeyId"],
            "SecretAccessKey": created["SecretAccessKey"],
            "UserName": user,
            "IncidentId": inp.incident.id,
            "CreatedBy": "aws-key-responder",
        })
        try:
            made = api.call(ApiCall("secretsmanager", "CreateSecret", {
                "Name": name, "SecretString": value, "ClientRequestToken": token,
                "Description": f"Access key of IAM user {user}, issued by aws-key-responder "
                               f"in incident {inp.incident.id}",
            }, mutating=True))
            return str(made["ARN"])
        except AwsCallFailed as exc:
            if exc.code != "ResourceExistsException":
                raise
        put = api.call(ApiCall("secretsmanager", "PutSecretValue", {
            "SecretId": name, "SecretString": value, "ClientRequestToken": token,
        }, mutating=True))
        return str(put["ARN"])
