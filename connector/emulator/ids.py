"""Salesforce record Ids: 15-character case-sensitive bodies with the 3-character
case-safe checksum that makes them 18 characters long.

Never invent another Id shape here: the connector parses key prefixes and
compares 15/18-character forms exactly as it must against a real org."""

from __future__ import annotations

import itertools
import threading

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Characters 4-6 of a real Id are the pod and a reserved char; "Dm0" marks the emulator's pod.
POD = "Dm0"


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


def make_id(key_prefix: str, number: int) -> str:
    """The 18-character Id of the `number`-th record of an object."""
    digits = []
    for _ in range(9):
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    if number:
        raise OverflowError("record counter exhausted for this key prefix")
    body = key_prefix + POD + "".join(reversed(digits))
    return body + checksum(body)


class IdAllocator:
    """Hands out Ids per key prefix, thread-safely, never reusing one."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count] = {}
        self._lock = threading.Lock()

    def next(self, key_prefix: str) -> str:
        with self._lock:
            counter = self._counters.setdefault(key_prefix, itertools.count(1))
            return make_id(key_prefix, next(counter))
