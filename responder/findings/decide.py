"""The guardrails and the mapping, applied to a candidate: a Trigger, or why not.

Everything that must not start a playbook is refused here, before any AWS call, with a
message that tells the on-call engineer what to do instead: sample findings, closed ones,
findings that name no access key, root keys, finding types the trigger mapping does
not select, and those it decides to notify about only or to ignore. A temporary (ASIA)
key is matched only against the mapping's rules for temporary keys (`"keys": "temporary"`,
or `any` for a notify or ignore rule), since disabling a key does nothing to a leaked
session; without one it is refused with advice on revoking the session.
"""

from __future__ import annotations

from responder.errors import BadInput, clipped
from responder.findings.mapping import Rule, TriggerMapping
from responder.findings.model import Candidate, FindingRefused, Trigger
from responder.guardrails import ROOT_NAMES, check_access_key_id, is_temporary

_ROOT = frozenset(name.lower() for name in ROOT_NAMES if name)
_CONSOLE = {
    "guardduty": "the GuardDuty console",
    "health": "the AWS Health Dashboard",
    "securityhub": "the Security Hub console",
}
_PRINCIPAL_KINDS = {"assumedrole": "role", "iamuser": "IAM user", "federateduser": "federated user"}


def _principal(c: Candidate) -> str:
    """Who the finding is about, in words an engineer can search the console for."""
    kind = _PRINCIPAL_KINDS.get((c.user_type or "").lower(), c.user_type)
    name = " ".join(clipped(p) for p in (kind, c.user_name) if p)
    if c.principal_id:
        principal = clipped(c.principal_id)
        name = f"{name} ({principal})" if name else principal
    return name


def decide(c: Candidate, mapping: TriggerMapping) -> Trigger:
    """The Trigger for `c`; FindingRefused (or BadInput for a malformed key) if none.

    The checks run in this order so that the refusal names the most useful thing to do:
    a sample or closed finding needs nothing, a root key needs a different response, and
    only then does the mapping decide whether to act, with the rules for the key's kind.
    """
    key = c.access_key_id
    shown_key = clipped(key, 40) if key else None  # as found in the finding: not yet checked
    by_hand = (f"`respond compromised {shown_key}`" if shown_key
               else "`respond compromised ACCESS_KEY_ID`")
    if c.sample:
        raise FindingRefused(
            f"{c.label} is a {c.product} sample finding, not a real incident: nothing to "
            "contain and nothing was changed. To rehearse a response, run `respond drill`",
            reason="sample", finding_id=c.finding_id, access_key_id=key)
    if c.closed:
        raise FindingRefused(
            f"{c.label} is {c.closed}, so someone already closed it; nothing was changed. "
            f"If the key is still a concern, reopen the finding or run {by_hand}",
            reason="archived", finding_id=c.finding_id, access_key_id=key)
    is_root = ((c.user_type or "").lower() == "root"
               or (c.user_name or "").lower() in _ROOT)
    if is_root:
        what = f"the root user's access key {shown_key}" if key else "the account's root user"
        raise FindingRefused(
            f"{c.label} concerns {what}"
            f"{f' in account {clipped(c.account_id)}' if c.account_id else ''}. Root credentials "
            "cannot be contained safely through IAM APIs: sign in to the console as the "
            "root user, delete the root access key under Security credentials, rotate the "
            "root password and MFA, and review CloudTrail for what the credentials did",
            reason="root", finding_id=c.finding_id, access_key_id=key)
    if key is None:
        named = f" ({', '.join(clipped(r) for r in c.resources)})" if c.resources else ""
        who = _principal(c)
        raise FindingRefused(
            f"{c.label} ({clipped(c.finding_type)}) names no access key{named}; investigate the "
            f"principal{f' {who}' if who else ''} or resource it names in "
            f"{_CONSOLE[c.source]}. `respond` contains access keys only: if you find "
            "one, run `respond compromised ACCESS_KEY_ID`",
            reason="no-access-key", finding_id=c.finding_id)
    try:
        key = check_access_key_id(key, temporary_ok=True)
    except BadInput as exc:
        raise BadInput(f"{c.label}: {exc}") from exc
    temporary = is_temporary(key)
    chosen = mapping.rule_for(c.types, keys="temporary" if temporary else "long-term")
    if chosen is None and temporary:
        raise _temporary_refusal(c, key, mapping)
    if chosen is None:
        raise FindingRefused(
            f"{c.label}: type {clipped(c.finding_type)!r} is not configured to trigger a playbook: "
            f"add a rule for it to the trigger mapping ({mapping.origin}), or run {by_hand} "
            "to respond by hand",
            reason="not-configured", finding_id=c.finding_id, access_key_id=key)
    rule, reported = chosen
    if rule.playbook is None:
        raise _quiet_refusal(c, key, mapping, rule, reported=reported, by_hand=by_hand)
    floor = mapping.threshold(rule)
    if c.severity is not None and c.severity < floor:
        raise FindingRefused(
            f"{c.label}: severity {c.severity:g} of {clipped(reported)!r} is below min_severity "
            f"{floor:g} (rule {rule.match!r} in {mapping.origin}), so it is not configured "
            f"to trigger a playbook: lower min_severity there to act on such findings, or "
            f"run {by_hand} to respond by hand",
            reason="not-configured", finding_id=c.finding_id, access_key_id=key)
    return Trigger(
        finding_id=c.finding_id, source=c.source, finding_type=reported,
        severity=c.severity, access_key_id=key, user_name=c.user_name,
        account_id=c.account_id, region=c.region, playbook=rule.playbook, sample=c.sample,
        session=c.session, first_seen=c.first_seen,
    )


def _quiet_refusal(c: Candidate, key: str, mapping: TriggerMapping, rule: Rule, *,
                   reported: str, by_hand: str) -> FindingRefused:
    """A type the mapping decided starts no playbook (`action: notify` or `ignore`).

    Said apart from `not-configured`: nobody needs to add a rule, someone decided.
    """
    where = f"rule {rule.match!r} in {mapping.origin}"
    if rule.action == "notify":
        return FindingRefused(
            f"{c.label}: type {clipped(reported)!r} is notify-only ({where}): no playbook runs and "
            f"nothing was changed. Review it in {_CONSOLE[c.source]}; if the key is in an "
            f"attacker's hands, run {by_hand}",
            reason="notify-only", finding_id=c.finding_id, access_key_id=key)
    return FindingRefused(
        f"{c.label}: type {clipped(reported)!r} is ignored ({where}): no playbook runs and nothing "
        f"was changed. If the key is still a concern, run {by_hand}",
        reason="ignored", finding_id=c.finding_id, access_key_id=key)


def _temporary_refusal(c: Candidate, key: str, mapping: TriggerMapping) -> FindingRefused:
    """An ASIA key no `"keys": "temporary"` rule selects: how to deny the session anyway.

    Disabling a key does nothing to a session, so a long-term rule must never answer it.
    """
    who = _principal(c) or "a principal the finding does not name"
    return FindingRefused(
        f"{c.label}: {key} is a temporary (STS) key of {who}; it cannot be disabled, and "
        f"no rule of the trigger mapping ({mapping.origin}) with `\"keys\": \"temporary\"` "
        f"selects type {clipped(c.finding_type)!r}, so "
        f"nothing was changed. Run `respond compromised {key}` by hand: it denies exactly "
        "that session (not every session of the role); or add such a rule to answer these "
        "findings automatically",
        reason="temporary-key", finding_id=c.finding_id, access_key_id=key)
