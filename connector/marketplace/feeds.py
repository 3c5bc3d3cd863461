"""Reading marketplace payout exports: the AWS Marketplace billing-event data feed and the
Azure Marketplace (Partner Center) earnings export, as CSV, a JSON array or JSON Lines.
Pure parsing: it opens the given file and nothing else, and it either returns every line
of the file or raises a FeedError naming the first bad line — never part of a file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, get_args

from connector.bounds import MAX_NESTING, value_problem
from connector.errors import ConfigurationError

Source = Literal["aws", "azure"]
SOURCES: tuple[str, ...] = get_args(Source)
FormatChoice = Literal["auto", "aws", "azure"]
FORMAT_CHOICES: tuple[str, ...] = get_args(FormatChoice)

# What a line's money is, for the per-deal sums (see reconcile.py):
#   gross       the seller's revenue share (AWS SELLER_REV_SHARE; an Azure earning before the store fee)
#   fee         the marketplace's listing/store fee and its refunds or credits (negative when charged)
#   refund      the seller's revenue given back to the buyer (negative)
#   credit      credits AWS gave the buyer against the seller's revenue
#   adjustment  AWS BALANCE_ADJUSTMENT
#   tax         taxes: reported, never revenue
#   disbursement AWS DISBURSEMENT events: money moving to the seller's bank, not revenue
Kind = Literal["gross", "fee", "refund", "credit", "adjustment", "tax", "disbursement"]
KINDS: tuple[str, ...] = get_args(Kind)

AwsAction = Literal["INVOICED", "FORGIVEN", "DISBURSED"]
AWS_ACTIONS: tuple[str, ...] = get_args(AwsAction)

# AWS transaction types; *_REFUND and *_CREDIT of each base type are valid too.
_AWS_BASE_KINDS: dict[str, Kind] = {"SELLER_REV_SHARE": "gross", "AWS_REV_SHARE": "fee",
                                    "SELLER_TAX_SHARE": "tax", "AWS_TAX_SHARE": "tax"}
_AWS_OTHER_KINDS: dict[str, Kind] = {"BALANCE_ADJUSTMENT": "adjustment", "DISBURSEMENT": "disbursement"}


def _aws_transaction_types() -> dict[str, Kind]:
    out: dict[str, Kind] = dict(_AWS_OTHER_KINDS)
    for base, kind in _AWS_BASE_KINDS.items():
        out[base] = kind
        out[f"{base}_REFUND"] = "refund" if kind == "gross" else kind
        out[f"{base}_CREDIT"] = "credit" if kind == "gross" else kind
    return out


AWS_TRANSACTION_TYPES: dict[str, Kind] = _aws_transaction_types()

AWS_COLUMNS: tuple[str, ...] = (
    "billing_event_id", "from_account_id", "to_account_id", "end_user_account_id", "product_id", "agreement_id",
    "invoice_id", "invoice_date", "payment_due_date", "transaction_reference_id", "parent_billing_event_id",
    "disbursement_billing_event_id", "bank_trace_id", "broker_id", "amount", "currency", "balance_impacting",
    "action", "transaction_type")
"""Every column of the billing-event feed the reconciliation reads; all must be in the header."""

AZURE_COLUMNS: tuple[str, ...] = ("earningId", "earningDate", "earningAmount", "earningType", "customerId",
                                  "assetId")
"""Required columns of the Partner Center earnings export. The currency comes from `transactionCurrency`
(earningAmount is in the transaction's currency); an export without it must carry `earningAmountUSD`."""

# Azure transaction types that give money back to the customer.
_AZURE_REVERSALS = ("refund", "chargeback", "cancel", "reversal")

# Headers of exports people hand over by mistake, to say what a refused file looks like.
_LOOKALIKES: tuple[tuple[str, frozenset[str]], ...] = (
    ("an AWS Marketplace offer data feed", frozenset({"offer_id", "offer_revision"})),
    ("an AWS Marketplace agreement list (agreement_id, offer_id)", frozenset({"agreement_id", "offer_id"})),
    ("an AWS Marketplace disbursement report", frozenset({"disbursement date", "bank trace id", "net amount"})),
    ("an AWS Marketplace product data feed", frozenset({"product_id", "product_code", "title"})),
    ("a Partner Center payments export (one line per payment, not per earning)",
     frozenset({"paymentid", "totalpayment", "currencycode"})),
    ("a Partner Center orders report", frozenset({"orderid", "orderstatus", "offername"})),
    ("a Google Cloud Marketplace report", frozenset({"usage_reporting_id", "billing_account_id"})),
)


class FeedError(ConfigurationError):
    """A payout file cannot be imported; says the file, the line (or record) and why. Nothing was imported."""

    def __init__(self, path: str | Path, reason: str, *, line: int | None = None, where: str = "line"):
        location = f"{path}" + (f", {where} {line}" if line is not None else "")
        super().__init__(f"{location}: {reason}; nothing was imported")
        self.path, self.line, self.reason = str(path), line, reason


@dataclass(frozen=True)
class PayoutLine:
    """One line of a payout export, normalised. `key` is unique per source (billing_event_id, earningId)."""

    source: Source
    key: str
    line_no: int
    kind: Kind
    amount: Decimal
    currency: str
    event_date: dt.date | None
    agreement_id: str | None = None
    customer_account: str | None = None
    product_id: str | None = None
    reference: str | None = None
    parent_key: str | None = None
    action: str | None = None
    transaction_type: str | None = None
    balance_impacting: bool = True
    fee: Decimal | None = None          # Azure: the store fee Microsoft kept, when the export gives it
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # AWS feed versions: a billing event re-exported with a later update_date replaces the earlier version;
    # one with delete_date set was withdrawn and counts for nothing
    updated: str | None = None
    deleted: bool = False

    @property
    def counts_as_revenue(self) -> bool:
        """Money that belongs in a deal's sums: invoiced or forgiven, balance-impacting, not tax nor payment,
        not deleted."""
        return (self.kind not in ("tax", "disbursement") and self.balance_impacting
                and self.action != "DISBURSED" and not self.deleted)

    @property
    def disbursed(self) -> bool:
        """An AWS line saying this much of an invoiced line's money was paid to the seller's bank."""
        return (self.action == "DISBURSED" and self.kind not in ("tax", "disbursement") and self.balance_impacting
                and not self.deleted)

    @property
    def disbursement_failure(self) -> bool:
        """AWS: a DISBURSEMENT record with action INVOICED negates (all or part of) the disbursement its
        parent_billing_event_id names: the money did not reach the bank."""
        return self.kind == "disbursement" and self.action == "INVOICED" and not self.deleted

    @property
    def disbursement_key(self) -> str | None:
        value = self.raw.get("disbursement_billing_event_id")
        return str(value).strip() or None if value not in (None, "") else None

    def raw_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True, default=str)

    def fingerprint(self) -> str:
        """The line's meaning, whatever the file's format: the same event exported as CSV and as JSON
        (100000.00 vs 100000.0) has the same fingerprint, an event whose values changed has another."""
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return format(value.normalize(), "f")
            return value.isoformat() if isinstance(value, dt.date) else value
        names = ("kind", "amount", "currency", "event_date", "agreement_id", "customer_account", "product_id",
                 "reference", "parent_key", "action", "transaction_type", "balance_impacting", "fee")
        return json.dumps([plain(getattr(self, n)) for n in names])


