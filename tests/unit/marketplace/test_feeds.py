"""Payout files are read whole or refused whole: each bad-file case names the file, the line
(or JSON record) and the reason, and no line of a refused file comes back."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from connector.marketplace.feeds import AWS_COLUMNS, FeedError, parse_agreements, parse_feed

DATA = Path(__file__).parents[2] / "data" / "marketplace"
AWS = DATA / "aws_billing_events.csv"
AZURE = DATA / "azure_earnings.csv"


def aws_rows() -> list[dict[str, str]]:
    with AWS.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]], columns=None) -> Path:
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return path


def refused(path, fmt="auto") -> str:
    with pytest.raises(FeedError) as caught:
        parse_feed(path, fmt)
    message = str(caught.value)
    assert message.startswith(str(path)) and message.endswith("nothing was imported")
    return message


def test_an_aws_billing_event_feed_is_read_with_the_money_of_each_line():
    feed = parse_feed(AWS)
    assert feed.source == "aws" and len(feed.lines) == len(aws_rows())
    by_key = {ln.key: ln for ln in feed.lines}
    gross, fee, tax, aws_tax = (by_key[k] for k in ("be-0001", "be-0002", "be-0003", "be-0004"))
    assert (gross.kind, gross.amount, gross.currency, gross.agreement_id) == ("gross", Decimal("100000.00"), "USD",
                                                                              "agmt-MATCHED")
    assert (fee.kind, fee.amount) == ("fee", Decimal("-3000.00"))
    assert gross.line_no == 2 and fee.line_no == 3, "line numbers are the file's, header included"
    assert not tax.counts_as_revenue and not aws_tax.counts_as_revenue
    refund = next(ln for ln in feed.lines if ln.transaction_type == "SELLER_REV_SHARE_REFUND")
    assert refund.kind == "refund" and refund.amount == Decimal("-5000.00")
    disbursement = next(ln for ln in feed.lines if ln.key == "be-0020")
    assert disbursement.kind == "disbursement" and not disbursement.counts_as_revenue


def test_json_array_and_json_lines_read_like_the_csv(tmp_path):
    rows = aws_rows()
    typed = [{**r, "amount": float(r["amount"]), "balance_impacting": int(r["balance_impacting"])} for r in rows]
    array = tmp_path / "events.json"
    array.write_text(json.dumps({"billing_events": typed}))
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    expected = [(ln.key, ln.kind, ln.amount, ln.fingerprint()) for ln in parse_feed(AWS).lines]
    assert [(ln.key, ln.kind, ln.amount, ln.fingerprint()) for ln in parse_feed(array).lines] == expected, \
        "the same events as JSON numbers are the same events: re-importing them is a no-op"
    assert [(ln.key, ln.kind, ln.amount, ln.fingerprint()) for ln in parse_feed(lines).lines] == expected


def test_a_missing_column_is_refused_on_the_header_line(tmp_path):
    columns = [c for c in AWS_COLUMNS if c != "currency"]
    message = refused(write_csv(tmp_path / "f.csv", aws_rows(), columns))
    assert ", line 1: missing column(s) currency;" in message


def test_a_json_record_missing_a_field_is_refused_with_its_record_number(tmp_path):
    rows = aws_rows()
    del rows[2]["amount"]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(rows))
    assert ", record 3: missing field(s) amount;" in refused(path)


@pytest.mark.parametrize("column, value, reason", [
    ("amount", "12.5x", "amount must be a number, not '12.5x'"),
    ("amount", "", "amount is empty"),
    ("invoice_date", "31/02/2025", "invoice_date must be a date (YYYY-MM-DD), not '31/02/2025'"),
    ("currency", "US Dollar", "currency must be an ISO 4217 code such as USD, not 'US DOLLAR'"),
    ("balance_impacting", "maybe", "balance_impacting must be 1 or 0, not 'maybe'"),
    ("action", "PAID", "action 'PAID' is not one of: INVOICED, FORGIVEN, DISBURSED"),
    ("transaction_type", "SELLER_BONUS", "transaction_type 'SELLER_BONUS' is not one of: BALANCE_ADJUSTMENT"),
    ("billing_event_id", " ", "billing_event_id is empty"),
])
def test_a_value_of_the_wrong_type_is_refused_with_its_line(tmp_path, column, value, reason):
    rows = aws_rows()
    rows[4][column] = value
    message = refused(write_csv(tmp_path / "f.csv", rows))
    assert f", line 6: {reason}" in message


def test_the_same_billing_event_twice_in_one_file_is_refused(tmp_path):
    rows = aws_rows()
    rows.insert(7, dict(rows[1]))
    message = refused(write_csv(tmp_path / "f.csv", rows))
    assert ", line 9: duplicate billing_event_id 'be-0002' (first on line 3);" in message


def test_a_row_with_too_few_values_is_refused(tmp_path):
    path = write_csv(tmp_path / "f.csv", aws_rows())
    text = path.read_text().splitlines()
    text[3] = ",".join(text[3].split(",")[:5])
    path.write_text("\n".join(text) + "\n")
    assert ", line 4: 5 values for 20 columns;" in refused(path)


@pytest.mark.parametrize("header, looks_like", [
    ("offer_id,offer_revision,name,expiration_date", "an AWS Marketplace offer data feed"),
    ("participantId,programName,paymentId,totalPayment,currencyCode,paymentDate",
     "a Partner Center payments export"),
    ("Disbursement Date,Bank Trace ID,Product Title,Net Amount", "an AWS Marketplace disbursement report"),
    ("id,name,email", None),
])
def test_another_exports_file_is_refused_saying_what_it_looks_like(tmp_path, header, looks_like):
    path = tmp_path / "other.csv"
    path.write_text(header + "\n" + ",".join("x" for _ in header.split(",")) + "\n")
    message = refused(path)
    assert ", line 1: expected an AWS Marketplace billing-event feed" in message
    assert (f"it looks like {looks_like}" in message) if looks_like else "its columns match no known export" in message


def test_a_forced_format_that_does_not_fit_is_refused():
    message = refused(AZURE, "aws")
    assert "expected an AWS Marketplace billing-event feed, but it looks like an Azure Marketplace earnings export" \
        in message
    with pytest.raises(FeedError, match="unknown format 'gcp'; choose one of: auto, aws, azure"):
        parse_feed(AWS, "gcp")  # type: ignore[arg-type]


@pytest.mark.parametrize("content, reason", [("", "the file is empty"), ("[]", "the file holds no records"),
                                            (",".join(AWS_COLUMNS) + "\n", "the file holds a header but no lines"),
                                            ("[{\"billing_event_id\": ", "malformed JSON")])
def test_empty_and_broken_files_are_refused(tmp_path, content, reason):
    path = tmp_path / "f.json"
    path.write_text(content)
    assert reason in refused(path)


def test_azure_earnings_carry_their_currency_and_the_store_fee():
    feed = parse_feed(AZURE)
    assert feed.source == "azure"
    sale, _, refund = feed.lines
    # earningAmount is what the publisher earns after the store fee: gross = 11,640 + 360.
    assert (sale.kind, sale.amount, sale.fee, sale.currency) == ("gross", Decimal("12000.00"), Decimal("-360.00"),
                                                                 "GBP")
    assert sale.customer_account == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert sale.product_id == "cosell-demo.cd-platform-saas", "productId is preferred to assetId"
    assert (refund.kind, refund.amount, refund.fee) == ("refund", Decimal("-2400.00"), Decimal("72.00"))


def test_azure_earnings_without_a_currency_column_are_taken_in_usd(tmp_path):
    path = tmp_path / "earnings.csv"
    path.write_text("earningId,earningDate,earningAmount,earningAmountUSD,earningType,customerId,assetId\n"
                    "e1,2025-03-05,900.00,1000.00,SELL,tenant-1,asset-1\n")
    line = parse_feed(path).lines[0]
    assert (line.amount, line.currency, line.product_id) == (Decimal("1000.00"), "USD", "asset-1")
    path.write_text("earningId,earningDate,earningAmount,earningType,customerId,assetId\n"
                    "e1,2025-03-05,900.00,SELL,tenant-1,asset-1\n")
    assert ", line 1: missing column(s) transactionCurrency;" in refused(path)


def test_the_agreements_file_maps_agreements_to_offers(tmp_path):
    assert [(p.agreement_id, p.offer_id) for p in parse_agreements(DATA / "agreements.csv")] == [
        ("agmt-VIAOFFER", "offer-VIAOFFER")]
    described = tmp_path / "agreements.json"
    described.write_text(json.dumps([{"agreementId": "agmt-1", "status": "ACTIVE",
                                      "proposalSummary": {"offerId": "offer-1", "resources": []}}]))
    assert [(p.agreement_id, p.offer_id) for p in parse_agreements(described)] == [("agmt-1", "offer-1")]
    conflicting = tmp_path / "conflict.csv"
    conflicting.write_text("agreement_id,offer_id\nagmt-1,offer-1\nagmt-1,offer-2\n")
    with pytest.raises(FeedError, match=r"line 3: agreement 'agmt-1' names offer 'offer-2' but line 2 names"):
        parse_agreements(conflicting)
