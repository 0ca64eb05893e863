"""Turn a GuardDuty, AWS Health or Security Hub finding into the key to respond to.

`respond finding` and the Lambda handler are fed whatever AWS emits: an EventBridge
event, `aws guardduty get-findings` output (PascalCase from boto3, camelCase from the raw
API), an AWS Health risk event, or Security Hub ASFF findings. One parser reads all of
them into the same `Trigger`, so the runner never needs to know where a finding came
from. Everything that must not start a playbook is refused before any AWS call, with a
message that tells the on-call engineer what to do instead. Which types start which
playbook is data (`playbooks/triggers.json`, or a mapping file of your own), not code.

The modules, in the order data flows through them:
`dispatch` (recognise the document) → `guardduty` / `health` / `securityhub` (one per
source, each reading its shape with `lookup` into a `model.Candidate`) → `decide`
(guardrails and the `mapping`) → `model.Trigger`, or `model.Rejected` for a finding
that starts nothing. `parse_each` / `load_each` answer every finding of a document on
its own (what `trigger.respond_all` takes); `parse` / `load` keep only the Triggers.
Import from here: the submodules are the package's own business.
"""

from responder.findings.dispatch import actionable, load, load_each, parse, parse_each
from responder.findings.mapping import (
    DEFAULT_MAPPING,
    SHIPPED_PACKAGE,
    Mapping,
    Rule,
    TriggerMapping,
    load_mapping,
)
from responder.findings.model import (
    FindingRefused,
    Parsed,
    RefusalReason,
    Rejected,
    Source,
    Trigger,
)
from responder.findings.securityhub import ASFF_SCHEMA_VERSION

__all__ = [
    "ASFF_SCHEMA_VERSION",
    "DEFAULT_MAPPING",
    "SHIPPED_PACKAGE",
    "FindingRefused",
    "Mapping",
    "Parsed",
    "RefusalReason",
    "Rejected",
    "Rule",
    "Source",
    "Trigger",
    "TriggerMapping",
    "actionable",
    "load",
    "load_each",
    "load_mapping",
    "parse",
    "parse_each",
]
