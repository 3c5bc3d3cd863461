"""SoqlError and the caret-annotated message layout Salesforce uses for query errors.

Clients match on these strings, so the layout mirrors the real API byte for byte."""

from __future__ import annotations


class SoqlError(Exception):
    """A query the org would refuse; `error_code` and `message` go straight into the REST error body."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(error_code, message)
        self.error_code = error_code
        self.message = message

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


def caret_message(text: str, line: int, column: int, detail: str) -> str:
    """`detail` prefixed with the offending query line and a caret under the 1-based column."""
    lines = text.split("\n")
    source = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
    return f"\n{source}\n{' ' * (column - 1)}^\nERROR at Row:{line}:Column:{column}\n{detail}"


def error_at(code: str, text: str, pos: tuple[int, int], detail: str) -> SoqlError:
    return SoqlError(code, caret_message(text, pos[0], pos[1], detail))
