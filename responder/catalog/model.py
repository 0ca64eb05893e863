"""The catalog's vocabulary: what an attacker's CloudTrail event means, what it touches,
what the responder does about it and the command that undoes it.

Entries are data (frozen dataclasses in the sibling modules, one per family of
services), read by contain-attacker, the sweeps and the evidence summary, and printed as
the table in docs/attacker-catalog.md. The long tail of AWS APIs grows by adding an
entry and its recorded CloudTrail fixture, never a branch: tests/test_catalog.py checks
every entry against its fixture and every command against botocore's service model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Meaning(enum.Enum):
    """What the change does for the attacker, as an incident responder sorts it."""

    CREATES_ACCESS = "creates access"
    """A new way in: a key, a user, a password, an opened port, code that runs."""
    GRANTS_OUTSIDE = "grants access to an outside principal"
    """A resource policy, share or grant naming another account, or everyone."""
    WIDENS_POLICY = "widens a policy"
    """More permissions for a principal the attacker can use."""
    WEAKENS_DEFENSES = "weakens logging or detection"
    """The defenders see less: a trail stopped, a detector disabled, logs expired."""
    READS_CREDENTIALS = "reads credentials"
    """A secret, a SecureString parameter, a decrypted blob: rotate what it read."""
    EXFILTRATES = "exfiltrates data"
    """Data copied to where the attacker can read it (replication, a snapshot share)."""


class Response(enum.Enum):
    """What contain-attacker does with a successful event of the entry."""

    NEUTRALISE = "neutralise"
    """Shut by the responder itself (a key set Inactive, a principal quarantined, a
    session denied); `Entry.handler` names which of contain-attacker's neutralisers."""
    RESTORE = "restore"
    """Turned back on by the responder where it is safe (logging, detection), observed
    first and verified after; `Entry.handler` names the defense."""
    LIST = "list"
    """Listed for a human with the command that undoes it; nothing touched."""


@dataclass(frozen=True)
class Manual:
    """A command value the record cannot give (the policy before this event): printed
    as `<text>`, and the command is marked to be edited by hand before it is run."""

    text: str


Value = str | bool | Manual
"""A command parameter's value: a string (`{field}` names one of the entry's fields; a
field with several values gives one shell word each when it is the whole value), True
for a flag without a value (`--enable`), or a Manual placeholder."""


@dataclass(frozen=True)
class Command:
    """One `aws` CLI command, structured so the meta-test can check it against botocore:
    `operation` is the botocore operation name and `params` its input members."""

    service: str
    """botocore's service name (s3, config, ...); the CLI's (s3api, configservice) is
    derived when printed."""
    operation: str
    params: Mapping[str, Value] = field(default_factory=dict)
    regional: bool = True
    """Add `--region` from the record's awsRegion (False for IAM, Organizations, S3)."""


@dataclass(frozen=True)
class Entry:
    """One kind of attacker change: a CloudTrail event, optionally narrowed by the shape
    of its request (`when`)."""

    source: str
    """The record's eventSource: `ec2.amazonaws.com`."""
    event: str
    """The record's eventName, as CloudTrail writes it (`AddPermission20150331v2`)."""
    meaning: Meaning
    what: str
    """What happened, for a human; `{field}` names one of `fields`, `{region}` the
    record's region."""
    fields: Mapping[str, str] = field(default_factory=dict)
    """name -> path into the record: `requestParameters.snapshotId`,
    `responseElements.grantId`, `resources[].ARN`; `[]` walks every item of a list.
    The first field is the resource the change touches."""
    undo: tuple[Command, ...] = ()
    """The commands that undo it (or, for READS_CREDENTIALS, rotate what was read), in
    order; empty only when nothing can be undone and `note` says what to do."""
    note: str = ""
    """Prose that goes with the commands: what to check before running them."""
    response: Response = Response.LIST
    handler: str = ""
    """For NEUTRALISE and RESTORE: which neutraliser or defense (`key`, `trail`, ...)."""
    when: Mapping[str, str] = field(default_factory=dict)
    """path -> a value the record must hold there (compared case-insensitively),
    PRESENT or ABSENT: the request shape that makes the event this entry (a share that
    adds, a read that decrypts). Entries with more conditions are tried first."""
    outside: tuple[str, ...] = ()
    """Paths to the principals the change grants access to. A path ending in `|policy`
    reads a policy document there (a JSON string or object) and takes its principals.
    Account ids and ARNs of the record's own account are not outside."""
    credential: str = ""
    """For READS_CREDENTIALS: the kind of credential read (secret, parameter, kms-key,
    instance-password); the first field names it."""
    variant: str = ""
    """Tells entries of one event apart in ids and fixture names (`public`, `disable`)."""
    techniques: tuple[str, ...] = ()
    """Public catalog ids it answers: Stratus Red Team (`aws.persistence.iam-backdoor-
    role`) and MITRE ATT&CK (`T1098.001`)."""

    @property
    def id(self) -> str:
        """`ec2.ModifySnapshotAttribute` or `ec2.ModifySnapshotAttribute.public`: the
        entry's name in docs and its fixture's file name."""
        base = f"{self.source.split('.', 1)[0]}.{self.event}"
        return f"{base}.{self.variant}" if self.variant else base


PRESENT = "*"
"""A `when` value: any value at that path (the request carries the member at all)."""
ABSENT = "-"
"""A `when` value: no value at that path (a Decrypt no service made on the caller's
behalf: `userIdentity.invokedBy` absent)."""
