"""`respond audit`: the account's access-key hygiene from one IAM credential report.

The credential report is one document for the whole account, so the audit costs the same
few calls for 10 users or 5,000 (GenerateCredentialReport until it is ready, then
GetCredentialReport), where asking each user would cost one call per user and key. Only
the users with a key finding are asked for their key ids (ListAccessKeys), so each
finding carries the exact command that fixes it.

One finding per credential (a key slot, the console password, the root keys), with every
problem it has: a key both old and unused is one thing to fix, not two.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from responder.audit import inside_aws
from responder.aws import Api, ApiCall
from responder.context import iso, parse_iso
from responder.errors import AGAIN, AwsCallFailed, BadInput

ROOT = "<root_account>"
PERMISSIONS = ("iam:GenerateCredentialReport", "iam:GetCredentialReport",
               "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", *inside_aws.PERMISSIONS)
SEVERITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}
READY_ATTEMPTS = 30
"""GenerateCredentialReport polls (a report takes seconds, at most a few minutes)."""


@dataclass(frozen=True)
class Settings:
    """The audit's thresholds (`--max-age-days`, `--unused-days`)."""

    max_age_days: int = 90
    unused_days: int = 90
    role_check_keys: int = inside_aws.LIMIT
    """Keys the "use an IAM role instead" check reads (0: none)."""


@dataclass(frozen=True)
class Finding:
    """One credential that needs a human, with every problem it has and the fix."""

    severity: str
    user: str
    credential: str
    """access_key_1, access_key_2, console or root_keys."""
    problems: tuple[str, ...]
    fix: str
    access_key_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "user": self.user, "credential": self.credential,
                "access_key_id": self.access_key_id, "problems": list(self.problems),
                "fix": self.fix, "details": dict(self.details)}


def _when(text: str | None) -> datetime | None:
    if not text or text in {"N/A", "no_information", "not_supported"}:
        return None
    return parse_iso(text)


