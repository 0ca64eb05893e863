"""Recognise what AWS emitted, hand each finding in it to its source's parser, and decide.

`respond finding` and the Lambda handler are fed whatever AWS emits: an EventBridge
event, GetFindings output, one bare finding, or a JSON list of any of these (what a
script collecting several events writes). This module works out which, so the source
parsers each see one finding and the runner only ever sees Triggers.

Each finding is judged on its own: a document with N findings parses to N outcomes, each
a Trigger or a `Rejected` naming that finding, so one bad finding never hides the
others. Only a document that is no finding at all (not JSON, an unknown shape, an empty
list, or a list none of whose elements is a finding) fails as a whole, with BadInput.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from responder.errors import BadInput, Refused, ResponderError, clipped
from responder.findings import guardduty, health, securityhub
from responder.findings.decide import decide
from responder.findings.lookup import as_list, json_kind, text_at, value_at
from responder.findings.mapping import TriggerMapping, load_mapping, read_text
from responder.findings.model import Candidate, FindingRefused, Parsed, Rejected, Source, Trigger


@dataclass(frozen=True)
class _Unit:
    """One finding to hand to its source's parser."""

    source: Source
    finding: Any
    event: Any
    """The enclosing EventBridge event, or None for a bare finding."""
    origin: str
    """How messages name where it came from: the file, and its index in a list."""


_HELP = ("`respond finding` takes a GuardDuty, Health or Security Hub finding (its "
         "EventBridge event, GetFindings output, or a list); for a known key: `respond "
         "compromised ACCESS_KEY_ID`")

SHOWN_FIELDS = 6
"""How many of an unrecognised object's field names a message lists."""
SHOWN_ENTRIES = 2
"""How many of a list's entries a message that none of them is a finding quotes."""
SHOWN_PROBLEMS = 3
"""How many rejected findings a message that sums several up quotes (the rest counted):
a list of 200,000 malformed entries must make one short line, not megabytes."""

_EXTRACT: dict[Source, Callable[[Any, Any], list[Candidate]]] = {
    "guardduty": guardduty.candidates,
    "health": health.candidates,
    "securityhub": securityhub.candidates,
}


_NOT_A_FINDING = "; not a GuardDuty, AWS Health or Security Hub finding"


def _unrecognised(origin: str, what: str) -> BadInput:
    return BadInput(f"{origin}: {what}{_NOT_A_FINDING}. {_HELP}")


def _bare(obj: Any, origin: str) -> _Unit:
    """A finding outside any event: told apart by the fields only its source writes."""
    if isinstance(obj, dict):
        if (text_at(obj, "SchemaVersion") == securityhub.ASFF_SCHEMA_VERSION
                or (text_at(obj, "ProductArn") and isinstance(value_at(obj, "Resources"), list))):
            return _Unit("securityhub", obj, None, origin)
        if (text_at(obj, "type") and isinstance(value_at(obj, "resource"), dict)
                and text_at(obj, "id")):
            return _Unit("guardduty", obj, None, origin)
        if text_at(obj, "eventTypeCode") and text_at(obj, "eventArn"):
            return _Unit("health", obj, None, origin)
        names = sorted(map(str, obj))
        shown = ", ".join(clipped(n, 40) for n in names[:SHOWN_FIELDS])
        more = f" and {len(names) - SHOWN_FIELDS} more" if len(names) > SHOWN_FIELDS else ""
        raise _unrecognised(origin, f"an object with fields {shown or '(none)'}{more}")
    raise _unrecognised(origin, f"a JSON {json_kind(obj)}")


def _asff(obj: Any, origin: str, event: Any) -> _Unit:
    if not isinstance(obj, dict):
        raise _unrecognised(origin, "a Security Hub event finding that is not an object")
    return _Unit("securityhub", obj, event, origin)


