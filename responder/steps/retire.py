"""retire-key: set a key that nothing has used for DAYS Inactive (never deleted).

`respond audit --deactivate-unused DAYS --yes` opens one incident of
playbooks/retire-unused-key.yaml per key. The audit chose the key from the credential
report, which AWS may have made up to four hours earlier; so this step asks AWS again
(ListAccessKeys for its status and age, GetAccessKeyLastUsed for its last use) and keeps
a key used since. Inactive, not deleted: whatever still needed the key fails loudly and
`respond rollback ID --yes` makes it Active again. What the step says is re-read at the
end of the run (run/verify.py), as for every incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import iso
from responder.errors import StepFailed
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts_retirement import KeyRetired


def _listed(api: Api, user: str, key: str) -> tuple[str, datetime | None]:
    """The key's status (Deleted when it is not listed) and CreateDate."""
    keys = api.call(ApiCall("iam", "ListAccessKeys", {"UserName": user}))
    for k in keys.get("AccessKeyMetadata", []):
        if k["AccessKeyId"] == key:
            return str(k["Status"]), k.get("CreateDate")
    return "Deleted", None


@register("retire_unused_key")
class RetireUnusedKey(Action):
    permissions = ("iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey")
    kind = "retirement"
    result = KeyRetired
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["unused_days"],
        "properties": {"unused_days": {"type": "integer", "minimum": 1}}}

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        user, key = inp.require_user(self.name), inp.incident.access_key_id
        days = int(inp.settings.get("unused_days", 0))
        return (ApiCall("iam", "ListAccessKeys", {"UserName": user}),
                ApiCall("iam", "GetAccessKeyLastUsed", {"AccessKeyId": key},
                        note=f"kept Active when used (or made) within {days} days"),
                ApiCall("iam", "UpdateAccessKey", {"UserName": user, "AccessKeyId": key,
                                                   "Status": "Inactive"}, mutating=True,
                        note=f"only when unused for more than {days} days"))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        user, key = inp.require_user(self.name), inp.incident.access_key_id
        days = int(inp.settings["unused_days"])
        now = inp.ctx.clock()
        status, created = _listed(api, user, key)
        if status == "Deleted":
            raise StepFailed(self.name, f"{key} is no longer listed for {user} (deleted since "
                             "the audit?): nothing was set Inactive")
        used = api.call(ApiCall("iam", "GetAccessKeyLastUsed", {"AccessKeyId": key}))
        last = used.get("AccessKeyLastUsed", {}).get("LastUsedDate")
        since: datetime | None = last or created
        idle = None if since is None else (now - since).days
        facts = KeyRetired(access_key_id=key, status=status, unused_days=days,
                           last_used=iso(last) if last else None,
                           created=iso(created) if created else None, idle_days=idle)
        if status == "Inactive":  # by an earlier attempt of this step, or by someone else
            acted = inp.acted_at("UpdateAccessKey")
            return StepResult("done", replace(facts, at=iso(acted or now), already=acted is None))
        if idle is None or idle <= days:  # "unused for more than DAYS days", as the audit
            why = (f"used {words_ago(idle)} ({iso(last)})" if last else
                   f"made {words_ago(idle)} and never used") + f", within {days} days"
            return StepResult("done", replace(facts, at=iso(now), kept_because=why))
        sent = inp.ctx.clock()
        api.call(ApiCall("iam", "UpdateAccessKey", {"UserName": user, "AccessKeyId": key,
                                                    "Status": "Inactive"}, mutating=True))
        return StepResult("done", replace(facts, status="Inactive", at=iso(sent)),
                          effective_at=sent)


def words_ago(days: int | None) -> str:
    return "at an unknown time" if days is None else "today" if days == 0 else \
        "1 day ago" if days == 1 else f"{days} days ago"
