"""Cloud marketplace payout reconciliation: import AWS Marketplace billing events and Azure
Marketplace earnings, match them to deals (agreement → offer → customer account plus product),
and write each deal's reconciliation status and net received amount on the opportunity."""

from __future__ import annotations

import datetime as dt

from connector.config import Settings
from connector.marketplace.feeds import FeedError, parse_agreements, parse_feed
from connector.marketplace.reconcile import EXCEPTIONS, STATUSES, Outcome, Rules, Tolerance, reconcile
from connector.marketplace.store import ImportResult, PayoutLedger, ReconcileResult, render_outcomes


def rules_from(settings: Settings, today: dt.date | None = None) -> Rules:
    """The reconciliation rules of the connector's settings, judged as of `today` (default: today, UTC)."""
    return Rules(today=today or dt.datetime.now(dt.timezone.utc).date(),
                 missing_payout_days=settings.reconcile_missing_payout_days,
                 tolerance=Tolerance(absolute=settings.reconcile_tolerance,
                                     fx_percent=settings.reconcile_fx_tolerance_percent))


__all__ = ["EXCEPTIONS", "STATUSES", "FeedError", "ImportResult", "Outcome", "PayoutLedger", "ReconcileResult",
           "Rules", "Tolerance", "parse_agreements", "parse_feed", "reconcile", "render_outcomes", "rules_from"]
