"""Cloud marketplace payout reconciliation: import AWS Marketplace billing events and Azure
Marketplace earnings, match them to deals (agreement → offer → customer account plus product),
and write each deal's reconciliation status and net received amount on the opportunity."""

from __future__ import annotations

import datetime as dt
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.config import Settings
    from connector.marketplace.reconcile import Rules


def rules_from(settings: Settings, today: dt.date | None = None) -> Rules:
    """The reconciliation rules of the connector's settings, judged as of `today` (default: today, UTC)."""
    from connector.marketplace.reconcile import Rules, Tolerance

    return Rules(today=today or dt.datetime.now(dt.timezone.utc).date(),
                 missing_payout_days=settings.reconcile_missing_payout_days,
                 tolerance=Tolerance(absolute=settings.reconcile_tolerance,
                                     fx_percent=settings.reconcile_fx_tolerance_percent))


# Names are imported on first use: `cosell` registers this package's commands without
# paying for what the command it runs does not use.
_LAZY = {
    "FeedError": "connector.marketplace.feeds",
    "parse_agreements": "connector.marketplace.feeds",
    "parse_feed": "connector.marketplace.feeds",
    "EXCEPTIONS": "connector.marketplace.reconcile",
    "STATUSES": "connector.marketplace.reconcile",
    "Outcome": "connector.marketplace.reconcile",
    "Rules": "connector.marketplace.reconcile",
    "Tolerance": "connector.marketplace.reconcile",
    "reconcile": "connector.marketplace.reconcile",
    "ImportResult": "connector.marketplace.store",
    "PayoutLedger": "connector.marketplace.store",
    "ReconcileResult": "connector.marketplace.store",
    "render_outcomes": "connector.marketplace.store",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = ["EXCEPTIONS", "STATUSES", "FeedError", "ImportResult", "Outcome", "PayoutLedger", "ReconcileResult",
           "Rules", "Tolerance", "parse_agreements", "parse_feed", "reconcile", "render_outcomes", "rules_from"]