def _each(items: Sequence[Any], origin: str, label: str,
          read: Callable[[Any, str], list[_Unit | Rejected]], empty: str,
          ) -> list[_Unit | Rejected]:
    """`read` applied to every item on its own: an unreadable item is rejected alone.

    BadInput for the whole list only when it is empty (`empty` says what it is) or no
    item in it is readable: then there is nothing to answer, and the document is not a
    finding document at all.
    """
    if not items:
        raise BadInput(f"{origin}: {empty}, no finding in it")
    units: list[_Unit | Rejected] = []
    for index, item in enumerate(items):
        try:
            units.extend(read(item, f"{origin}{f': {label}' if label else ''}[{index}]"))
        except BadInput as exc:
            units.append(Rejected(exc))
    problems = [u.error for u in units if isinstance(u, Rejected)]
    if len(problems) < len(units):
        return units
    if len(problems) == 1:
        raise problems[0]
    each = "; ".join(clipped(str(p).removesuffix(f". {_HELP}").removesuffix(_NOT_A_FINDING),
                             100) for p in problems[:SHOWN_ENTRIES])
    more = f"; and {len(problems) - SHOWN_ENTRIES} more" if len(problems) > SHOWN_ENTRIES \
        else ""
    raise BadInput(f"{origin}: none of the {len(problems)} entries of {label or 'the list'} "
                   f"is a finding: {each}{more}. {_HELP}")


def _event(document: Any, source: str, origin: str) -> list[_Unit | Rejected]:
    """The findings of an EventBridge event from `source`."""
    detail = value_at(document, "detail")
    if source in {"aws.guardduty", "aws.health", "aws.securityhub"} and not isinstance(
            detail, dict):
        raise BadInput(f"{origin}: an event from {clipped(source)!r} without a `detail` "
                       "object")
    if source == "aws.guardduty":
        return [_Unit("guardduty", detail, document, origin)]
    if source == "aws.health":
        return [_Unit("health", detail, document, origin)]
    if source == "aws.securityhub":
        findings = as_list(value_at(detail, "findings"))
        return _each(findings, origin, "detail.findings",
                     lambda f, where: [_asff(f, where, document)],
                     "Security Hub event with no findings in detail.findings")
    detail_type = text_at(document, "detail-type")
    raise _unrecognised(origin, f"an event from {clipped(source)!r}"
                        f"{f' ({clipped(detail_type)})' if detail_type else ''}")


def _document(document: Any, origin: str) -> list[_Unit | Rejected]:
    """Every finding in one event, GetFindings output or bare finding (not a list)."""
    source = text_at(document, "source")
    if source is not None:
        return _event(document, source, origin)
    findings = value_at(document, "findings")
    if isinstance(findings, list):
        return _each(findings, origin, "Findings", lambda f, where: [_bare(f, where)],
                     "GetFindings output with an empty Findings list")
    return [_bare(document, origin)]


def _units(document: Any, origin: str) -> list[_Unit | Rejected]:
    """Every finding in the document; a JSON list is a list of documents, each read alone
    (a GuardDuty event wrapped in `[...]` is one finding, not garbage)."""
    if isinstance(document, list):
        return _each(document, origin, "", _document, "an empty list")
    return _document(document, origin)


def _decide(candidate: Candidate, mapping: TriggerMapping, origin: str) -> Parsed:
    try:
        return decide(candidate, mapping)
    except FindingRefused as exc:
        return Rejected(exc, exc.finding_id or candidate.finding_id,
                        exc.access_key_id or candidate.access_key_id)
    except BadInput as exc:
        return Rejected(BadInput(f"{origin}: {exc}"), candidate.finding_id,
                        candidate.access_key_id)


def _judge(unit: _Unit | Rejected, mapping: TriggerMapping) -> list[Parsed]:
    if isinstance(unit, Rejected):
        return [unit]
    try:
        candidates = _EXTRACT[unit.source](unit.finding, unit.event)
    except BadInput as exc:
        return [Rejected(BadInput(f"{unit.origin}: {exc}"))]
    return [_decide(c, mapping, unit.origin) for c in candidates]


