"""collect-evidence: CloudTrail LookupEvents for the key in every region (issue #4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from responder.steps.base import NotBuiltYet, register


@register("collect_cloudtrail")
class CollectCloudTrail(NotBuiltYet):
    permissions = ("cloudtrail:LookupEvents", "ec2:DescribeRegions")
    read_only = True
    issue = "issue #4"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "lookback_days": {"type": "integer", "minimum": 1, "maximum": 90},
            "regions": {
                "oneOf": [
                    {"const": "all"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ]
            },
        },
    }
