"""DynamoDB journal: the Journal protocol for Lambda and for teams sharing one table.

Why it looks like this: docs/journal.md, "The DynamoDB layout". Each call here is its own
request; a run's journal (open_journal, `--state dynamodb://TABLE`, the Lambda) is the
subclass in dynamodb_writeback.py, which batches the writes of the incident it holds.

Create the table with `DynamoDbJournal.create_table(client, name)`; in a SAM template
the same definition is `TABLE_DEFINITION` (attribute definitions, key schema, the two
GSIs) plus `TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from responder.aws import AnySession, ApiCall, RetryPolicy
from responder.context import iso
from responder.errors import BadInput
from responder.journal import base
from responder.journal.dynamodb_table import (
    ALL_INCIDENTS,
    BY_KEY,
    BY_TIME,
    TABLE_DEFINITION,
    Expr,
    Table,
    call_attributes,
    call_key,
    create_table,
    dumps_capped,
    error_code,
    finding_guard,
    incident_attributes,
    incident_key,
    item,
    new_call_id,
    open_key_guard,
    pending_step_item,
    step_key,
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

    from responder.journal.dynamodb_table import Item

__all__ = ["TABLE_DEFINITION", "DynamoDbJournal"]

URL_PREFIX: Final = "dynamodb://"
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
MAX_TRANSACT_ITEMS: Final = 100
"""DynamoDB's TransactWriteItems limit: incident + 2 guards + one item per step."""


