"""Salesforce record Ids: 15-character case-sensitive bodies with the 3-character
case-safe checksum that makes them 18 characters long.

Never invent another Id shape here: the connector parses key prefixes and
compares 15/18-character forms exactly as it must against a real org."""

from __future__ import annotations

import itertools
import threading

from connector.salesforce.ids import _BASE62, checksum, is_valid, to18  # noqa: F401 - the emulator's Ids are the org's

# Characters 4-6 of a real Id are the pod and a reserved char; "Dm0" marks the emulator's pod.
POD = "Dm0"



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
