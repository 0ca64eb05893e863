"""The DynamoDB journal of a run: the incidents whose lease it holds, written back.

A process that holds an incident's lease is its only writer (every other writer takes
the lease first: a runner, a sweep, `respond close`). So what it wrote is read back
from memory, never from the table, and its writes wait for the next moment that needs
them there:

- the request of a mutating AWS call is about to leave (`sending`): the call's record,
  and everything journaled before it, is in the table before AWS can act;
- a status change that claims the key's OPENKEY guard (IncidentExists is decided then);
- a lease renewal that is due (past a quarter lease), and the release;
- FLUSH_AT writes held (a long stretch of reads), and close().

They go as one TransactWriteItems (dynamodb_held.transactions) conditioned on the lease
still naming this process: a runner whose lease was taken over writes nothing more
(LeaseHeld). Why a crash at any instant still resumes to the same end:
docs/journal.md, "Round trips".

Incidents it does not hold (a status read, another process's incident) go through
DynamoDbJournal, one request per call; find_open also lists the key's incidents
meanwhile, for the history_for_key a response asks next.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from responder.aws import AnySession, ApiCall, RetryPolicy
from responder.context import iso, parse_iso
from responder.errors import LeaseHeld
from responder.journal import base
from responder.journal.dynamodb import DynamoDbJournal
from responder.journal.dynamodb_held import FLUSH_AT, META, Held, is_incident, transactions
from responder.journal.dynamodb_table import (
    BY_KEY,
    call_attributes,
    incident_attributes,
    new_call_id,
    open_key_guard,
    pending_step,
    refused_actions,
    step_sort_key,
    ttl,
)
from responder.journal.records import (
    OPEN_STATUSES,
    CallHandle,
    CallRecord,
    IncidentRecord,
    StepRecord,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

LISTING_SECONDS: Final = 2.0
"""How long the listing of a key's incidents that find_open starts serves history_for_key.
The index it reads lags the table anyway (eventually consistent); a response asks for
the history right after find_open."""


class _Listing:
    """A key's incident ids, listed in a thread of its own while the guard is read."""

    def __init__(self, list_ids: Callable[[], list[str]]) -> None:
        self.started = time.monotonic()
        self._ids: list[str] = []
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(list_ids,),
                                        name="journal-listing", daemon=True)
        self._thread.start()

    def _run(self, list_ids: Callable[[], list[str]]) -> None:
        try:
            self._ids = list_ids()
        except Exception as exc:  # noqa: BLE001 - raised to whoever asks for the ids
            self._error = exc

    @property
    def fresh(self) -> bool:
        return time.monotonic() - self.started <= LISTING_SECONDS

    def ids(self) -> list[str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._ids


class WriteBackJournal(DynamoDbJournal):
    """DynamoDbJournal that keeps the incidents whose lease it holds in memory."""

    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None,
                 session: AnySession | None = None, retry: RetryPolicy | None = None) -> None:
        super().__init__(table_name, client=client, session=session, retry=retry)
        self._held: dict[str, Held] = {}
        self._lost: set[str] = set()
        """Incidents whose lease a flush found taken over: this object writes no more."""
        self._listings: dict[str, _Listing] = {}

    def _holding(self, incident_id: str) -> Held | None:
        """The incident as this process holds it (read from the table once, the first time
        after its lease was acquired), or None when it does not hold it."""
        held = self._held.get(incident_id)
        if held is None or held.items is not None:
            return held
        with held.lock:
            if held.items is None:
                items: dict[str, dict[str, Any]] = {}
                for stored in self._table.partition(incident_id):
                    stored.pop("pk", None)
                    items[str(stored.pop("sk"))] = stored
                if META not in items:
                    self._held.pop(incident_id, None)
                    return None
                held.items = items
        return held

    def _writing(self, incident_id: str) -> Held | None:
        """_holding, for a write: a write to an incident whose lease was lost is LeaseHeld."""
        if incident_id in self._lost:
            self._raise_held(incident_id)
        return self._holding(incident_id)

    def _took(self, held: Held) -> None:
        self._held[held.incident_id] = held
        self._lost.discard(held.incident_id)

    def _settle(self, incident_id: str) -> None:
        """Send what is held of the incident and forget it: a lease is decided by the table."""
        held = self._held.pop(incident_id, None)
        if held is not None and held.items is not None:
            with contextlib.suppress(LeaseHeld):  # taken over: nothing of it is ours to send
                self._flush(held)

    def _soon(self, held: Held) -> None:
        """After a held write: sent now only if enough have piled up."""
        if held.pending >= FLUSH_AT:
            self._flush(held)

    def _flush(self, held: Held, extra: Sequence[TransactWriteItemTypeDef] = ()) -> None:
        """Send the held writes (and `extra`) now. A lease condition that fails means
        another runner took the incident over: this object stops writing it (LeaseHeld);
        the guard's deletion refused means the guard names another incident by now (it
        is left alone, the rest sent again); another failed condition is a Collision."""
        with held.flush_lock:
            batch = held.take()
            if batch.empty and not extra:
                return
            for request in transactions(self.table_name, held, batch, extra):
                try:
                    self._table.transact(request)
                except ClientError as exc:
                    held.give_back(batch)
                    refused = [request[i] for i in refused_actions(exc) if i < len(request)]
                    if any(is_incident(a, held.incident_id) for a in refused):
                        self._held.pop(held.incident_id, None)
                        self._lost.add(held.incident_id)
                        self._raise_held(held.incident_id)
                    if refused and all("Delete" in a for a in refused):
                        held.delete_guard(wanted=False)
                        break
                    if refused:
                        raise base.Collision(f"incident {held.incident_id}: {exc}") from exc
                    raise
            else:
                return
        self._flush(held, extra)

    def close(self) -> None:
        """Send what is held (the leases stay as they are)."""
        for held in list(self._held.values()):
            if held.items is not None:
                self._flush(held)

    # incidents -----------------------------------------------------------------

    def _insert_incident(self, new: base.NewIncident) -> None:
        super()._insert_incident(new)
        expires = ttl(new.started_at)
        steps = {step_sort_key(s.position): pending_step(new.id, s, expires) for s in new.steps}
        self._took(Held(new.id, new.owner, {META: incident_attributes(new), **steps},
                        guard="ours"))

    def _get_or_none(self, incident_id: str) -> IncidentRecord | None:
        held = self._holding(incident_id)
        if held is not None:
            return base.incident_record(held.meta())
        return super()._get_or_none(incident_id)

    def _records(self, ids: list[str], *, newest_first: bool) -> list[IncidentRecord]:
        records = super()._records(ids, newest_first=newest_first)
        return [(self._get_or_none(r.id) or r) if r.id in self._held else r
                for r in records]

    def find_open(self, access_key_id: str) -> IncidentRecord | None:
        """The guard's incident; the key's incidents are listed at the same time, so a
        response's next question (history_for_key) costs no round trip of its own."""
        self._listings = {k: v for k, v in self._listings.items() if v.fresh}
        self._listings[access_key_id] = _Listing(
            lambda: self._listed(BY_KEY, "gsi_key", access_key_id, newest_first=False))
        return super().find_open(access_key_id)

    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]:
        listing = self._listings.pop(access_key_id, None)
        if listing is None or not listing.fresh:
            return super().history_for_key(access_key_id)
        return self._records(listing.ids(), newest_first=False)

    def _set_incident(self, incident_id: str, values: Mapping[str, Any]) -> None:
        """Held, unless the status opens the incident and the key's guard is not known to
        be its own: that claim is sent at once, with what is held (Collision)."""
        held = self._writing(incident_id)
        if held is None:
            super()._set_incident(incident_id, values)
            return
        opening = "status" in values and values["status"] in OPEN_STATUSES
        if opening and held.guard != "ours":
            before = held.meta()
            held.delete_guard(wanted=False)  # a deletion not sent yet: the claim replaces it
            held.set_meta(values)
            try:
                self._flush(held, self._guard_change(base.incident_record(held.meta()),
                                                     opening=True))
            except base.Collision:
                held.set_meta({k: before.get(k) for k in values})
                raise
            held.guard = "ours"
            return
        if "status" in values and not opening:
            if held.guard == "unknown":
                guard = self._table.get(open_key_guard(str(held.meta()["access_key_id"])))
                mine = guard is not None and guard.get("incident_id") == held.incident_id
                held.guard = "ours" if mine else "other"
            if held.guard == "ours":  # deleted in the same transaction as the status
                held.delete_guard()
                held.guard = "released"
        held.set_meta(values)
        self._soon(held)

    def _touch(self, incident_id: str, now: datetime) -> None:
        held = self._writing(incident_id)
        if held is None:
            super()._touch(incident_id, now)
            return
        held.set_meta({"updated_at": iso(now)})
        self._soon(held)

    # lease ---------------------------------------------------------------------

    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        self._settle(incident_id)
        super().acquire_lease(incident_id, owner, now, seconds)
        self._took(Held(incident_id, owner))

    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        self._settle(incident_id)
        super().take_over_lease(incident_id, dead_owner, owner, now, seconds)
        self._took(Held(incident_id, owner))

    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        """Held: the expiry is the one this process wrote, and no one takes a lease before
        it expires, so a renewal is sent (with what is held) only past a quarter lease."""
        held = self._writing(incident_id)
        if held is None or held.owner != owner:
            super().renew_lease(incident_id, owner, now, seconds)
            return
        until = now + timedelta(seconds=seconds)
        known = parse_iso(held.meta().get("lease_expires"))
        if known is not None and (until - known).total_seconds() < seconds / 4:
            return
        held.set_meta({"lease_expires": iso(until)})
        self._flush(held)

    def release_lease(self, incident_id: str, owner: str) -> None:
        """Held: released in the transaction that sends what is held."""
        if incident_id in self._lost:
            return  # taken over: not this process's to release
        held = self._held.get(incident_id)
        if held is None or held.owner != owner or held.items is None:
            if held is not None and held.owner == owner:
                self._held.pop(incident_id)  # acquired, nothing read or written since
            super().release_lease(incident_id, owner)
            return
        held.set_meta({"lease_owner": None, "lease_expires": None})
        with contextlib.suppress(LeaseHeld):  # taken over meanwhile: nothing is ours to send
            self._flush(held)
        self._held.pop(incident_id, None)

    # steps ---------------------------------------------------------------------

    def steps(self, incident_id: str) -> list[StepRecord]:
        held = self._holding(incident_id)
        if held is None:
            return super().steps(incident_id)
        return [base.step_record(s) for s in held.steps()]

    def step_started(self, incident_id: str, name: str, now: datetime) -> None:
        held = self._writing(incident_id)
        if held is None:
            super().step_started(incident_id, name, now)
            return
        with held.lock:
            step = next((s for s in held.steps() if s["name"] == name), None)
            if step is not None:
                held.update(step_sort_key(int(step["position"])), {
                    "status": "running", "started_at": step.get("started_at") or iso(now),
                    "ended_at": None, "error": None})
        self._touch(incident_id, now)

    def _set_step(self, incident_id: str, name: str, values: Mapping[str, Any],
                  now: datetime) -> None:
        held = self._writing(incident_id)
        if held is None:
            super()._set_step(incident_id, name, values, now)
            return
        if (sort_key := held.step_key(name)) is not None:
            held.update(sort_key, values)
        self._touch(incident_id, now)

    def _append_step(self, incident: IncidentRecord, name: str, action: str,
                     on_failure: str, now: datetime) -> bool:
        """Held: no other writer can take the position, so the new step is held too."""
        held = self._writing(incident.id)
        if held is None:
            return super()._append_step(incident, name, action, on_failure, now)
        with held.lock:
            existing = held.steps()
            if any(step["name"] == name for step in existing):
                return True
            position = max((int(s["position"]) for s in existing), default=-1) + 1
            held.put(step_sort_key(position), pending_step(
                incident.id, base.PendingStep(position, name, action, on_failure),
                ttl(incident.started_at)))
        self._touch(incident.id, now)
        return True

    # calls ---------------------------------------------------------------------

    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> CallHandle:
        """Held until the next flush: at the latest as the request of a mutating call
        leaves (sending). A read that never reached one is only not journaled."""
        held = self._writing(incident_id)
        if held is None:
            return super().intent(incident_id, step, call, now)
        started = base.must(str(held.meta()["started_at"]))
        call_id = new_call_id(now)
        held.put(f"CALL#{call_id}", call_attributes(incident_id, call_id, step, call, now=now,
                                                    expires=ttl(started)))
        self._soon(held)
        return CallHandle(incident_id, call_id)

    def sending(self, handle: CallHandle) -> None:
        """Held: the call's record and everything journaled before it reach the table
        now, before the request leaves."""
        held = self._writing(handle.incident_id)
        if held is None:
            super().sending(handle)
            return
        held.update(f"CALL#{handle.call_id}", {"outcome": "sending"},
                    only_if={"outcome": "pending"})
        self._flush(held)

    def _set_call(self, handle: CallHandle, values: Mapping[str, Any]) -> None:
        held = self._writing(handle.incident_id)
        if held is None:
            super()._set_call(handle, values)
            return
        held.update(f"CALL#{handle.call_id}", values)
        self._soon(held)

    def each_call(self, incident_id: str, step: str | None = None) -> Iterator[CallRecord]:
        """From memory while the incident is held (calls() reads through this too)."""
        held = self._holding(incident_id)
        if held is None:
            return super().each_call(incident_id, step)
        return (base.call_record(c) for c in held.calls(step))
