"""Account overlaps from account-mapping tools: import and match them to the org's accounts,
turn one into a registered deal, and measure how fast overlaps become approved registrations."""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use: `cosell` registers this package's commands without
# paying for what the command it runs does not use.
_LAZY = {
    "ImportResult": "connector.overlaps.book",
    "OverlapBook": "connector.overlaps.book",
    "OverlapError": "connector.overlaps.book",
    "PipelineRow": "connector.overlaps.pipeline",
    "pipeline_report": "connector.overlaps.pipeline",
    "OverlapFileError": "connector.overlaps.source",
    "read_overlaps": "connector.overlaps.source",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = ["ImportResult", "OverlapBook", "OverlapError", "OverlapFileError", "PipelineRow", "pipeline_report",
           "read_overlaps"]