class DynamoDbJournal(base.Journal):
    """The Journal backend for Lambda and shared use: one DynamoDB table."""

    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None,
                 session: AnySession | None = None, retry: RetryPolicy | None = None) -> None:
        """`client` wins over `session` (else boto3's default); `retry` spaces the
        retries of writes that collided with a transaction."""
        self.table_name = table_name
        self._table = Table(
            table_name,
            client or (session or boto3.Session()).client("dynamodb"),
            retry or RetryPolicy(),
        )
        self._table.client.meta.events.register("after-call.dynamodb", self._missing_table)
        # Immutable facts, cached to save reads on the hot path (intent per AWS call).
        self._started: dict[str, datetime] = {}
        self._positions: dict[tuple[str, str], int] = {}

    def _missing_table(self, parsed: Mapping[str, Any], **_: Any) -> None:
        """A journal table that does not exist is a wrong --state (or --region), said in
        one line, not a botocore traceback from the middle of a query."""
        if parsed.get("Error", {}).get("Code") == "ResourceNotFoundException":
            region = self._table.client.meta.region_name
            raise BadInput(f"--state dynamodb://{self.table_name}: no such DynamoDB table in "
                           f"{region} (pass --region/--profile where the journal table is)")

    @classmethod
    def from_url(
        cls, url: str, *, session: AnySession | None = None
    ) -> DynamoDbJournal:
        """`dynamodb://TABLE` (the `--state` form), through `session` (else the default
        boto3 session) so the table is looked for in the run's account and region."""
        table = url.removeprefix(URL_PREFIX) if url.startswith(URL_PREFIX) else ""
        if not TABLE_NAME.fullmatch(table):
            raise BadInput(
                f"--state {url!r}: expected dynamodb://TABLE with a DynamoDB table name"
                " (3-255 characters: letters, digits, '_', '-', '.')"
            )
        return cls(table, session=session)

    create_table = staticmethod(create_table)

    @property
    def client(self) -> DynamoDBClient:
        """The client it writes with (its region and endpoint are the table's)."""
        return self._table.client

    @property
    def location(self) -> str:
        return f"DynamoDB table {self.table_name}"

    def _encode(self, value: Any) -> str:
        return dumps_capped(value)

    def close(self) -> None:
        """Nothing to close: boto3 clients hold no connection that needs it."""

    # incidents -----------------------------------------------------------------

    def _insert_incident(self, new: base.NewIncident) -> None:
        if len(new.steps) + 3 > MAX_TRANSACT_ITEMS:
            raise ValueError(
                f"a playbook of {len(new.steps)} steps does not fit one DynamoDB transaction"
                f" (at most {MAX_TRANSACT_ITEMS - 3} steps)"
            )
        expires = ttl(new.started_at)

        def put(new_item: Item) -> TransactWriteItemTypeDef:
            return {"Put": {"TableName": self.table_name, "Item": new_item,
                            "ConditionExpression": "attribute_not_exists(pk)"}}

        guards = [open_key_guard(new.access_key_id)]
        if new.finding_id:
            guards.append(finding_guard(new.finding_id))
        items = [
            put(item(incident_key(new.id), **incident_attributes(new))),
            *(put(item(g, incident_id=new.id, expires_at=expires)) for g in guards),
            *(put(pending_step_item(new.id, s, expires)) for s in new.steps),
        ]
        try:
            self._table.transact(items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            raise base.Collision(f"incident {new.id}: {exc}") from exc
        self._started[new.id] = new.started_at
        for s in new.steps:
            self._positions[(new.id, s.name)] = s.position

    def _unblock(self, access_key_id: str) -> None:
        """Delete an OPENKEY guard whose incident is gone (TTL) or no longer open."""
        guard = self._table.get(open_key_guard(access_key_id))
        if guard is None:
            return
        holder = self._get_or_none(guard["incident_id"])
        if holder is not None and holder.is_open:
            return
        e = Expr()
        self._table.delete(open_key_guard(access_key_id), e,
                           f"{e.n('incident_id')} = {e.v(guard['incident_id'])}")

    def _get_or_none(self, incident_id: str) -> IncidentRecord | None:
        found = self._table.get(incident_key(incident_id))
        return None if found is None else base.incident_record(found)

    def find_open(self, access_key_id: str) -> IncidentRecord | None:
        guard = self._table.get(open_key_guard(access_key_id))
        if guard is None:
            return None
        record = self._get_or_none(guard["incident_id"])
        return record if record is not None and record.is_open else None

    def find_by_finding(self, finding_id: str) -> IncidentRecord | None:
        guard = self._table.get(finding_guard(finding_id))
        return None if guard is None else self._get_or_none(guard["incident_id"])

    def _listed(self, index: str, hash_key: str, value: str, *, newest_first: bool,
                limit: int | None = None) -> list[str]:
        """The incident ids a KEYS_ONLY index lists (eventually consistent)."""
        e = Expr()
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{e.n(hash_key)} = {e.v(value)}",
            "ExpressionAttributeNames": e.names,
            "ExpressionAttributeValues": e.values,
            "ScanIndexForward": not newest_first,
        }
        if limit is not None:
            query["PaginationConfig"] = {"MaxItems": limit, "PageSize": limit}
        return list(dict.fromkeys(i["pk"].removeprefix("INCIDENT#")
                                  for i in self._table.query(**query)))

    def _records(self, ids: list[str], *, newest_first: bool) -> list[IncidentRecord]:
        """The incidents `ids` names, each read consistently."""
        records = [base.incident_record(i)
                   for i in self._table.get_many([incident_key(i) for i in ids])]
        records.sort(key=lambda r: (r.started_at, r.id), reverse=newest_first)
        return records

    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]:
        return self._records(self._listed(BY_KEY, "gsi_key", access_key_id,
                                          newest_first=False), newest_first=False)

    def recent(self, limit: int = 20) -> list[IncidentRecord]:
        if limit == 0:
            return []
        most = limit if limit > 0 else None  # as SQL: a negative LIMIT means no limit
        ids = self._listed(BY_TIME, "gsi_all", ALL_INCIDENTS, newest_first=True, limit=most)
        return self._records(ids, newest_first=True)[:most]

    def listing(self) -> Iterator[tuple[str, bool]]:
        """As recent(-1) read, a batch (100) at a time, keeping each id and whether open."""
        ids = self._listed(BY_TIME, "gsi_all", ALL_INCIDENTS, newest_first=True)
        found = sorted(((r.started_at, r.id, r.is_open) for at in range(0, len(ids), 100)
                        for r in self._records(ids[at:at + 100], newest_first=True)), reverse=True)
        return iter(sorted(((i, is_open) for _, i, is_open in found), key=lambda f: not f[1]))

    def _set_incident(self, incident_id: str, values: Mapping[str, Any]) -> None:
        e = Expr()
        update = e.assign(values)
        if "status" not in values:
            self._table.update(incident_key(incident_id), e, update, "attribute_exists(pk)")
            return
        record = self._get_or_none(incident_id)
        if record is None:
            return  # as SQLite: updating an unknown incident changes nothing
        change: TransactWriteItemTypeDef = {"Update": {
            "TableName": self.table_name, "Key": incident_key(incident_id),
            "UpdateExpression": update, "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
        }}
        opening = values["status"] in OPEN_STATUSES
        try:
            self._table.transact([change, *self._guard_change(record, opening=opening)])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            raise base.Collision(f"incident {incident_id}: {exc}") from exc

    def _guard_change(
        self, record: IncidentRecord, *, opening: bool
    ) -> list[TransactWriteItemTypeDef]:
        """The OPENKEY guard write that goes with a status change: claim it (or keep it)
        when the status is open, delete it if it is ours when the incident closes."""
        guard_key = open_key_guard(record.access_key_id)
        e = Expr()
        ours = f"{e.n('incident_id')} = {e.v(record.id)}"
        if opening:
            return [{"Put": {
                "TableName": self.table_name,
                "Item": item(guard_key, incident_id=record.id, expires_at=ttl(record.started_at)),
                "ConditionExpression": f"attribute_not_exists(pk) OR {ours}",
                "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
            }}]
        guard = self._table.get(guard_key)
        if guard is None or guard["incident_id"] != record.id:
            return []
        return [{"Delete": {
            "TableName": self.table_name, "Key": guard_key, "ConditionExpression": ours,
            "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
        }}]

    def _touch(self, incident_id: str, now: datetime) -> None:
        e = Expr()
        self._table.update(incident_key(incident_id), e, e.assign({"updated_at": iso(now)}),
                           "attribute_exists(pk)")

    # lease ---------------------------------------------------------------------

    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        e = Expr()
        owner_attr, expires_attr, me = e.n("lease_owner"), e.n("lease_expires"), e.v(owner)
        until = e.v(iso(now + timedelta(seconds=seconds)))
        update = f"SET {owner_attr} = {me}, {expires_attr} = {until}"
        condition = (
            f"attribute_exists(pk) AND (attribute_not_exists({owner_attr})"
            f" OR {owner_attr} = {me} OR {expires_attr} < {e.v(iso(now))})"
        )
        if not self._table.update(incident_key(incident_id), e, update, condition):
            self._raise_held(incident_id)

    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        e = Expr()
        update = e.assign({"lease_owner": owner,
                           "lease_expires": iso(now + timedelta(seconds=seconds))})
        condition = f"{e.n('lease_owner')} = {e.v(dead_owner)}"
        if not self._table.update(incident_key(incident_id), e, update, condition):
            self._raise_held(incident_id)

    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        e = Expr()
        update = e.assign({"lease_expires": iso(now + timedelta(seconds=seconds))})
        condition = f"{e.n('lease_owner')} = {e.v(owner)}"
        if not self._table.update(incident_key(incident_id), e, update, condition):
            self._raise_held(incident_id)

    def release_lease(self, incident_id: str, owner: str) -> None:
        e = Expr()
        update = e.assign({"lease_owner": None, "lease_expires": None})
        self._table.update(incident_key(incident_id), e, update,
                           f"{e.n('lease_owner')} = {e.v(owner)}")

    # steps ---------------------------------------------------------------------

    def steps(self, incident_id: str) -> list[StepRecord]:
        """Sorted by position, not only by sort key: `STEP#<position:03d>` stops sorting
        numerically past 999 steps, which appended steps could in principle reach."""
        found = [base.step_record(i) for i in self._table.collection(incident_id, "STEP#")]
        return sorted(found, key=lambda s: s.position)

    def _position(self, incident_id: str, name: str) -> int | None:
        """The step's position (its sort key); steps never move once created."""
        if (incident_id, name) not in self._positions:
            for step in self.steps(incident_id):
                self._positions[(incident_id, step.name)] = step.position
        return self._positions.get((incident_id, name))

    def step_started(self, incident_id: str, name: str, now: datetime) -> None:
        position = self._position(incident_id, name)
        if position is not None:
            e = Expr()
            update = (
                f"SET {e.n('status')} = {e.v('running')}, {e.n('started_at')} ="
                f" if_not_exists({e.n('started_at')}, {e.v(iso(now))})"
                f" REMOVE {e.n('ended_at')}, {e.n('error')}"
            )
            self._table.update(step_key(incident_id, position), e, update,
                               "attribute_exists(pk)")
        self._touch(incident_id, now)

    def _set_step(self, incident_id: str, name: str, values: Mapping[str, Any],
                  now: datetime) -> None:
        position = self._position(incident_id, name)
        if position is not None:
            e = Expr()
            self._table.update(step_key(incident_id, position), e, e.assign(values),
                               "attribute_exists(pk)")
        self._touch(incident_id, now)

    def _append_step(self, incident: IncidentRecord, name: str, action: str,
                     on_failure: str, now: datetime) -> bool:
        """Read the steps, then put STEP#<highest + 1> only if that item does not exist:
        of two writers choosing the same position one wins, and the other gets False
        (add_step reads again; the name may then exist, which ends it)."""
        existing = self.steps(incident.id)
        for step in existing:
            self._positions[(incident.id, step.name)] = step.position
        if any(step.name == name for step in existing):
            return True
        position = max((step.position for step in existing), default=-1) + 1
        new_step = base.PendingStep(position, name, action, on_failure)
        try:
            self._table.put_new(pending_step_item(incident.id, new_step, ttl(incident.started_at)))
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        self._positions[(incident.id, name)] = position
        self._touch(incident.id, now)
        return True

    # calls ---------------------------------------------------------------------

    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> CallHandle:
        started = self._started.get(incident_id)
        if started is None:
            started = self._started[incident_id] = self.get(incident_id).started_at
        call_id = new_call_id(now)
        self._table.put_new(item(call_key(incident_id, call_id), **call_attributes(
            incident_id, call_id, step, call, now=now, expires=ttl(started))))
        return CallHandle(incident_id, call_id)

    def sending(self, handle: CallHandle) -> None:
        e = Expr()
        outcome = e.n("outcome")
        self._table.update(call_key(handle.incident_id, handle.call_id), e,
                           f"SET {outcome} = {e.v('sending')}", f"{outcome} = {e.v('pending')}")

    def _set_call(self, handle: CallHandle, values: Mapping[str, Any]) -> None:
        e = Expr()
        self._table.update(call_key(handle.incident_id, handle.call_id), e, e.assign(values),
                           "attribute_exists(pk)")

    def each_call(self, incident_id: str, step: str | None = None) -> Iterator[CallRecord]:
        """One Query page (up to 1 MB) at a time, as the report reads them."""
        e = Expr()
        filter_ = "" if step is None else f"{e.n('step')} = {e.v(step)}"
        return (base.call_record(i)
                for i in self._table.collection(incident_id, "CALL#", e, filter_))
