"""The emulator's Pub/Sub API (`eventbus.v1.PubSub`): a TLS gRPC server on 127.0.0.1 with the org's
certificate, delivering the change events of `cdc.py` the way Salesforce does — sessions checked
from the `accesstoken` / `instanceurl` / `tenantid` metadata, pull-based flow control, keepalives
carrying the latest replay id, replay presets, and refused replay ids with Salesforce's error codes.

It never counts a call against the REST daily limit; its calls have their own counter."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from typing import TYPE_CHECKING

import grpc

from connector.emulator.cdc import ChangeEventBus, ReplayIdError
from connector.emulator.server import CallCounter
from connector.pubsub import pubsub_api_pb2 as pb
from connector.pubsub import pubsub_api_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from connector.emulator.emulator import Emulator

MAX_PER_REQUEST = 100
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
REPLAY_ID_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.topic.not.found"
SCHEMA_NOT_FOUND = "sfdc.platform.eventbus.grpc.schema.not.found"
LIMIT_EXCEEDED = "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"
BAD_REQUEST = "sfdc.platform.eventbus.grpc.fetch.request.invalid"


class _Refused(Exception):
    def __init__(self, status: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_code = status, error_code


def _abort(context: grpc.ServicerContext, refused: _Refused) -> None:
    context.set_trailing_metadata((("error-code", refused.error_code),))
    context.abort(refused.status, str(refused))


class PubSubService(pb_grpc.PubSubServicer):
    """What each RPC answers. `keepalive` (seconds between empty responses when idle, 270 in
    Salesforce) and `idle_close` (how long a stream with nothing requested stays open) are settable
    so tests need not wait minutes."""

    def __init__(self, emulator: Emulator, bus: ChangeEventBus) -> None:
        self.emulator, self.bus = emulator, bus
        self.keepalive = 270.0
        self.idle_close = 60.0
        self.calls = CallCounter()
        self.delivered = 0
        self._drops = 0
        self._lock = threading.Lock()

    def drop_streams(self) -> None:
        """End every open Subscribe stream with UNAVAILABLE, as a network fault or a server restart does."""
        with self._lock:
            self._drops += 1
        self.bus.wake()

    # -- authentication ---------------------------------------------------------------------
    def _session(self, context: grpc.ServicerContext, refresh: str = "") -> None:
        md = {k: v for k, v in context.invocation_metadata()}
        token = refresh or md.get("accesstoken", "")
        session = self.emulator.auth.check(f"Bearer {token}") if token else None
        if (session is None or md.get("instanceurl", "").rstrip("/") != self.emulator.instance_url
                or md.get("tenantid") != self.emulator.org.organization_id):
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR,
                           "authentication failed: send a valid accesstoken, this org's instanceurl and tenantid")

    # -- unary RPCs -------------------------------------------------------------------------
    def GetTopic(self, request: pb.TopicRequest, context: grpc.ServicerContext) -> pb.TopicInfo:
        self.calls.add("get_topic")
        try:
            self._session(context)
            objects = self._objects(request.topic_name)
        except _Refused as refused:
            _abort(context, refused)
        schema_id = self.bus.schema_for(objects[0]).schema_id if len(objects) == 1 else ""
        return pb.TopicInfo(topic_name=request.topic_name, tenant_guid=self.emulator.org.organization_id,
                            can_publish=False, can_subscribe=True, schema_id=schema_id, rpc_id=str(uuid.uuid4()))

    def GetSchema(self, request: pb.SchemaRequest, context: grpc.ServicerContext) -> pb.SchemaInfo:
        self.calls.add("get_schema")
        try:
            self._session(context)
        except _Refused as refused:
            _abort(context, refused)
        schema = self.bus.schema_by_id(request.schema_id)
        if schema is None:
            _abort(context, _Refused(grpc.StatusCode.NOT_FOUND, SCHEMA_NOT_FOUND,
                                     f"no schema with id {request.schema_id!r}"))
        return pb.SchemaInfo(schema_json=schema.schema_json, schema_id=schema.schema_id, rpc_id=str(uuid.uuid4()))

    def Publish(self, request: pb.PublishRequest, context: grpc.ServicerContext) -> pb.PublishResponse:
        self.calls.add("publish")
        _abort(context, _Refused(grpc.StatusCode.PERMISSION_DENIED, "sfdc.platform.eventbus.grpc.publish.denied",
                                 "change event topics cannot be published to; this org has no platform events"))

    def PublishStream(self, request_iterator, context):  # noqa: ANN001 - generated signature
        self.calls.add("publish")
        _abort(context, _Refused(grpc.StatusCode.PERMISSION_DENIED, "sfdc.platform.eventbus.grpc.publish.denied",
                                 "change event topics cannot be published to; this org has no platform events"))

    def _objects(self, topic: str):  # noqa: ANN202
        objects = self.bus.objects_of_topic(topic)
        if objects is None:
            raise _Refused(grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND,
                           f"topic {topic!r} does not exist or change data capture is not enabled for it")
        return objects

    # -- Subscribe --------------------------------------------------------------------------
    def Subscribe(self, request_iterator: Iterator[pb.FetchRequest],
                  context: grpc.ServicerContext) -> Iterator[pb.FetchResponse]:
        self.calls.add("subscribe")
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        try:
            self._session(context, first.auth_refresh)
            entities = {o.name for o in self._objects(first.topic_name)}
            position = self._start(first)
        except _Refused as refused:
            _abort(context, refused)
            return
        requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        requests.put(first)
        threading.Thread(target=self._read_requests, args=(request_iterator, requests), daemon=True,
                         name="pubsub-requests").start()
        with self._lock:
            drops = self._drops
        pending, last_sent, last_asked = 0, time.monotonic(), time.monotonic()
        half_closed = False
        while context.is_active():
            try:
                while not half_closed:
                    req = requests.get_nowait()
                    if req is None:     # the client sends no more requests; what it asked for still comes
                        half_closed = True
                        break
                    if req.topic_name and req.topic_name != first.topic_name:
                        raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, BAD_REQUEST,
                                       "the topic of a subscription cannot change within its stream")
                    if req.auth_refresh:
                        self._session(context, req.auth_refresh)
                    pending += max(0, min(req.num_requested, MAX_PER_REQUEST))
                    last_asked = time.monotonic()
            except queue.Empty:
                pass
            except _Refused as refused:
                _abort(context, refused)
                return
            with self._lock:
                dropped = self._drops != drops
            if dropped:
                context.abort(grpc.StatusCode.UNAVAILABLE, "stream reset by the server")
                return
            if pending == 0 and time.monotonic() - last_asked > self.idle_close:
                return
            events = self.bus.after(position, entities, pending, wait=0.05) if pending else []
            if not events:
                time.sleep(0 if pending else 0.05)
                if time.monotonic() - last_sent >= self.keepalive:
                    last_sent = time.monotonic()
                    yield pb.FetchResponse(latest_replay_id=self.bus.replay_id(self.bus.latest),
                                           rpc_id=str(uuid.uuid4()), pending_num_requested=pending)
                continue
            if not self.bus.allow_delivery(len(events)):
                _abort(context, _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, LIMIT_EXCEEDED,
                                         "the org's event delivery allocation is used up"))
                return
            pending -= len(events)
            position = events[-1].seq
            self.delivered += len(events)
            last_sent = time.monotonic()
            yield pb.FetchResponse(
                events=[pb.ConsumerEvent(event=pb.ProducerEvent(id=e.event_id, schema_id=e.schema_id,
                                                                payload=e.payload),
                                         replay_id=self.bus.replay_id(e.seq)) for e in events],
                latest_replay_id=self.bus.replay_id(position), rpc_id=str(uuid.uuid4()),
                pending_num_requested=pending)

    def _start(self, first: pb.FetchRequest) -> int:
        if first.replay_preset == pb.CUSTOM:
            try:
                return self.bus.parse_replay_id(first.replay_id)
            except ReplayIdError as exc:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, REPLAY_ID_CORRUPTED,
                               f"The Replay ID validation failed ({exc}): send a replay id of an event that is "
                               f"within the retention window, or subscribe from EARLIEST or LATEST") from None
        if first.replay_preset == pb.EARLIEST:
            return self.bus.earliest_position()
        return self.bus.latest

    @staticmethod
    def _read_requests(request_iterator: Iterator[pb.FetchRequest], out: queue.Queue) -> None:
        try:
            for req in request_iterator:
                out.put(req)
        except Exception:   # the client went away; the stream loop ends on context.is_active()
            pass
        out.put(None)


def start_pubsub(emulator: Emulator, service: PubSubService, cert_path: str, key_path: str,
                 port: int = 0) -> tuple[grpc.Server, int]:
    """Serve `service` over TLS on 127.0.0.1 (0 picks a free port); returns the server and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="pubsub"))
    pb_grpc.add_PubSubServicer_to_server(service, server)
    with open(key_path, "rb") as key, open(cert_path, "rb") as cert:
        credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
    bound = server.add_secure_port(f"127.0.0.1:{port}", credentials)
    server.start()
    return server, bound


__all__ = ["PubSubService", "REPLAY_ID_CORRUPTED", "start_pubsub"]
