"""The ledger on its own, on an in-memory SQLite database: the retry schedule of passing errors
(30 s, doubling, at most 30 minutes, parked after the last try), parking and re-queueing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import MetaData, create_engine, select

from connector.sync.ledger import RETRY_ATTEMPTS, Ledger, gave_up, transient
from connector.sync.state import sync_tables

UTC = dt.timezone.utc
T = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LOCKED = {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "busy", "fields": []}]}


@pytest.fixture
def ledger():
    engine = create_engine("sqlite://")
    md = MetaData()
    tables = sync_tables(md)
    md.create_all(engine)
    with engine.begin() as conn:
        yield Ledger(tables), conn


def test_a_passing_error_is_retried_with_a_doubling_wait_then_parked(ledger):
    ledger, conn = ledger
    waits = []
    now = T
    for _ in range(RETRY_ATTEMPTS - 1):
        assert ledger.retry_later(conn, "Opportunity", "u1", LOCKED, now)
        due = conn.execute(select(ledger.tables.retries.c.next_attempt_at)).scalar()
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        waits.append((due - now).total_seconds())
        assert ledger.not_due(conn, "Opportunity", ["u1", "u2"], now) == {"u1"}
        assert ledger.not_due(conn, "Opportunity", ["u1"], due) == set(), "due at its time"
        now = due
    assert waits == [30, 60, 120, 240, 480, 960, 1800]
    assert not ledger.retry_later(conn, "Opportunity", "u1", LOCKED, now), "the last try is spent"
    assert conn.execute(select(ledger.tables.retries)).all() == []


def test_only_passing_codes_are_transient_and_giving_up_says_so():
    assert transient(LOCKED)
    assert not transient({"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING"}]})
    assert not transient({"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW"},
                                                       {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}]})
    assert f"still failing after {RETRY_ATTEMPTS} tries" in gave_up(LOCKED)["errors"][0]["message"]


def test_parking_counts_attempts_and_requeue_sorts_pull_from_push(ledger):
    ledger, conn = ledger
    refused = {"errors": [{"statusCode": "STRING_TOO_LONG", "message": "too long", "fields": ["Name"]}]}
    ledger.park(conn, "Opportunity", "u1", "006A", "update", refused, T, table=None)
    ledger.park(conn, "Opportunity", "u1", "006A", "update", refused, T, table=None)
    ledger.park(conn, "Opportunity", "006B", "006B", "pull", refused, T, table=None)
    rows = {r.record_uuid: r for r in conn.execute(select(ledger.tables.dead_letters))}
    assert rows["u1"].attempts == 2 and rows["u1"].fields == '["Name"]'
    assert ledger.objects_parked_on_the_way_in(conn) == {"Opportunity": "parked"}
    assert ledger.requeue(conn, "Opportunity") == [("Opportunity", "u1", "006A")]
    assert ledger.queued_rereads(conn, "Opportunity") == ["006B"]
    assert ledger.objects_parked_on_the_way_in(conn) == {"Opportunity": "retry"}
    ledger.clear_pulled(conn, "Opportunity", ["006B"])
    assert ledger.queued_rereads(conn, "Opportunity") == []
    assert ledger.parked_among(conn, "Opportunity", ["u1", "u9"]) == {"u1"}


def test_dismissing_drops_the_entry_and_its_retry_and_nothing_else(ledger):
    ledger, conn = ledger
    refused = {"errors": [{"statusCode": "STRING_TOO_LONG", "message": "too long", "fields": ["Name"]}]}
    ledger.park(conn, "Opportunity", "u1", "006A", "update", refused, T, table=None)
    ledger.park(conn, "Opportunity", "u2", "006B", "update", refused, T, table=None)
    ledger.retry_later(conn, "Opportunity", "u1", LOCKED, T)
    entry = ledger.dismiss(conn, "Opportunity", "u1", table=None)
    assert entry["sfid"] == "006A" and entry["error_code"] == "STRING_TOO_LONG"
    assert [r.record_uuid for r in conn.execute(select(ledger.tables.dead_letters))] == ["u2"]
    assert conn.execute(select(ledger.tables.retries)).all() == []
    assert ledger.dismiss(conn, "Opportunity", "u1", table=None) is None, "gone: nothing to dismiss twice"
    assert ledger.dismiss(conn, "Account", "u2", table=None) is None, "another object's record is not this one"
