"""The application service: what `respond compromised`, `respond finding`, the Lambda
handler and the drill ask for, decided before (and around) a run.

Identify runs before an incident is opened, so a refusal (root key, not found, another
account) leaves nothing behind but its one-line message. Then: join the key's open
incident, answer with a finished one whose key is still contained, or open a new one
and run it. The cross-account rule (a role to reach the key's account, or a refusal)
lives here once, for keys and for findings alike.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from responder.aws import AnySession, Api, ApiCall, caller_access_key
from responder.context import RunContext
from responder.errors import (
    AGAIN,
    AlreadyHandled,
    AwsCallFailed,
    BadInput,
    OtherAccount,
    Refused,
    StepFailed,
)
from responder.guardrails import check_access_key_id, check_not_own_key, is_temporary
from responder.iam.snapshot import access_keys
from responder.incident import kinds
from responder.incident.action import REGISTRY, KeyKind, StepInput, StepResult
from responder.incident.facts import Incident, Target
from responder.incident.view import IncidentView, target_of
from responder.journal import IncidentExists, IncidentRecord, Journal
from responder.journal.owner import new_owner
from responder.logging import get_logger
from responder.playbook import Playbook, StepSpec
from responder.run import later
from responder.run.executor import Deferred, Executor
from responder.run.lease import acquire
from responder.run.runner import EarlierStep, IncidentRun
from responder.steps import identify as identify_step
from responder.steps.identify import known_account, other_account

log = get_logger("responder.run.service")


def new_incident_id(now: datetime) -> str:
    return f"inc-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Identified:
    """identify's outcome, reached before any incident is opened."""

    incident: Incident
    spec: StepSpec
    target: Target
    result: StepResult
    started: datetime
    ended: datetime
    held: Deferred
    """What identify wrote before the incident existed, replayed into it once it does."""


@dataclass(frozen=True)
class Plan:
    """What --dry-run found and would do."""

    identified: Identified
    steps: tuple[tuple[StepSpec, tuple[ApiCall, ...]], ...]


SESSION_PLAYBOOK = "compromised-session"
KEY_PLAYBOOK = "compromised-key"


def default_playbook(access_key_id: str) -> str:
    """The shipped playbook for a key: a temporary (ASIA) key's session, or a long-term key."""
    return SESSION_PLAYBOOK if is_temporary(access_key_id.strip()) else KEY_PLAYBOOK


def key_kind(playbook: Playbook) -> KeyKind:
    """The kind of key a playbook responds to: what its first (identify) step identifies."""
    first = REGISTRY.get(playbook.steps[0].action) if playbook.steps else None
    return (first.identifies if first is not None else None) or "long-term"


def checked_key(ctx: RunContext, playbook: Playbook, access_key_id: str
                ) -> tuple[str, AnySession]:
    """The key id if it is well formed, of the kind the playbook responds to, and not the
    one this responder signs with (local checks, no AWS call), with the session checked."""
    kind = key_kind(playbook)
    key = check_access_key_id(access_key_id, temporary_ok=True)
    if (kind == "temporary") != is_temporary(key):
        wanted = "temporary (ASIA) keys" if kind == "temporary" else "long-term (AKIA) keys"
        raise BadInput(f"playbook {playbook.name} responds to {wanted}, and {key} is not one: "
                       f"leave out --playbook (`respond` picks {default_playbook(key)} for it)")
    session = ctx.session_factory()
    check_not_own_key(key, caller_access_key(session))
    return key, session


def identify(
    ctx: RunContext, playbook: Playbook, key: str, session: AnySession | None = None
) -> Identified:
    """The read-only identify step for a checked key, with no journal trace yet."""
    session = session or ctx.session_factory()
    started = ctx.clock()
    incident = Incident(new_incident_id(started), key, playbook.name, started)
    spec = playbook.steps[0]
    held = Deferred(ctx)
    try:
        ran = Executor(ctx, incident, held, session=session, event=None).run(
            spec.name, spec.action, spec.settings, again=AGAIN, halts=True)
    except StepFailed as exc:
        if isinstance(exc.__cause__, AwsCallFailed):  # no incident yet: say what to fix
            raise BadInput(f"{spec.name}: {exc.reason}; nothing was changed") from exc
        raise
    result = ran.result
    target = target_of(result.facts) if result is not None else None
    if result is None or target is None:
        raise StepFailed(spec.name, "identify did not name the key's owner")
    return Identified(incident, spec, target, result, ran.started, ran.ended, held)


def plan(ctx: RunContext, playbook: Playbook, access_key_id: str,
         check: Callable[[RunContext, Identified], None] | None = None) -> Plan:
    """Dry run: the read-only identify step for real (through the role the run would
    take to reach another account's key, or refused as the run would be), every other
    step only planned; `check` refuses what the run itself would refuse after identify."""
    try:
        ctx, found = identify_reaching(ctx, playbook,
                                       *checked_key(ctx, playbook, access_key_id),
                                       ask_account=True)
        if check is not None:
            check(ctx, found)
    except Refused as refused:  # said as what the run would do: this run changes nothing
        raise Refused(f"a run would be refused: {refused}") from refused
    planned = tuple(
        (spec, REGISTRY[spec.action]().plan(
            StepInput(ctx, found.incident, found.target, spec.settings)))
        for spec in playbook.steps[1:]
    )
    return Plan(found, planned)