def _days(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else (now - then).days


def report_rows(content: bytes | str) -> list[dict[str, str]]:
    """The credential report's CSV as rows; BadInput when it is not one."""
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and "user" not in rows[0]:
        raise BadInput("the credential report has no `user` column: not a credential report")
    return rows


def _key_problems(row: Mapping[str, str], slot: str, now: datetime, settings: Settings,
                  seen: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    rotated = _when(row.get(f"{slot}_last_rotated"))
    used = _when(row.get(f"{slot}_last_used_date"))
    age, idle = _days(now, rotated), _days(now, used or rotated)
    problems: list[str] = []
    if age is not None and age > settings.max_age_days:
        problems.append(f"not rotated for {age} days (more than {settings.max_age_days})")
    if used is None and idle is not None and idle > settings.unused_days:
        problems.append(f"never used in the {idle} days since it was made")
    elif used is not None and idle is not None and idle > settings.unused_days:
        problems.append(f"unused for {idle} days")
    service = row.get(f"{slot}_last_used_service") or ""
    region = row.get(f"{slot}_last_used_region") or ""
    before = seen.get(f"{row['user']}/{slot}") or {}
    for kind, value in (("service", service), ("region", region)):
        known = before.get(kind + "s") or []
        if value and value not in {"N/A", "not_supported"} and known and value not in known:
            problems.append(f"last used from a {kind} never seen before: {value}")
    return problems, {"idle_days": idle, "last_rotated": iso(rotated) if rotated else None,
                      "last_used": iso(used) if used else None,
                      "last_used_service": service, "last_used_region": region}


def findings(rows: Iterable[Mapping[str, str]], now: datetime, settings: Settings,
             seen: Mapping[str, Any] | None = None) -> list[Finding]:
    """Every credential that needs a human, most urgent first. `seen`: the services and
    regions each key was last used from in earlier audits (what "never seen" means)."""
    found: list[Finding] = []
    for row in rows:
        user = row.get("user", "")
        active = [s for s in ("access_key_1", "access_key_2")
                  if row.get(f"{s}_active", "").lower() == "true"]
        if user == ROOT:
            if active:
                found.append(Finding(
                    "critical", user, "root_keys",
                    (f"the root user has {len(active)} active access key(s)",),
                    "delete the root user's access keys (signed in as root: Security "
                    "credentials > Access keys); use roles instead"))
            continue
        arn = {"arn": row["arn"]} if row.get("arn") else {}
        if row.get("password_enabled", "").lower() == "true" \
                and row.get("mfa_active", "").lower() != "true":
            found.append(Finding("high", user, "console", ("console access without MFA",),
                                 "enable MFA for the user (aws iam enable-mfa-device ...), "
                                 f"or remove the password: aws iam delete-login-profile "
                                 f"--user-name {user}", details=arn))
        for slot in active:
            problems, details = _key_problems(row, slot, now, settings, seen or {})
            if len(active) == 2:
                problems.append("one of two active keys: rotate to one")
            if problems:
                # A key used from somewhere new may be in someone else's hands; an old one
                # has had longer to leak. Unused or doubled keys are hygiene.
                urgent = any("never seen" in p or "rotated" in p for p in problems)
                found.append(Finding("high" if urgent else "medium", user, slot,
                                     tuple(problems), "", details={**arn, **details}))
    return sorted(found, key=lambda f: (SEVERITY[f.severity], f.user, f.credential))


class KeyIds:
    """The key id in each report slot, listed once per user (ListAccessKeys) and only
    for the users asked about: the report names slots, not ids."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._ids: dict[str, list[str]] = {}

    def of(self, user: str, slot: str) -> str | None:
        if user not in self._ids:
            try:
                keys = self._api.call(ApiCall("iam", "ListAccessKeys", {"UserName": user}))
                # The report numbers keys by creation: key 1 is the older one.
                ordered = sorted(keys.get("AccessKeyMetadata", []), key=lambda k: k["CreateDate"])
                self._ids[user] = [str(k["AccessKeyId"]) for k in ordered]
            except AwsCallFailed:
                self._ids[user] = []
        index = int(slot[-1]) - 1
        return self._ids[user][index] if index < len(self._ids[user]) else None


def _with_key_ids(ids: KeyIds, found: list[Finding]) -> list[Finding]:
    """Each key finding with its key id and the command that fixes it."""
    out: list[Finding] = []
    for f in found:
        if not f.credential.startswith("access_key_"):
            out.append(f)
            continue
        key = ids.of(f.user, f.credential)
        named = key or f"<{f.credential} of {f.user}>"
        fix = f.fix or (f"respond rotate {named}" if any("rotated" in p for p in f.problems) else
               f"aws iam update-access-key --user-name {f.user} --access-key-id {named} "
               "--status Inactive  (then delete-access-key once nothing broke)")
        out.append(Finding(f.severity, f.user, f.credential, f.problems, fix, key, f.details))
    return out


def credential_report(api: Api, sleep: Callable[[float], None] = time.sleep) -> bytes:
    """Generate the report (or take the one AWS made within the last four hours)."""
    try:
        for attempt in range(READY_ATTEMPTS):
            state = api.call(ApiCall("iam", "GenerateCredentialReport")).get("State")
            if state == "COMPLETE":
                break
            sleep(min(2.0, 0.2 * (attempt + 1)))
        content = api.call(ApiCall("iam", "GetCredentialReport", counts_only=True))["Content"]
    except AwsCallFailed as exc:  # a denial, usually: what to grant is in the message
        raise BadInput(f"audit: {exc.explain(AGAIN)}") from exc
    return content if isinstance(content, bytes) else str(content).encode()


def audit(api: Api, now: datetime, settings: Settings, seen_file: Path | None = None,
          sleep: Callable[[float], None] = time.sleep) -> list[Finding]:
    """The audit, remembering what each key was used from for the next one."""
    return audited(api, now, settings, seen_file, sleep=sleep).findings


@dataclass(frozen=True)
class Audited:
    findings: list[Finding]
    gap: str | None = None
    """What the role check could not read (inside_aws.Checked.gap), said with the
    findings."""


def audited(api: Api, now: datetime, settings: Settings, seen_file: Path | None = None, *,
            sleep: Callable[[float], None] = time.sleep,
            monotonic: Callable[[], float] = time.monotonic) -> Audited:
    """The audit with the role check: the keys used only from inside AWS (one
    LookupEvents page each, the `settings.role_check_keys` most recently used) carry
    "use an IAM role instead"."""
    rows = report_rows(credential_report(api, sleep))
    seen = _load(seen_file)
    ids = KeyIds(api)
    found = findings(rows, now, settings, seen)
    checked = None
    if settings.role_check_keys:
        recent = inside_aws.recent(rows, now)
        top = recent[:settings.role_check_keys]
        named = {(u, slot): ids.of(u, slot) for u, slot, _, _ in top}
        keys = []
        for u, slot, region, at in top:
            key = named[(u, slot)]
            where = region or (_last_region(api, key) if key else "")
            if key and where:  # a key whose id or region IAM does not name: unread
                keys.append(inside_aws.KeyUse(u, slot, key, where, at))
        checked = dataclasses.replace(
            inside_aws.check(api, keys, now, limit=settings.role_check_keys,
                             monotonic=monotonic, sleep=sleep), candidates=len(recent))
        found = _with_roles(found, checked.inside, rows)
    if seen_file is not None:
        _remember(seen_file, seen, rows)
    return Audited(_with_key_ids(ids, found), checked.gap() if checked else None)


def _last_region(api: Api, key: str) -> str:
    """Where the key was last used, when the report says not_supported: its events are
    there. "" when IAM does not say either (the check then reads nothing for it)."""
    try:
        used = api.call(ApiCall("iam", "GetAccessKeyLastUsed", {"AccessKeyId": key}))
    except AwsCallFailed:
        return ""
    region = str(used.get("AccessKeyLastUsed", {}).get("Region") or "")
    return "" if region in {"N/A", "not_supported"} else region


def _with_roles(found: list[Finding], inside: Sequence[inside_aws.Inside],
                rows: Sequence[Mapping[str, str]]) -> list[Finding]:
    """Each key used only from inside AWS: its problem added to the key's finding (one
    finding per credential), or a finding of its own."""
    arns = {r.get("user", ""): r.get("arn", "") for r in rows}
    by_slot = {(f.user, f.credential): f for f in found}
    for i in inside:
        user, slot = i.key.user, i.key.slot
        fix = ("give what runs it an IAM role (an instance profile, a Lambda or task role) "
               "allowed what it was used for, then retire the key: aws iam update-access-key "
               f"--user-name {user} --access-key-id {i.key.access_key_id} --status Inactive")
        had = by_slot.get((user, slot))
        by_slot[(user, slot)] = Finding(
            had.severity if had else "medium", user, slot,
            (*(had.problems if had else ()), i.problem()), fix,
            details={**(had.details if had else {"arn": arns.get(user, "")}),
                     "used_from": list(i.sources), "used_for": dict(i.used_for)})
    return sorted(by_slot.values(), key=lambda f: (SEVERITY[f.severity], f.user, f.credential))


def _load(path: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, seen: dict[str, Any], rows: Sequence[Mapping[str, str]]) -> None:
    for row in rows:
        for slot in ("access_key_1", "access_key_2"):
            entry = seen.setdefault(f"{row.get('user')}/{slot}", {})
            for kind in ("service", "region"):
                value = row.get(f"{slot}_last_used_{kind}") or ""
                if value and value not in {"N/A", "not_supported"} and \
                        value not in entry.setdefault(kind + "s", []):
                    entry[kind + "s"].append(value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(seen, indent=1, sort_keys=True), "utf-8")
    except OSError:
        pass  # the next audit only misses what "never seen before" would have said


def render(found: Sequence[Finding], fmt: str) -> str:
    """human, md or csv (json is the CLI's, from as_dict)."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["severity", "user", "credential", "access_key_id", "problems", "fix"])
        for f in found:
            writer.writerow([f.severity, f.user, f.credential, f.access_key_id or "",
                             "; ".join(f.problems), f.fix])
        return out.getvalue().rstrip("\n")
    if fmt == "md":
        lines = ["| severity | user | credential | problems | fix |", "|---|---|---|---|---|"]
        lines += [f"| {f.severity} | {f.user} | {f.access_key_id or f.credential} | "
                  f"{'; '.join(f.problems)} | `{f.fix}` |" for f in found]
        return "\n".join(lines)
    if not found:
        return "audit: nothing to fix"
    lines = [f"audit: {len(found)} credential(s) to fix, most urgent first"]
    for f in found:
        lines.append(f"  [{f.severity:<8}] {f.user} {f.access_key_id or f.credential}: "
                     f"{'; '.join(f.problems)}")
        lines.append(f"             fix: {f.fix}")
    return "\n".join(lines)