@dataclass(frozen=True)
class Feed:
    path: str
    source: Source
    lines: list[PayoutLine]


@dataclass(frozen=True)
class AgreementOffer:
    agreement_id: str
    offer_id: str
    line_no: int
    # CPPO: the channel partner's margin on the buyer's price, as a percentage, when the agreement says it;
    # the feed then bills the ISV the wholesale price, the deal's amount less this margin
    reseller_margin_percent: Decimal | None = None


# The payout store's amount columns: NUMERIC(28, 10). A value outside it is refused with its line,
# never rounded, nor left to the database to reject mid-import.
AMOUNT_PRECISION, AMOUNT_SCALE = 28, 10


# -- reading records -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Records:
    columns: list[str]          # header (CSV) or the union of keys (JSON)
    rows: list[tuple[int, dict[str, Any]]]
    where: str                  # "line" or "record"
    has_header: bool            # CSV: the columns are the first line's


def _read_records(path: Path) -> _Records:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from None
    stripped = text.lstrip()
    if not stripped:
        raise FeedError(path, "the file is empty")
    if stripped[0] in "[{":
        return _read_json(path, text)
    return _read_csv(path, text)


def _read_csv(path: Path, text: str) -> _Records:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FeedError(path, f"not a CSV file: {exc}", line=1) from None
    header = [h.strip() for h in header]
    if len(header) < 2:
        raise FeedError(path, "the first line is not a CSV header (fewer than two columns)", line=1)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise FeedError(path, f"column {name!r} appears twice in the header", line=1)
        seen.add(name)
    rows: list[tuple[int, dict[str, Any]]] = []
    start = 2
    try:
        for values in reader:
            line = start
            start = reader.line_num + 1
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise FeedError(path, f"{len(values)} values for {len(header)} columns", line=line)
            _check_values(path, line, "line", dict(zip(header, values)))
            rows.append((line, dict(zip(header, values))))
    except csv.Error as exc:
        raise FeedError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
    return _Records(header, rows, "line", True)


