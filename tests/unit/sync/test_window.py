"""The closed read window on its own: records of the open second wait for the next read, the
watermark never passes the window's end, and the query resumes at the watermark's second."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.sync.window import ReadWindow, changed_since_soql

UTC = dt.timezone.utc
T = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def stamp(value):
    return value


def rec(seconds, rid="001"):
    return {"Id": rid, "SystemModstamp": T + dt.timedelta(seconds=seconds)}


def test_records_in_the_open_second_belong_to_the_next_read():
    window = ReadWindow(start=T)
    end = window.close(lambda: T + dt.timedelta(seconds=5))
    page = [rec(0, "a"), rec(4, "b"), rec(5, "c"), rec(6, "d")]
    assert [r["Id"] for r in window.inside(page, stamp)] == ["a", "b"]
    assert end == T + dt.timedelta(seconds=5)


def test_the_end_is_fixed_by_the_first_page_and_a_lag_moves_it_back():
    window = ReadWindow(start=None)
    assert window.close(lambda: T, lag=dt.timedelta(seconds=2)) == T - dt.timedelta(seconds=2)
    assert window.close(lambda: T + dt.timedelta(hours=1)) == T - dt.timedelta(seconds=2), "closed once"


def test_the_watermark_is_the_last_stamp_applied_and_never_past_the_end():
    window = ReadWindow(start=T, end=T + dt.timedelta(seconds=3))
    assert window.watermark_after([rec(1), rec(2)], stamp) == T + dt.timedelta(seconds=2)
    assert window.watermark_after([rec(9)], stamp) == T + dt.timedelta(seconds=3)
    assert window.watermark_after([], stamp) is None, "an empty page leaves the watermark"


def test_a_window_must_be_closed_before_it_filters():
    with pytest.raises(RuntimeError, match="not closed"):
        ReadWindow(start=T).inside([rec(0)], stamp)


def test_the_query_starts_at_the_watermark_second_inclusive_in_stamp_then_id_order():
    soql = changed_since_soql("Opportunity", ["Id", "Name"], T + dt.timedelta(microseconds=500))
    assert soql == ("SELECT Id, Name FROM Opportunity WHERE SystemModstamp >= 2026-12-01T12:00:00Z "
                    "ORDER BY SystemModstamp, Id")
    assert "WHERE" not in changed_since_soql("Account", ["Id"], None)
    with pytest.raises(ValueError, match="naive"):
        changed_since_soql("Account", ["Id"], dt.datetime(2026, 1, 1))
