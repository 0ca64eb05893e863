"""An incident held in memory by the DynamoDB journal that holds its lease: its items as
this process wrote them, what changed since they were last sent, and the
TransactWriteItems requests that send it (dynamodb_writeback.py decides when).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from responder.journal.dynamodb_table import (
    Expr,
    incident_key,
    incident_pk,
    item,
    key,
    open_key_guard,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

META: Final = "META"
FLUSH_AT: Final = 50
"""Writes held at most before they are sent anyway: a long stretch of reads (evidence
collection, page after page) reaches the table in batches, not all at the end."""
MAX_ACTIONS: Final = 100
"""DynamoDB's limit of actions in one TransactWriteItems."""
MAX_BYTES: Final = 3_000_000
"""Under the 4 MB one transaction may carry, with room for the estimate's error."""
Guard = Literal["ours", "released", "unknown", "other"]


@dataclass(frozen=True)
class Batch:
    """The writes taken for one flush: whole items to put (calls first, then steps, each
    in key order), the incident's changed attributes (None removes one), and whether the
    key's guard is to be deleted with them."""

    puts: tuple[tuple[str, dict[str, Any]], ...]
    meta: dict[str, Any]
    delete_guard: bool

    @property
    def empty(self) -> bool:
        return not (self.puts or self.meta or self.delete_guard)


class Held:
    """One held incident: its items as this process knows them (sort key → attributes,
    None until read once from the table) and what changed since the last flush."""

    def __init__(self, incident_id: str, owner: str,
                 items: dict[str, dict[str, Any]] | None = None, *,
                 guard: Guard = "unknown") -> None:
        self.incident_id = incident_id
        self.owner = owner
        self.items = items
        self.guard: Guard = guard
        """Whether the key's OPENKEY guard names this incident, as far as this process
        knows: written by it (ours), deleted by it (released), read (other), or not known."""
        self.lock = threading.RLock()
        self.flush_lock = threading.Lock()
        """Held while a batch is sent: flushes go one after the other, so a flush that
        returns has every write made before it in the table."""
        self._dirty: dict[str, None] = {}
        self._meta_dirty: dict[str, None] = {}
        self._delete_guard = False

    # reads -------------------------------------------------------------------

    def _items(self) -> dict[str, dict[str, Any]]:
        if self.items is None:
            raise RuntimeError(f"incident {self.incident_id} was not read yet")
        return self.items

    def meta(self) -> dict[str, Any]:
        with self.lock:
            return dict(self._items()[META])

    def steps(self) -> list[dict[str, Any]]:
        with self.lock:
            found = [dict(v) for k, v in self._items().items() if k.startswith("STEP#")]
        return sorted(found, key=lambda s: int(s["position"]))

    def calls(self, step: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(v) for k, v in sorted(self._items().items())
                    if k.startswith("CALL#") and (step is None or v.get("step") == step)]

    def step_key(self, name: str) -> str | None:
        with self.lock:
            return next((k for k, v in self._items().items()
                         if k.startswith("STEP#") and v.get("name") == name), None)

    @property
    def pending(self) -> int:
        return len(self._dirty) + bool(self._meta_dirty)

    # writes ------------------------------------------------------------------

    def put(self, sort_key: str, attributes: Mapping[str, Any]) -> None:
        with self.lock:
            self._items()[sort_key] = {k: v for k, v in attributes.items() if v is not None}
            self._dirty[sort_key] = None

    def update(self, sort_key: str, values: Mapping[str, Any], *,
               only_if: Mapping[str, Any] | None = None) -> bool:
        """Set `values` (None removes) on an existing item; False, and nothing changed,
        when there is no such item or an `only_if` attribute differs."""
        with self.lock:
            found = self._items().get(sort_key)
            if found is None or any(found.get(k) != v for k, v in (only_if or {}).items()):
                return False
            _assign(found, values)
            if sort_key == META:
                self._meta_dirty.update(dict.fromkeys(values))
            else:
                self._dirty[sort_key] = None
            return True

    def set_meta(self, values: Mapping[str, Any]) -> None:
        self.update(META, values)

    def delete_guard(self, wanted: bool = True) -> None:
        with self.lock:
            self._delete_guard = wanted

    # flushing ----------------------------------------------------------------

    def take(self) -> Batch:
        """The writes since the last flush, which are no longer marked as pending."""
        with self.lock:
            items = self._items()
            order = sorted(self._dirty, key=lambda k: (not k.startswith("CALL#"), k))
            batch = Batch(tuple((k, dict(items[k])) for k in order),
                          {a: items[META].get(a) for a in self._meta_dirty},
                          self._delete_guard)
            self._dirty.clear()
            self._meta_dirty.clear()
            self._delete_guard = False
            return batch

    def give_back(self, batch: Batch) -> None:
        """A flush that failed: its writes are pending again (with their values now)."""
        with self.lock:
            self._dirty.update(dict.fromkeys(k for k, _ in batch.puts))
            self._meta_dirty.update(dict.fromkeys(batch.meta))
            self._delete_guard = self._delete_guard or batch.delete_guard


