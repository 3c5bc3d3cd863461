"""The emulator's Pub/Sub API, driven by a subscriber written only from the public protocol (the
generated stub, grpc and fastavro; none of the connector's code): authentication, topics and
schemas, flow control, keepalives, replay presets and refused replay ids, change events made by
simple-salesforce writes."""

from __future__ import annotations

import io
import json
import queue
import threading
import time

import fastavro
import grpc
import pytest

from connector.pubsub import pubsub_api_pb2 as pb
from connector.pubsub import pubsub_api_pb2_grpc as pb_grpc
from tests.conftest import connect

TOPIC = "/data/OpportunityChangeEvent"


class Subscriber:
    """A minimal client as Salesforce's samples write one: a channel trusting the org's certificate,
    the three metadata entries, and a request queue feeding the Subscribe stream."""

    def __init__(self, org, *, metadata=None):
        with open(org.ca_cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.channel = grpc.secure_channel(org.pubsub_url, creds)
        self.stub = pb_grpc.PubSubStub(self.channel)
        self.metadata = metadata if metadata is not None else (
            ("accesstoken", org.new_access_token()), ("instanceurl", org.instance_url),
            ("tenantid", org.org.organization_id))
        self.requests: queue.Queue = queue.Queue()
        self.responses: queue.Queue = queue.Queue()
        self.schemas: dict[str, object] = {}
        self.error: grpc.RpcError | None = None

    def schema(self, schema_id):
        if schema_id not in self.schemas:
            info = self.stub.GetSchema(pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata)
            self.schemas[schema_id] = fastavro.parse_schema(json.loads(info.schema_json))
        return self.schemas[schema_id]

    def decode(self, consumer_event):
        schema = self.schema(consumer_event.event.schema_id)
        return fastavro.schemaless_reader(io.BytesIO(consumer_event.event.payload), schema)

    def subscribe(self, first: pb.FetchRequest):
        self.requests.put(first)

        def requests():
            while True:
                item = self.requests.get()
                if item is None:
                    return
                yield item

        def pump():
            try:
                for response in self.stub.Subscribe(requests(), metadata=self.metadata):
                    self.responses.put(response)
            except grpc.RpcError as exc:
                self.error = exc
                self.responses.put(exc)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout=5.0):
        item = self.responses.get(timeout=timeout)
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def events(self, n, timeout=5.0):
        """Responses until `n` events came (keepalives skipped)."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            got.extend(self.next(timeout=max(0.01, deadline - time.monotonic())).events)
        return got

    def close(self):
        self.requests.put(None)
        self.channel.close()


@pytest.fixture
def subscriber(emulator):
    subs = []

    def make(**kw):
        s = Subscriber(emulator, **kw)
        subs.append(s)
        return s

    yield make
    for s in subs:
        s.close()


def _trailer(exc: grpc.RpcError, key: str = "error-code") -> str | None:
    return dict(exc.trailing_metadata() or ()).get(key)


def test_refuses_calls_without_or_with_wrong_metadata(emulator, subscriber):
    for metadata in [(), (("accesstoken", "00Dbogus!token"), ("instanceurl", emulator.instance_url),
                          ("tenantid", emulator.org.organization_id)),
                     (("accesstoken", emulator.new_access_token()), ("instanceurl", emulator.instance_url),
                      ("tenantid", "00D000000000000AAA"))]:
        s = subscriber(metadata=metadata)
        with pytest.raises(grpc.RpcError) as raised:
            s.stub.GetTopic(pb.TopicRequest(topic_name=TOPIC), metadata=metadata)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _trailer(raised.value) == "sfdc.platform.eventbus.grpc.service.auth.error"
        s.subscribe(pb.FetchRequest(topic_name=TOPIC, num_requested=1))
        with pytest.raises(grpc.RpcError) as raised:
            s.next()
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_topic_schema_and_an_update_made_through_the_rest_api(emulator, subscriber, sf):
    emulator.add_field("Opportunity", "Weighted_Amount__c", "currency", precision=18, scale=2, calculated=True,
                       formula="Amount * Probability / 100")
    s = subscriber()
    topic = s.stub.GetTopic(pb.TopicRequest(topic_name=TOPIC), metadata=s.metadata)
    assert topic.can_subscribe and topic.tenant_guid == emulator.org.organization_id and topic.schema_id
    schema = json.loads(s.stub.GetSchema(pb.SchemaRequest(schema_id=topic.schema_id),
                                         metadata=s.metadata).schema_json)
    names = [f["name"] for f in schema["fields"]]
    assert schema["name"] == "OpportunityChangeEvent" and names[0] == "ChangeEventHeader"
    assert "SystemModstamp" not in names and "IsDeleted" not in names
    assert "Weighted_Amount__c" not in names, "formula fields are not in change events"
    assert all(f["type"][0] == "null" and f.get("default", "x") is None for f in schema["fields"][1:])

    with pytest.raises(grpc.RpcError) as raised:
        s.stub.GetTopic(pb.TopicRequest(topic_name="/data/CurrencyTypeChangeEvent"), metadata=s.metadata)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    s.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.LATEST, num_requested=10))
    opp = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    time.sleep(0.2)   # the subscription is open before the edit
    sf.Opportunity.update(opp, {"Description": "moved to phase 2", "NextStep": None})
    (event,) = s.events(1)
    body = s.decode(event)
    header = body["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE" and header["recordIds"] == [opp]
    assert header["entityName"] == "Opportunity" and header["commitUser"]
    assert body["Description"] == "moved to phase 2"
    assert body["Name"] is None, "an unchanged field is null in the event"
    changed = {names[i] for i in _bits(header["changedFields"][0])}
    assert "Description" in changed and "LastModifiedDate" in changed and "Name" not in changed
    # Setting a field to null is said by nulledFields (when it held a value), never by a null alone.
    assert header["changeOrigin"] == ""
    assert event.replay_id and len(event.replay_id) > 0


def _bits(hexmap: str) -> list[int]:
    value = int(hexmap, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def test_change_origin_says_the_client_that_wrote(emulator, subscriber):
    from simple_salesforce import Salesforce

    from connector.salesforce.http import SalesforceSession

    session = SalesforceSession(ca_cert=emulator.ca_cert)
    session.headers["Sforce-Call-Options"] = "client=probe-client"
    sf = Salesforce(session_id=emulator.new_access_token(), instance_url=emulator.instance_url, session=session,
                    version=emulator.org.api_version)
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name="/data/Account" + "ChangeEvent", num_requested=5))
    time.sleep(0.2)
    sf.Account.create({"Name": "Origin Test Ltd"})
    header = s.decode(s.events(1)[0])["ChangeEventHeader"]
    assert header["changeType"] == "CREATE" and header["changedFields"] == []
    assert header["changeOrigin"].endswith(";client=probe-client")
    assert header["changeOrigin"].startswith("com/salesforce/api/rest/")


def test_flow_control_never_sends_more_than_requested(emulator, subscriber):
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity LIMIT 7")]
    for i, rid in enumerate(ids):
        emulator.update("Opportunity", rid, {"Description": f"edit {i}"})
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.EARLIEST, num_requested=3))
    first = s.events(3)
    assert len(first) == 3
    with pytest.raises(queue.Empty):   # nothing more until asked
        while True:
            response = s.next(timeout=0.6)
            assert not response.events, "an event beyond what was requested"
    s.requests.put(pb.FetchRequest(num_requested=10))
    rest = s.events(4)
    assert [s.decode(e)["Description"] for e in first + rest] == [f"edit {i}" for i in range(7)]


def test_keepalive_carries_the_latest_replay_id(emulator, subscriber):
    emulator.pubsub.keepalive = 0.3
    rid = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    emulator.update("Opportunity", rid, {"Description": "before subscribing"})
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.EARLIEST, num_requested=5))
    (event,) = s.events(1)
    idle = s.next(timeout=3)
    assert not idle.events and idle.latest_replay_id == event.replay_id
    assert idle.pending_num_requested == 4


def test_a_keepalive_replay_id_from_before_any_event_resumes(emulator, subscriber):
    emulator.pubsub.keepalive = 0.2
    first = subscriber()
    first.subscribe(pb.FetchRequest(topic_name=TOPIC, num_requested=5))
    idle = first.next(timeout=3)
    assert not idle.events and idle.latest_replay_id
    rid = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    emulator.update("Opportunity", rid, {"Description": "first event of the org"})
    resumed = subscriber()
    resumed.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.CUSTOM, replay_id=idle.latest_replay_id,
                                      num_requested=5))
    assert [resumed.decode(e)["Description"] for e in resumed.events(1)] == ["first event of the org"]


def test_replay_presets_and_custom_resume_after_the_given_id(emulator, subscriber):
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity LIMIT 3")]
    for i, rid in enumerate(ids):
        emulator.update("Opportunity", rid, {"Description": f"v{i}"})
    earliest = subscriber()
    earliest.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.EARLIEST, num_requested=10))
    events = earliest.events(3)
    assert [earliest.decode(e)["Description"] for e in events] == ["v0", "v1", "v2"]

    custom = subscriber()
    custom.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.CUSTOM, replay_id=events[0].replay_id,
                                     num_requested=10))
    assert [custom.decode(e)["Description"] for e in custom.events(2)] == ["v1", "v2"]

    latest = subscriber()
    emulator.pubsub.keepalive = 0.2
    latest.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.LATEST, num_requested=10))
    assert not latest.next(timeout=3).events, "LATEST starts at the tip"
    emulator.update("Opportunity", ids[0], {"Description": "v3"})
    assert [latest.decode(e)["Description"] for e in latest.events(1)] == ["v3"]


@pytest.mark.parametrize("replay_id", [b"", b"\x00\x01", b"not a replay id at all", b"\x00" * 8 + b"\xff\xff"])
def test_malformed_replay_id_is_refused(emulator, subscriber, replay_id):
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.CUSTOM, replay_id=replay_id, num_requested=1))
    with pytest.raises(grpc.RpcError) as raised:
        s.next()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailer(raised.value) == "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


def test_replay_id_past_the_72_hour_retention_is_refused(emulator, subscriber):
    rid = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    emulator.update("Opportunity", rid, {"Description": "old"})
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.EARLIEST, num_requested=1))
    (old,) = s.events(1)
    emulator.advance_clock(hours=71)
    emulator.update("Opportunity", rid, {"Description": "recent"})
    ok = subscriber()   # still retained at 71 hours
    ok.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.CUSTOM, replay_id=old.replay_id,
                                 num_requested=5))
    assert [ok.decode(e)["Description"] for e in ok.events(1)] == ["recent"]
    emulator.advance_clock(hours=2)
    late = subscriber()
    late.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.CUSTOM, replay_id=old.replay_id,
                                   num_requested=5))
    with pytest.raises(grpc.RpcError) as raised:
        late.next()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "retention" in raised.value.details()
    earliest = subscriber()
    earliest.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.EARLIEST, num_requested=5))
    assert [earliest.decode(e)["Description"] for e in earliest.events(1)] == ["recent"]


def test_one_event_for_the_same_change_to_several_records(emulator, subscriber, sf):
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity LIMIT 3")]
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, num_requested=10))
    time.sleep(0.2)
    sf.restful("composite/sobjects", method="PATCH", data=json.dumps({"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": rid, "NextStep": "Call the partner"} for rid in ids]}))
    (event,) = s.events(1)
    header = s.decode(event)["ChangeEventHeader"]
    assert sorted(header["recordIds"]) == sorted(ids)


def test_gap_and_overflow_events_on_demand_and_above_the_threshold(emulator, subscriber, sf):
    rid = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, num_requested=20))
    time.sleep(0.2)
    emulator.emit_gap("Opportunity", [rid])
    emulator.emit_overflow("Opportunity")
    gap, overflow = (s.decode(e) for e in s.events(2))
    assert gap["ChangeEventHeader"]["changeType"] == "GAP_UPDATE"
    assert gap["ChangeEventHeader"]["recordIds"] == [rid] and gap["Description"] is None
    assert overflow["ChangeEventHeader"]["changeType"] == "GAP_OVERFLOW"
    emulator.cdc.overflow_threshold = 2
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity LIMIT 3")]
    sf.restful("composite/sobjects", method="PATCH", data=json.dumps({"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": i, "Description": f"bulk {i}"} for i in ids]}))
    (big,) = s.events(1)
    assert s.decode(big)["ChangeEventHeader"]["changeType"] == "GAP_OVERFLOW"


def test_events_cost_no_rest_calls_and_have_their_own_allocation(emulator, subscriber):
    used = emulator.api_used
    emulator.cdc.delivery_allocation = 2
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity LIMIT 3")]
    for i, rid in enumerate(ids):
        emulator.update("Opportunity", rid, {"Description": f"a{i}"})
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, replay_preset=pb.EARLIEST, num_requested=2))
    assert len(s.events(2)) == 2
    assert emulator.api_used == used and emulator.calls.total() == 0
    s.requests.put(pb.FetchRequest(num_requested=1))
    with pytest.raises(grpc.RpcError) as raised:
        s.events(1)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _trailer(raised.value) == "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"


def test_a_rolled_back_unit_sends_nothing(emulator, subscriber, sf):
    emulator.pubsub.keepalive = 0.2
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, num_requested=10))
    time.sleep(0.2)
    rid = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    result = sf.restful("composite/sobjects", method="PATCH", data=json.dumps({"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": rid, "Description": "never"},
        {"attributes": {"type": "Opportunity"}, "Id": "006000000000000AAA", "Description": "bad id"}]}))
    assert not any(r["success"] for r in result)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert not s.next(timeout=2).events


def test_dropped_streams_end_with_unavailable(emulator, subscriber):
    s = subscriber()
    s.subscribe(pb.FetchRequest(topic_name=TOPIC, num_requested=1))
    time.sleep(0.2)
    emulator.pubsub.drop_streams()
    with pytest.raises(grpc.RpcError) as raised:
        s.next()
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
