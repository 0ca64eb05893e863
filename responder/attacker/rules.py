"""contain-attacker's reading of the evidence: which CloudTrail events open a door, what
the step shuts by itself, and, for everything else that grants or widens access, what a
human must undo and the exact `aws` command that undoes it.

Pure functions over CloudTrail records (no AWS calls), so the rules are tested on their
own and the step module only observes and acts.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from responder.catalog.model import Entry, Meaning, Response
from responder.catalog.reading import Reading, each_resource, read
from responder.catalog.registry import entry_for
from responder.iam.role_policy import REVOKE_POLICY, revoke_policy
from responder.incident.shapes import refusal

ASSUME_EVENTS = frozenset({"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"})
CUTOFF_EVENTS = frozenset({"GetSessionToken", "GetFederationToken"})


@dataclass
class Findings:
    """What the attacker's successful events call for, in the order they were seen."""

    keys: dict[str, str] = field(default_factory=dict)
    """access key id -> its user: keys the attacker created."""
    users: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """role name -> {"role_arn", "sessions": {ROLEID:session or "?:session"}}"""
    foreign: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """account id -> the same as `sessions`, for roles in another account, each with the
    needs-human items ("human") to list when that account cannot be reached."""
    covered_by_cutoff: list[dict[str, Any]] = field(default_factory=list)
    needs_human: list[dict[str, Any]] = field(default_factory=list)
    events_considered: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    """Calls the catalog knows that AWS refused (an errorCode): nothing to undo."""
    credentials: list[dict[str, Any]] = field(default_factory=list)
    """CredentialRead details: what the attacker read, with the command that rotates it."""
    granted: list[dict[str, Any]] = field(default_factory=list)
    """OutsideGrant details: whom outside the account a change let in."""
    restore: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    """(defense, the needs-human item listed if it cannot be restored): the defenses the
    attacker turned off (kind, name, region, event_id), oldest first."""


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The evidence file's records, one per line, streamed."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict):
                    yield record