def _read_json(path: Path, text: str) -> _Records:
    stripped = text.strip()
    items: list[tuple[int, Any]]
    try:
        data = _json(path, stripped, None)
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise FeedError(path, "a JSON object must hold exactly one list of records "
                                      "(e.g. {\"value\": [...]})")
            data = lists[0]
        if not isinstance(data, list):
            raise FeedError(path, "JSON must be a list of records, an object holding one, or JSON Lines")
        items, where = list(enumerate(data, start=1)), "record"
    except json.JSONDecodeError as first:
        # JSON Lines: one object per line; line numbers are the file's.
        items, where = [], "line"
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                items.append((number, _json(path, raw, number)))
            except json.JSONDecodeError:
                if number == 1 and first.lineno > 1:
                    raise FeedError(path, f"malformed JSON: {first.msg}", line=first.lineno) from None
                raise FeedError(path, "malformed JSON", line=number) from None
    columns: dict[str, None] = {}
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, item in items:
        if not isinstance(item, dict):
            raise FeedError(path, f"expected an object, found {type(item).__name__}", line=number, where=where)
        _check_values(path, number, where, item)
        for key in item:
            columns.setdefault(str(key), None)
        rows.append((number, {str(k): v for k, v in item.items()}))
    if not rows:
        raise FeedError(path, "the file holds no records")
    return _Records(list(columns), rows, where, False)


def _json(path: Path, text: str, line: int | None) -> Any:
    """json.loads, with nesting too deep for the parser's recursion as a FeedError of its line."""
    try:
        return json.loads(text)
    except RecursionError:
        raise FeedError(path, f"JSON nested too deep (more than {MAX_NESTING} levels is never a payout record)",
                        line=line) from None


def _check_values(path: Path, line: int, where: str, record: Mapping[str, Any]) -> None:
    """Refuse a record any of whose columns or values cannot be stored (NUL, oversize, deep nesting)."""
    for key, value in record.items():
        problem = value_problem(key) or value_problem(value)
        if problem:
            raise FeedError(path, f"field {str(key)[:40]!r} {problem}", line=line, where=where)


# -- format detection ------------------------------------------------------------------------------

def _looks_like(columns: list[str]) -> str | None:
    lowered = {c.strip().lower() for c in columns}
    best, score = None, 0
    for name, signature in _LOOKALIKES:
        hits = len(signature & lowered)
        if hits == len(signature) and hits > score:
            best, score = name, hits
    return best


def detect_source(columns: list[str]) -> Source | None:
    lowered = {c.lower() for c in columns}
    if "billing_event_id" in lowered and "transaction_type" in lowered:
        return "aws"
    if "earningid" in lowered:
        return "azure"
    return None


