"""Errors sorted by what to do about them, against the emulator over HTTPS on both databases:
a passing per-record error is retried on later runs (bounded), a local edit Salesforce will never
take is parked with the field named, and a parked record's refused edit is never overwritten
silently."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, update

from connector.sync.engine import RETRY_ATTEMPTS
from tests.integration.sync.test_sync import Harness


@pytest.fixture
def h(emulator, database):
    return Harness(emulator, database)


def _dead_letters(h: Harness) -> list[dict]:
    with h.database.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(h.engine.state.dead_letters))]


def test_records_refused_for_a_passing_reason_are_sent_on_a_later_run(h):
    h.sync()
    t = h.tables["Opportunity"]
    rows = h.rows("Opportunity")[:5]
    for i, row in enumerate(rows):
        h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep=f"edit {i}"))
    account = h.rows("Account")[0]["sfid"]
    for name in ("New deal A", "New deal B"):
        h.execute(insert(t).values(name=name, stagename="Prospecting", closedate=dt.date(2027, 1, 31),
                                   accountid=account))
    # Inside a 200-record answer, 2 creates and 3 updates refused for a passing reason.
    h.org.fail_next_records(2, code="SERVER_UNAVAILABLE", message="Server temporarily unavailable")
    h.org.fail_next_records(3)
    first = h.sync("Opportunity")
    counts = first.objects["Opportunity"]
    assert counts.retrying == 5 and counts.parked == 0 and counts.created_remote == 0
    assert first.status == "retrying", "a run that left records to retry does not say it succeeded"
    h.org.calls.reset()
    second = h.sync("Opportunity")     # one second later: still waiting, nothing sent
    assert second.objects["Opportunity"].retrying == 5 and second.status == "retrying"
    assert h.org.calls["collections_update"] == 0 and h.org.calls["collections_upsert"] == 0
    h.org.fail_next_records(3)         # the first retry of these three fails again
    statuses = []
    for _ in range(6):
        h.tick(120)
        report = h.sync("Opportunity")
        statuses.append(report.status)
        if report.status == "succeeded":
            break
    assert statuses[0] == "retrying" and report.status == "succeeded", statuses
    for i, row in enumerate(rows):
        assert h.org.get("Opportunity", row["sfid"])["NextStep"] == f"edit {i}"
    for name in ("New deal A", "New deal B"):
        assert len(h.org.records(f"SELECT Id FROM Opportunity WHERE Name = '{name}'")) == 1
    assert _dead_letters(h) == []


def test_a_record_that_keeps_failing_is_parked_after_the_last_try(h):
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="never gets through"))
    h.org.fail_next_records(50)
    statuses = []
    for _ in range(RETRY_ATTEMPTS + 2):
        h.tick(3600)
        statuses.append(h.sync("Opportunity").status)
    assert statuses[:RETRY_ATTEMPTS - 1] == ["retrying"] * (RETRY_ATTEMPTS - 1)
    assert statuses[RETRY_ATTEMPTS - 1] == "parked"
    letter = next(d for d in _dead_letters(h) if d["record_uuid"] == row["_uuid"])
    assert letter["error_code"] == "UNABLE_TO_LOCK_ROW"
    assert f"still failing after {RETRY_ATTEMPTS} tries" in letter["message"]
    h.org.api.record_faults.clear()
    h.engine.retry_parked("Opportunity")
    assert h.sync("Opportunity").status == "succeeded"
    assert h.org.get("Opportunity", row["sfid"])["NextStep"] == "never gets through"


def test_a_portal_edit_of_a_field_salesforce_will_not_update_is_parked_with_the_field_named(h):
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity", t.c.iswon.is_(False))[0]
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(iswon=True, nextstep="also changed"))
    report = h.sync("Opportunity")
    assert report.status == "parked" and report.objects["Opportunity"].parked == 1
    letter = next(d for d in _dead_letters(h) if d["record_uuid"] == row["_uuid"])
    assert letter["error_code"] == "FIELD_NOT_UPDATEABLE" and letter["fields"] == '["IsWon"]'
    assert "IsWon" in h.rows("Opportunity", t.c._uuid == row["_uuid"])[0]["_sync_error"]
    # Salesforce changes the record meanwhile: the refused edit is not overwritten without the log.
    h.tick()
    h.org.update("Opportunity", row["sfid"], {"Description": "edited in Salesforce"})
    h.sync("Opportunity")
    logged = [c for c in h.conflicts() if c["record_uuid"] == row["_uuid"] and c["field_name"] == "IsWon"]
    assert logged and logged[0]["local_value"] == "true" and logged[0]["winner"] == "salesforce"
    local = h.rows("Opportunity", t.c._uuid == row["_uuid"])[0]
    assert local["iswon"] is False and local["description"] == "edited in Salesforce"


def test_a_value_the_database_cannot_hold_parks_that_record_and_the_run_goes_on(h):
    h.sync()
    t = h.tables["Opportunity"]
    bad, good, nul = h.rows("Opportunity")[:3]
    h.tick()
    # The field was widened in Salesforce and `cosell mirror` has not run yet.
    h.org.change_field("Opportunity", "NextStep", length=1000)
    h.org.update("Opportunity", bad["sfid"], {"NextStep": "x" * 400})
    h.org.update("Opportunity", nul["sfid"], {"Description": "before\x00after"})
    h.org.update("Opportunity", good["sfid"], {"NextStep": "fine"})
    h.execute(update(t).where(t.c._uuid == good["_uuid"]).values(description="portal edit goes out"))
    report = h.sync("Opportunity")
    assert report.error is None
    assert h.rows("Opportunity", t.c._uuid == good["_uuid"])[0]["nextstep"] == "fine"
    assert h.org.get("Opportunity", good["sfid"])["Description"] == "portal edit goes out", "pushes still go out"
    letters = {d["sfid"]: d for d in _dead_letters(h) if d["operation"] == "pull"}
    if h.database.name == "postgresql":
        # SQLite stores both as they are (it does not enforce a text length and keeps NUL characters).
        assert report.status == "parked" and set(letters) == {bad["sfid"], nul["sfid"]}
        assert "NextStep: the value is 400 characters long, the column holds 255" in letters[bad["sfid"]]["message"]
        assert letters[bad["sfid"]]["fields"] == '["NextStep"]'
        assert "Description: the value holds a NUL character" in letters[nul["sfid"]]["message"]
        assert h.rows("Opportunity", t.c._uuid == bad["_uuid"])[0]["nextstep"] == bad["nextstep"]
    else:
        assert report.status == "succeeded" and letters == {}
    # The run after it does not trip over them again: the watermark moved past the parked records.
    again = h.sync("Opportunity")
    assert again.objects["Opportunity"].parked == 0 and again.error is None
    # `cosell mirror` widens the column and queues the object's parked records; the next run reads them.
    h.mirror.apply(h.mirror.plan())
    h.engine.retry_parked("Opportunity")
    h.tick()
    h.org.update("Opportunity", nul["sfid"], {"Description": "fixed in Salesforce"})
    h.sync("Opportunity")
    assert h.rows("Opportunity", t.c._uuid == bad["_uuid"])[0]["nextstep"] == "x" * 400
    assert h.rows("Opportunity", t.c._uuid == nul["_uuid"])[0]["description"] == "fixed in Salesforce"
    assert [d for d in _dead_letters(h) if d["operation"] in ("pull", "pull-retry")] == []


def test_decimals_travel_exactly_and_a_value_salesforce_cannot_hold_is_parked_not_rounded(h):
    from decimal import Decimal

    h.sync()
    t = h.tables["Opportunity"]
    exact, too_big = h.rows("Opportunity")[:2]
    # 18 digits on PostgreSQL's NUMERIC(18,2); SQLite holds 15 significant digits exactly
    value = Decimal("1234567890123456.78") if h.database.name == "postgresql" else Decimal("1234567890123.45")
    h.execute(update(t).where(t.c._uuid == exact["_uuid"]).values(amount=value))
    if h.database.name == "sqlite":
        # SQLite stores a whole number this large exactly; Amount (18, 2) holds 16 integer digits
        h.execute(update(t).where(t.c._uuid == too_big["_uuid"]).values(amount=Decimal("123456789012345678")))
    report = h.sync("Opportunity")
    assert h.org.store.fetch("Opportunity", exact["sfid"])["Amount"] == value, "exact in Salesforce"
    h.tick()
    h.sync("Opportunity")
    assert h.rows("Opportunity", t.c._uuid == exact["_uuid"])[0]["amount"] == value, "and not rewritten by the pull"
    if h.database.name == "sqlite":
        assert report.status == "parked"
        letter = next(d for d in _dead_letters(h) if d["record_uuid"] == too_big["_uuid"])
        assert letter["error_code"] == "NUMBER_OUTSIDE_VALID_RANGE" and letter["fields"] == '["Amount"]'
        assert "18 digits before the decimal point; the field holds 16" in letter["message"]
        assert h.org.get("Opportunity", too_big["sfid"])["Amount"] == too_big["amount"], "nothing rounded was sent"
