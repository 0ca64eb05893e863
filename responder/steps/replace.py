"""replace-key: give the user a working key whose secret only Secrets Manager ever holds.

Exactly-once across crashes: the secret version id is derived from the incident and the
new key id, so storing twice is a no-op, and on resume the journal (the ListAccessKeys
taken before CreateAccessKey, and CreateAccessKey's own result) tells which key this
incident created. A key we created whose secret was never stored is useless (its secret
died with the process): it is deleted and recreated. No key but the compromised one and
our own orphan is ever deleted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from responder import iam_snapshot
from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed, StepFailed
from responder.journal import CallRecord
from responder.steps.base import Action, StepInput, StepResult, register
from responder.steps.results import KeyReplaced, ReplacementHalted

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
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
    )
    kind = "replacement"
    result = KeyReplaced
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "store": {"enum": ["secretsmanager"]},
            "secret_name": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9/_+=.@{}-]+$"},
            "delete_compromised": {"enum": ["after_evidence", "never"]},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        if not inp.ctx.options.replace:
            return ()
        user = inp.require_target(self.name).user_name
        name = secret_name(inp, user)
        return (
            ApiCall("iam", "ListAccessKeys", {"UserName": user}),
            ApiCall("iam", "DeleteAccessKey",
                    {"UserName": user, "AccessKeyId": inp.incident.access_key_id},
                    mutating=True, note="only if the user already has 2 keys, and only once "
                    "evidence collection has finished"),
            ApiCall("iam", "CreateAccessKey", {"UserName": user}, mutating=True),
            ApiCall("secretsmanager", "CreateSecret",
                    {"Name": name, "SecretString": "<the new key; never shown>"}, mutating=True,
                    note="PutSecretValue instead if the secret exists"),
        )

    def run(self, inp: StepInput, api: Api) -> StepResult:
        if not inp.ctx.options.replace:
            return StepResult.skipped("--no-replace")
        user = inp.require_target(self.name).user_name
        compromised = inp.incident.access_key_id
        name = secret_name(inp, user)
        keys = self._list(api, user)
        ours = self._created_by_us(inp, keys)
        if ours is not None:
            arn = self._stored(api, name, version_token(inp.incident.id, ours))
            if arn is not None:
                return self._result(api, user, ours, arn, compromised not in keys, adopted=True)
            # Created, but its secret died with the process that created it.
            self._delete(api, user, ours)
            keys = [k for k in keys if k != ours]
        deleted = False
        if len(keys) >= IAM_KEY_LIMIT:
            self._make_room(inp, api, user, keys)
            deleted = True
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
        return self._result(api, user, created["AccessKeyId"], arn,
                            deleted or compromised not in keys, adopted=False)

    @staticmethod
    def _result(api: Api, user: str, key_id: str, arn: str, deleted: bool, *,
                adopted: bool) -> StepResult:
        """Done; with the user's IAM picture after replacement, for the report."""
        return StepResult("done", KeyReplaced(key_id, arn, deleted, adopted,
                                              iam_snapshot.take(api, user)))

    @staticmethod
    def _list(api: Api, user: str) -> list[str]:
        found = api.call(ApiCall("iam", "ListAccessKeys", {"UserName": user}))
        return [k["AccessKeyId"] for k in found.get("AccessKeyMetadata", [])]

    @staticmethod
    def _delete(api: Api, user: str, key_id: str) -> None:
        try:
            api.call(ApiCall("iam", "DeleteAccessKey", {"UserName": user, "AccessKeyId": key_id},
                             mutating=True))
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":  # already gone: the goal is reached
                raise

    def _created_by_us(self, inp: StepInput, keys: list[str]) -> str | None:
        """The key an earlier attempt of this step created, if it still exists."""
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

    def _make_room(self, inp: StepInput, api: Api, user: str, keys: list[str]) -> None:
        """IAM allows two keys: delete the compromised one, and only when that is safe."""
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
        self._delete(api, user, compromised)

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
