"""Change Data Capture of the org emulator: every committed save of a CDC-enabled object becomes a
change event, Avro-encoded in Salesforce's schema shape and kept for the retention period on the
org's clock, for the Pub/Sub API (`pubsub.py`) to deliver.

It only listens to the store (`Store.change_listeners`); it never changes a record."""

from __future__ import annotations

import base64
import contextvars
import datetime as dt
import hashlib
import io
import json
import secrets
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import fastavro

from connector.emulator.orgdef import ObjectDef
from connector.emulator.store import Clock, RecordChange, Store
from connector.emulator.values import parse_wire_datetime

RETENTION = dt.timedelta(hours=72)
OVERFLOW_THRESHOLD = 100_000      # changes in one transaction above which one GAP_OVERFLOW per entity is sent
DELIVERY_ALLOCATION = 50_000      # events delivered per rolling 24 hours (Performance/Unlimited editions)
ALL_CHANGE_EVENTS = "/data/ChangeEvents"
CHANGE_TYPES = ("CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE",
                "GAP_UNDELETE", "GAP_OVERFLOW")
# Objects Salesforce does not offer for Change Data Capture (they are polled).
NOT_CDC_ENABLED = frozenset({"CurrencyType", "DatedConversionRate", "RecordType", "Group", "Territory2Model",
                             "Territory2Type", "ObjectTerritory2AssignmentRule", "ObjectTerritory2AssignmentRuleItem",
                             "RuleTerritory2Association", "ObjectTerritory2Association", "OpportunitySplitType",
                             "Territory2", "UserTerritory2Association"})
# Not in change events: Salesforce keeps them out of the payload.
_LEFT_OUT = frozenset({"IsDeleted", "SystemModstamp"})
_AVRO_TYPES = {"boolean": "boolean", "int": "int", "long": "long", "double": "double", "currency": "double",
               "percent": "double", "date": "int", "datetime": "long", "time": "long"}

# The `changeOrigin` of the saves made while serving one API call (set by the HTTP transport).
call_origin: contextvars.ContextVar[str] = contextvars.ContextVar("call_origin", default="")


def origin_of(call_options: str | None, version: str) -> str:
    """`changeOrigin` for a call that sent `Sforce-Call-Options: client=<id>` (empty without it)."""
    for part in (call_options or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "client" and value.strip():
            return f"com/salesforce/api/rest/{version};client={value.strip()}"
    return ""


class ReplayIdError(ValueError):
    """A replay id this org cannot resume from: malformed, from another org, or past retention."""


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    entity: str
    committed: dt.datetime
    event_id: str
    schema_id: str
    payload: bytes


def topic_name(obj: ObjectDef) -> str:
    return f"/data/{obj.name[:-3]}__ChangeEvent" if obj.name.endswith("__c") else f"/data/{obj.name}ChangeEvent"


class ObjectEventSchema:
    """The Avro schema of one object's change events and where each field sits in it (for bitmaps)."""

    def __init__(self, obj: ObjectDef) -> None:
        self.entity = obj.name
        fields: list[dict[str, Any]] = [{"name": "ChangeEventHeader", "type": _header_schema()}]
        self.positions: dict[str, tuple[int, int | None]] = {}   # store field -> (position, nested position)
        self.kinds: dict[str, str] = {}
        compounds: dict[str, list[Any]] = {}
        for f in obj.fields:
            if f.calculated or f.name in _LEFT_OUT or f.type in ("address", "location", "base64") or f.name == "Id":
                continue
            avro = _AVRO_TYPES.get(f.type, "string")
            self.kinds[f.name] = f.type
            if f.compound_field_name:
                compounds.setdefault(f.compound_field_name, []).append((f, avro))
                if len(compounds[f.compound_field_name]) > 1:
                    continue
                fields.append({"name": f.compound_field_name, "type": ["null", "string"], "default": None})
                continue
            self.positions[f.name] = (len(fields), None)
            fields.append({"name": f.name, "type": ["null", avro], "default": None})
        for i, spec in enumerate(fields):
            parts = compounds.get(spec["name"])
            if not parts:
                continue
            prefix = spec["name"][:-len("Address")] if spec["name"].endswith("Address") else ""
            nested = [{"name": (f.name[len(prefix):] if prefix and f.name.startswith(prefix) else f.name),
                       "type": ["null", avro], "default": None} for f, avro in parts]
            for j, (f, _) in enumerate(parts):
                self.positions[f.name] = (i, j)
            spec["type"] = ["null", {"type": "record", "name": f"{spec['name']}Compound", "fields": nested}]
        self.compound_of = {f.name: f.compound_field_name for parts in compounds.values() for f, _ in parts}
        self.compound_parts = {name: [f.name for f, _ in parts] for name, parts in compounds.items()}
        self.schema: dict[str, Any] = {"type": "record", "name": _event_name(obj), "namespace": "com.sforce.eventbus",
                                       "fields": fields}
        self.schema_json = json.dumps(self.schema, separators=(",", ":"))
        digest = hashlib.sha256(self.schema_json.encode()).digest()[:16]
        self.schema_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        self.parsed = fastavro.parse_schema(self.schema)

    def encode(self, header: dict[str, Any], values: dict[str, Any]) -> bytes:
        """The Avro binary of one event: header plus the changed fields' values (others null)."""
        body: dict[str, Any] = {"ChangeEventHeader": header}
        for name, value in values.items():
            where = self.positions.get(name)
            if where is None or value is None:
                continue
            encoded = _avro_value(self.kinds[name], value)
            if where[1] is None:
                body[self.schema["fields"][where[0]]["name"]] = encoded
            else:
                compound = self.compound_of[name]
                nested = body.setdefault(compound, {})
                nested[self.schema["fields"][where[0]]["type"][1]["fields"][where[1]]["name"]] = encoded
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.parsed, body)
        return out.getvalue()

    def bitmap(self, names: Iterable[str]) -> list[str]:
        """Salesforce's field bitmap: bit i of the first hex string is top-level field i; compound parts
        are `<parentPos>-0x…` entries of their own."""
        top, nested = 0, {}
        for name in names:
            where = self.positions.get(name)
            if where is None:
                continue
            top |= 1 << where[0]
            if where[1] is not None:
                nested[where[0]] = nested.get(where[0], 0) | 1 << where[1]
        if not top:
            return []
        return [hex(top)] + [f"{pos}-{hex(bits)}" for pos, bits in sorted(nested.items())]