def _check_format(path: Path, records: _Records, wanted: FormatChoice) -> Source:
    found = detect_source(records.columns)
    names = {"aws": "an AWS Marketplace billing-event feed", "azure": "an Azure Marketplace earnings export"}
    if found is None or (wanted != "auto" and found != wanted):
        other = names[found] if found else _looks_like(records.columns)
        expected = (names[wanted] if wanted != "auto"
                    else "an AWS Marketplace billing-event feed (billing_event_id, transaction_type, ...) or an "
                         "Azure Marketplace earnings export (earningId, earningAmount, ...)")
        looks = f"it looks like {other}" if other else "its columns match no known export"
        raise FeedError(path, f"expected {expected}, but {looks} (columns: {', '.join(records.columns[:8])}"
                              f"{', ...' if len(records.columns) > 8 else ''})",
                        line=1 if records.has_header else None)
    return found


# -- values ----------------------------------------------------------------------------------------

class _Bad(ValueError):
    """A value that fails its type; the parser adds the file and line."""


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise _Bad(f"{name} must be a single value, not {type(value).__name__}")
    value = str(value).strip()
    return value or None


def _required(row: Mapping[str, Any], name: str) -> str:
    value = _text(row, name)
    if value is None:
        raise _Bad(f"{name} is empty")
    return value


