"""`cosell marketplace ...` and `cosell report reconciliation`: thin entry points over the payout
ledger. A refused file ends with exit status 2 and the file, line and reason on stderr; nothing
is written then. connector.cli registers these (imported lazily both ways, so neither module
needs the other at import time)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

marketplace_app = typer.Typer(help="Cloud marketplace payouts: import them, reconcile them with deals.",
                              no_args_is_help=True)

_SOURCE_NAMES = {"aws": "AWS Marketplace billing-event feed", "azure": "Azure Marketplace earnings export"}
_STATUS_STYLE = {"matched": "green", "amount_mismatch": "red", "missing_payout": "red",
                 "payout_without_deal": "yellow", "ambiguous": "yellow", "awaiting_payout": "dim"}


def _as_of(value: Optional[str]) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None


def _print_reconciliation(console, result, *, dry_run: bool) -> None:
    counts = result.counts()
    summary = ", ".join(f"[{_STATUS_STYLE.get(s, 'white')}]{n} {s.replace('_', ' ')}[/]"
                        for s, n in sorted(counts.items())) or "nothing to reconcile"
    console.print(f"Reconciliation: {summary}")
    for outcome in result.outcomes:
        if outcome.status in ("amount_mismatch", "payout_without_deal", "ambiguous"):
            label = outcome.deal.name if outcome.deal else outcome.subject
            console.print(f"  [{_STATUS_STYLE[outcome.status]}]{outcome.status.replace('_', ' ')}[/] {label}: "
                          f"{outcome.detail}")
    verb = "would change" if dry_run else "changed"
    console.print(f"Opportunities {verb}: {len(result.deals_updated)}"
                  + ("" if dry_run or not result.deals_updated else
                     " (Reconciliation_Status__c / Net_Received_Amount__c; the next `cosell sync` sends them "
                     "to Salesforce)"))


@marketplace_app.command("import")
def marketplace_import(
    file: Path = typer.Argument(..., help="A billing-event feed or earnings export: CSV, JSON or JSON Lines."),
    fmt: str = typer.Option("auto", "--format", help="auto, aws (billing-event feed) or azure (earnings export)."),
    agreements: Optional[Path] = typer.Option(None, "--agreements", help="agreement_id → offer_id pairs (CSV or "
                                              "JSON, or DescribeAgreement responses) to match by offer."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and reconcile, then write nothing."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge overdue payouts as of this date "
                                                              "(YYYY-MM-DD; default today)."),
) -> None:
    """Import a payout file and reconcile every deal: matched, amount mismatch, payout without a deal,
    missing payout. A bad file is refused whole (exit status 2) with its line and the reason."""
    from rich.console import Console

    from connector.cli import _connector, _fail
    from connector.errors import ConnectorError
    from connector.marketplace import PayoutLedger, parse_agreements, parse_feed, rules_from

    today = _as_of(as_of)
    console = Console()
    try:
        feed = parse_feed(file, fmt)  # type: ignore[arg-type]  # parse_feed names the valid choices
        pairs = parse_agreements(agreements) if agreements else []
    except ConnectorError as exc:
        _fail(exc)
    connector = _connector()
    try:
        result = PayoutLedger(connector.mirror).import_feed(
            feed, pairs, agreements_file=str(agreements or ""), rules=rules_from(connector.settings, today),
            dry_run=dry_run)
    except (ConnectorError, KeyError) as exc:
        _fail(exc)
    console.print(f"{file}: {_SOURCE_NAMES[result.source]}, {result.lines} line(s): {result.imported} new, "
                  f"{result.already_imported} already imported"
                  + (f"; {result.agreements_added} agreement(s) added" if pairs else ""))
    _print_reconciliation(console, result.reconciliation, dry_run=dry_run)
    if dry_run:
        console.print("[yellow]dry run: nothing was written[/yellow]")


@marketplace_app.command("reconcile")
def marketplace_reconcile(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change, write nothing."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge overdue payouts as of this date "
                                                              "(YYYY-MM-DD; default today)."),
) -> None:
    """Reconcile again without a new file, e.g. daily, so deals whose payout is overdue turn Missing Payout."""
    from rich.console import Console

    from connector.cli import _connector, _fail
    from connector.errors import ConnectorError
    from connector.marketplace import PayoutLedger, rules_from

    today = _as_of(as_of)
    connector = _connector()
    try:
        result = PayoutLedger(connector.mirror).reconcile(rules=rules_from(connector.settings, today),
                                                           dry_run=dry_run)
    except (ConnectorError, KeyError) as exc:
        _fail(exc)
    _print_reconciliation(Console(), result, dry_run=dry_run)


def report_reconciliation(
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write CSV or JSON to this file."),
    show_all: bool = typer.Option(False, "--all", help="Also list matched deals and those still awaiting a "
                                                       "payout."),
) -> None:
    """The exceptions of the last reconciliation: amount mismatches (with the difference), payouts no deal
    claims or several could, closed-won deals whose payout is overdue. Amounts in each deal's currency."""
    from rich.console import Console
    from rich.table import Table

    from connector.cli import _connector, _fail, emit
    from connector.errors import ConnectorError
    from connector.marketplace import EXCEPTIONS, PayoutLedger, render_outcomes

    connector = _connector()
    try:
        rows = PayoutLedger(connector.mirror).outcomes(None if show_all else EXCEPTIONS)
    except ConnectorError as exc:
        _fail(exc)
    if fmt == "table":
        table = Table(title="Marketplace reconciliation" + ("" if show_all else ": exceptions"))
        for column in ("status", "deal", "source", "matched by", "currency", "expected", "gross", "fee",
                       "refunds", "net", "difference", "detail"):
            table.add_column(column, justify="right" if column in ("expected", "gross", "fee", "refunds", "net",
                                                                   "difference") else "left", overflow="fold")
        for r in rows:
            deal = f"{r['deal_name'] or ''} ({r['sfid'] or 'not synced'})" if r["deal_uuid"] else r["subject"]
            table.add_row(f"[{_STATUS_STYLE.get(r['status'], 'white')}]{r['status'].replace('_', ' ')}[/]", deal,
                          r["source"] or "", r["matched_by"] or "", r["currency"] or "",
                          *(f"{r[k]:,.2f}" if r[k] is not None else "" for k in ("expected", "gross", "fee",
                                                                                 "refunds", "net", "difference")),
                          r["detail"] or "")
        Console().print(table)
        return
    emit(lambda: render_outcomes(rows, fmt), output, len(rows))


__all__ = ["marketplace_app", "report_reconciliation"]