def _event_name(obj: ObjectDef) -> str:
    return f"{obj.name[:-3]}__ChangeEvent" if obj.name.endswith("__c") else f"{obj.name}ChangeEvent"


def _header_schema() -> dict[str, Any]:
    strings = {"type": "array", "items": "string"}
    return {"type": "record", "name": "ChangeEventHeader", "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": strings},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "symbols": list(CHANGE_TYPES)}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": strings},
        {"name": "diffFields", "type": strings},
        {"name": "changedFields", "type": strings}]}


def _avro_value(kind: str, value: Any) -> Any:
    if kind == "datetime":
        return int(parse_wire_datetime(value).timestamp() * 1000)
    if kind == "date":
        return (dt.date.fromisoformat(str(value)[:10]) - dt.date(1970, 1, 1)).days
    if kind == "time":
        t = dt.time.fromisoformat(str(value).rstrip("Z")[:12])
        return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000
    if kind in ("double", "currency", "percent"):
        return float(value)
    if kind in ("int", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


class ChangeEventBus:
    """The org's change-event log: appended on each committed unit of saves, read by subscribers."""

    def __init__(self, store: Store, clock: Clock, *, retention: dt.timedelta = RETENTION,
                 overflow_threshold: int = OVERFLOW_THRESHOLD, delivery_allocation: int = DELIVERY_ALLOCATION) -> None:
        self.store, self.clock, self.org = store, clock, store.org
        self.retention, self.overflow_threshold = retention, overflow_threshold
        self.delivery_allocation = delivery_allocation
        self.enabled = {o.name for o in self.org.objects if o.name not in NOT_CDC_ENABLED}
        self._events: list[StoredEvent] = []
        self._schemas: dict[str, ObjectEventSchema] = {}        # by schema id, every version ever used
        self._cond = threading.Condition()
        self._seq = 0
        self._purged_through = 0
        self._commits = 0
        self._tag = secrets.randbits(16)
        self._deliveries: list[tuple[dt.datetime, int]] = []
        self._suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar("cdc_suppressed", default=False)
        store.change_listeners.append(self._on_commit)

    # -- topics and schemas -----------------------------------------------------------------
    def objects_of_topic(self, topic: str) -> list[ObjectDef] | None:
        """The objects a topic covers (None: no such topic)."""
        if topic == ALL_CHANGE_EVENTS:
            return [o for o in self.org.objects if o.name in self.enabled]
        for obj in self.org.objects:
            if obj.name in self.enabled and topic_name(obj) == topic:
                return [obj]
        return None

    def schema_for(self, obj: ObjectDef) -> ObjectEventSchema:
        candidate = ObjectEventSchema(obj)
        return self._schemas.setdefault(candidate.schema_id, candidate)

    def schema_by_id(self, schema_id: str) -> ObjectEventSchema | None:
        return self._schemas.get(schema_id)

    # -- replay ids -------------------------------------------------------------------------
    def replay_id(self, seq: int) -> bytes:
        return struct.pack(">QH", seq, self._tag)

    def parse_replay_id(self, raw: bytes) -> int:
        """The position after which a CUSTOM subscription resumes; refused when malformed or expired."""
        if len(raw) != 10:
            raise ReplayIdError("malformed replay id")
        seq, tag = struct.unpack(">QH", raw)
        with self._cond:
            if tag != self._tag or seq > self._seq:
                raise ReplayIdError("replay id unknown to this org")
            self._purge()
            if self._purged_through and seq <= self._purged_through:
                raise ReplayIdError("replay id is outside the retention window")
        return seq

    @property
    def latest(self) -> int:
        with self._cond:
            return self._seq

    def earliest_position(self) -> int:
        """The position before the oldest retained event (EARLIEST starts after it)."""
        with self._cond:
            self._purge()
            return self._events[0].seq - 1 if self._events else self._seq

    # -- reading ----------------------------------------------------------------------------
    def after(self, seq: int, entities: set[str], limit: int, *, wait: float = 0.0) -> list[StoredEvent]:
        """Up to `limit` retained events after `seq` of `entities`, waiting up to `wait` seconds for one."""
        deadline = None
        with self._cond:
            while True:
                self._purge()
                hits = [e for e in self._events if e.seq > seq and e.entity in entities][:limit]
                if hits or wait <= 0:
                    return hits
                now = time.monotonic()
                deadline = deadline or now + wait
                if now >= deadline:
                    return []
                self._cond.wait(deadline - now)

    def allow_delivery(self, n: int) -> bool:
        """Count `n` deliveries against the rolling 24-hour allocation; False when it is used up."""
        now = self.clock.now()
        with self._cond:
            self._deliveries = [(t, k) for t, k in self._deliveries if now - t < dt.timedelta(hours=24)]
            if sum(k for _, k in self._deliveries) + n > self.delivery_allocation:
                return False
            self._deliveries.append((now, n))
            return True

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- writing ----------------------------------------------------------------------------
    def gap(self, object_name: str, record_ids: list[str], change_type: str = "GAP_UPDATE") -> None:
        """A header-only event, as Salesforce sends when it could not make the real one."""
        if not change_type.startswith("GAP_") or change_type == "GAP_OVERFLOW":
            raise ValueError("a gap is one of GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE")
        self._append([(object_name, change_type, list(record_ids), {})], origin="")

    def overflow(self, object_name: str) -> None:
        """GAP_OVERFLOW for one entity: the subscriber reconciles the whole object."""
        self._append([(object_name, "GAP_OVERFLOW", [], {})], origin="")

    @contextmanager
    def suppressed(self) -> Iterator[None]:
        """Saves made inside make no change event, as when Salesforce could not produce one (what a
        gap event then tells subscribers)."""
        self._suppressed.set(True)
        try:
            yield
        finally:
            self._suppressed.set(False)

    def _on_commit(self, changes: list[RecordChange]) -> None:
        if self._suppressed.get():
            return
        origin = call_origin.get()
        mine = [c for c in changes if c.object_name in self.enabled]
        if not mine:
            return
        if len(changes) > self.overflow_threshold:
            entities = list(dict.fromkeys(c.object_name for c in mine))
            self._append([(name, "GAP_OVERFLOW", [], {}) for name in entities], origin=origin)
            return
        # One event per same change of several records of one object (same type, same new values).
        grouped: dict[tuple[str, str, str], tuple[str, str, list[str], dict[str, Any]]] = {}
        for c in mine:
            key = (c.object_name, c.change_type,
                   c.record_id if c.change_type in ("CREATE", "UNDELETE") else
                   repr(sorted((k, repr(v)) for k, v in c.values.items()
                               if k not in ("LastModifiedDate", "SystemModstamp"))))
            if key in grouped:
                grouped[key][2].append(c.record_id)
            else:
                grouped[key] = (c.object_name, c.change_type, [c.record_id], c.values)
        self._append(list(grouped.values()), origin=origin)

    def _append(self, items: list[tuple[str, str, list[str], dict[str, Any]]], *, origin: str) -> None:
        now = self.clock.precise()
        with self._cond:
            self._commits += 1
            tx_key = str(uuid.uuid4())
            for n, (name, change_type, record_ids, values) in enumerate(items, start=1):
                obj = self.org.get_object(name)
                if obj is None:
                    continue
                schema = self.schema_for(obj)
                fields = [k for k in values if k in schema.positions]
                changed = [] if change_type in ("CREATE", "UNDELETE") or change_type.startswith("GAP_") else fields
                nulled = [k for k in changed if values.get(k) is None]
                header = {"entityName": name, "recordIds": record_ids, "changeType": change_type,
                          "changeOrigin": origin, "transactionKey": tx_key, "sequenceNumber": n,
                          "commitTimestamp": int(now.timestamp() * 1000), "commitNumber": self._commits,
                          "commitUser": self.store.current_user_id or "",
                          "changedFields": schema.bitmap(changed), "nulledFields": schema.bitmap(nulled),
                          "diffFields": []}
                payload = schema.encode(header, {} if change_type.startswith("GAP_") else values)
                self._seq += 1
                self._events.append(StoredEvent(self._seq, name, now, str(uuid.uuid4()), schema.schema_id, payload))
            self._cond.notify_all()

    def _purge(self) -> None:
        horizon = self.clock.now() - self.retention
        drop = 0
        while drop < len(self._events) and self._events[drop].committed < horizon:
            drop += 1
        if drop:
            self._purged_through = self._events[drop - 1].seq
            del self._events[:drop]


__all__ = ["ALL_CHANGE_EVENTS", "ChangeEventBus", "ObjectEventSchema", "ReplayIdError", "StoredEvent",
           "call_origin", "origin_of", "topic_name"]
