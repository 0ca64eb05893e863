"""Reading a CloudTrail record through a catalog entry: does the entry apply, what does
it touch, whom does it let in, and the exact commands that undo it.

Pure functions over one record; no AWS calls. A value the record does not carry becomes
a `<placeholder>` and the command is marked manual, never guessed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore import xform_name

from responder.catalog.model import ABSENT, PRESENT, Command, Entry, Manual

CLI_SERVICE = {"s3": "s3api", "config": "configservice"}
"""botocore service name -> the aws CLI's, where they differ."""
POLICY = "|policy"
EVERYONE = ("/groups/global/AllUsers", "/groups/global/AuthenticatedUsers")
"""S3 ACL grantee URIs that mean everyone (any AWS account, for the second): read as `*`,
as is a share with the group `all`."""
CANNED_PUBLIC = frozenset({"all", "public-read", "public-read-write", "authenticated-read"})
"""A share with the group `all` (snapshots, AMIs, RDS snapshots) and S3's canned ACLs
that open a bucket to everyone: read as `*`."""
FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")
"""`{name}` in a text or a command value: one of the entry's fields. Braces of another
shape (a JSON policy's) are literal."""


def values_at(record: Any, path: str) -> list[Any]:
    """Every value at a dotted path; `name[]` walks each item of a list. Missing
    members and nulls give nothing."""
    found = [record]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        step: list[Any] = []
        for value in found:
            inner = value.get(key) if isinstance(value, Mapping) else None
            if many and isinstance(inner, list):
                step += inner
            elif many and isinstance(inner, Mapping) and "items" in inner:
                step += inner["items"] if isinstance(inner["items"], list) else []
            elif inner is not None:
                step.append(inner)
        found = step
    return found


def _words(values: list[Any]) -> list[str]:
    """Scalars as text, in order, once each (a record can name a resource twice)."""
    out: list[str] = []
    for value in values:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            continue
        if text and text not in out:
            out.append(text)
    return out


def applies(entry: Entry, record: Mapping[str, Any]) -> bool:
    """The record is this entry's event with the request shape the entry names."""
    if record.get("eventSource") != entry.source or record.get("eventName") != entry.event:
        return False
    for path, wanted in entry.when.items():
        got = [w.lower() for w in _words(values_at(record, path))]
        if wanted == ABSENT:
            if got:
                return False
        elif not got or (wanted != PRESENT and wanted.lower() not in got):
            return False
    return True


def _principals(document: Any) -> list[str]:
    """The principals an IAM-style policy document (a JSON string or an object) names
    in its Allow statements."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement", [])
    out: list[str] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if isinstance(principal, str):
            out.append(principal)
            continue
        for value in (principal or {}).values() if isinstance(principal, Mapping) else ():
            out += [v for v in (value if isinstance(value, list) else [value])
                    if isinstance(v, str)]
    return out


def account_of(principal: str) -> str | None:
    """The account an ARN or a bare account id names."""
    if principal.isdigit() and len(principal) == 12:
        return principal
    parts = principal.split(":")
    return parts[4] if principal.startswith("arn:") and len(parts) > 5 and parts[4] else None


def outside_principals(entry: Entry, record: Mapping[str, Any]) -> tuple[str, ...]:
    """Whom the change lets in from outside the record's account: `*`, account ids,
    ARNs and service or federated principals of other accounts, each once."""
    own = {str(record.get("recipientAccountId") or ""),
           str((record.get("userIdentity") or {}).get("accountId") or "")} - {""}
    out: list[str] = []
    for path in entry.outside:
        if path.endswith(POLICY):
            found = [p for d in values_at(record, path[: -len(POLICY)]) for p in _principals(d)]
        else:
            found = _words(values_at(record, path))
        for named in found:
            everyone = named.lower() in CANNED_PUBLIC or named.endswith(EVERYONE)
            principal = "*" if everyone else named
            account = account_of(principal)
            if account in own or (account is None and principal.endswith(".amazonaws.com")):
                continue
            if principal not in out:
                out.append(principal)
    return tuple(out)


@dataclass(frozen=True)
class Reading:
    """One record read through its entry."""

    entry: Entry
    values: Mapping[str, tuple[str, ...]]
    """field -> its values in the record (empty: the record does not carry it)."""
    region: str
    what: str
    commands: tuple[str, ...]
    manual: bool
    """Some command holds a <placeholder>: edit it before running it."""
    outside: tuple[str, ...]
    record: Mapping[str, Any]

    @property
    def resource(self) -> str:
        """The first field's values: what the change touches."""
        first = next(iter(self.entry.fields), None)
        return " ".join(self.values.get(first, ())) if first else ""

    @property
    def undo(self) -> str:
        """The commands as one line to paste (the entry's note goes beside it, never in
        it: what is pasted must run as printed)."""
        return " && ".join(self.commands)


