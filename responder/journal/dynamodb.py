"""DynamoDB journal: the Journal protocol for Lambda and for teams sharing one table.

Why it looks like this:

- **One table**, partition key `pk`, sort key `sk`, so the SAM template declares a
  single resource. An incident is one item collection: `INCIDENT#<id>` holds `META`
  (the incident), `STEP#<position>` (one item per step, so step updates never rewrite
  the incident) and `CALL#<call id>` (the write-ahead call records). `steps()` and
  `calls()` are strongly consistent Queries of that collection.
- **Guard items** stand in for SQLite's unique indexes. `OPENKEY#<key>` names the key's
  open incident and `FINDING#<finding id>` the finding's incident; both are written
  with `attribute_not_exists(pk)` in the same transaction as the incident, so of two
  runners (two Lambdas, two laptops) racing for the same key exactly one wins and the
  other is told which incident to join. Closing an incident deletes its `OPENKEY`
  guard in the same transaction as the status change; `FINDING` guards stay.
- **The lease is a conditional write** on the incident item, as in aws-lambda-powertools'
  idempotency records: take it if it is absent, ours, or expired. Lease timestamps are
  `iso()` strings (UTC, milliseconds, `Z`), which compare correctly as strings.
- Call ids come from an atomic counter item (`ADD`), so they are unique and increasing
  per table like SQLite's AUTOINCREMENT. `sending()`/`result()` get only the id, so a
  small `CALL#<id>`/`REF` item points back at the incident (cached in memory).
- `history_for_key()` and `recent()` find incidents through the KEYS_ONLY indexes
  `by_key` and `by_time`, then read the incidents themselves with consistent reads:
  an incident created in the last moment may be missing from them (indexes are
  eventually consistent), but every record returned is current. The runner never
  relies on them for exclusion: that is `find_open()`, which reads the guard.
- Every item except the counter carries `expires_at` (epoch seconds, TTL) =
  incident start + 90 days. Mappings (playbook, options, params, results, details) are
  stored as JSON strings: no float→Decimal conversions, and the same text SQLite keeps.

Create the table with `DynamoDbJournal.create_table(client, name)`; in a SAM template
the same definition is `TABLE_DEFINITION` (attribute definitions, key schema, the two
GSIs) plus `TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from responder.aws import ApiCall
from responder.context import iso, parse_iso
from responder.errors import BadInput, LeaseHeld, UnknownIncident
from responder.journal import (
    OPEN_STATUSES,
    CallRecord,
    IncidentExists,
    IncidentRecord,
    StepRecord,
    StepStatus,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        TransactWriteItemTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]

T = TypeVar("T")

URL_PREFIX: Final = "dynamodb://"
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
RETENTION: Final = timedelta(days=90)
"""Every item expires (DynamoDB TTL) this long after its incident started."""
INCIDENT_FIELDS: Final = frozenset(
    {"status", "user_name", "account_id", "contained_at", "error", "report"}
)
MAX_TRANSACT_ITEMS: Final = 100
"""DynamoDB's TransactWriteItems limit: incident + 2 guards + one item per step."""
MAX_JSON_CHARS: Final = 150_000
"""A journaled mapping longer than this is replaced by a marker: an item may not
exceed 400 KB, and a journal write that fails would halt containment."""
CONFLICT_ATTEMPTS: Final = 6
"""Writes that collide with an in-flight transaction on the same item are retried."""
CREATE_ATTEMPTS: Final = 3
BY_KEY: Final = "by_key"
BY_TIME: Final = "by_time"
ALL_INCIDENTS: Final = "INCIDENT"