def is_rotation(record: IncidentRecord) -> bool:
    """A routine rotation (rotate-key): any of its steps establishes rotation facts."""
    return kinds.planned(record.playbook, ("rotation",))


def is_retirement(record: IncidentRecord) -> bool:
    """An unused key set Inactive by the audit (retire-unused-key)."""
    return kinds.planned(record.playbook, ("retirement",))


def is_routine(record: IncidentRecord) -> bool:
    """Key hygiene (a rotation, a retirement), not a response to a leak: a compromise
    supersedes it and never counts it as its own history."""
    return kinds.planned(record.playbook, ("rotation", "retirement"))


def _journal_identified(journal: Journal, found: Identified) -> None:
    found.held.replay(journal, found.incident.id, found.spec.name)
    journal.update_incident(found.incident.id, found.ended, user_name=found.target.user_name,
                            account_id=found.target.account_id)


def _still_contained(
    ctx: RunContext, session: AnySession, history: list[IncidentRecord]
) -> IncidentRecord | None:
    """The last completed incident of this key, if the key is still Inactive or gone.

    Re-running a finished response must not issue another replacement key; but a key
    that someone re-enabled since is live again and gets a new incident.
    """
    done = [r for r in history if r.status == "completed" and r.user_name]
    if not done or is_temporary(done[-1].access_key_id):
        # A session cannot be re-enabled: a new incident re-checks its deny (and adds
        # nothing if it is still there) rather than trusting the old one.
        return None
    last = done[-1]
    try:
        status = access_keys(Api(session, ctx.retry), last.user_name or "").get(
            last.access_key_id, "Deleted")
    except AwsCallFailed as exc:
        if exc.code == "NoSuchEntity":  # the user is gone, and the key with it
            return last
        raise BadInput(f"identify: {exc.explain(AGAIN)}; nothing was changed") from exc
    return None if status == "Active" else last


def in_account(ctx: RunContext, account_id: str, refusal: OtherAccount) -> RunContext:
    """The context that acts in `account_id`: through RESPONDER_ROLE_ARN_TEMPLATE's role
    there. An explicit --role-arn that still does not reach it, or no template, refuses."""
    if ctx.options.role_arn or not ctx.role_arn_template:
        raise refusal
    return ctx.via_role(ctx.role_arn_template.format(account_id=account_id))


def caller_account(ctx: RunContext) -> str:
    return identify_step.caller_account(Api(ctx.session_factory(), ctx.retry))


def for_finding_account(ctx: RunContext, finding_id: str, account_id: str | None) -> RunContext:
    """The context that acts in the account a finding is about."""
    if not account_id or ctx.options.role_arn:
        return ctx
    here = caller_account(ctx)
    if account_id == here:
        return ctx
    return in_account(ctx, account_id, OtherAccount(
        f"finding {finding_id} is about account {account_id}, but these credentials are in "
        f"{here}: set RESPONDER_ROLE_ARN_TEMPLATE (e.g. arn:aws:iam::{{account_id}}:role/"
        "KeyResponder) or pass --role-arn", account_id))


def respond(
    ctx: RunContext, journal: Journal, playbook: Playbook, access_key_id: str, *,
    owner: str | None = None, finding_id: str | None = None,
    identified: Identified | None = None,
) -> IncidentRecord:
    """Start an incident for the key, or join the open one, and run it to the end.

    `identified` is what the plan shown at the confirmation prompt found: it is reused
    (same incident id, no second identify), the incident starting when it was confirmed.
    """
    owner = owner or new_owner()
    key, session = checked_key(ctx, playbook, access_key_id)
    existing = journal.find_open(key)
    if existing is not None and is_routine(existing):
        # A leak outranks key hygiene: the rotation (or retirement) ends here, the
        # response opens.
        what = "rotation" if is_rotation(existing) else "retirement"
        journal.update_incident(existing.id, ctx.clock(), status="refused", error=(
            f"superseded: {key} was reported compromised; its response replaces this {what}"))
        log.warning(f"{what}.superseded", incident_id=existing.id)
    elif existing is not None:
        check_principal_for(ctx, journal, existing)
        log.info("incident.join", incident_id=existing.id)
        return resume(ctx, journal, existing.id, owner)
    history = journal.history_for_key(key)
    handled = _still_contained(ctx, session, [r for r in history if not is_routine(r)])
    if handled is not None:
        log.info("incident.already_contained", incident_id=handled.id)
        return handled
    if identified is not None and identified.incident.access_key_id == key:
        found = dataclasses.replace(identified, incident=dataclasses.replace(
            identified.incident, started_at=ctx.clock()))
    else:
        ctx, found = identify_reaching(ctx, playbook, key, session)
    try:
        record = journal.create_incident(
            incident_id=found.incident.id, access_key_id=key, playbook=playbook.to_dict(),
            started_at=found.incident.started_at, source=ctx.source, options=ctx.options.as_dict(),
            owner=owner, lease_seconds=ctx.lease_seconds, finding_id=finding_id,
        )
    except IncidentExists as exists:
        prior = journal.find_by_finding(finding_id) if finding_id else None
        if prior is not None:
            raise AlreadyHandled(finding_id or "", prior.id, prior.status) from exists
        log.info("incident.join", incident_id=exists.incident_id)
        return resume(ctx, journal, exists.incident_id, owner)
    return run_identified(ctx, journal, record, owner, found, resumed=bool(history))