def read(entry: Entry, record: Mapping[str, Any]) -> Reading:
    """The entry applied to the record: its texts, commands and outside principals."""
    values = {name: tuple(_words(values_at(record, path)))
              for name, path in entry.fields.items()}
    return _reading(entry, record, values)


def each_resource(reading: Reading) -> tuple[Reading, ...]:
    """One reading per resource the record names (GetParameters reads several
    parameters, each rotated by a command of its own); the reading itself when it names
    one or none."""
    first = next(iter(reading.entry.fields), None)
    named = reading.values.get(first, ()) if first else ()
    if len(named) < 2 or first is None:
        return (reading,)
    return tuple(_reading(reading.entry, reading.record, {**reading.values, first: (one,)})
                 for one in named)


def _reading(entry: Entry, record: Mapping[str, Any],
             values: Mapping[str, tuple[str, ...]]) -> Reading:
    region = str(record.get("awsRegion") or "us-east-1")
    shown = {name: " ".join(v) if v else f"<{name}>" for name, v in values.items()}
    what = fill(entry.what, {**shown, "region": region})
    manual = False
    commands: list[str] = []
    first = next(iter(entry.fields), "")
    # a credential read names each secret or parameter; each is rotated on its own
    each = [{**values, first: (v,)} for v in values.get(first, ())] \
        if entry.credential and len(values.get(first, ())) > 1 else [values]
    for one in each:
        for command in entry.undo:
            words, hand = render(command, one, region)
            manual = manual or hand
            commands.append(" ".join(words))
    return Reading(entry, values, region, what, tuple(commands), manual,
                   outside_principals(entry, record), record)


def flag(member: str) -> str:
    """The aws CLI's option for an input member: `SnapshotId` -> `--snapshot-id`."""
    return "--" + xform_name(member, "-")


def render(command: Command, values: Mapping[str, tuple[str, ...]], region: str
           ) -> tuple[list[str], bool]:
    """The command's shell words (each value quoted), and whether one is a placeholder
    to replace by hand."""
    words = ["aws", CLI_SERVICE.get(command.service, command.service),
             xform_name(command.operation, "-")]
    if command.regional:
        words += ["--region", shlex.quote(region)]
    manual = False
    for member, value in command.params.items():
        if value is True:
            words.append(flag(member))
            continue
        words.append(flag(member))
        if isinstance(value, Manual):
            words.append(f"<{value.text}>")
            manual = True
            continue
        parts, hand = _fill(str(value), values)
        manual = manual or hand
        words += parts
    return words, manual


def _fill(template: str, values: Mapping[str, tuple[str, ...]]) -> tuple[list[str], bool]:
    """A template's shell words: a lone `{field}` gives each of its values as a word."""
    names = FIELD.findall(template)
    whole = FIELD.fullmatch(template)
    if whole is not None:
        got = values.get(whole.group(1), ())
        if not got:
            return [f"<{whole.group(1)}>"], True
        return [shlex.quote(v) for v in got], False
    shown = {n: " ".join(values.get(n, ())) or f"<{n}>" for n in names}
    if any(not values.get(n) for n in names):
        return [fill(template, shown)], True
    return [shlex.quote(fill(template, shown))], False


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with each `{field}` replaced (a field not given stays as it is)."""
    return FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)