TABLE_DEFINITION: Final[dict[str, Any]] = {
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("pk", "sk", "gsi_key", "gsi_all", "started_at")
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": "started_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
        for index, hash_key in ((BY_KEY, "gsi_key"), (BY_TIME, "gsi_all"))
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


# keys ----------------------------------------------------------------------------


def _key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _incident_key(incident_id: str) -> Item:
    return _key(f"INCIDENT#{incident_id}", "META")


def _open_key_guard(access_key_id: str) -> Item:
    return _key(f"OPENKEY#{access_key_id}", "LOCK")


def _finding_guard(finding_id: str) -> Item:
    return _key(f"FINDING#{finding_id}", "LOCK")


def _step_key(incident_id: str, position: int) -> Item:
    return _key(f"INCIDENT#{incident_id}", f"STEP#{position:03d}")


def _call_key(incident_id: str, call_id: int) -> Item:
    return _key(f"INCIDENT#{incident_id}", f"CALL#{call_id:012d}")


def _call_ref_key(call_id: int) -> Item:
    return _key(f"CALL#{call_id:012d}", "REF")


_COUNTER_KEY: Final = {"pk": {"S": "COUNTER"}, "sk": {"S": "CALLS"}}


# values --------------------------------------------------------------------------


def _item(key: Item, **attributes: Any) -> Item:
    """A full item: the key plus every attribute that is not None (absent = NULL)."""
    return {
        **key,
        **{k: _SERIALIZER.serialize(v) for k, v in attributes.items() if v is not None},
    }


def _decode(item: Mapping[str, AttributeValueTypeDef]) -> dict[str, Any]:
    plain = {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in plain.items()}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _dumps_capped(value: Any) -> str:
    """A call's params or result, or a step's detail: bounded so its item stays < 400 KB."""
    text = _dumps(value)  # ASCII (ensure_ascii), so characters are bytes
    if len(text) <= MAX_JSON_CHARS:
        return text
    return json.dumps({"journal_truncated": True, "chars": len(text), "head": text[:2000]})


def _ttl(started_at: datetime) -> int:
    return int((started_at + RETENTION).timestamp())


def _must(text: str | None) -> datetime:
    moment = parse_iso(text)
    if moment is None:
        raise ValueError("journal item is missing a required timestamp")
    return moment


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _only_conflicts(exc: ClientError) -> bool:
    """A cancelled transaction that lost only to another transaction (retry it), not to
    one of its conditions."""
    reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
    return "TransactionConflict" in reasons and set(reasons) <= {"None", "TransactionConflict"}


def _incident(item: Mapping[str, Any]) -> IncidentRecord:
    return IncidentRecord(
        id=item["id"],
        access_key_id=item["access_key_id"],
        playbook=json.loads(item["playbook"]),
        status=item["status"],
        started_at=_must(item["started_at"]),
        updated_at=_must(item["updated_at"]),
        source=item["source"],
        options=json.loads(item["options"]),
        contained_at=parse_iso(item.get("contained_at")),
        user_name=item.get("user_name"),
        account_id=item.get("account_id"),
        error=item.get("error"),
        lease_owner=item.get("lease_owner"),
        lease_expires=parse_iso(item.get("lease_expires")),
        report=item.get("report"),
        finding_id=item.get("finding_id"),
    )


def _step(item: Mapping[str, Any]) -> StepRecord:
    return StepRecord(
        incident_id=item["incident_id"],
        position=item["position"],
        name=item["name"],
        action=item["action"],
        on_failure=item["on_failure"],
        status=item["status"],
        started_at=parse_iso(item.get("started_at")),
        ended_at=parse_iso(item.get("ended_at")),
        detail=json.loads(item["detail"]),
        error=item.get("error"),
    )


def _call(item: Mapping[str, Any]) -> CallRecord:
    result = item.get("result")
    return CallRecord(
        id=item["id"],
        step=item["step"],
        service=item["service"],
        operation=item["operation"],
        params=json.loads(item["params"]),
        mutating=item["mutating"],
        outcome=item["outcome"],
        result=None if result is None else json.loads(result),
        error=item.get("error"),
        attempts=item["attempts"],
        intent_at=_must(item["intent_at"]),
        result_at=parse_iso(item.get("result_at")),
    )


class _Expr:
    """Placeholders for one request's expressions: every attribute name and value goes
    through here, so DynamoDB's reserved words (status, name, error, ...) never bite."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValueTypeDef] = {}
        self._aliases: dict[str, str] = {}

    def n(self, attribute: str) -> str:
        alias = self._aliases.get(attribute)
        if alias is None:
            alias = self._aliases[attribute] = f"#a{len(self._aliases)}"
            self.names[alias] = attribute
        return alias

    def v(self, value: Any) -> str:
        alias = f":v{len(self.values)}"
        self.values[alias] = _SERIALIZER.serialize(value)
        return alias

    def assign(self, sets: Mapping[str, Any]) -> str:
        """`SET a = :x, ...` for non-None values plus `REMOVE b, ...` for None ones."""
        parts = [f"{self.n(k)} = {self.v(v)}" for k, v in sets.items() if v is not None]
        removed = [self.n(k) for k, v in sets.items() if v is None]
        return " ".join(
            ([f"SET {', '.join(parts)}"] if parts else [])
            + ([f"REMOVE {', '.join(removed)}"] if removed else [])
        )


class DynamoDbJournal:
    """The Journal backend for Lambda and shared use: one DynamoDB table."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        session: boto3.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`client` wins over `session`; with neither, the default boto3 session's.
        `sleep` spaces retries of writes that collided with a transaction."""
        self.table_name = table_name
        self._client: DynamoDBClient = client or (session or boto3.Session()).client(
            "dynamodb"
        )
        self._sleep = sleep
        # Immutable facts, cached to save reads on the hot path (intent per AWS call).
        self._started: dict[str, datetime] = {}
        self._positions: dict[tuple[str, str], int] = {}
        self._call_incident: dict[int, str] = {}

    @classmethod
    def from_url(
        cls, url: str, *, session: boto3.Session | None = None
    ) -> DynamoDbJournal:
        """`dynamodb://TABLE` (the `--state` form), with the default boto3 session."""
        table = url.removeprefix(URL_PREFIX) if url.startswith(URL_PREFIX) else ""
        if not TABLE_NAME.fullmatch(table):
            raise BadInput(
                f"--state {url!r}: expected dynamodb://TABLE with a DynamoDB table name"
                " (3-255 characters: letters, digits, '_', '-', '.')"
            )
        return cls(table, session=session)

    @staticmethod
    def create_table(client: DynamoDBClient, table_name: str) -> None:
        """Create the journal table (on-demand, both GSIs) and enable its TTL."""
        client.create_table(TableName=table_name, **TABLE_DEFINITION)
        client.get_waiter("table_exists").wait(TableName=table_name)
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )

    def close(self) -> None:
        """Nothing to close: boto3 clients hold no connection that needs it."""

    # plumbing ------------------------------------------------------------------

    def _retrying(self, request: Callable[[], T]) -> T:
        """Run a write, retrying only when it lost to a concurrent transaction (botocore
        does not retry TransactionConflict)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return request()
            except ClientError as exc:
                conflict = _code(exc) == "TransactionConflictException" or (
                    _code(exc) == "TransactionCanceledException" and _only_conflicts(exc)
                )
                if not conflict or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                self._sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _update(
        self, key: Item, expr: _Expr, update: str, condition: str
    ) -> bool:
        """One conditional UpdateItem; False when the condition did not hold."""
        try:
            self._retrying(lambda: self._client.update_item(
                TableName=self.table_name, Key=key, UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values,
            ))
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _transact(self, items: Sequence[TransactWriteItemTypeDef]) -> None:
        self._retrying(lambda: self._client.transact_write_items(TransactItems=list(items)))

    def _get_item(self, key: Item) -> dict[str, Any] | None:
        found = self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        item = found.get("Item")
        return None if item is None else _decode(item)

    def _query(self, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item of a Query, following LastEvaluatedKey across pages."""
        pages = self._client.get_paginator("query").paginate(TableName=self.table_name, **query)
        for page in pages:
            for item in page.get("Items", []):
                yield _decode(item)

    def _collection(
        self, incident_id: str, prefix: str, expr: _Expr | None = None, filter_: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Items of one incident whose sort key starts with `prefix`, in key order."""
        expr = expr or _Expr()
        query: dict[str, Any] = {
            "KeyConditionExpression": f"pk = {expr.v(f'INCIDENT#{incident_id}')}"
            f" AND begins_with(sk, {expr.v(prefix)})",
            "ExpressionAttributeValues": expr.values,
            "ConsistentRead": True,
        }
        if expr.names:
            query["ExpressionAttributeNames"] = expr.names
        if filter_:
            query["FilterExpression"] = filter_
        return self._query(**query)

    # incidents -----------------------------------------------------------------

    def create_incident(
        self,
        *,
        incident_id: str,
        access_key_id: str,
        playbook: Mapping[str, Any],
        started_at: datetime,
        source: str,
        options: Mapping[str, Any],
        owner: str,
        lease_seconds: float,
        finding_id: str | None = None,
    ) -> IncidentRecord:
        steps: Sequence[Mapping[str, Any]] = playbook["steps"]
        if len(steps) + 3 > MAX_TRANSACT_ITEMS:
            raise ValueError(
                f"a playbook of {len(steps)} steps does not fit one DynamoDB transaction"
                f" (at most {MAX_TRANSACT_ITEMS - 3} steps)"
            )
        expires = _ttl(started_at)
        new = "attribute_not_exists(pk)"

        def put(item: Item) -> TransactWriteItemTypeDef:
            return {"Put": {"TableName": self.table_name, "Item": item,
                            "ConditionExpression": new}}

        items = [
            put(_item(
                _incident_key(incident_id), id=incident_id, access_key_id=access_key_id,
                playbook=_dumps(playbook), status="running", started_at=iso(started_at),
                updated_at=iso(started_at), source=source, options=_dumps(options),
                lease_owner=owner,
                lease_expires=iso(started_at + timedelta(seconds=lease_seconds)),
                finding_id=finding_id, gsi_key=access_key_id, gsi_all=ALL_INCIDENTS,
                expires_at=expires,
            )),
            put(_item(_open_key_guard(access_key_id), incident_id=incident_id,
                      expires_at=expires)),
            *([put(_item(_finding_guard(finding_id), incident_id=incident_id,
                         expires_at=expires))] if finding_id else []),
            *(
                put(_item(
                    _step_key(incident_id, i), incident_id=incident_id, position=i,
                    name=s["name"], action=s["action"],
                    on_failure=s.get("on_failure", "halt"), status="pending",
                    detail="{}", expires_at=expires,
                ))
                for i, s in enumerate(steps)
            ),
        ]
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self._transact(items)
                break
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                existing = (self.find_by_finding(finding_id) if finding_id else None) or \
                    self.find_open(access_key_id)
                if existing is not None:
                    raise IncidentExists(existing.id) from exc
                # The winner closed in the meantime, or the guard is stale: try again.
                self._drop_stale_guard(access_key_id)
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
        self._started[incident_id] = started_at
        for i, s in enumerate(steps):
            self._positions[(incident_id, s["name"])] = i
        return self.get(incident_id)

    def _drop_stale_guard(self, access_key_id: str) -> None:
        """Delete an OPENKEY guard whose incident is gone (TTL) or no longer open."""
        guard = self._get_item(_open_key_guard(access_key_id))
        if guard is None:
            return
        holder = self._get_or_none(guard["incident_id"])
        if holder is not None and holder.is_open:
            return
        expr = _Expr()
        condition = f"{expr.n('incident_id')} = {expr.v(guard['incident_id'])}"
        try:
            self._client.delete_item(
                TableName=self.table_name, Key=_open_key_guard(access_key_id),
                ConditionExpression=condition, ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values,
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise

    def _get_or_none(self, incident_id: str) -> IncidentRecord | None:
        item = self._get_item(_incident_key(incident_id))
        return None if item is None else _incident(item)

    def get(self, incident_id: str) -> IncidentRecord:
        record = self._get_or_none(incident_id)
        if record is None:
            raise UnknownIncident(
                f"unknown incident id {incident_id!r} in DynamoDB table {self.table_name};"
                " `respond status` lists them"
            )
        return record

    def find_open(self, access_key_id: str) -> IncidentRecord | None:
        guard = self._get_item(_open_key_guard(access_key_id))
        if guard is None:
            return None
        record = self._get_or_none(guard["incident_id"])
        return record if record is not None and record.is_open else None

    def find_by_finding(self, finding_id: str) -> IncidentRecord | None:
        guard = self._get_item(_finding_guard(finding_id))
        return None if guard is None else self._get_or_none(guard["incident_id"])

    def _indexed(self, index: str, hash_key: str, value: str, *, newest_first: bool,
                 limit: int | None = None) -> list[IncidentRecord]:
        """Incidents listed by a KEYS_ONLY index, each then read consistently."""
        expr = _Expr()
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{expr.n(hash_key)} = {expr.v(value)}",
            "ExpressionAttributeNames": expr.names,
            "ExpressionAttributeValues": expr.values,
            "ScanIndexForward": not newest_first,
        }
        if limit is not None:
            query["PaginationConfig"] = {"MaxItems": limit, "PageSize": limit}
        ids = [item["pk"].removeprefix("INCIDENT#") for item in self._query(**query)]
        records = self._read_incidents(ids)
        records.sort(key=lambda r: (r.started_at, r.id), reverse=newest_first)
        return records

    def _read_incidents(self, ids: Iterable[str]) -> list[IncidentRecord]:
        """BatchGetItem with consistent reads; keys it leaves unprocessed are read one by
        one (GetItem retries throttling itself)."""
        wanted = list(dict.fromkeys(ids))
        records: list[IncidentRecord] = []
        for start in range(0, len(wanted), 100):
            keys = [_incident_key(i) for i in wanted[start:start + 100]]
            found = self._client.batch_get_item(
                RequestItems={self.table_name: {"Keys": keys, "ConsistentRead": True}}
            )
            records.extend(_incident(_decode(i)) for i in found["Responses"].get(
                self.table_name, []))
            left = found.get("UnprocessedKeys", {}).get(self.table_name, {"Keys": []})
            for key in left["Keys"]:
                item = self._get_item(key)
                if item is not None:
                    records.append(_incident(item))
        return records

    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]:
        return self._indexed(BY_KEY, "gsi_key", access_key_id, newest_first=False)

    def recent(self, limit: int = 20) -> list[IncidentRecord]:
        if limit == 0:
            return []
        most = limit if limit > 0 else None  # as SQL: a negative LIMIT means no limit
        return self._indexed(BY_TIME, "gsi_all", ALL_INCIDENTS, newest_first=True,
                             limit=most)[:most]

    # lease ---------------------------------------------------------------------

    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        e = _Expr()
        owner_attr, expires_attr, me = e.n("lease_owner"), e.n("lease_expires"), e.v(owner)
        until = e.v(iso(now + timedelta(seconds=seconds)))
        update = f"SET {owner_attr} = {me}, {expires_attr} = {until}"
        condition = (
            f"attribute_exists(pk) AND (attribute_not_exists({owner_attr})"
            f" OR {owner_attr} = {me} OR {expires_attr} < {e.v(iso(now))})"
        )
        if not self._update(_incident_key(incident_id), e, update, condition):
            self._raise_held(incident_id)

    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        e = _Expr()
        update = e.assign({"lease_owner": owner,
                           "lease_expires": iso(now + timedelta(seconds=seconds))})
        condition = f"{e.n('lease_owner')} = {e.v(dead_owner)}"
        if not self._update(_incident_key(incident_id), e, update, condition):
            self._raise_held(incident_id)

    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        e = _Expr()
        update = e.assign({"lease_expires": iso(now + timedelta(seconds=seconds))})
        condition = f"{e.n('lease_owner')} = {e.v(owner)}"
        if not self._update(_incident_key(incident_id), e, update, condition):
            self._raise_held(incident_id)

    def _raise_held(self, incident_id: str) -> None:
        record = self.get(incident_id)
        raise LeaseHeld(incident_id, record.lease_owner or "?", iso(record.lease_expires) or "?")

    def release_lease(self, incident_id: str, owner: str) -> None:
        e = _Expr()
        update = e.assign({"lease_owner": None, "lease_expires": None})
        self._update(_incident_key(incident_id), e, update,
                     f"{e.n('lease_owner')} = {e.v(owner)}")

    def update_incident(self, incident_id: str, now: datetime, **fields: Any) -> None:
        unknown = set(fields) - INCIDENT_FIELDS
        if unknown:
            raise ValueError(f"not incident fields: {sorted(unknown)}")
        if "status" in fields and fields["status"] is None:
            raise ValueError("an incident's status cannot be cleared")
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        values["updated_at"] = iso(now)
        e = _Expr()
        update = e.assign(values)
        if "status" not in fields:
            self._update(_incident_key(incident_id), e, update, "attribute_exists(pk)")
            return
        change: TransactWriteItemTypeDef = {"Update": {
            "TableName": self.table_name, "Key": _incident_key(incident_id),
            "UpdateExpression": update, "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
        }}
        opening = fields["status"] in OPEN_STATUSES
        for attempt in range(CREATE_ATTEMPTS):
            record = self._get_or_none(incident_id)
            if record is None:
                return  # as SQLite: updating an unknown incident changes nothing
            try:
                self._transact([change, *self._guard_change(record, opening=opening)])
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                holder = self.find_open(record.access_key_id) if opening else None
                if holder is not None and holder.id != incident_id:
                    raise IncidentExists(holder.id) from exc
                if opening:
                    self._drop_stale_guard(record.access_key_id)
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
            else:
                return

    def _guard_change(
        self, record: IncidentRecord, *, opening: bool
    ) -> list[TransactWriteItemTypeDef]:
        """The OPENKEY guard write that goes with a status change: claim it (or keep it)
        when the status is open, delete it if it is ours when the incident closes."""
        key = _open_key_guard(record.access_key_id)
        e = _Expr()
        ours = f"{e.n('incident_id')} = {e.v(record.id)}"
        if opening:
            return [{"Put": {
                "TableName": self.table_name,
                "Item": _item(key, incident_id=record.id, expires_at=_ttl(record.started_at)),
                "ConditionExpression": f"attribute_not_exists(pk) OR {ours}",
                "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
            }}]
        guard = self._get_item(key)
        if guard is None or guard["incident_id"] != record.id:
            return []
        return [{"Delete": {
            "TableName": self.table_name, "Key": key, "ConditionExpression": ours,
            "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
        }}]

    def _touch(self, incident_id: str, now: datetime) -> None:
        e = _Expr()
        self._update(_incident_key(incident_id), e, e.assign({"updated_at": iso(now)}),
                     "attribute_exists(pk)")

    # steps ---------------------------------------------------------------------

    def steps(self, incident_id: str) -> list[StepRecord]:
        return [_step(item) for item in self._collection(incident_id, "STEP#")]

    def _position(self, incident_id: str, name: str) -> int | None:
        """The step's position (its sort key); steps never move once created."""
        if (incident_id, name) not in self._positions:
            for step in self.steps(incident_id):
                self._positions[(incident_id, step.name)] = step.position
        return self._positions.get((incident_id, name))

    def step_started(self, incident_id: str, name: str, now: datetime) -> None:
        position = self._position(incident_id, name)
        if position is not None:
            e = _Expr()
            update = (
                f"SET {e.n('status')} = {e.v('running')}, {e.n('started_at')} ="
                f" if_not_exists({e.n('started_at')}, {e.v(iso(now))})"
                f" REMOVE {e.n('ended_at')}, {e.n('error')}"
            )
            self._update(_step_key(incident_id, position), e, update, "attribute_exists(pk)")
        self._touch(incident_id, now)

    def step_finished(
        self,
        incident_id: str,
        name: str,
        *,
        status: StepStatus,
        now: datetime,
        detail: Mapping[str, Any],
        error: str | None,
    ) -> None:
        position = self._position(incident_id, name)
        if position is not None:
            e = _Expr()
            update = e.assign({"status": status, "ended_at": iso(now),
                               "detail": _dumps_capped(detail), "error": error})
            self._update(_step_key(incident_id, position), e, update, "attribute_exists(pk)")
        self._touch(incident_id, now)

    # calls ---------------------------------------------------------------------

    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> int:
        started = self._started.get(incident_id)
        if started is None:
            started = self._started[incident_id] = self.get(incident_id).started_at
        expires = _ttl(started)
        counted = self._client.update_item(
            TableName=self.table_name, Key=_COUNTER_KEY, UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "n"}, ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        call_id = int(counted["Attributes"]["n"]["N"])
        # The pointer first: a call item is never left without its way back.
        self._client.put_item(
            TableName=self.table_name,
            Item=_item(_call_ref_key(call_id), incident_id=incident_id, expires_at=expires),
        )
        self._client.put_item(
            TableName=self.table_name,
            Item=_item(
                _call_key(incident_id, call_id), id=call_id, incident_id=incident_id,
                step=step, service=call.service, operation=call.operation,
                params=_dumps_capped(call.as_dict()["params"]), mutating=call.mutating,
                outcome="pending", attempts=0, intent_at=iso(now), expires_at=expires,
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )
        self._call_incident[call_id] = incident_id
        return call_id

    def _incident_of_call(self, call_id: int) -> str | None:
        incident_id = self._call_incident.get(call_id)
        if incident_id is None:
            ref = self._get_item(_call_ref_key(call_id))
            incident_id = None if ref is None else str(ref["incident_id"])
        return incident_id

    def sending(self, call_id: int) -> None:
        incident_id = self._incident_of_call(call_id)
        if incident_id is None:
            return
        e = _Expr()
        outcome = e.n("outcome")
        self._update(_call_key(incident_id, call_id), e, f"SET {outcome} = {e.v('sending')}",
                     f"{outcome} = {e.v('pending')}")

    def result(
        self,
        call_id: int,
        *,
        ok: bool,
        attempts: int,
        now: datetime,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        incident_id = self._incident_of_call(call_id)
        if incident_id is None:
            return
        e = _Expr()
        update = e.assign({
            "outcome": "ok" if ok else "error", "attempts": attempts,
            "result": None if result is None else _dumps_capped(result), "error": error,
            "result_at": iso(now),
        })
        self._update(_call_key(incident_id, call_id), e, update, "attribute_exists(pk)")
        self._call_incident.pop(call_id, None)

    def calls(self, incident_id: str, step: str | None = None) -> list[CallRecord]:
        e = _Expr()
        filter_ = "" if step is None else f"{e.n('step')} = {e.v(step)}"
        return [_call(item) for item in self._collection(incident_id, "CALL#", e, filter_)]
