"""The DynamoDB journal's table: its layout, item encoding, expressions and requests.

Kept apart from the journal's logic: this module knows how an item is keyed and
written, dynamodb.py what the items mean. The layout is repeated by the SAM template
(tests/test_deploy.py holds the two together).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from responder.aws import ApiCall, RetryPolicy
from responder.context import iso
from responder.journal.base import NewIncident, PendingStep, dumps

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        TransactWriteItemTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]

T = TypeVar("T")

RETENTION: Final = timedelta(days=90)
"""Every item expires (DynamoDB TTL) this long after its incident started."""
MAX_JSON_CHARS: Final = 150_000
"""A journaled mapping longer than this is replaced by a marker: an item may not
exceed 400 KB, and a journal write that fails would halt containment."""
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


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def incident_pk(incident_id: str) -> str:
    return f"INCIDENT#{incident_id}"


def incident_key(incident_id: str) -> Item:
    return key(incident_pk(incident_id), "META")


def open_key_guard(access_key_id: str) -> Item:
    return key(f"OPENKEY#{access_key_id}", "LOCK")


def finding_guard(finding_id: str) -> Item:
    return key(f"FINDING#{finding_id}", "LOCK")


def step_sort_key(position: int) -> str:
    return f"STEP#{position:03d}"


def step_key(incident_id: str, position: int) -> Item:
    return key(incident_pk(incident_id), step_sort_key(position))


def call_key(incident_id: str, call_id: str) -> Item:
    return key(incident_pk(incident_id), f"CALL#{call_id}")


_intents = itertools.count(1)
_intents_lock = threading.Lock()


def new_call_id(now: datetime) -> str:
    """`<intent time>#<this process's intent count>#<random>`: ids sort by intent time,
    then in the order this process wrote them (threads collecting evidence write
    intents at once), and the random part keeps two processes' ids apart without a
    shared counter item to contend on."""
    with _intents_lock:
        count = next(_intents)
    return f"{iso(now)}#{count:012d}#{secrets.token_hex(4)}"


# values --------------------------------------------------------------------------


def item(item_key: Item, **attributes: Any) -> Item:
    """A full item: the key plus every attribute that is not None (absent = NULL)."""
    return {
        **item_key,
        **{k: _SERIALIZER.serialize(v) for k, v in attributes.items() if v is not None},
    }


def decode(stored: Mapping[str, AttributeValueTypeDef]) -> dict[str, Any]:
    plain = {k: _DESERIALIZER.deserialize(v) for k, v in stored.items()}
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in plain.items()}


def dumps_capped(value: Any) -> str:
    """A call's params or result, or a step's detail: bounded so its item stays < 400 KB."""
    text = dumps(value)  # ASCII (ensure_ascii), so characters are bytes
    if len(text) <= MAX_JSON_CHARS:
        return text
    return dumps({"journal_truncated": True, "chars": len(text), "head": text[:2000]})


def ttl(started_at: datetime) -> int:
    return int((started_at + RETENTION).timestamp())


# errors --------------------------------------------------------------------------


def error_code(exc: BaseException) -> str:
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def refused_actions(exc: BaseException) -> list[int]:
    """The positions, in a cancelled TransactWriteItems, of the actions whose own
    condition failed (empty for any other error)."""
    if error_code(exc) != "TransactionCanceledException":
        return []
    assert isinstance(exc, ClientError)  # noqa: S101 - error_code said so
    reasons = exc.response.get("CancellationReasons", [])
    return [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]


def lost_to_a_transaction(exc: BaseException) -> bool:
    """A write that lost only to another in-flight transaction: worth retrying (botocore
    does not), unlike one whose own condition failed."""
    code = error_code(exc)
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    assert isinstance(exc, ClientError)  # noqa: S101 - error_code said so
    reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
    return "TransactionConflict" in reasons and set(reasons) <= {"None", "TransactionConflict"}


# expressions ---------------------------------------------------------------------


class Expr:
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


# requests ------------------------------------------------------------------------


class Table:
    """One journal table's requests. Conditional writes answer a boolean instead of
    raising; a write that lost to a concurrent transaction is retried under the
    project's one RetryPolicy; reads are strongly consistent and follow every page."""

    def __init__(self, name: str, client: DynamoDBClient, retry: RetryPolicy) -> None:
        self.name = name
        self.client = client
        self._retry = retry

    def _retrying(self, request: Callable[[], T]) -> T:
        return self._retry.retrying(lost_to_a_transaction)(request)

    def update(self, item_key: Item, expr: Expr, update: str, condition: str) -> bool:
        """One conditional UpdateItem; False when the condition did not hold."""
        try:
            self._retrying(lambda: self.client.update_item(
                TableName=self.name, Key=item_key, UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values,
            ))
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_new(self, new_item: Item) -> None:
        """PutItem that never overwrites (a key must not be reused)."""
        self._retrying(lambda: self.client.put_item(
            TableName=self.name, Item=new_item, ConditionExpression="attribute_not_exists(pk)",
        ))

    def delete(self, item_key: Item, expr: Expr, condition: str) -> bool:
        """One conditional DeleteItem; False when the condition did not hold."""
        try:
            self._retrying(lambda: self.client.delete_item(
                TableName=self.name, Key=item_key, ConditionExpression=condition,
                ExpressionAttributeNames=expr.names, ExpressionAttributeValues=expr.values,
            ))
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def transact(self, items: Sequence[TransactWriteItemTypeDef]) -> None:
        self._retrying(lambda: self.client.transact_write_items(TransactItems=list(items)))

    def get(self, item_key: Item) -> dict[str, Any] | None:
        found = self.client.get_item(TableName=self.name, Key=item_key, ConsistentRead=True)
        stored = found.get("Item")
        return None if stored is None else decode(stored)

    def get_many(self, keys: Sequence[Item]) -> Iterator[dict[str, Any]]:
        """BatchGetItem with consistent reads; keys it leaves unprocessed are read one by
        one (GetItem retries throttling itself)."""
        for start in range(0, len(keys), 100):
            found = self.client.batch_get_item(RequestItems={
                self.name: {"Keys": list(keys[start:start + 100]), "ConsistentRead": True}
            })
            yield from (decode(i) for i in found["Responses"].get(self.name, []))
            left = found.get("UnprocessedKeys", {}).get(self.name, {"Keys": []})
            for unprocessed in left["Keys"]:
                stored = self.get(unprocessed)
                if stored is not None:
                    yield stored

    def query(self, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item of a Query, following LastEvaluatedKey across pages."""
        pages = self.client.get_paginator("query").paginate(TableName=self.name, **query)
        for page in pages:
            for stored in page.get("Items", []):
                yield decode(stored)

    def partition(self, incident_id: str) -> Iterator[dict[str, Any]]:
        """Every item of one incident (META, its steps, its calls), in key order."""
        expr = Expr()
        return self.query(KeyConditionExpression=f"pk = {expr.v(incident_pk(incident_id))}",
                          ExpressionAttributeValues=expr.values, ConsistentRead=True)

    def collection(
        self, incident_id: str, prefix: str, expr: Expr | None = None, filter_: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Items of one incident whose sort key starts with `prefix`, in key order."""
        expr = expr or Expr()
        query: dict[str, Any] = {
            "KeyConditionExpression": f"pk = {expr.v(incident_pk(incident_id))}"
            f" AND begins_with(sk, {expr.v(prefix)})",
            "ExpressionAttributeValues": expr.values,
            "ConsistentRead": True,
        }
        if expr.names:
            query["ExpressionAttributeNames"] = expr.names
        if filter_:
            query["FilterExpression"] = filter_
        return self.query(**query)


def incident_attributes(new: NewIncident) -> dict[str, Any]:
    """An incident's item as created (its key apart), holding the lease for its owner."""
    values = {
        "id": new.id, "access_key_id": new.access_key_id, "playbook": dumps(new.playbook),
        "status": "running", "started_at": iso(new.started_at),
        "updated_at": iso(new.started_at), "source": new.source,
        "options": dumps(new.options), "lease_owner": new.owner,
        "lease_expires": iso(new.lease_expires), "finding_id": new.finding_id,
        "gsi_key": new.access_key_id, "gsi_all": ALL_INCIDENTS,
        "expires_at": ttl(new.started_at),
    }
    return {k: v for k, v in values.items() if v is not None}


def call_attributes(incident_id: str, call_id: str, step: str, call: ApiCall, *,
                    now: datetime, expires: int) -> dict[str, Any]:
    """A call's item as its intent writes it (its key apart)."""
    return {
        "id": call_id, "incident_id": incident_id, "step": step, "service": call.service,
        "operation": call.operation, "params": dumps_capped(call.as_dict()["params"]),
        "mutating": call.mutating, "outcome": "pending", "attempts": 0,
        "intent_at": iso(now), "expires_at": expires,
    }


def pending_step(incident_id: str, step: PendingStep, expires: int) -> dict[str, Any]:
    """A step's attributes as first written, whether with its incident or appended later,
    so base.step_record reads both alike."""
    return {"incident_id": incident_id, "position": step.position, "name": step.name,
            "action": step.action, "on_failure": step.on_failure, "status": "pending",
            "detail": "{}", "expires_at": expires}


def pending_step_item(incident_id: str, step: PendingStep, expires: int) -> Item:
    return item(step_key(incident_id, step.position), **pending_step(incident_id, step, expires))


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the journal table (on-demand, both GSIs) and enable its TTL."""
    client.create_table(TableName=table_name, **TABLE_DEFINITION)
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
