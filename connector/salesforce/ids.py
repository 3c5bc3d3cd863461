"""Salesforce record Ids: a 15-character case-sensitive body and the 3-character case-safe
checksum that makes it 18 characters long. The org accepts either form; the API answers with
the 18-character one, which is the form stored locally."""

from __future__ import annotations

__all__ = ["checksum", "is_valid", "to18"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum(id15: str) -> str:
    """The 3-character suffix: one char per 5-char chunk, a bitmap of its upper-case letters."""
    if len(id15) != 15:
        raise ValueError(f"an Id body has 15 characters, not {len(id15)}: {id15!r}")
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:(chunk + 1) * 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_CHECKSUM_ALPHABET[bits])
    return "".join(out)


def to18(value: str) -> str:
    """Normalise a 15- or 18-character Id to its 18-character form."""
    if len(value) == 18:
        return value
    return value + checksum(value)


def is_valid(value: object) -> bool:
    """True for a well-formed 15- or 18-character Id (the checksum must match)."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return False
    if any(ch not in _BASE62 for ch in value):
        return False
    return len(value) == 15 or checksum(value[:15]) == value[15:].upper()