def _assign(found: dict[str, Any], values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if value is None:
            found.pop(name, None)
        else:
            found[name] = value


def _size(attributes: Mapping[str, Any]) -> int:
    """About what an item weighs in a request: its names and values as text."""
    return sum(len(k) + len(str(v)) + 8 for k, v in attributes.items()) + 64


def transactions(table: str, held: Held, batch: Batch,
                 extra: Iterable[TransactWriteItemTypeDef] = ()
                 ) -> list[list[TransactWriteItemTypeDef]]:
    """The batch as TransactWriteItems requests, in order. Every request carries the lease
    condition (lease_owner is this process) on the incident item: the last as the update
    of the incident's attributes (with the guard's deletion and `extra`), the others as a
    ConditionCheck. Items go in calls-then-steps order, so a crash between two requests
    leaves calls without the step ending that follows them, never the reverse."""
    pk = incident_pk(held.incident_id)
    tail: list[TransactWriteItemTypeDef] = [_incident_write(table, held, batch.meta)]
    if batch.delete_guard:
        guard_key = open_key_guard(str(held.meta()["access_key_id"]))
        e = Expr()
        tail.append({"Delete": {
            "TableName": table, "Key": guard_key,
            "ConditionExpression": f"attribute_not_exists(pk) OR "
                                   f"{e.n('incident_id')} = {e.v(held.incident_id)}",
            "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
        }})
    tail.extend(extra)
    requests: list[list[TransactWriteItemTypeDef]] = []
    chunk: list[TransactWriteItemTypeDef] = []
    weight = 0
    for sort_key, attributes in batch.puts:
        size = _size(attributes)
        if chunk and (len(chunk) + len(tail) >= MAX_ACTIONS or weight + size > MAX_BYTES):
            requests.append([*chunk, _lease_check(table, held)])
            chunk, weight = [], 0
        chunk.append({"Put": {"TableName": table, "Item": item(key(pk, sort_key),
                                                               **attributes)}})
        weight += size
    requests.append([*chunk, *tail])
    return requests


def _lease_condition(e: Expr, held: Held) -> str:
    return f"{e.n('lease_owner')} = {e.v(held.owner)}"


def _lease_check(table: str, held: Held) -> TransactWriteItemTypeDef:
    e = Expr()
    return {"ConditionCheck": {
        "TableName": table, "Key": incident_key(held.incident_id),
        "ConditionExpression": _lease_condition(e, held),
        "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
    }}


def _incident_write(table: str, held: Held, changes: Mapping[str, Any]
                    ) -> TransactWriteItemTypeDef:
    if not changes:
        return _lease_check(table, held)
    e = Expr()
    return {"Update": {
        "TableName": table, "Key": incident_key(held.incident_id),
        "UpdateExpression": e.assign(changes),
        "ConditionExpression": _lease_condition(e, held),
        "ExpressionAttributeNames": e.names, "ExpressionAttributeValues": e.values,
    }}


def is_incident(action: TransactWriteItemTypeDef, incident_id: str) -> bool:
    """Whether a transaction's action is on the incident item (the lease condition)."""
    for kind in ("Update", "ConditionCheck"):
        body = action.get(kind)
        if isinstance(body, Mapping) and body.get("Key") == incident_key(incident_id):
            return True
    return False

