"""Overlap CSV and payout CSV / JSON / JSON Lines files built to break the readers.

Tried, in each reader where it applies: a cell past the csv module's field limit (131,072) and one
past ours (10,000); a NUL character in a cell and in a JSON key (PostgreSQL text cannot hold one,
SQLite keeps it silently, so the reader refuses it on both); JSON nested 100,000 deep as an array
file and as one JSON Lines line (RecursionError before); a record nested past the limit; a 40-digit
amount, 11 decimal places, 1E+999999 (decimal.InvalidOperation at the database before). Each is one
error naming the file, the line and the field."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from connector.marketplace.feeds import FeedError, parse_feed
from connector.overlaps.source import OverlapFileError, read_overlaps

DATA = Path(__file__).parents[1] / "data" / "marketplace"
OVERLAP_HEADER = "Partner,Account Name,Domain,Population,Partner Record ID,Country\n"


def aws_rows() -> list[dict[str, str]]:
    with (DATA / "aws_billing_events.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return path


def feed_refused(path: Path) -> str:
    with pytest.raises(FeedError) as caught:
        parse_feed(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and message.endswith("nothing was imported") and "\n" not in message
    return message


def overlap_refused(path: Path) -> str:
    with pytest.raises(OverlapFileError) as caught:
        read_overlaps(path)
    return str(caught.value)


@pytest.mark.parametrize("cell, reason", [
    ("x" * 200_000, "not readable as CSV"),
    ("x" * 20_000, "is 20,000 characters long; a value is at most 10,000"),
    ("Acme\x00Corp", "holds a NUL character"),
])
def test_overlap_cells_that_cannot_be_stored_name_their_line_and_column(tmp_path, cell, reason):
    path = tmp_path / "overlaps.csv"
    path.write_text(OVERLAP_HEADER + "Ovl Partner,Fine Corp,fine.example,Customers,p-1,USA\n"
                    f"Ovl Partner,{cell},acme.example,Customers,p-2,USA\n")
    message = overlap_refused(path)
    assert "line 3:" in message and reason in message
    if "column" in reason or "NUL" in reason or "characters long" in reason:
        assert "column 'Account Name'" in message
    assert cell not in message


@pytest.mark.parametrize("column, value, reason", [
    ("amount", "1" * 40, "at most 18 digits before the point and 10 after"),
    ("amount", "0.12345678901", "at most 18 digits before the point and 10 after"),
    ("amount", "1E+999999", "at most 18 digits before the point"),
    ("invoice_id", "inv\x00-1", "field 'invoice_id' holds a NUL character"),
    ("agreement_id", "a" * 10_001, "field 'agreement_id' is 10,001 characters long"),
])
def test_payout_csv_values_that_cannot_be_stored_are_refused_with_line_and_field(tmp_path, column, value, reason):
    rows = aws_rows()
    rows[2][column] = value
    message = feed_refused(write_csv(tmp_path / "feed.csv", rows))
    assert ", line 4:" in message and reason in message and column in message


def test_a_payout_amount_at_the_limit_still_reads(tmp_path):
    rows = aws_rows()
    rows[0]["amount"] = "123456789012345678.1234567890"
    feed = parse_feed(write_csv(tmp_path / "feed.csv", rows))
    assert str(feed.lines[0].amount) == "123456789012345678.1234567890"


def test_payout_csv_cell_past_the_csv_limit_is_a_line_numbered_error(tmp_path):
    rows = aws_rows()
    rows[1]["invoice_id"] = "y" * 200_000
    message = feed_refused(write_csv(tmp_path / "feed.csv", rows))
    assert "line 3" in message and "field larger than field limit" in message


def _json_records() -> list[dict[str, str]]:
    return aws_rows()[:3]


def test_payout_json_nested_100000_deep_is_refused_without_recursion_error(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert "JSON nested too deep" in feed_refused(path)


def test_payout_json_lines_with_a_deep_line_names_that_line(tmp_path):
    lines = [json.dumps(r) for r in _json_records()]
    lines[1] = '{"billing_event_id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    message = feed_refused(path)
    assert ", line 2:" in message and "nested too deep" in message


def test_payout_json_record_nested_past_the_limit_or_with_nul_is_refused(tmp_path):
    records = _json_records()
    deep: object = "v"
    for _ in range(20):
        deep = [deep]
    records[1]["vendor_metadata"] = deep
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(records))
    assert "record 2: field 'vendor_metadata' nested more than 8 levels deep" in feed_refused(path)
    records = _json_records()
    records[2]["note\x00"] = "x"
    path.write_text(json.dumps(records))
    assert "record 3:" in feed_refused(path) and "NUL character" in feed_refused(path)
