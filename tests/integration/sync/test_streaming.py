"""Streaming end to end, on SQLite and PostgreSQL: org edits reach the portal through Change Data
Capture with no REST call while idle, the connector's own pushes do not come back as changes, and
a gap, an overflow, a dropped stream and an expired replay id each end with nothing missed."""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from connector.scheduler import SyncRunner
from connector.sync.streaming import StreamingService
from tests.conftest import connect, settings_for
from tests.integration.sync.test_sync import Harness

MAPPED = ["Account", "Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c"]


class Streaming:
    def __init__(self, org, database):
        self.org = org
        org.pubsub.keepalive = 0.5
        self.h = Harness(org, database)
        self.h.client.settings = settings_for(org, pubsub_url=org.pubsub_url, stream_push_interval=0.1,
                                              stream_batch_wait=0.02)
        self.h.sync()
        # No direct-ownership channel-conflict flags: the co-sell step after a catch-up run would write them
        # to the generated org's opportunities (a push of its own), which is not what these tests count.
        self.connector = SimpleNamespace(sync=self.h.engine, client=self.h.client, engine=database.engine,
                                         mapping=self.h.engine.mapping,
                                         settings=settings_for(org, direct_account_types="", channel_conflict_flag=False))
        self.service: StreamingService | None = None

    def start(self) -> StreamingService:
        self.service = StreamingService(self.connector, SyncRunner(self.connector)).start()
        wait_for(lambda: all(s.connected for s in self.service.streams.values()), what="streams connected")
        wait_for(lambda: self.service.caught_up == set(self.service.streams), what="the first catch-ups")
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def runs(self, trigger: str) -> int:
        runs = self.h.engine.state.runs
        with self.h.database.engine.connect() as conn:
            return len(conn.execute(select(runs.c.id).where(runs.c.trigger == trigger)).all())

    def local(self, name: str, sfid: str) -> dict:
        (row,) = self.h.rows(name, self.h.tables[name].c.sfid == sfid)
        return row

    def pending(self) -> list:
        with self.h.database.engine.connect() as conn:
            return conn.execute(select(self.h.engine.state.changes)).all()

    def position(self, name: str):
        p = self.service.positions if self.service else None
        with self.h.database.engine.connect() as conn:
            return conn.execute(select(p).where(p.c.object_name == name)).first()


def wait_for(condition, *, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def streaming(emulator, database):
    s = Streaming(emulator, database)
    yield s
    s.stop()


def _an(org, name: str = "Opportunity") -> str:
    return org.records(f"SELECT Id FROM {name} ORDER BY Id LIMIT 1")[0]["Id"]


def test_an_org_edit_reaches_the_portal_and_idle_costs_no_rest_call(streaming, emulator):
    service = streaming.start()
    assert set(MAPPED) <= set(service.streams)
    assert "CurrencyType" in service.polled and "CurrencyType" not in service.streams
    emulator.calls.reset()
    time.sleep(1.5)   # idle, with keepalives
    assert emulator.calls.total() == 0, emulator.calls.snapshot()
    opp = _an(emulator)
    emulator.update("Opportunity", opp, {"Description": "streamed in"})
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "streamed in", what="the edit")
    calls = emulator.calls.snapshot()
    assert calls.get("query_all", 0) + calls.get("query", 0) == 1, calls   # one read by Id
    assert streaming.runs("stream-push") == 0
    assert service.streams["Opportunity"].events == 1
    stored = streaming.position("Opportunity")
    assert stored.replay_id and base64.b64decode(stored.replay_id)


def test_a_portal_edit_is_pushed_as_it_commits_and_does_not_echo(streaming, emulator):
    service = streaming.start()
    opp = _an(emulator)
    table = streaming.h.tables["Opportunity"]
    streaming.h.execute(update(table).where(table.c.sfid == opp).values(description="from the portal"))
    wait_for(lambda: emulator.get("Opportunity", opp).get("Description") == "from the portal", what="the push")
    wait_for(lambda: service.streams["Opportunity"].echoes >= 1, what="the echo of the push")
    assert service.streams["Opportunity"].events == service.streams["Opportunity"].echoes
    assert streaming.local("Opportunity", opp)["description"] == "from the portal"