def check_principal_for(ctx: RunContext, journal: Journal, record: IncidentRecord) -> None:
    """`--principal` given to join an open incident whose identify already named another
    principal is refused in one line (exit 2), never silently ignored: that incident acts
    on what it found, and only a new incident would act on the principal given."""
    hint = ctx.options.session
    given = hint.principal_arn if hint is not None else None
    if not given:
        return
    found = IncidentView.load(journal, record.id).session
    if found is None or found.principal_arn == given:
        return
    raise BadInput(
        f"incident {record.id} is open for {record.access_key_id} and acts on the session "
        f"it identified ({found.principal_arn or found.label}), not on --principal {given}: "
        f"`respond close {record.id} --reason TEXT` ends it, then run `respond compromised "
        f"{record.access_key_id} --principal {given}` again")


def identify_reaching(ctx: RunContext, playbook: Playbook, key: str, session: AnySession,
                      *, ask_account: bool = False) -> tuple[RunContext, Identified]:
    """identify, and the context that acts where the key is: through the role in_account
    names when the key belongs to another account. identify compares the accounts when
    ours is known without a call; a plan (`ask_account`: it has no call budget) and a
    deployment set up to reach other accounts (a role template) ask."""
    try:
        found = identify(ctx, playbook, key, session)
        if (ask_account or ctx.role_arn_template) and known_account(ctx, session) is None:
            here = caller_account(ctx)
            if found.target.account_id != here:
                raise other_account(key, found.target.account_id, here)
    except OtherAccount as other:
        ctx = in_account(ctx, other.owner_account, other)
        return ctx, identify(ctx, playbook, key)
    return ctx, found


def open_routine(ctx: RunContext, journal: Journal, playbook: Playbook, access_key_id: str,
                 *, what: str, joins: Callable[[IncidentRecord], bool],
                 busy: Callable[[IncidentRecord], str],
                 check: Callable[[RunContext, Identified], None] | None = None
                 ) -> IncidentRecord:
    """Open a key-hygiene incident (`what`: a rotation, a retirement) and run it: the
    key's open incident of the same kind (`joins`) goes on from its step; any other open
    incident
    refuses (`busy` says why); `check` refuses, after identify and before the incident is
    opened, what could not finish."""
    key, session = checked_key(ctx, playbook, access_key_id)
    existing = journal.find_open(key)
    if existing is not None:
        if joins(existing):  # cut short earlier: it goes on from its step
            log.info(f"{what}.join", incident_id=existing.id, status=existing.status)
            return resume(ctx, journal, existing.id)
        raise Refused(busy(existing))
    ctx, found = identify_reaching(ctx, playbook, key, session)
    if check is not None:
        check(ctx, found)
    owner = new_owner()
    try:
        record = journal.create_incident(
            incident_id=found.incident.id, access_key_id=key, playbook=playbook.to_dict(),
            started_at=found.incident.started_at, source=ctx.source,
            options=ctx.options.as_dict(), owner=owner, lease_seconds=ctx.lease_seconds)
    except IncidentExists as exists:  # another runner opened it just now
        return journal.get(exists.incident_id)
    return run_identified(ctx, journal, record, owner, found, resumed=False)


def run_identified(ctx: RunContext, journal: Journal, record: IncidentRecord, owner: str,
                   found: Identified, *, resumed: bool) -> IncidentRecord:
    """Journal what identify did before `record` was opened, then run the rest."""
    _journal_identified(journal, found)
    earlier = EarlierStep(found.spec.name, found.spec.action, found.started, found.ended)
    return IncidentRun(ctx, journal, record, owner, resumed=resumed, earlier=(earlier,)).run()


def resume(
    ctx: RunContext, journal: Journal, incident_id: str, owner: str | None = None
) -> IncidentRecord:
    """Continue an incident from its first step not done; each step re-observes."""
    owner = owner or new_owner()
    record = journal.get(incident_id)
    if not record.is_open:
        return record
    acquire(ctx, journal, incident_id, owner)
    resumed_ctx = later.resumed(ctx, journal, record)
    return IncidentRun(resumed_ctx, journal, record, owner, resumed=True).run()
