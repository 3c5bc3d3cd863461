"""Bounds every value read from an imported file (overlap CSV, payout CSV/JSON/JSONL) must keep
before it goes near a database: no NUL character (PostgreSQL text cannot hold one, SQLite would
keep it silently), no value longer than any export writes, no nesting beyond a flat record's.
It only says what is wrong; each reader adds its file, line and column."""

from __future__ import annotations

from typing import Any

MAX_VALUE_CHARS = 10_000   # an account name, a domain or an id; far above any real export's cell
MAX_NESTING = 8            # a payout record is flat; a little room for a vendor's metadata object


def value_problem(value: Any) -> str | None:
    """Why `value` (a cell, or a JSON value with whatever it holds) cannot be imported, or None.
    Iterative, so a hostile depth costs no recursion."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_NESTING:
            return f"nested more than {MAX_NESTING} levels deep; a record's values are plain values"
        if isinstance(item, str):
            if "\x00" in item:
                return "holds a NUL character (\\0), which no database text column can store; remove it"
            if len(item) > MAX_VALUE_CHARS:
                return f"is {len(item):,} characters long; a value is at most {MAX_VALUE_CHARS:,}"
        elif isinstance(item, dict):
            pending.extend((k, depth + 1) for k in item)
            pending.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in item)
    return None


__all__ = ["MAX_NESTING", "MAX_VALUE_CHARS", "value_problem"]
