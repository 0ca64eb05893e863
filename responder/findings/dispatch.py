"""Recognise what AWS emitted, hand each finding in it to its source's parser, and decide.

`respond finding` and the Lambda handler are fed whatever AWS emits: an EventBridge
event, GetFindings output, or one bare finding. This module works out which, so the
source parsers each see one finding and the runner only ever sees Triggers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO, TypeAlias

from responder.errors import BadInput, Refused, ResponderError
from responder.findings import guardduty, health, securityhub
from responder.findings.decide import decide
from responder.findings.lookup import as_list, text_at, value_at
from responder.findings.mapping import TriggerMapping, load_mapping, read_text
from responder.findings.model import Candidate, FindingRefused, Source, Trigger

_Unit: TypeAlias = tuple[Source, Any, Any]
"""(source, finding, enclosing EventBridge event or None)."""

_HELP = ("`respond finding` takes an EventBridge event from aws.guardduty, aws.health or "
         "aws.securityhub, GuardDuty or Security Hub GetFindings output, or one finding; "
         "for a key you already know, run `respond compromised ACCESS_KEY_ID`")

_EXTRACT: dict[Source, Callable[[Any, Any], list[Candidate]]] = {
    "guardduty": guardduty.candidates,
    "health": health.candidates,
    "securityhub": securityhub.candidates,
}


def _unrecognised(origin: str, what: str) -> BadInput:
    return BadInput(f"{origin}: {what}; not a GuardDuty, AWS Health or Security Hub "
                    f"finding. {_HELP}")


def _bare(obj: Any, origin: str) -> _Unit:
    """A finding outside any event: told apart by the fields only its source writes."""
    if isinstance(obj, dict):
        if (text_at(obj, "SchemaVersion") == securityhub.ASFF_SCHEMA_VERSION
                or (text_at(obj, "ProductArn") and isinstance(value_at(obj, "Resources"), list))):
            return ("securityhub", obj, None)
        if (text_at(obj, "type") and isinstance(value_at(obj, "resource"), dict)
                and text_at(obj, "id")):
            return ("guardduty", obj, None)
        if text_at(obj, "eventTypeCode") and text_at(obj, "eventArn"):
            return ("health", obj, None)
        shown = ", ".join(sorted(map(str, obj))[:6])
        raise _unrecognised(origin, f"an object with fields {shown or '(none)'}")
    raise _unrecognised(origin, f"a JSON {type(obj).__name__}")


def _bare_asff(obj: Any, origin: str, event: Any) -> _Unit:
    if not isinstance(obj, dict):
        raise _unrecognised(origin, "a Security Hub event whose findings are not objects")
    return ("securityhub", obj, event)


def _units(document: Any, origin: str) -> list[_Unit]:
    """Every finding in the document with its source; BadInput if any is unrecognisable."""
    if isinstance(document, list):
        if not document:
            raise BadInput(f"{origin}: an empty list, no finding in it")
        return [_bare(item, origin) for item in document]
    source = text_at(document, "source")
    if source is not None:
        detail = value_at(document, "detail")
        if source in {"aws.guardduty", "aws.health", "aws.securityhub"} and not isinstance(
                detail, dict):
            raise BadInput(f"{origin}: an event from {source!r} without a `detail` object")
        if source == "aws.guardduty":
            return [("guardduty", detail, document)]
        if source == "aws.health":
            return [("health", detail, document)]
        if source == "aws.securityhub":
            findings = as_list(value_at(detail, "findings"))
            if not findings:
                raise BadInput(f"{origin}: Security Hub event with no findings in "
                               "detail.findings")
            return [_bare_asff(f, origin, document) for f in findings]
        detail_type = text_at(document, "detail-type")
        raise _unrecognised(origin, f"an event from {source!r}"
                            f"{f' ({detail_type})' if detail_type else ''}")
    findings = value_at(document, "findings")
    if isinstance(findings, list):
        if not findings:
            raise BadInput(f"{origin}: GetFindings output with an empty Findings list")
        return [_bare(item, origin) for item in findings]
    return [_bare(document, origin)]


def parse(document: Any, *, mapping: TriggerMapping | None = None,
          origin: str = "finding") -> list[Trigger]:
    """Every actionable key in `document`, in document order, one per finding id.

    Raises BadInput when the document is not a finding AWS emits, FindingRefused (a
    Refused, exit 3) when no finding in it may start a playbook. A document with several
    findings returns the actionable ones and refuses only if there are none.
    """
    rules = mapping if mapping is not None else load_mapping()
    triggers: dict[str, Trigger] = {}
    problems: list[ResponderError] = []
    for source, finding, event in _units(document, origin):
        try:
            candidates = _EXTRACT[source](finding, event)
        except BadInput as exc:
            problems.append(BadInput(f"{origin}: {exc}"))
            continue
        for candidate in candidates:
            try:
                trigger = decide(candidate, rules)
            except FindingRefused as exc:
                problems.append(exc)
                continue
            except BadInput as exc:
                problems.append(BadInput(f"{origin}: {exc}"))
                continue
            triggers.setdefault(trigger.finding_id, trigger)
    if triggers:
        return list(triggers.values())
    if len(problems) == 1:
        raise problems[0]
    summary = "; ".join(str(p) for p in problems)
    message = f"{origin}: none of the {len(problems)} findings may start a playbook: {summary}"
    if any(isinstance(p, Refused) for p in problems):
        raise FindingRefused(message, reason="none-actionable", problems=problems)
    raise BadInput(message)


def load(path_or_dash: str, stdin: TextIO | None = None, *,
         mapping: TriggerMapping | None = None) -> list[Trigger]:
    """Read a finding document from a file, or from `stdin` (default sys.stdin) for '-'."""
    if path_or_dash == "-":
        name = "<stdin>"
        try:
            text = (stdin if stdin is not None else sys.stdin).read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read the finding from standard input: {exc}") from exc
    else:
        name = path_or_dash
        text = read_text(path_or_dash, "finding file")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise BadInput(f"{name}: empty; expected a finding as JSON")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                       f"{exc.msg}") from exc
    except RecursionError as exc:
        raise BadInput(f"{name}: JSON nested too deeply to be a finding") from exc
    return parse(document, mapping=mapping, origin=name)