def parse_each(document: Any, *, mapping: TriggerMapping | None = None,
               origin: str = "finding") -> list[Parsed]:
    """One outcome per finding in `document`, in document order: a Trigger, or Rejected.

    The same finding id twice (a finding and its re-delivery in one list) is one outcome:
    the first Trigger for it, else the first rejection. Raises BadInput only when the
    document as a whole is not a finding document (see the module docstring).
    """
    rules = mapping if mapping is not None else load_mapping()
    outcomes: dict[str | int, Parsed] = {}
    for unit in _units(document, origin):
        for parsed in _judge(unit, rules):
            slot: str | int = parsed.finding_id or len(outcomes)
            earlier = outcomes.get(slot)
            if earlier is None or (isinstance(earlier, Rejected) and isinstance(parsed, Trigger)):
                outcomes[slot] = parsed
    return list(outcomes.values())


def actionable(parsed: Sequence[Parsed], origin: str = "finding") -> list[Trigger]:
    """The Triggers among `parsed`; if there are none, raise what stops them all.

    One rejection is raised as it is; several become one FindingRefused
    (`none-actionable`, listing each) if any is a refusal, else one BadInput.
    """
    triggers = [p for p in parsed if isinstance(p, Trigger)]
    if triggers:
        return triggers
    problems: list[ResponderError] = [p.error for p in parsed if isinstance(p, Rejected)]
    if len(problems) == 1:
        raise problems[0]
    summary = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])  # each bounded already
    if len(problems) > SHOWN_PROBLEMS:
        summary += f"; and {len(problems) - SHOWN_PROBLEMS} more"
    message = f"{origin}: none of the {len(problems)} findings may start a playbook: {summary}"
    if any(isinstance(p, Refused) for p in problems):
        raise FindingRefused(message, reason="none-actionable", problems=problems)
    raise BadInput(message)


def parse(document: Any, *, mapping: TriggerMapping | None = None,
          origin: str = "finding") -> list[Trigger]:
    """Every actionable key in `document`, in document order, one per finding id.

    For callers that want only what may start a playbook: the rejected findings are
    dropped, and only when none is actionable does it raise (BadInput, or FindingRefused
    exit 3; see `actionable`). `respond finding` and the Lambda handler answer every
    finding, so they use `parse_each` / `load_each` with `trigger.respond_all`.
    """
    return actionable(parse_each(document, mapping=mapping, origin=origin), origin)


def _read(path_or_dash: str, stdin: TextIO | None) -> tuple[Any, str]:
    """The JSON document in a file, or on `stdin` (default sys.stdin) for '-', and its name."""
    if path_or_dash == "-":
        name = "<stdin>"
        try:
            text = (stdin if stdin is not None else sys.stdin).read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read the finding from standard input: {exc}") from exc
    else:
        name = clipped(path_or_dash, 120)  # every message about the file starts with it
        text = read_text(path_or_dash, "finding file")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise BadInput(f"{name}: empty; expected a finding as JSON")
    try:
        return json.loads(text), name
    except json.JSONDecodeError as exc:
        raise BadInput(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                       f"{exc.msg}") from exc
    except RecursionError as exc:
        raise BadInput(f"{name}: JSON nested too deeply to be a finding") from exc


def load_each(path_or_dash: str, stdin: TextIO | None = None, *,
              mapping: TriggerMapping | None = None) -> list[Parsed]:
    """`parse_each` of a finding file, or of `stdin` for '-'; BadInput if unreadable."""
    document, name = _read(path_or_dash, stdin)
    return parse_each(document, mapping=mapping, origin=name)


def load(path_or_dash: str, stdin: TextIO | None = None, *,
         mapping: TriggerMapping | None = None) -> list[Trigger]:
    """`parse` of a finding file, or of `stdin` (default sys.stdin) for '-'."""
    document, name = _read(path_or_dash, stdin)
    return parse(document, mapping=mapping, origin=name)
