"""The database side of payout reconciliation: the connector's own tables of imported payout
lines, agreement → offer pairs and reconciliation outcomes, and the writes of the status and
the net received amount onto the mirrored opportunity rows (the next sync run carries them to
Salesforce). An import is one transaction: a refused file or a failure leaves nothing behind."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (Boolean, Column, Connection, Date, Index, Integer, MetaData, String, Table, Text, and_,
                        delete, false, insert, or_, select, update)

from connector.errors import ConfigurationError
from connector.marketplace.feeds import AgreementOffer, Feed, FeedError, PayoutLine, version_of
from connector.marketplace.reconcile import MARKETPLACES, PICKLIST, Deal, Outcome, Rules, picklist_value, reconcile
from connector.schema_mirror.currency import CurrencyTable
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import ExactDecimal, UtcDateTime
from connector.sync.state import add_missing_columns

_CHUNK = 500    # keys per IN (...) lookup, well under every database's bound-parameter limit
# Opportunity columns the reconciliation reads (those the org lacks read as empty) and the two it writes.
_DEAL_COLUMNS = ("sfid", "name", "amount", "currencyisocode", "closedate", "iswon", "isclosed",
                 "cloud_marketplace__c", "marketplace_offer_id__c", "marketplace_agreement_id__c",
                 "customer_cloud_account_id__c", "marketplace_product_id__c")
STATUS_COLUMN, NET_COLUMN = "reconciliation_status__c", "net_received_amount__c"


@dataclass(frozen=True)
class MarketplaceTables:
    lines: Table
    agreements: Table
    reconciliation: Table

    @classmethod
    def build(cls, schema: str | None, prefix: str) -> MarketplaceTables:
        md = MetaData(schema=schema)
        lines_name = meta_table_name("marketplace_lines", prefix)
        lines = Table(
            lines_name, md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("source", String(10), nullable=False),          # aws, azure
            Column("line_key", String(255), nullable=False),       # billing_event_id, earningId
            Column("file_name", Text, nullable=False),
            Column("line_no", Integer, nullable=False),
            Column("kind", String(20), nullable=False),
            Column("action", String(40)),                          # AWS action; Azure earningType
            Column("transaction_type", String(60)),
            Column("amount", ExactDecimal(28, 10), nullable=False),
            Column("fee", ExactDecimal(28, 10)),
            Column("currency", String(3), nullable=False),
            Column("event_date", Date),
            Column("agreement_id", String(255)),
            Column("customer_account", String(255)),
            Column("product_id", String(255)),
            Column("reference", String(255)),
            Column("parent_key", String(255)),
            Column("balance_impacting", Boolean, nullable=False),
            Column("fingerprint", Text, nullable=False),          # its meaning, to tell a re-import apart
            Column("raw", Text, nullable=False),                  # the line as read
            Column("imported_at", UtcDateTime, nullable=False),
            Index(f"ux_{lines_name}_key", "source", "line_key", unique=True),
        )
        agreements = Table(
            meta_table_name("marketplace_agreements", prefix), md,
            Column("agreement_id", String(255), primary_key=True),
            Column("offer_id", String(255), nullable=False),
            Column("reseller_margin_percent", ExactDecimal(9, 4)),   # CPPO, when the agreement says it
            Column("file_name", Text, nullable=False),
            Column("imported_at", UtcDateTime, nullable=False),
        )
        money = {name: ExactDecimal(18, 2) for name in ("expected", "gross", "fee", "refunds", "credits",
                                                         "adjustments", "net", "received", "outstanding",
                                                         "difference")}
        reconciliation = Table(
            meta_table_name("reconciliation", prefix), md,
            Column("subject", String(600), primary_key=True),     # the deal's _uuid, or what a payout names
            Column("status", String(30), nullable=False),
            Column("deal_uuid", String(36)),
            Column("sfid", String(18)),
            Column("deal_name", Text),
            Column("source", String(20)),
            Column("matched_by", String(60)),
            Column("currency", String(3)),
            *(Column(name, kind) for name, kind in money.items()),
            Column("payout_currencies", String(60)),
            Column("lines", Integer, nullable=False),
            Column("detail", Text),
            Column("reconciled_at", UtcDateTime, nullable=False),  # when this outcome last changed
        )
        return cls(lines, agreements, reconciliation)

    def create(self, conn: Connection) -> None:
        self.lines.metadata.create_all(conn, checkfirst=True)
        add_missing_columns(conn, self.reconciliation)   # received/outstanding, on a database made before them
        add_missing_columns(conn, self.agreements)       # reseller_margin_percent


@dataclass
class ReconcileResult:
    outcomes: list[Outcome]
    deals_updated: list[tuple[Deal, dict[str, Any]]] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(o.status for o in self.outcomes)


@dataclass
class ImportResult:
    path: str
    source: str
    lines: int
    imported: int
    already_imported: int
    agreements_added: int
    reconciliation: ReconcileResult
    dry_run: bool = False


class PayoutLedger:
    """Imports payout files and reconciles them against the mirrored opportunities of one database."""

    def __init__(self, mirror: SchemaMirror):
        self.mirror = mirror
        self.tables = MarketplaceTables.build(mirror.schema, mirror.prefix)

    # -- import --------------------------------------------------------------------------------------
    @contextmanager
    def _unit_of_work(self, dry_run: bool) -> Iterator[tuple[Connection, CurrencyTable]]:
        """One transaction, committed when the block ends cleanly (rolled back instead with dry_run),
        rolled back on any error; the connector's tables exist and the org's rates are read inside it."""
        with self.mirror.engine.connect() as conn:
            trans = conn.begin()
            try:
                self.tables.create(conn)
                yield conn, CurrencyTable.load(conn, self.mirror.schema, self.mirror.prefix)
                trans.rollback() if dry_run else trans.commit()
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise

    def import_feed(self, feed: Feed, agreements: Sequence[AgreementOffer] = (), *, agreements_file: str = "",
                    rules: Rules, dry_run: bool = False) -> ImportResult:
        """Store the feed's new lines and the agreement pairs, reconcile, write the opportunities: all in
        one transaction, rolled back on any error (or at the end with dry_run). A line imported before
        with the same values is skipped; with different values the whole file is refused."""
        opportunity = self._opportunity()
        with self._unit_of_work(dry_run) as (conn, rates):
            fresh, replaced = self._new_lines(conn, feed)
            self._check_currencies(feed, fresh, rates)
            added = self._add_agreements(conn, agreements, agreements_file)
            now = dt.datetime.now(dt.timezone.utc)
            if replaced:   # a later version of an event imported before stands (the feed's rule)
                t = self.tables.lines
                conn.execute(delete(t).where(t.c.source == feed.source, t.c.line_key.in_(replaced)))
            if fresh:
                conn.execute(insert(self.tables.lines), [self._line_row(feed.path, ln, now) for ln in fresh])
            result = self._reconcile(conn, opportunity, rates, rules)
        return ImportResult(feed.path, feed.source, len(feed.lines), len(fresh), len(feed.lines) - len(fresh),
                            added, result, dry_run)

    def reconcile(self, *, rules: Rules, dry_run: bool = False) -> ReconcileResult:
        """Reconcile the lines imported so far (say, to find payouts that became overdue)."""
        opportunity = self._opportunity()
        with self._unit_of_work(dry_run) as (conn, rates):
            return self._reconcile(conn, opportunity, rates, rules)

    def outcomes(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The stored outcomes (of the last reconciliation), exceptions first."""
        t = self.tables.reconciliation
        with self.mirror.engine.begin() as conn:
            self.tables.create(conn)
            query = select(t).order_by(t.c.status, t.c.deal_name, t.c.subject)
            if statuses is not None:
                query = query.where(t.c.status.in_(list(statuses)))
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- steps ---------------------------------------------------------------------------------------
    def _opportunity(self) -> Table:
        table = self.mirror.table("Opportunity")
        missing = [c for c in (STATUS_COLUMN, NET_COLUMN, "_uuid") if c not in table.c]
        if missing:
            raise ConfigurationError(f"the mirrored opportunity table has no column {', '.join(missing)}: map "
                                     "Reconciliation_Status__c and Net_Received_Amount__c (read_write) and run "
                                     "`cosell mirror`")
        return table

    def _new_lines(self, conn: Connection, feed: Feed) -> tuple[list[PayoutLine], list[str]]:
        """The lines to store, and the keys of stored lines a later version (update_date) replaces."""
        t = self.tables.lines
        stored: dict[str, Any] = {}
        keys = [ln.key for ln in feed.lines]
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            for row in conn.execute(select(t.c.line_key, t.c.fingerprint, t.c.file_name, t.c.line_no, t.c.raw)
                                    .where(t.c.source == feed.source, t.c.line_key.in_(chunk))):
                stored[row.line_key] = row
        fresh, replaced = [], []
        key_name = "billing_event_id" if feed.source == "aws" else "earningId"
        for line in feed.lines:
            before = stored.get(line.key)
            if before is None:
                fresh.append(line)
            elif _later_version(line, json.loads(before.raw) if before.raw else {}):
                fresh.append(line)
                replaced.append(line.key)
            elif before.fingerprint != line.fingerprint():
                raise FeedError(feed.path, f"{key_name} {line.key!r} was imported before (from {before.file_name} "
                                           f"line {before.line_no}) with different values; payout lines never "
                                           "change, so this looks like a different export", line=line.line_no)
        return fresh, replaced

    @staticmethod
    def _check_currencies(feed: Feed, lines: Iterable[PayoutLine], rates: CurrencyTable) -> None:
        if not rates.is_multi_currency:
            return
        for line in lines:
            if line.currency not in rates.currencies:
                raise FeedError(feed.path, f"currency {line.currency} is not one of the org's currencies "
                                           f"({', '.join(sorted(rates.currencies))}), so it cannot be compared",
                                line=line.line_no)

    def _add_agreements(self, conn: Connection, pairs: Sequence[AgreementOffer], file_name: str) -> int:
        if not pairs:
            return 0
        t = self.tables.agreements
        known = dict(conn.execute(select(t.c.agreement_id, t.c.offer_id)).all())
        now = dt.datetime.now(dt.timezone.utc)
        rows = []
        for pair in pairs:
            before = known.get(pair.agreement_id)
            if before is not None and before != pair.offer_id:
                raise FeedError(file_name, f"agreement {pair.agreement_id!r} was imported before with offer "
                                           f"{before!r}, not {pair.offer_id!r}", line=pair.line_no)
            if before is None:
                rows.append({"agreement_id": pair.agreement_id, "offer_id": pair.offer_id, "file_name": file_name,
                             "reseller_margin_percent": pair.reseller_margin_percent, "imported_at": now})
        if rows:
            conn.execute(insert(t), rows)
        return len(rows)

    @staticmethod
    def _line_row(file_name: str, line: PayoutLine, now: dt.datetime) -> dict[str, Any]:
        return {"source": line.source, "line_key": line.key, "file_name": file_name, "line_no": line.line_no,
                "kind": line.kind, "action": line.action, "transaction_type": line.transaction_type,
                "amount": line.amount, "fee": line.fee, "currency": line.currency, "event_date": line.event_date,
                "agreement_id": line.agreement_id, "customer_account": line.customer_account,
                "product_id": line.product_id, "reference": line.reference, "parent_key": line.parent_key,
                "balance_impacting": line.balance_impacting, "fingerprint": line.fingerprint(), "raw": line.raw_json(),
                "imported_at": now}

    def _stored_lines(self, conn: Connection) -> list[PayoutLine]:
        t = self.tables.lines
        out = []
        for r in conn.execute(select(t).order_by(t.c.id)):
            raw = json.loads(r.raw) if r.raw else {}   # the line as read: its version, deletion, disbursement
            out.append(PayoutLine(source=r.source, key=r.line_key, line_no=r.line_no, kind=r.kind, amount=r.amount,
                                  currency=r.currency, event_date=r.event_date, agreement_id=r.agreement_id,
                                  customer_account=r.customer_account, product_id=r.product_id, reference=r.reference,
                                  parent_key=r.parent_key, action=r.action, transaction_type=r.transaction_type,
                                  balance_impacting=bool(r.balance_impacting), fee=r.fee, raw=raw,
                                  updated=raw.get("update_date") or None, deleted=bool(raw.get("delete_date"))))
        return out

    @staticmethod
    def _deals(conn: Connection, opportunity: Table) -> tuple[list[Deal], dict[str, dict[str, Any]]]:
        c = opportunity.c
        wanted = [c[name] for name in _DEAL_COLUMNS if name in c]
        # Only deals a payout can name, or that expect one: the rest of a large org stays on disk.
        reachable = [c[name].is_not(None) for name in ("marketplace_agreement_id__c", "marketplace_offer_id__c")
                     if name in c]
        if "customer_cloud_account_id__c" in c and "marketplace_product_id__c" in c:
            reachable.append(and_(c.customer_cloud_account_id__c.is_not(None),
                                  c.marketplace_product_id__c.is_not(None)))
        if "cloud_marketplace__c" in c:
            reachable.append(c.cloud_marketplace__c.in_(list(MARKETPLACES.values())))
        query = select(c._uuid, c[STATUS_COLUMN], c[NET_COLUMN], *wanted).where(or_(false(), *reachable))
        deals, current = [], {}
        for row in conn.execute(query):
            v = row._mapping
            deals.append(Deal(uuid=v["_uuid"], sfid=v.get("sfid"), name=v.get("name"), amount=v.get("amount"),
                              currency=v.get("currencyisocode"), close_date=v.get("closedate"),
                              is_won=bool(v.get("iswon")), is_closed=bool(v.get("isclosed")),
                              marketplace=v.get("cloud_marketplace__c"),
                              offer_id=v.get("marketplace_offer_id__c"),
                              agreement_id=v.get("marketplace_agreement_id__c"),
                              customer_account=v.get("customer_cloud_account_id__c"),
                              product_id=v.get("marketplace_product_id__c")))
            current[v["_uuid"]] = {STATUS_COLUMN: v[STATUS_COLUMN], NET_COLUMN: v[NET_COLUMN]}
        return deals, current

    def _reconcile(self, conn: Connection, opportunity: Table, rates: CurrencyTable,
                   rules: Rules) -> ReconcileResult:
        deals, current = self._deals(conn, opportunity)
        a = self.tables.agreements.c
        stored = conn.execute(select(a.agreement_id, a.offer_id, a.reseller_margin_percent)).all()
        offers = {r.agreement_id: r.offer_id for r in stored}
        margins = {r.agreement_id: r.reseller_margin_percent for r in stored if r.reseller_margin_percent is not None}
        places = {iso: c.decimal_places for iso, c in rates.currencies.items()}
        outcomes = reconcile(deals, self._stored_lines(conn), offers, rates.rate, places=places,
                             corporate=rates.corporate.iso_code if rates.corporate else None, rules=rules,
                             margins=margins)
        result = ReconcileResult(outcomes)
        t = self.tables.reconciliation
        wrote = {r.subject for r in conn.execute(select(t.c.subject, t.c.status)) if r.status in PICKLIST}
        for outcome in outcomes:
            changes = _deal_changes(outcome, current.get(outcome.subject, {}), wrote=outcome.subject in wrote)
            if outcome.deal is not None and changes:
                conn.execute(update(opportunity).where(opportunity.c._uuid == outcome.deal.uuid).values(**changes))
                result.deals_updated.append((outcome.deal, changes))
        self._store_outcomes(conn, outcomes)
        return result

    def _store_outcomes(self, conn: Connection, outcomes: list[Outcome]) -> None:
        """Keep one row per subject, touching only rows whose outcome changed."""
        t = self.tables.reconciliation
        before = {r.subject: r._mapping for r in conn.execute(select(t))}
        now = dt.datetime.now(dt.timezone.utc)
        seen = set()
        for outcome in outcomes:
            seen.add(outcome.subject)
            row = _outcome_row(outcome)
            old = before.get(outcome.subject)
            if old is None:
                conn.execute(insert(t).values(subject=outcome.subject, reconciled_at=now, **row))
            elif any(_differs(old[k], v) for k, v in row.items()):
                conn.execute(update(t).where(t.c.subject == outcome.subject).values(reconciled_at=now, **row))
        gone = [s for s in before if s not in seen]
        for start in range(0, len(gone), _CHUNK):
            conn.execute(delete(t).where(t.c.subject.in_(gone[start:start + _CHUNK])))