def test_successive_portal_edits_each_go_out_once_the_log_emptied(streaming, emulator):
    # The change log empties after each push; SQLite then hands out the same ids again, which a
    # "highest id seen" cursor would take for old entries.
    streaming.start()
    table = streaming.h.tables["Opportunity"]
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity ORDER BY Id LIMIT 3")]
    for n, opp in enumerate(ids):
        streaming.h.execute(update(table).where(table.c.sfid == opp).values(description=f"portal edit {n}"))
        wait_for(lambda: emulator.get("Opportunity", opp).get("Description") == f"portal edit {n}",
                 what=f"push {n}")
        wait_for(lambda: streaming.pending() == [], what=f"push {n} consumed from the change log")


def test_a_gap_event_reads_the_record_it_names(streaming, emulator):
    streaming.start()
    opp = _an(emulator)
    with emulator.cdc.suppressed():
        emulator.update("Opportunity", opp, {"Description": "made without an event"})
    time.sleep(0.5)
    assert streaming.local("Opportunity", opp)["description"] != "made without an event"
    emulator.emit_gap("Opportunity", [opp])
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "made without an event", what="gap")


def test_an_overflow_reconciles_what_that_transaction_changed(streaming, emulator):
    streaming.start()
    emulator.cdc.overflow_threshold = 2
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity ORDER BY Id LIMIT 3")]
    sf = connect(emulator)
    import json
    sf.restful("composite/sobjects", method="PATCH", data=json.dumps({"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": i, "NextStep": "overflowed"} for i in ids]}))
    wait_for(lambda: all(streaming.local("Opportunity", i)["nextstep"] == "overflowed" for i in ids),
             what="the overflow reconcile")


def test_a_dropped_stream_resumes_from_its_replay_id(streaming, emulator):
    service = streaming.start()
    opp = _an(emulator)
    emulator.update("Opportunity", opp, {"Description": "before the drop"})
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "before the drop", what="first edit")
    emulator.pubsub.drop_streams()
    emulator.update("Opportunity", opp, {"Description": "while it was down"})
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "while it was down", what="resume")
    assert service.streams["Opportunity"].reconnects >= 1
    assert service.streams["Opportunity"].recoveries == 0


def test_a_failed_apply_is_delivered_again_from_the_last_committed_replay_id(streaming, emulator):
    service = streaming.start()
    opp = _an(emulator)
    # The read of the event's record is refused for good (not a passing error): the batch fails.
    emulator.faults.fail_next(1, status=400, error_code="INVALID_FIELD", message="refused once", path="/query")
    emulator.update("Opportunity", opp, {"Description": "after a failed apply"})
    time.sleep(1.0)   # keepalives come meanwhile; none may move the position past the failed event
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "after a failed apply",
             what="the event delivered again")
    assert emulator.faults.injected["error"] == 1
    assert service.streams["Opportunity"].reconnects >= 1


def test_an_expired_replay_id_is_recovered_by_a_catch_up_that_loses_nothing(streaming, emulator, caplog):
    streaming.start()
    opp, acc = _an(emulator), _an(emulator, "Account")
    emulator.update("Opportunity", opp, {"Description": "applied by the stream"})
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "applied by the stream", what="edit")
    streaming.stop()
    emulator.update("Opportunity", opp, {"Description": "while the connector was off"})
    emulator.update("Account", acc, {"Description": "also while off"})
    emulator.advance_clock(hours=73)          # every stored replay id is past retention now
    emulator.update("Opportunity", opp, {"NextStep": "after the expiry"})
    with caplog.at_level("WARNING", logger="connector.streaming"):
        service = streaming.start()
        wait_for(lambda: streaming.local("Opportunity", opp)["nextstep"] == "after the expiry", what="catch-up")
    row = streaming.local("Opportunity", opp)
    assert row["description"] == "while the connector was off"
    assert streaming.local("Account", acc)["description"] == "also while off"
    assert service.streams["Opportunity"].recoveries == 1
    assert streaming.position("Opportunity").recoveries == 1
    assert any("refused the stored replay id" in r.getMessage() for r in caplog.records)
    emulator.update("Opportunity", opp, {"Description": "streaming again"})
    wait_for(lambda: streaming.local("Opportunity", opp)["description"] == "streaming again", what="after")
