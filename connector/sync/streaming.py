"""Real time from Salesforce: Change Data Capture over the Pub/Sub API (gRPC over verified TLS, Avro)
as a change source, and the loop that applies it and pushes local changes as they commit.

Events say which records changed; the records are read whole by Id (one query per batch of up to
200 ids) and merged through the same apply as a poll, with the replay id committed in the same
transaction. The connector's own writes are recognised by `changeOrigin` and not applied again.
A stored replay id the org refuses (expired, corrupt) is never skipped silently: it is logged and
counted, the stream restarts at the tip and a polled catch-up from the watermark covers the rest."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fastavro
import grpc
from simple_salesforce import format_soql
from sqlalchemy import Column, Integer, String, Table, Text, select, update
from sqlalchemy.engine import Connection

from connector.errors import ConnectorError
from connector.pubsub import pubsub_api_pb2 as pb
from connector.pubsub import pubsub_api_pb2_grpc as pb_grpc
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.model import ObjectSchema
from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime
from connector.sync.sources import PollSource, RemoteBatch

__all__ = ["ChangeEvent", "EventDecoder", "StreamBatch", "StreamingService", "decode_bitmap", "topic_for",
           "stream_positions_table"]

log = logging.getLogger("connector.streaming")
UTC = dt.timezone.utc
IDS_PER_QUERY = 200
FETCH_SIZE = 100                  # the most one FetchRequest may ask for
REPLAY_ID_REFUSED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
ONE_SECOND = dt.timedelta(seconds=1)


def topic_for(object_name: str) -> str:
    return (f"/data/{object_name[:-3]}__ChangeEvent" if object_name.endswith("__c")
            else f"/data/{object_name}ChangeEvent")


def stream_positions_table(metadata, prefix: str = "") -> Table:
    """Where each streamed object resumes: the replay id of the last event applied (or of the last
    keepalive), and how often its stream had to be recovered."""
    return Table(meta_table_name("stream_positions", prefix), metadata,
                 Column("object_name", String(120), primary_key=True),
                 Column("replay_id", Text),                 # base64 of the opaque bytes
                 Column("updated_at", UtcDateTime),
                 Column("recoveries", Integer, nullable=False, default=0),
                 extend_existing=True)


def decode_bitmap(bitmap: list[str], names: list[str], nested: dict[int, list[str]]) -> list[str]:
    """Field names a Pub/Sub bitmap marks: bit i of the first `0x…` entry is top-level field i;
    `<pos>-0x…` entries mark fields of the compound field at `pos`."""
    out: list[str] = []
    for entry in bitmap:
        pos, _, hexbits = entry.rpartition("-") if "-" in entry else ("", "", entry)
        bits = int(hexbits, 16)
        within = nested.get(int(pos), []) if pos else names
        out.extend(within[i] for i in range(bits.bit_length()) if bits >> i & 1 and i < len(within))
    return out


@dataclass(frozen=True)
class ChangeEvent:
    entity: str
    record_ids: list[str]
    change_type: str
    origin: str
    commit_timestamp: int
    changed: list[str]
    replay_id: bytes


class EventDecoder:
    """Avro payloads decoded by the schema the org names (GetSchema once per schema id)."""

    def __init__(self, stub: pb_grpc.PubSubStub, metadata) -> None:  # noqa: ANN001 - a callable
        self.stub, self.metadata = stub, metadata
        self._schemas: dict[str, tuple[Any, list[str], dict[int, list[str]]]] = {}

    def _schema(self, schema_id: str):  # noqa: ANN202
        if schema_id not in self._schemas:
            info = self.stub.GetSchema(pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata())
            raw = json.loads(info.schema_json)
            names = [f["name"] for f in raw["fields"]]
            nested = {}
            for i, f in enumerate(raw["fields"]):
                record = next((t for t in (f["type"] if isinstance(f["type"], list) else [f["type"]])
                               if isinstance(t, dict) and t.get("type") == "record"), None)
                if record is not None and i > 0:
                    nested[i] = [f["name"][:-len("Address")] + n["name"] if f["name"].endswith("Address")
                                 else n["name"] for n in record["fields"]]
            self._schemas[schema_id] = (fastavro.parse_schema(raw), names, nested)
        return self._schemas[schema_id]

    def decode(self, event: pb.ConsumerEvent) -> ChangeEvent:
        schema, names, nested = self._schema(event.event.schema_id)
        body = fastavro.schemaless_reader(io.BytesIO(event.event.payload), schema)
        header = body["ChangeEventHeader"]
        changed = decode_bitmap(header.get("changedFields") or [], names, nested)
        return ChangeEvent(header["entityName"], list(header["recordIds"]), header["changeType"],
                           header.get("changeOrigin") or "", header["commitTimestamp"], changed, event.replay_id)


class StreamBatch:
    """A ChangeSource over a run of one object's change events: the records they name, read whole by
    Id; on GAP_OVERFLOW (or a record-id wildcard) the object's records stamped from that commit's
    second on. The position is the replay id of the last event, echoes included."""

    def __init__(self, client: SalesforceClient, obj: ObjectSchema, events: list[ChangeEvent], *,
                 own_origin: str) -> None:
        self.client, self.obj, self.object_name, self.events = client, obj, obj.name, events
        self.own_origin = own_origin
        self.echoes = sum(1 for e in events if self._mine(e))

    def _mine(self, event: ChangeEvent) -> bool:
        return bool(self.own_origin) and event.origin.endswith(f";client={self.own_origin}")

    @property
    def final_position(self) -> bytes | None:
        return self.events[-1].replay_id if self.events else None

    def batches(self) -> Iterator[RemoteBatch]:
        wanted: dict[str, str] = {}           # id -> last change type
        overflow: int | None = None
        for e in self.events:
            if self._mine(e):
                continue
            if e.change_type == "GAP_OVERFLOW" or any(r.endswith("*") for r in e.record_ids):
                overflow = e.commit_timestamp if overflow is None else min(overflow, e.commit_timestamp)
                continue
            for rid in e.record_ids:
                wanted[rid] = e.change_type
        if overflow is not None:
            since = dt.datetime.fromtimestamp(overflow / 1000, UTC).replace(microsecond=0) - ONE_SECOND
            log.warning("%s: GAP_OVERFLOW: reading the records changed since %s", self.obj.name, since.isoformat())
            source = PollSource(self.client, self.obj, since, include_deleted=self.obj.has_is_deleted,
                                bounded=False)
            for batch in source.batches():
                yield RemoteBatch(batch.records)
        ids = list(wanted)
        fields = [f.name for f in self.obj.fields]
        for start in range(0, max(len(ids), 1), IDS_PER_QUERY):
            chunk = ids[start:start + IDS_PER_QUERY]
            records: list[dict[str, Any]] = []
            if chunk:
                soql = format_soql(f"SELECT {', '.join(fields)} FROM {self.obj.name} WHERE Id IN {{}}", chunk)
                for _, page in self.client.query_pages(soql, include_deleted=self.obj.has_is_deleted):
                    records.extend(page)
                seen = {r["Id"] for r in records}
                # Gone from the recycle bin too (or never visible): a delete event is still a delete.
                records.extend({"Id": rid, "IsDeleted": True} for rid in chunk
                               if rid not in seen and wanted[rid] in ("DELETE", "GAP_DELETE"))
            last = start + IDS_PER_QUERY >= len(ids)
            yield RemoteBatch(records, self.final_position if last else None)


@dataclass
class ObjectStream:
    """What /status shows of one streamed object."""

    name: str
    mode: str = "stream"
    connected: bool = False
    last_event_at: dt.datetime | None = None
    last_applied_at: dt.datetime | None = None
    lag_seconds: float | None = None
    events: int = 0
    echoes: int = 0
    recoveries: int = 0
    reconnects: int = 0
    replay_id: str | None = None
    error: str | None = None


_CATCH_UP = "catch-up"


@dataclass
class _Item:
    object_name: str
    event: ChangeEvent | None = None
    keepalive: bytes | None = None
    signal: str | None = None
    received: float = field(default_factory=time.monotonic)


class StreamingService:
    """Streams the mapped objects the org offers Change Data Capture for, applies their changes as
    they arrive, pushes local changes as they commit, and runs a slow safety poll. Everything that
    writes runs in one worker thread, under the runner's locks."""

    def __init__(self, connector, runner, *, objects: list[str] | None = None) -> None:  # noqa: ANN001
        self.connector, self.runner = connector, runner
        self.sync, self.client, self.settings = connector.sync, connector.client, connector.client.settings
        self.positions = stream_positions_table(self.sync.meta, self.sync.prefix)
        self.wanted = objects
        self.streams: dict[str, ObjectStream] = {}
        self.polled: list[str] = []
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.PubSubStub | None = None
        self._event_decoder: EventDecoder | None = None
        self._run_id: int | None = None
        self._seen_changes: set[tuple[int, Any]] = set()
        self._broken: set[str] = set()       # objects whose items wait for their stream to restart
        self._calls: dict[str, Any] = {}
        self._last_safety = time.monotonic()
        self.applied_batches = 0
        # Objects whose stream resumed from a stored replay id or has had its catch-up poll.
        self.caught_up: set[str] = set()

    # -- set-up -----------------------------------------------------------------------------
    def _connect(self) -> pb_grpc.PubSubStub:
        root = self.settings.ca_cert.read_bytes() if self.settings.ca_cert else None
        self._channel = grpc.secure_channel(self.settings.pubsub_url, grpc.ssl_channel_credentials(root))
        self._stub = pb_grpc.PubSubStub(self._channel)
        return self._stub

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return self.client.pubsub_metadata()

    def start(self) -> StreamingService:
        """Find which objects can stream (GetTopic), start their subscriptions and the worker."""
        schemas = self.sync.prepare()
        with self.sync.engine.begin() as conn:
            self.sync.meta.create_all(conn, tables=[self.positions], checkfirst=True)
        # Whatever the change log holds at start counts as new: the first look pushes it (a process
        # stopped before pushing it, or killed, must not leave it to the safety poll).
        self._seen_changes = set()
        stub = self._connect()
        names = [n for n in self.sync.order(schemas) if self.wanted is None or n in self.wanted]
        for name in names:
            if self.connector.mapping.objects[name].mode == "poll":
                self.polled.append(name)
                continue
            try:
                info = stub.GetTopic(pb.TopicRequest(topic_name=topic_for(name)), metadata=self._metadata())
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                    self._channel.close()
                    raise ConnectorError(f"the Pub/Sub API at {self.settings.pubsub_url} answered GetTopic "
                                         f"{topic_for(name)} with {exc.code().name}: {exc.details()}") from None
                info = None
            if info is None or not info.can_subscribe:
                log.info("%s: Change Data Capture is not available for it; it keeps polling", name)
                self.polled.append(name)
                continue
            self.streams[name] = ObjectStream(name)
        with self.sync.engine.begin() as conn:
            self._run_id = conn.execute(self.sync.state.runs.insert().values(
                started_at=dt.datetime.now(UTC), status="running", trigger="stream")).inserted_primary_key[0]
            for row in conn.execute(select(self.positions)):
                if row.object_name in self.streams:
                    self.streams[row.object_name].recoveries = row.recoveries or 0
                    self.streams[row.object_name].replay_id = row.replay_id
        for name in self.streams:
            self._spawn(self._subscribe_loop, name, f"cosell-stream-{name}")
        self._spawn(self._work, None, "cosell-stream-apply")
        return self

    def _spawn(self, target, arg, name: str) -> None:  # noqa: ANN001
        t = threading.Thread(target=target, args=(() if arg is None else (arg,)), name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._channel is not None:
            self._channel.close()
        for t in self._threads:
            t.join(timeout)
        if self._run_id is not None:
            with self.sync.engine.begin() as conn:
                conn.execute(update(self.sync.state.runs).where(self.sync.state.runs.c.id == self._run_id).values(
                    ended_at=dt.datetime.now(UTC), status="succeeded",
                    counts=json.dumps({n: {"events": s.events, "echoes": s.echoes, "recoveries": s.recoveries}
                                       for n, s in self.streams.items()})))

    def status(self) -> dict[str, dict[str, Any]]:
        out = {n: {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in vars(s).items()}
               for n, s in self.streams.items()}
        out.update({n: {"name": n, "mode": "poll"} for n in self.polled})
        return out

    # -- subscriptions (one thread each) ----------------------------------------------------
    def _stored(self, name: str) -> bytes | None:
        with self.sync.engine.connect() as conn:
            raw = conn.execute(select(self.positions.c.replay_id).where(
                self.positions.c.object_name == name)).scalar()
        return base64.b64decode(raw) if raw else None

    def _subscribe_loop(self, name: str) -> None:
        backoff = 0.5
        stream = self.streams[name]
        while not self._stop.is_set():
            replay = self._stored(name)
            self._broken.discard(name)
            asked: queue.Queue[pb.FetchRequest | None] = queue.Queue()
            if replay:
                asked.put(pb.FetchRequest(topic_name=topic_for(name), replay_preset=pb.CUSTOM, replay_id=replay,
                                          num_requested=FETCH_SIZE))
            else:
                asked.put(pb.FetchRequest(topic_name=topic_for(name), replay_preset=pb.LATEST,
                                          num_requested=FETCH_SIZE))
                # No stored position (first stream, or one refused): the changes since the watermark
                # are read by a poll once the subscription stands, so none falls between the two.
                threading.Timer(1.0, lambda: self._queue.put(_Item(name, signal=_CATCH_UP))).start()
            call = None
            try:
                call = self._stub.Subscribe(_requests(asked, self._stop), metadata=self._metadata())
                self._calls[name] = call
                if replay:
                    self.caught_up.add(name)    # resumed where it stopped: nothing to catch up
                stream.connected, stream.error = True, None
                pending = FETCH_SIZE
                for response in call:
                    backoff = 0.5
                    for event in response.events:
                        self._queue.put(_Item(name, event=self._decoder().decode(event)))
                    pending = response.pending_num_requested
                    if not response.events and response.latest_replay_id:
                        self._queue.put(_Item(name, keepalive=response.latest_replay_id))
                    if pending < FETCH_SIZE // 2:
                        asked.put(pb.FetchRequest(num_requested=FETCH_SIZE - pending))
                        pending = FETCH_SIZE
                    if self._stop.is_set() or name in self._broken:
                        break
            except grpc.RpcError as exc:
                stream.connected = False
                if self._stop.is_set():
                    break
                code = dict(exc.trailing_metadata() or ()).get("error-code", "")
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "replayid" in code:
                    # Never skipped silently: logged, counted, and covered by a polled catch-up.
                    stream.recoveries += 1
                    log.warning("%s: the org refused the stored replay id (%s: %s); streaming again from the "
                                "latest event and reading what was missed by a poll since the watermark",
                                name, code, exc.details())
                    self._forget_position(name)
                    continue
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    log.info("%s: the Pub/Sub session was refused; logging in again", name)
                    try:
                        self.client.login()
                    except Exception as login_error:   # reported; the loop backs off and tries again
                        stream.error = str(login_error)
                stream.error = stream.error or f"{exc.code().name}: {exc.details()}"
                stream.reconnects += 1
                log.warning("%s: the change stream broke (%s); reconnecting in %.1fs", name, stream.error, backoff)
            finally:
                asked.put(None)
                if call is not None:
                    call.cancel()
            if self._stop.wait(backoff + random.uniform(0, backoff / 2)):
                break
            backoff = min(backoff * 2, 30.0)

    def _decoder(self) -> EventDecoder:
        if self._event_decoder is None:
            self._event_decoder = EventDecoder(self._stub, self._metadata)
        return self._event_decoder

    def _forget_position(self, name: str) -> None:
        with self.sync.engine.begin() as conn:
            self._write_position(conn, name, None, recovered=True)

    def _write_position(self, conn: Connection, name: str, replay_id: bytes | None, *, recovered: bool = False) -> None:
        p = self.positions
        encoded = base64.b64encode(replay_id).decode() if replay_id else None
        row = conn.execute(select(p.c.recoveries).where(p.c.object_name == name)).first()
        values: dict[str, Any] = {"replay_id": encoded, "updated_at": dt.datetime.now(UTC)}
        if row is None:
            conn.execute(p.insert().values(object_name=name, recoveries=int(recovered), **values))
        else:
            conn.execute(update(p).where(p.c.object_name == name).values(
                recoveries=(row.recoveries or 0) + int(recovered), **values))
        self.streams[name].replay_id = encoded

    # -- the worker: everything that writes -------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                items = [self._queue.get(timeout=self.settings.stream_push_interval)]
                deadline = time.monotonic() + self.settings.stream_batch_wait
                while time.monotonic() < deadline:
                    try:
                        items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                    except queue.Empty:
                        break
            except queue.Empty:
                items = []
            try:
                self._handle(items)
                self._push_if_changed()
                if time.monotonic() - self._last_safety >= self.settings.stream_safety_poll:
                    self._last_safety = time.monotonic()
                    self._run(list(self.streams) + self.polled, "stream-safety-poll")
            except Exception:   # logged; the stream goes on and the next safety poll covers the gap
                log.exception("streaming: applying changes failed")

    def _handle(self, items: list[_Item]) -> None:
        catch_up = list(dict.fromkeys(i.object_name for i in items if i.signal == _CATCH_UP))
        if catch_up:
            log.info("streaming: reading what may have been missed since the watermark: %s", ", ".join(catch_up))
            try:
                self._run(catch_up, "stream-catch-up")
            except Exception as exc:    # e.g. another process holds the object: try again shortly
                log.warning("streaming: the catch-up of %s failed (%s); trying again in 5 s", ", ".join(catch_up), exc)
                for name in catch_up:
                    threading.Timer(5.0, lambda n=name: self._queue.put(_Item(n, signal=_CATCH_UP))).start()
            else:
                self.caught_up.update(catch_up)
        by_object: dict[str, list[_Item]] = {}
        for item in items:
            if (item.event is not None or item.keepalive is not None) and item.object_name not in self._broken:
                by_object.setdefault(item.object_name, []).append(item)
        schemas = self.sync.prepare()
        for name, group in by_object.items():
            try:
                self._apply_group(name, group, schemas)
            except Exception:
                # Nothing after the last committed replay id may be stored now: the object's items are
                # dropped until its stream restarts from that id, which delivers them again.
                log.exception("streaming: applying %s's changes failed; resubscribing from its last "
                              "committed replay id", name)
                self._broken.add(name)
                call = self._calls.get(name)
                if call is not None:
                    call.cancel()

    def _apply_group(self, name: str, group: list[_Item], schemas: dict[str, ObjectSchema]) -> None:
        events = [i.event for i in group if i.event is not None]
        keepalive = next((i.keepalive for i in reversed(group) if i.keepalive is not None), None)
        stream = self.streams[name]
        if not events:
            if keepalive:
                with self.sync.engine.begin() as conn:
                    self._write_position(conn, name, keepalive)
            return
        source = StreamBatch(self.client, schemas[name], events, own_origin=self.settings.client_name)
        with self.runner.holding([name]):
            for batch in source.batches():
                self.sync.apply_change_batch(
                    name, batch, self._run_id,
                    lambda conn, position, n=name: position is not None and self._write_position(conn, n,
                                                                                                 position))
                self.applied_batches += 1
        now = dt.datetime.now(UTC)
        stream.events += len(events)
        stream.echoes += source.echoes
        stream.last_event_at = dt.datetime.fromtimestamp(events[-1].commit_timestamp / 1000, UTC)
        stream.last_applied_at = now
        stream.lag_seconds = round((now - stream.last_event_at).total_seconds(), 3)

    def _pending_changes(self) -> dict[tuple[int, Any], str]:
        changes = self.sync.state.changes
        with self.sync.engine.connect() as conn:
            return {(r.id, r.changed_at): r.object_name for r in conn.execute(
                select(changes.c.id, changes.c.changed_at, changes.c.object_name))}

    def _push_if_changed(self) -> None:
        """Local changes go out once they commit: a look at the change log (SQL, no API call). An entry
        is new when this look did not see it last time; ids alone would not do (SQLite gives a consumed
        entry's id again, PostgreSQL commits ids out of order), so an entry is its id and its time."""
        pending = self._pending_changes()
        new = {key: name for key, name in pending.items() if key not in self._seen_changes}
        wanted = [n for n in dict.fromkeys(new.values()) if n in self.streams or n in self.polled]
        if wanted:
            self._run(wanted, "stream-push")   # if it raises, the entries stay new for the next look
        self._seen_changes = set(pending)

    def _run(self, objects: list[str], trigger: str) -> None:
        report = self.runner.run(objects, trigger=trigger, wait=None)
        if report.status not in ("succeeded", "retrying", "parked"):
            log.warning("streaming: the %s run ended %s: %s", trigger, report.status, report.error)


def _requests(asked: queue.Queue, stop: threading.Event) -> Iterator[pb.FetchRequest]:
    while not stop.is_set():
        try:
            item = asked.get(timeout=0.5)
        except queue.Empty:
            continue
        if item is None:
            return
        yield item