def _params(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = event.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _caller(event: Mapping[str, Any]) -> str:
    return str(_params(event, "userIdentity").get("accessKeyId") or "?")


def role_name(arn: str) -> str:
    """The role's name: the last segment of arn:aws:iam::ACCOUNT:role/path/name."""
    return arn.rsplit("/", 1)[-1]


def account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def service_linked(arn: str) -> bool:
    return "/aws-service-role/" in arn or role_name(arn).startswith("AWSServiceRoleFor")


def analyse(events: Iterable[Mapping[str, Any]], *, leaked_key: str, victim: str | None,
            account_id: str, own_keys: frozenset[str]) -> Findings:
    """Sort the attacker's successful events into what the step acts on, what the cutoff
    already covers and what is listed for a human. A call AWS refused (CloudTrail wrote
    an errorCode) changed nothing: never acted on, never given an undo, only listed as
    refused. Events signed with `own_keys` (the responder's key, its replacement key)
    are never the attacker's."""
    relevant: list[tuple[Mapping[str, Any], Entry]] = []
    refused: list[dict[str, Any]] = []
    minted: dict[str, tuple[str, str]] = {}  # temporary key -> (minting key, event name)
    considered = 0
    for event in events:
        caller = _caller(event)
        if caller in own_keys:
            continue
        name = str(event.get("eventName", ""))
        entry = entry_for(event)
        code = refusal(event)
        if code is not None:
            if entry is not None:
                refused.append({"event_id": event.get("eventID"), "event_name": name,
                                "time": event.get("eventTime"), "access_key_id": caller,
                                "error_code": code})
            continue
        considered += 1
        if name in CUTOFF_EVENTS or name in ASSUME_EVENTS:
            temp = _text(_params(_params(event, "responseElements"), "credentials")
                         .get("accessKeyId"))
            if temp is not None:
                minted[temp] = (caller, name)
        if entry is not None:
            relevant.append((event, entry))

    def owner(key: str, depth: int = 0) -> str | None:
        """The IAM user a key signs as: the leaked key's, and that of every session
        GetSessionToken minted from it; a role or federated session has none."""
        if key == leaked_key:
            return victim
        parent = minted.get(key)
        if parent is None or parent[1] != "GetSessionToken" or depth > 20:
            return None
        return owner(parent[0], depth + 1)

    found = Findings(events_considered=considered, refused=sorted(
        refused, key=lambda r: (str(r["time"] or ""), str(r["event_id"] or ""))))
    for event, entry in sorted(relevant, key=lambda r: (str(r[0].get("eventTime", "")),
                                                        str(r[0].get("eventID", "")))):
        _one(found, event, read(entry, event), owner=owner, account_id=account_id,
             own_keys=own_keys)
    return found


def _human(event: Mapping[str, Any], what: str, undo: str, note: str = "") -> dict[str, Any]:
    """A needs-human item: `undo` pastes as printed; the prose around it is `note`."""
    return {"event_id": event.get("eventID"), "event_name": event.get("eventName"),
            "time": event.get("eventTime"), "access_key_id": _caller(event),
            "what": what, "undo": undo, **({"note": note} if note else {})}


def _listed(event: Mapping[str, Any], reading: Reading) -> dict[str, Any]:
    """The needs-human item of a catalog reading: what, the undo, and what it means."""
    return {**_human(event, reading.what, reading.undo),
            "meaning": reading.entry.meaning.value, "resource": reading.resource,
            "region": reading.region, "outside": list(reading.outside),
            "manual": reading.manual, "entry": reading.entry.id, "note": reading.entry.note}


def _one(found: Findings, event: Mapping[str, Any], reading: Reading, *,
         owner: Callable[[str], str | None],
         account_id: str, own_keys: frozenset[str]) -> None:
    entry = reading.entry
    found.granted += [{"principal": p, "resource": reading.resource, "what": reading.what,
                       "event_name": event.get("eventName"), "event_id": event.get("eventID"),
                       "time": event.get("eventTime")} for p in reading.outside]
    caller = _caller(event)
    if entry.response is Response.NEUTRALISE:
        _neutralise(found, event, reading, owner=owner, account_id=account_id,
                    own_keys=own_keys)
    elif entry.meaning is Meaning.READS_CREDENTIALS:
        found.credentials += [{
            "kind": entry.credential, "name": one.resource or f"<{entry.credential}>",
            "region": one.region, "event_name": event.get("eventName"),
            "event_id": event.get("eventID"), "time": event.get("eventTime"),
            "access_key_id": caller, "rotate": one.undo, "manual": one.manual,
            "note": entry.note}
            for one in each_resource(reading)]
    elif entry.response is Response.RESTORE:
        found.restore.append(({"kind": entry.handler, "name": reading.resource,
                               "region": reading.region, "event_id": event.get("eventID")},
                              _listed(event, reading)))
    else:
        found.needs_human.append(_listed(event, reading))


def _neutralise(found: Findings, event: Mapping[str, Any], reading: Reading, *,
                owner: Callable[[str], str | None], account_id: str,
                own_keys: frozenset[str]) -> None:
    """What contain-attacker shuts itself, by the entry's handler."""
    request = _params(event, "requestParameters")
    caller = _caller(event)
    handler = reading.entry.handler
    if handler == "key":
        _created_key(found, event, reading, owner=owner, own_keys=own_keys)
    elif handler == "user":
        user = _text(request.get("userName"))
        if user is not None and user not in found.users:
            found.users.append(user)
    elif handler == "role":
        role = _text(request.get("roleName"))
        if role is not None and role not in found.roles:
            found.roles.append(role)
    elif handler == "session":
        _assumed(found, event, account_id)
    elif handler == "cutoff":
        found.covered_by_cutoff.append({"event_id": event.get("eventID"),
                                        "event_name": event.get("eventName"),
                                        "access_key_id": caller})
    elif handler == "login":
        named = _text(request.get("userName")) or owner(caller)
        user = named or "<its user>"
        if user not in found.users:  # a user the attacker created is quarantined whole
            found.needs_human.append({**_listed(event, reading), "what": (
                f"set a console password on existing user {user}"), "undo": (
                "aws iam delete-login-profile --user-name "
                f"{shlex.quote(named) if named else user}"), "manual": named is None})


def _created_key(found: Findings, event: Mapping[str, Any], reading: Reading, *,
                 owner: Callable[[str], str | None], own_keys: frozenset[str]) -> None:
    request = _params(event, "requestParameters")
    created = _params(_params(event, "responseElements"), "accessKey")
    key = _text(created.get("accessKeyId"))
    user = _text(request.get("userName")) or _text(created.get("userName")) or \
        owner(_caller(event))
    if key is None or key in own_keys:
        return
    if user is None:
        found.needs_human.append({**_listed(event, reading), "what": (
            f"created access key {key} for a user CloudTrail does not name"), "undo": (
            "aws iam update-access-key --user-name <its user> --access-key-id "
            f"{shlex.quote(key)} --status Inactive"), "manual": True})
        return
    found.keys.setdefault(key, user)


def _assumed(found: Findings, event: Mapping[str, Any], account_id: str) -> None:
    request = _params(event, "requestParameters")
    assumed = _params(_params(event, "responseElements"), "assumedRoleUser")
    arn = _text(request.get("roleArn"))
    if arn is None:
        return
    session = _text(assumed.get("assumedRoleId")) or \
        f"?:{request.get('roleSessionName') or ''}"
    name = role_name(arn)
    policy = json.dumps(revoke_policy([session]), separators=(",", ":"))
    other = account_of(arn)
    if other is not None and other != account_id and not service_linked(arn):
        entry = found.foreign.setdefault(other, {}).setdefault(
            name, {"role_arn": arn, "sessions": set(), "human": []})
        entry["sessions"].add(session)
        entry["human"].append(_human(
            event, f"assumed role {arn} in another account (session {session})",
            shlex.join(["aws", "iam", "put-role-policy", "--role-name", name, "--policy-name",
                        REVOKE_POLICY, "--policy-document", policy]),
            f"run it with credentials of account {other}"))
        return
    if service_linked(arn):
        found.needs_human.append(_human(
            event, f"assumed service-linked role {arn} (session {session}); its policies "
            "cannot be changed",
            shlex.join(["aws", "iam", "delete-service-linked-role", "--role-name", name]),
            "only if the service no longer needs it; otherwise wait for the session to "
            "expire"))
        return
    entry = found.sessions.setdefault(name, {"role_arn": arn, "sessions": set()})
    entry["sessions"].add(session)