def _decimal(row: Mapping[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    raw = row.get(name)
    if isinstance(raw, bool):
        raise _Bad(f"{name} must be a number, not {raw!r}")
    value = _text(row, name)
    if value is None:
        if required:
            raise _Bad(f"{name} is empty")
        return None
    try:
        number = Decimal(value.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", value) else value)
    except InvalidOperation:
        raise _Bad(f"{name} must be a number, not {value!r}") from None
    if not number.is_finite():
        raise _Bad(f"{name} must be a finite number, not {value!r}")
    digits, places = _digits(number)
    if digits > AMOUNT_PRECISION - AMOUNT_SCALE or places > AMOUNT_SCALE:
        raise _Bad(f"{name} {value[:50]!r} does not fit the stored amount: at most "
                   f"{AMOUNT_PRECISION - AMOUNT_SCALE} digits before the point and {AMOUNT_SCALE} after")
    return number


def _digits(number: Decimal) -> tuple[int, int]:
    """Digits before the decimal point and after it, from the sign-digits-exponent form (no arithmetic,
    so 1E+999999 costs nothing)."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)    # finite, checked before
    digits = tuple(digits)
    while exponent < 0 and digits and digits[-1] == 0:    # 1.2500 has two places, not four
        digits, exponent = digits[:-1], exponent + 1
    while digits[:1] == (0,):
        digits = digits[1:]
    return max(len(digits) + exponent, 0), max(-exponent, 0)


def _date(row: Mapping[str, Any], name: str, *, required: bool = True) -> dt.date | None:
    value = _text(row, name)
    if value is None:
        if required:
            raise _Bad(f"{name} is empty")
        return None
    candidate = value.replace("Z", "+00:00")
    try:
        if len(candidate) == 10:
            return dt.date.fromisoformat(candidate)
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError:
        for fmt in ("%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S"):
            try:
                return dt.datetime.strptime(value, fmt).date()
            except ValueError:
                continue
        raise _Bad(f"{name} must be a date (YYYY-MM-DD), not {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc)
    return parsed.date()


def _currency(row: Mapping[str, Any], name: str) -> str:
    value = _required(row, name).upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise _Bad(f"{name} must be an ISO 4217 code such as USD, not {value!r}")
    return value


def _flag(row: Mapping[str, Any], name: str) -> bool:
    raw = row.get(name)
    if isinstance(raw, bool):
        return raw
    value = (_text(row, name) or "").lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise _Bad(f"{name} must be 1 or 0, not {value or 'empty'!r}")


def _choice(value: str, name: str, choices: tuple[str, ...] | dict[str, Any]) -> str:
    if value not in choices:
        raise _Bad(f"{name} {value!r} is not one of: {', '.join(choices)}")
    return value


# -- per source ------------------------------------------------------------------------------------

def _aws_line(number: int, row: Mapping[str, Any]) -> PayoutLine:
    updated = _text(row, "update_date")
    if updated is not None:
        _version(updated)   # refused here, with its line, rather than when two versions are compared
    action = _choice(_required(row, "action").upper(), "action", AWS_ACTIONS)
    transaction_type = _choice(_required(row, "transaction_type").upper(), "transaction_type",
                               AWS_TRANSACTION_TYPES)
    kind = AWS_TRANSACTION_TYPES[transaction_type]
    revenue = kind not in ("tax", "disbursement") and action != "DISBURSED"
    return PayoutLine(
        source="aws", key=_required(row, "billing_event_id"), line_no=number, kind=kind,
        amount=_decimal(row, "amount"), currency=_currency(row, "currency"),
        # Revenue lines need their invoice date: it picks the rate a foreign-currency line converts at.
        event_date=_date(row, "invoice_date", required=revenue) or _date(row, "payment_due_date", required=False),
        agreement_id=_text(row, "agreement_id"), customer_account=_text(row, "end_user_account_id"),
        product_id=_text(row, "product_id"), reference=_text(row, "transaction_reference_id"),
        parent_key=_text(row, "parent_billing_event_id"), action=action, transaction_type=transaction_type,
        balance_impacting=_flag(row, "balance_impacting"), raw=dict(row),
        updated=updated, deleted=_text(row, "delete_date") is not None)


def _azure_line(number: int, row: Mapping[str, Any], *, has_currency: bool) -> PayoutLine:
    if has_currency:
        amount, currency = _decimal(row, "earningAmount"), _currency(row, "transactionCurrency")
    else:
        _decimal(row, "earningAmount")
        amount, currency = _decimal(row, "earningAmountUSD"), "USD"
    transaction_type = _text(row, "transactionType")
    reversal = (any(word in transaction_type.lower() for word in _AZURE_REVERSALS) if transaction_type
                else amount < 0)
    store_fee = _decimal(row, "storeFee", required=False)
    fee = None
    if store_fee is not None and store_fee != 0:
        if not has_currency:
            raise _Bad("storeFee is in the transaction currency, but the export has no transactionCurrency")
        # The fee is kept from a sale and given back with a refund: it has the opposite sign of the earning.
        fee = -abs(store_fee) if amount >= 0 else abs(store_fee)
    return PayoutLine(
        source="azure", key=_required(row, "earningId"), line_no=number, kind="refund" if reversal else "gross",
        amount=amount - (fee or 0), currency=currency, event_date=_date(row, "earningDate"),
        agreement_id=_text(row, "subscriptionId"), customer_account=_required(row, "customerId"),
        product_id=_text(row, "productId") or _text(row, "assetId"), reference=_text(row, "OrderId"),
        action=_required(row, "earningType"), transaction_type=transaction_type, fee=fee, raw=dict(row))


def parse_feed(path: str | Path, fmt: FormatChoice = "auto") -> Feed:
    """Every line of a payout export, validated; FeedError on the first problem (file, line, reason).

    A file is refused whole: missing columns, a value of the wrong type, an unknown action or
    transaction type, the same billing_event_id / earningId twice, or the columns of another export."""
    path = Path(path)
    if fmt not in FORMAT_CHOICES:
        raise FeedError(path, f"unknown format {fmt!r}; choose one of: {', '.join(FORMAT_CHOICES)}")
    records = _read_records(path)
    source = _check_format(path, records, fmt)
    required = AWS_COLUMNS if source == "aws" else AZURE_COLUMNS
    present = set(records.columns)
    has_currency = source == "aws" or "transactionCurrency" in present
    if source == "azure" and not has_currency and "earningAmountUSD" not in present:
        required = (*required, "transactionCurrency")
    header_missing = [c for c in required if c not in present]
    if header_missing and records.has_header:
        raise FeedError(path, f"missing column(s) {', '.join(header_missing)}", line=1)
    lines: list[PayoutLine] = []
    first_seen: dict[str, int] = {}
    key_name = "billing_event_id" if source == "aws" else "earningId"
    for number, row in records.rows:
        missing = [c for c in required if c not in row]
        if missing:
            raise FeedError(path, f"missing field(s) {', '.join(missing)}", line=number, where=records.where)
        try:
            line = (_aws_line(number, row) if source == "aws"
                    else _azure_line(number, row, has_currency=has_currency))
        except _Bad as exc:
            raise FeedError(path, str(exc), line=number, where=records.where) from None
        if line.key in first_seen:
            earlier = lines[first_seen[line.key]]
            if line.updated is None or earlier.updated is None or line.updated == earlier.updated:
                raise FeedError(path, f"duplicate {key_name} {line.key!r} (first on {records.where} "
                                      f"{earlier.line_no})", line=number, where=records.where)
            # the feed's rule: the version with the latest update_date stands
            if _version(line.updated) > _version(earlier.updated):
                lines[first_seen[line.key]] = line
            continue
        first_seen[line.key] = len(lines)
        lines.append(line)
    if not lines:
        raise FeedError(path, "the file holds a header but no lines")
    return Feed(str(path), source, lines)


def _version(stamp: str) -> dt.datetime:
    """update_date as a comparable moment (ISO date or date-time; naive is UTC)."""
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"update_date {stamp!r} is not an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def version_of(stamp: str) -> dt.datetime:
    """update_date as a comparable moment; ValueError when it is none."""
    try:
        return _version(stamp)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def parse_agreements(path: str | Path) -> list[AgreementOffer]:
    """agreement_id → offer_id pairs: a CSV or JSON with agreement_id and offer_id (the AWS agreement
    feed's names, or agreementId/offerId), or DescribeAgreement responses (proposalSummary.offerId)."""
    path = Path(path)
    records = _read_records(path)
    out: list[AgreementOffer] = []
    seen: dict[str, AgreementOffer] = {}
    for number, row in records.rows:
        summary = row.get("proposalSummary")
        offer = row.get("offer_id") or row.get("offerId") or (summary.get("offerId")
                                                               if isinstance(summary, dict) else None)
        agreement = row.get("agreement_id") or row.get("agreementId")
        if not agreement or not offer:
            raise FeedError(path, "an agreements file needs agreement_id and offer_id on every line",
                            line=number, where=records.where)
        margin_value = next((row.get(k) for k in ("reseller_margin_percent", "resellerMarginPercent")
                             if row.get(k) not in (None, "")), None)
        margin = None
        if margin_value is not None:
            try:
                margin = Decimal(str(margin_value).strip())
            except InvalidOperation:
                margin = None
            if margin is None or not margin.is_finite() or not 0 <= margin < 100:
                raise FeedError(path, f"reseller_margin_percent {margin_value!r} is not a percentage from 0 up to "
                                      "100", line=number, where=records.where)
        pair = AgreementOffer(str(agreement).strip(), str(offer).strip(), number, margin)
        earlier = seen.get(pair.agreement_id)
        if earlier is not None and earlier.offer_id != pair.offer_id:
            raise FeedError(path, f"agreement {pair.agreement_id!r} names offer {pair.offer_id!r} but "
                                  f"{records.where} {earlier.line_no} names {earlier.offer_id!r}",
                            line=number, where=records.where)
        if earlier is None:
            seen[pair.agreement_id] = pair
            out.append(pair)
    return out


def iter_kinds(line: PayoutLine) -> Iterator[tuple[Kind, Decimal]]:
    """The money of one line by kind: one part, or two for an Azure earning with its store fee."""
    yield line.kind, line.amount
    if line.fee is not None:
        yield "fee", line.fee


__all__ = ["AWS_ACTIONS", "AWS_COLUMNS", "AWS_TRANSACTION_TYPES", "AZURE_COLUMNS", "FORMAT_CHOICES", "KINDS",
           "SOURCES", "AgreementOffer", "Feed", "FeedError", "FormatChoice", "Kind", "PayoutLine", "Source",
           "detect_source", "iter_kinds", "parse_agreements", "parse_feed", "version_of"]
