"""replace-key: a working key for the user, its secret only in Secrets Manager (issue #5)."""

from __future__ import annotations

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
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "store": {"enum": ["secretsmanager"]},
            "secret_name": {"type": "string", "minLength": 1},
            "delete_compromised": {"enum": ["after_evidence", "never"]},
        },
    }
