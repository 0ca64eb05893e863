"""Finding documents with several findings, built from the fixtures for a test account.

Shared by the per-finding tests (parser, `respond_all`, the Lambda handler and the CLI)
so each builds the same Security Hub event or list of GuardDuty events the same way.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "findings"
UNKNOWN_KEY = "AKIAEXAMPLEFRANK0001"
"""Well formed, but no user of the test account has it."""


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def guardduty_event(key: str, finding_id: str, *, sample: bool = False) -> dict[str, Any]:
    """The GuardDuty EventBridge event fixture, about `key`, with its own finding id."""
    event: dict[str, Any] = fixture("guardduty-sample.json" if sample
                                    else "guardduty-eventbridge.json")
    event["id"] = f"event-{finding_id}"
    event["detail"]["id"] = finding_id
    event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = key
    return event


def asff_finding(key: str, finding_id: str, *, sample: bool = False) -> dict[str, Any]:
    """The ASFF finding of the Security Hub fixture, about `key`, with its own Id."""
    finding: dict[str, Any]
    [finding] = copy.deepcopy(fixture("securityhub-asff.json")["detail"]["findings"])
    finding["Id"] = finding_id
    finding["Resources"][0]["Id"] = f"AWS::IAM::AccessKey:{key}"
    if sample:
        finding["Sample"] = True
    return finding


def securityhub_event(*findings: dict[str, Any]) -> dict[str, Any]:
    """A Security Hub EventBridge event carrying `findings`, in that order."""
    event: dict[str, Any] = fixture("securityhub-asff.json")
    event["detail"]["findings"] = list(findings)
    return event


def write(directory: Path, document: Any, name: str = "finding.json") -> str:
    path = directory / name
    path.write_text(json.dumps(document))
    return str(path)