def _later_version(line: PayoutLine, stored: dict[str, Any]) -> bool:
    """Whether `line` is a later version of the stored one: a deletion of it, or a later update_date (a
    version that has one is later than one that has none)."""
    stored_update = stored.get("update_date") or None
    if line.deleted and not stored.get("delete_date"):
        return True
    if not line.updated or line.updated == stored_update:
        return False
    if not stored_update:
        return True
    try:
        return version_of(line.updated) > version_of(stored_update)
    except ValueError:
        return False


def _differs(old: Any, new: Any) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        return (old is None) != (new is None) or (old is not None and Decimal(old) != Decimal(new))
    return old != new


def _deal_changes(outcome: Outcome, current: dict[str, Any], *, wrote: bool = False) -> dict[str, Any]:
    """The opportunity columns this outcome changes: the status picklist, and for a deal with payouts
    the net received in its currency. Nothing for statuses the picklist does not have, except that
    what an earlier reconciliation wrote (`wrote`) is cleared rather than left standing: a deal that
    was Matched and whose payout became ambiguous must not keep saying Matched."""
    status = picklist_value(outcome)
    if outcome.deal is None:
        return {}
    if status is None:
        cleared = {STATUS_COLUMN: None, NET_COLUMN: None} if wrote else {}
        return {k: v for k, v in cleared.items() if _differs(current.get(k), v)}
    wanted: dict[str, Any] = {STATUS_COLUMN: status}
    if outcome.lines:
        # Net_Received_Amount__c is what reached the bank, not what was invoiced
        wanted[NET_COLUMN] = outcome.received
    return {k: v for k, v in wanted.items() if _differs(current.get(k), v)}


