"""notify: SNS and Slack messages saying what happened and what to do (issue #5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from responder.steps.base import NotBuiltYet, register


@register("notify")
class Notify(NotBuiltYet):
    permissions = ("sns:Publish",)
    issue = "issue #5"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"sns_topic_arn": {"type": "string", "pattern": "^arn:aws[a-z-]*:sns:"}},
    }
