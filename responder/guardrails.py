"""Refusals (DESIGN §6): checks that stop a run before it changes anything.

Input checks raise BadInput (exit 2); judgement calls about what may be touched raise
Refused (exit 3). Each message says what the human should do instead.
"""

from __future__ import annotations

import re

from responder.errors import BadInput, Refused

_KEY_RE = re.compile(r"^(?P<prefix>[A-Z]{4})[A-Z0-9]{16}$")
_OTHER_PREFIXES = {
    "AIDA": "an IAM user id",
    "AROA": "an IAM role id",
    "AGPA": "an IAM group id",
    "ANPA": "a managed policy id",
    "AIPA": "an EC2 instance profile id",
}
ROOT_NAMES = frozenset({"", "root", "<root_account>"})


def check_access_key_id(text: str, *, temporary_ok: bool = False) -> str:
    """Return the key id if it is well formed: a long-term (AKIA) key, or with
    `temporary_ok` also a temporary (ASIA) one; else say precisely what is wrong."""
    key = text.strip()
    match = _KEY_RE.match(key)
    if not match:
        if len(key) == 20 and _KEY_RE.match(key.upper()):
            raise BadInput(f"malformed access key id {key!r}: access key ids are upper case; "
                           f"did you mean {key.upper()}?")
        raise BadInput(
            f"malformed access key id {key[:24]!r} ({len(key)} characters): expected 20, "
            "'AKIA' (or 'ASIA') followed by 16 upper-case letters or digits"
        )
    prefix = match["prefix"]
    if prefix == "ASIA" and not temporary_ok:
        raise BadInput(
            f"{key} is a temporary (STS) key: it cannot be disabled and expires on its own. "
            "Respond with the compromised-session playbook (`respond compromised` chooses "
            "it for ASIA keys), which revokes exactly that session"
        )
    if prefix in _OTHER_PREFIXES:
        raise BadInput(f"{key} is {_OTHER_PREFIXES[prefix]}, not an access key id")
    if prefix not in {"AKIA", "ASIA"}:
        raise BadInput(f"malformed access key id {key}: long-term keys start with AKIA, "
                       "temporary ones with ASIA")
    return key


def is_temporary(key: str) -> bool:
    """ASIA keys are STS session credentials; AKIA keys are an IAM user's long-term keys."""
    return key.startswith("ASIA")


def check_not_own_key(key: str, caller_key: str | None) -> None:
    if caller_key is not None and caller_key == key:
        raise Refused(
            f"{key} is the key this responder is signing its own requests with; disabling it "
            "would stop the response halfway. Run `respond` with other credentials "
            "(another profile or role) and try again"
        )


def check_not_root(key: str, user_name: str | None) -> None:
    if user_name is None or user_name in ROOT_NAMES:
        raise Refused(
            f"{key} belongs to the account's root user. Root keys cannot be managed through "
            "IAM APIs safely: sign in to the console as root, delete the key under "
            "Security credentials, and rotate the root password and MFA"
        )


_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")


def check_topic_arn(text: str | None) -> str | None:
    """An SNS topic ARN, checked before anything runs: a typo found only at the notify
    step would leave the humans untold after the key was already contained."""
    if text is not None and not _TOPIC_ARN.match(text):
        raise BadInput(f"--notify-topic {text!r} is not an SNS topic ARN "
                       "(arn:aws:sns:REGION:ACCOUNT:NAME)")
    return text


def check_role_arn(text: str | None, option: str = "--role-arn") -> str | None:
    """An IAM role ARN (or, for the template, one with `{account_id}` in it)."""
    if text is not None and not _ROLE_ARN.match(text.replace("{account_id}", "0" * 12)):
        raise BadInput(f"{option} {text!r} is not an IAM role ARN "
                       "(arn:aws:iam::ACCOUNT:role/NAME)")
    return text


ROLE_SESSION_ARN = re.compile(
    r"^arn:aws[a-z-]*:sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/"
    r"(?P<session>[\w+=,.@-]+)$")
USER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):user/(?:[\w+=,.@/-]*/)?(?P<user>[\w+=,.@-]+)$")


def check_principal_arn(text: str | None) -> str | None:
    """`--principal`: a role session's or an IAM user's ARN, checked before anything runs."""
    if text is not None and not (ROLE_SESSION_ARN.match(text) or USER_ARN.match(text)):
        raise BadInput(f"--principal {text!r} is neither a role session "
                       "(arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) nor an IAM user "
                       "(arn:aws:iam::ACCOUNT:user/NAME)")
    return text


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket(text: str | None) -> str | None:
    """An S3 bucket name, checked before anything runs: a typo found only when the
    evidence is copied would leave it on this machine alone."""
    if text is not None and not _BUCKET.match(text):
        raise BadInput(f"evidence bucket {text!r} is not an S3 bucket name (3-63 lower-case "
                       "letters, digits, dots, dashes); pass the name, not an s3:// URI")
    return text
