"""docs/iam-policy.json, generated from what the registered steps declare.

`python -m responder.iam_policy > docs/iam-policy.json` regenerates it; a test fails
when a step's declared permissions and the shipped document drift apart.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from responder.steps import required_permissions

READ_VERBS = ("Get", "List", "Describe", "Lookup")


def document() -> dict[str, Any]:
    """Read-only actions and changing actions in separate statements, for reviewers."""
    actions = required_permissions()
    read_only = [p for p in actions if p.split(":", 1)[1].startswith(READ_VERBS)]
    mutating = [p for p in actions if p not in read_only]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ResponderRead", "Effect": "Allow", "Action": read_only, "Resource": "*"},
            {"Sid": "ResponderAct", "Effect": "Allow", "Action": mutating, "Resource": "*"},
        ],
    }


def render() -> str:
    return json.dumps(document(), indent=2) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
