"""Partner attribution: for each partner and period, the sourced, influenced and
delivered pipeline and closed-won revenue it is credited with, with split amounts,
in the corporate currency at the dated rate of each deal's close date.

Pure: the caller hands in opportunities, participants and a conversion function."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

Period = Literal["month", "quarter", "year"]
PERIODS: tuple[str, ...] = get_args(Period)
ATTRIBUTIONS = ("Sourced", "Influenced", "Delivered")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Deal:
    key: str
    name: str
    amount: Decimal | None
    currency: str | None
    close_date: dt.date | None
    is_closed: bool
    is_won: bool


@dataclass(frozen=True)
class Credit:
    """One participant's claim on one deal."""

    deal_key: str
    partner_key: str
    partner_name: str
    attribution: str | None
    split_type: str | None
    split_percent: Decimal | None


@dataclass
class AttributionRow:
    partner_key: str
    partner_name: str
    period: str
    attribution: str
    deals: int = 0
    pipeline: Decimal = Decimal("0.00")
    closed_won: Decimal = Decimal("0.00")
    split_pipeline: Decimal = Decimal("0.00")
    split_closed_won: Decimal = Decimal("0.00")

    def as_dict(self) -> dict[str, str | int]:
        return {"partner": self.partner_name, "partner_id": self.partner_key, "period": self.period,
                "attribution": self.attribution, "deals": self.deals, "pipeline": str(self.pipeline),
                "closed_won": str(self.closed_won), "split_pipeline": str(self.split_pipeline),
                "split_closed_won": str(self.split_closed_won)}


def period_of(day: dt.date, period: Period) -> str:
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == "year":
        return str(day.year)
    raise ValueError(f"unknown period {period!r}; choose one of: {', '.join(PERIODS)}")


def attribute(deals: Iterable[Deal], credits: Iterable[Credit],
              convert: Callable[[Decimal, str | None, dt.date | None], Decimal], *,
              period: Period = "quarter") -> list[AttributionRow]:
    """Rows per (partner, period, attribution). A deal counts in full towards each participant's
    attribution (credit), and by its split percent towards the split amounts; open deals are
    pipeline, won deals closed-won revenue, lost deals neither. Amounts are converted to the
    corporate currency (at the close date's dated rate) and rounded to cents."""
    by_key = {d.key: d for d in deals}
    rows: dict[tuple[str, str, str], AttributionRow] = {}
    for credit in credits:
        deal = by_key.get(credit.deal_key)
        if deal is None or deal.amount is None or deal.close_date is None:
            continue
        if deal.is_closed and not deal.is_won:
            continue
        attribution = credit.attribution or "Unattributed"
        key = (credit.partner_key, period_of(deal.close_date, period), attribution)
        row = rows.setdefault(key, AttributionRow(credit.partner_key, credit.partner_name, key[1], attribution))
        corporate = convert(deal.amount, deal.currency, deal.close_date)
        split = (corporate * (credit.split_percent or Decimal(0)) / 100).quantize(CENT, ROUND_HALF_UP)
        row.deals += 1
        if deal.is_won:
            row.closed_won += corporate
            row.split_closed_won += split
        else:
            row.pipeline += corporate
            row.split_pipeline += split
    order = {a: i for i, a in enumerate(ATTRIBUTIONS)}
    return sorted(rows.values(), key=lambda r: (r.partner_name, r.period, order.get(r.attribution, 9)))