def _outcome_row(outcome: Outcome) -> dict[str, Any]:
    deal = outcome.deal
    row = {"status": outcome.status, "deal_uuid": deal.uuid if deal else None, "sfid": deal.sfid if deal else None,
           "deal_name": deal.name if deal else None, "source": outcome.source, "matched_by": outcome.matched_by,
           "currency": outcome.currency, "expected": outcome.expected, "gross": outcome.gross, "fee": outcome.fee,
           "refunds": outcome.refunds, "credits": outcome.credits, "adjustments": outcome.adjustments,
           "net": outcome.net, "received": outcome.received, "outstanding": outcome.outstanding,
           "difference": outcome.difference, "payout_currencies": outcome.payout_currencies,
           "lines": outcome.lines, "detail": outcome.detail}
    return row


def outcome_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored outcome as plain JSON values (decimals as strings, dates ISO)."""
    return {k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, (dt.date, dt.datetime))
                else v) for k, v in row.items()}





REPORT_COLUMNS = ("status", "deal_name", "sfid", "source", "matched_by", "currency", "expected", "gross", "fee",
                  "refunds", "credits", "adjustments", "net", "received", "outstanding", "difference",
                  "payout_currencies", "lines", "detail", "subject", "reconciled_at")


def render_outcomes(rows: list[dict[str, Any]], fmt: str) -> str:
    """Stored outcomes as CSV or JSON (the table form is the CLI's)."""
    import json

    plain = [{k: outcome_json(r).get(k) for k in REPORT_COLUMNS} for r in rows]
    if fmt == "json":
        return json.dumps(plain, indent=2)
    if fmt == "csv":
        from connector.spreadsheet import csv_text

        return csv_text(plain, list(REPORT_COLUMNS))
    raise ValueError(f"unknown format {fmt!r}; choose one of: table, csv, json")


__all__ = ["REPORT_COLUMNS", "ImportResult", "MarketplaceTables", "PayoutLedger", "ReconcileResult", "outcome_json",
           "render_outcomes"]
