"""AWS Health `AWS_RISK_*` events: AWS telling the account a key was exposed.

Health names keys only as text in `affectedEntities` (or the envelope's `resources`), and
one event may name several, so each key becomes its own candidate.
"""

from __future__ import annotations

from typing import Any

from responder.errors import clipped
from responder.findings.lookup import as_list, key_tokens, required_texts, text_at, value_at
from responder.findings.model import Candidate


def candidates(detail: Any, event: Any) -> list[Candidate]:
    """One candidate per key the event names, or one keyless candidate to be refused."""
    arn, code = required_texts(detail, ("eventArn", "eventTypeCode"), "AWS Health event",
                               "pass the EventBridge event unchanged")
    entities = as_list(value_at(detail, "affectedEntities"))
    values = [text_at(e, "entityValue") for e in entities]
    keys = key_tokens(v for v in values if v)
    if not keys:  # some events name the key only in the envelope's `resources`
        keys = key_tokens(r for r in as_list(value_at(event, "resources")) if isinstance(r, str))
    account = (text_at(detail, "affectedAccount") or text_at(event, "account")
               or next((a for a in (text_at(e, "awsAccountId") for e in entities) if a), None))
    base = Candidate(
        finding_id=f"health:{arn}",
        source="health",
        label=f"AWS Health event {clipped(arn, 160)}",
        finding_type=code,
        types=((code, code),),
        severity=None,
        account_id=account,
        region=text_at(event, "region") or text_at(detail, "eventRegion"),
        product="AWS Health",
        resources=tuple(f"entity {v}" for v in values if v)[:3],
    )
    if not keys:
        return [base]
    return [base.for_key(key) for key in keys]
