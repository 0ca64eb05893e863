"""replace-key: a working key for the user, its secret only in Secrets Manager (issue #5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from responder.steps.base import NotBuiltYet, register


@register("replace_access_key")
class ReplaceAccessKey(NotBuiltYet):
    permissions = (
        "iam:ListAccessKeys",
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
    )
    issue = "issue #5"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "store": {"enum": ["secretsmanager"]},
            "secret_name": {"type": "string", "minLength": 1},
            "delete_compromised": {"enum": ["after_evidence", "never"]},
        },
    }
