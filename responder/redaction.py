"""What must never be written anywhere: secret access keys, session tokens, secret values.

One place for the rule, below everything that writes (the journal's call records, the
logs, the report and the notices), so nothing that prints has to import the AWS layer
to be safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_FIELDS = frozenset(
    {"SecretAccessKey", "SessionToken", "SecretString", "SecretBinary", "Password"}
)
# A secret access key (40 base64 characters, no padding) or an STS session token.
SECRET_SHAPED = re.compile(
    r"(?<![A-Za-z0-9/+])(?:[A-Za-z0-9/+]{40}|(?:FwoG|IQo)[A-Za-z0-9/+=]{100,})(?![A-Za-z0-9/+])"
)


def redact(value: Any) -> Any:
    """Copy with secret-named fields and secret-shaped text removed, safe to journal or log."""
    if isinstance(value, Mapping):
        return {
            k: ("<redacted>" if k in SECRET_FIELDS else redact(v))
            for k, v in value.items()
            if k != "ResponseMetadata"
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_SHAPED.sub("<redacted>", value)
    return value
