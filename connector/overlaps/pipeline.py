"""The leading indicator of a co-sell program: how fast a mapped overlap becomes a deal
registration, a submission and an approval — per partner and overall, median and 90th
percentile, in days.

The clock starts when the overlap was first imported. Registration is when the registration
was made from the overlap; submission is the registration's Submitted_At__c (the latest
submission, after a resubmit); approval is its Decided_At__c when the registration is Approved
(or Expired after approval). Only overlaps that reached a stage count toward that stage's
figures; `overlaps` and the `*_count` fields give the funnel. Percentiles are nearest-rank:
the p90 of n durations is the ceil(0.9 n)-th smallest, a duration that really occurred."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from connector.overlaps.book import OverlapBook

APPROVED = frozenset({"Approved", "Expired"})   # Expired is only reached from Approved
STAGES = ("registered", "submitted", "approved")


@dataclass(frozen=True)
class StageFigures:
    count: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class PipelineRow:
    partner: str                     # a partner's name, or "(all partners)"
    overlaps: int                    # matched overlaps (the population a registration can come from)
    registered: StageFigures
    submitted: StageFigures
    approved: StageFigures
    partner_account: str | None = None   # the partner's Account Id (its row UUID before Salesforce has it)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ALL = "(all partners)"


def nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _figures(days: list[float]) -> StageFigures:
    if not days:
        return StageFigures(0, None, None)
    return StageFigures(len(days), round(statistics.median(days), 2), round(nearest_rank(days, 0.9), 2))


def _days(start: dt.datetime, end: dt.datetime | None) -> float | None:
    if end is None:
        return None
    return max(0.0, (end - start).total_seconds() / 86400)


def pipeline_report(book: OverlapBook) -> list[PipelineRow]:
    """One row per partner with matched or registered overlaps, then the overall row. A partner is its Account
    (the overlap book resolved every spelling of its name to it), named by the account's current name, so
    "Accenture", "ACCENTURE" and "Accenture plc" are one row."""
    book.ensure_tables()
    o = book.overlaps
    reg = book.portal.tables["Deal_Registration__c"]
    account = book.portal.tables["Account"]
    with book.engine.connect() as conn:
        accounts = {r._uuid: (r.sfid, r.name) for r in conn.execute(
            select(account.c._uuid, account.c.sfid, account.c.name).where(
                account.c._uuid.in_(select(o.c.partner_uuid).distinct())))}
        overlaps = conn.execute(select(o.c.partner_uuid, o.c.partner_name, o.c.status, o.c.first_imported_at, o.c.registered_at,
                                       o.c.registration_uuid)).mappings().all()
        registrations = {r["_uuid"]: r for r in conn.execute(
            select(reg.c._uuid, reg.c.status__c, reg.c.submitted_at__c, reg.c.decided_at__c)).mappings()}
    counted: dict[str, int] = defaultdict(int)
    durations: dict[str, dict[str, list[float]]] = defaultdict(lambda: {s: [] for s in STAGES})
    for row in overlaps:
        if row["status"] != "matched" and not row["registration_uuid"]:
            continue
        start = row["first_imported_at"]
        registration = registrations.get(row["registration_uuid"]) if row["registration_uuid"] else None
        approved_at = registration["decided_at__c"] if registration and registration["status__c"] in APPROVED \
            else None
        stamps = {"registered": row["registered_at"] if registration else None,
                  "submitted": registration["submitted_at__c"] if registration else None,
                  "approved": approved_at}
        for partner in (row["partner_uuid"], ALL):
            counted[partner] += 1
            for stage, end in stamps.items():
                days = _days(start, end)
                if days is not None:
                    durations[partner][stage].append(days)
    spelled = {row["partner_uuid"]: row["partner_name"] for row in overlaps}

    def name(key: str) -> str:
        return ALL if key == ALL else (accounts.get(key, (None, None))[1] or spelled.get(key) or key)

    def account_key(key: str) -> str | None:
        return None if key == ALL else (accounts.get(key, (None, None))[0] or key)

    partners = sorted((p for p in counted if p != ALL), key=lambda p: (name(p), p))
    return [PipelineRow(name(p), counted[p], *(_figures(durations[p][s]) for s in STAGES),
                        partner_account=account_key(p))
            for p in [*partners, *([ALL] if counted else [])]]


__all__ = ["PipelineRow", "StageFigures", "nearest_rank", "pipeline_report"]
