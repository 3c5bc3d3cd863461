"""CSV that is safe to open in a spreadsheet. A cell starting with = + - @ (or a tab or carriage
return, which some spreadsheets skip before reading a formula) is a formula to Excel, LibreOffice
and Google Sheets, so a partner's Account named `=HYPERLINK(...)` would run when an admin opens the
export. Such a text cell is written with a leading apostrophe, as OWASP's CSV-injection guidance
advises; a number stays a number (a negative amount must still sum), and nothing else changes."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number literal is never a formula, whatever its sign: -3000.00, +5, 1.5e-3.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet must see it: text that would start a formula gets a leading '."""
    if isinstance(value, (int, float, Decimal)) or not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows: Iterable[Mapping[str, Any]], fieldnames: list[str]) -> str:
    """A header line and one line per row, every cell through `safe_cell`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


__all__ = ["FORMULA_STARTS", "csv_text", "safe_cell"]
