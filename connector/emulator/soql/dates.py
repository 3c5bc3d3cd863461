"""SOQL relative date literals (TODAY, LAST_N_DAYS:n, THIS_QUARTER, ...) as half-open date ranges.
Computed in UTC (emulated users live in GMT); fiscal years follow the calendar, a new org's default."""

from __future__ import annotations

import datetime as dt

# Literals without an argument, and those taking ':n'. Fiscal variants are included
# because with the default fiscal-year settings they coincide with the calendar ones.
PLAIN_LITERALS = (
    "YESTERDAY", "TODAY", "TOMORROW",
    "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK",
    "LAST_MONTH", "THIS_MONTH", "NEXT_MONTH",
    "LAST_90_DAYS", "NEXT_90_DAYS",
    "LAST_QUARTER", "THIS_QUARTER", "NEXT_QUARTER",
    "LAST_YEAR", "THIS_YEAR", "NEXT_YEAR",
    "LAST_FISCAL_QUARTER", "THIS_FISCAL_QUARTER", "NEXT_FISCAL_QUARTER",
    "LAST_FISCAL_YEAR", "THIS_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
)
N_LITERALS = (
    "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO",
    "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
    "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO",
    "LAST_N_QUARTERS", "NEXT_N_QUARTERS", "N_QUARTERS_AGO",
    "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO",
    "LAST_N_FISCAL_QUARTERS", "NEXT_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO",
    "LAST_N_FISCAL_YEARS", "NEXT_N_FISCAL_YEARS", "N_FISCAL_YEARS_AGO",
)

_DAY = dt.timedelta(days=1)


def _add_months(d: dt.date, months: int) -> dt.date:
    """`d` (always a first-of-month here) moved by whole months."""
    index = d.year * 12 + d.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _periods(kind: str, n: int, start: dt.date, step) -> tuple[dt.date, dt.date]:
    """The LAST_N_x / NEXT_N_x / N_x_AGO shapes around the period that starts at `start`."""
    if kind == "LAST":
        return step(start, -n), start
    if kind == "NEXT":
        return step(start, 1), step(start, n + 1)
    return step(start, -n), step(start, 1 - n)


def date_range(name: str, n: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end) covered by the literal `name` (upper-case) with argument `n`, relative to `today`."""
    name = name.replace("_FISCAL", "")
    if n is None:
        if name == "YESTERDAY":
            return today - _DAY, today
        if name == "TODAY":
            return today, today + _DAY
        if name == "TOMORROW":
            return today + _DAY, today + 2 * _DAY
        if name == "LAST_90_DAYS":
            name, n = "LAST_N_DAYS", 90
        elif name == "NEXT_90_DAYS":
            name, n = "NEXT_N_DAYS", 90
        else:
            relative, unit = name.split("_", 1)
            # THIS_x is "0 x ago"; LAST_x is "1 x ago"; NEXT_x is the single next period.
            if relative == "NEXT":
                name, n = f"NEXT_N_{unit}S", 1
            else:
                name, n = f"N_{unit}S_AGO", 0 if relative == "THIS" else 1
    assert n is not None
    kind = "AGO" if name.endswith("_AGO") else name.split("_", 1)[0]
    unit = name.removesuffix("_AGO").split("_")[-1]
    if unit == "DAYS":
        if kind == "LAST":
            # Unlike the other units, LAST_N_DAYS includes the current day.
            return today - n * _DAY, today + _DAY
        if kind == "NEXT":
            return today + _DAY, today + (n + 1) * _DAY
        return today - n * _DAY, today - (n - 1) * _DAY
    if unit == "WEEKS":
        # Weeks start on Sunday (en_US locale); date.weekday() has Monday == 0.
        start = today - ((today.weekday() + 1) % 7) * _DAY
        return _periods(kind, n, start, lambda d, k: d + 7 * k * _DAY)
    months = {"MONTHS": 1, "QUARTERS": 3, "YEARS": 12}[unit]
    month0 = (today.month - 1) // months * months
    start = dt.date(today.year, month0 + 1, 1)
    return _periods(kind, n, start, lambda d, k: _add_months(d, k * months))
