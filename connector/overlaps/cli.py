"""`cosell overlaps ...` and `cosell report pipeline`: the command-line face of the overlap
book. Commands work on the local database only (no API call); the sync carries what they
write to Salesforce."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Optional

import typer

overlaps_app = typer.Typer(help="Account overlaps from account-mapping tools: import, review, register.",
                           no_args_is_help=True)

STATUSES = ("matched", "review", "unmatched", "removed")


def _book(*, writes: bool = False):
    from connector.cli import _connector, _fail
    from connector.errors import ConnectorError
    from connector.overlaps.book import OverlapBook
    from connector.portal import PortalError

    connector = _connector()
    try:
        return OverlapBook.for_sync(connector.sync, writes=writes)
    except (ConnectorError, PortalError) as exc:
        _fail(exc)


@overlaps_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="The overlap export (CSV): partner, partner's account name, domain, "
                                          "population, partner record id, optionally country."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Match and report, write nothing."),
    show: str = typer.Option("attention", help="Rows to list: attention (review, unmatched, stale), all, none."),
) -> None:
    """Match each overlap to a mirrored Account and record it. Re-importing the same file changes
    nothing; an updated export updates the overlaps and reports what went stale. A file with any
    problem is refused as a whole (exit status 2), with the line and the reason."""
    from rich.console import Console
    from rich.table import Table

    from connector.cli import _fail
    from connector.errors import ConnectorError

    if show not in ("attention", "all", "none"):
        _fail(ValueError(f"--show {show!r}: choose attention, all or none"))
    book = _book()
    try:
        result = book.import_file(file, dry_run=dry_run)
    except ConnectorError as exc:
        _fail(exc)
    console = Console()
    stale = {s.overlap_id: s.what for s in result.stale}
    rows = [r for r in result.rows if show == "all" or (show == "attention" and (
        r.status != "matched" or r.overlap_id in stale))]
    if rows:
        table = Table(title=f"Overlaps from {file.name}")
        for column in ("id", "line", "partner", "partner's account", "status", "change", "account / why"):
            table.add_column(column, overflow="fold", justify="right" if column in ("id", "line") else "left")
        for r in rows:
            detail = r.account or ""
            if r.status != "matched":
                detail = r.reason
            if r.overlap_id in stale:
                detail = f"{detail} [yellow]stale: {stale[r.overlap_id]}[/yellow]"
            table.add_row(str(r.overlap_id or "-"), str(r.line), r.partner, r.account_name, r.status, r.change, detail)
        console.print(table)
    removed = [s for s in result.stale if s.what == "no longer in the partner's export"]
    for s in removed:
        console.print(f"removed: overlap {s.overlap_id} ({s.partner}: {s.account_name}) is no longer in the export")
    counts = ", ".join(f"{result.count(status=s)} {s}" for s in STATUSES[:3])
    changes = ", ".join(f"{result.count(change=c)} {c}" for c in ("new", "updated", "unchanged"))
    console.print(f"{len(result.rows)} rows: {counts}; {changes}; {result.removed} removed; {len(result.stale)} stale"
                  + (" [yellow](dry run: nothing written)[/yellow]" if dry_run else ""))
    if not result.changed and not dry_run:
        console.print("nothing changed since the last import")
    if result.count(status="review"):
        console.print("Listed for review: `cosell overlaps resolve ID --account SALESFORCE_ID` settles one.")


@overlaps_app.command("list")
def list_(
    status: Optional[list[str]] = typer.Option(None, "--status", help="matched, review, unmatched or removed "
                                                                      "(repeatable; default all)."),
    partner: Optional[str] = typer.Option(None, help="Only this partner (as the export names it)."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """The overlaps the book holds, with their match and registration."""
    from rich.console import Console
    from rich.table import Table

    from connector.cli import _fail

    for s in status or ():
        if s not in STATUSES:
            _fail(ValueError(f"--status {s!r}: choose one of {', '.join(STATUSES)}"))
    rows = _book().list(status=status, partner=partner)
    columns = ("id", "partner_name", "account_name", "domain", "population", "status", "match_method",
               "account_label", "match_reason", "candidates", "stale", "first_imported_at", "registration_uuid")
    if fmt != "table":
        from connector.cli import emit

        emit(lambda: _render([{c: r[c] for c in columns} for r in rows], fmt), None, len(rows))
        return
    table = Table(title=f"{len(rows)} overlaps")
    for column in ("id", "partner", "account", "population", "status", "matched to / why", "registration"):
        table.add_column(column, overflow="fold")
    for r in rows:
        why = r["account_label"] if r["status"] == "matched" else (r["match_reason"] or "") + (
            f" (candidates: {r['candidates']})" if r["candidates"] else "")
        table.add_row(str(r["id"]), r["partner_name"], r["account_name"], r["population"], r["status"], why or "",
                      r["registration_uuid"] or "")
    Console().print(table)


@overlaps_app.command("resolve")
def resolve(overlap_id: int = typer.Argument(..., help="The overlap's id (`cosell overlaps list`)."),
            account: str = typer.Option(..., "--account", help="The Account it is: Salesforce Id or portal UUID.")
            ) -> None:
    """Settle an overlap listed for review (or unmatched) on the account you chose. The choice
    stands at later imports while the partner's row stays the same."""
    from connector.cli import _fail
    from connector.errors import ConnectorError

    try:
        row = _book().resolve(overlap_id, account)
    except ConnectorError as exc:
        _fail(exc)
    typer.echo(f"overlap {overlap_id} matched to {row['account_label']}")


@overlaps_app.command("register")
def register(
    overlap_id: int = typer.Argument(..., help="The overlap's id (`cosell overlaps list`)."),
    name: Optional[str] = typer.Option(None, help="Opportunity name (default: '<account> - <partner> co-sell')."),
    close_date: Optional[str] = typer.Option(None, help="Expected close date, YYYY-MM-DD (default: in 90 days)."),
    amount: Optional[str] = typer.Option(None, help="Registered amount."),
    currency: Optional[str] = typer.Option(None, help="ISO currency code of the amount (multi-currency orgs)."),
    role: Optional[str] = typer.Option(None, help="Participant role (default: the partner's Partner Type when it "
                                                  "is a role, else Referral Partner)."),
    attribution: Optional[str] = typer.Option(None, help="Sourced, Influenced or Delivered (default: from the "
                                                         "population: Open Opportunities = Sourced, else Influenced)."),
    program: str = typer.Option("Standard Deal Registration", help="Registration program."),
) -> None:
    """Turn a matched overlap into a Draft deal registration with its opportunity and the partner as
    participant, written locally; the next `cosell sync` carries them to Salesforce."""
    from connector.cli import _fail
    from connector.errors import ConnectorError

    try:
        close = dt.date.fromisoformat(close_date) if close_date else None
        value = Decimal(amount) if amount is not None else None
    except (ValueError, InvalidOperation):
        _fail(ValueError(f"--close-date must be YYYY-MM-DD and --amount a number (got {close_date!r}, {amount!r})"))
    try:
        row = _book(writes=True).register(overlap_id, name=name, close_date=close, amount=value, currency=currency, role=role,
                               attribution=attribution, program=program)
    except ConnectorError as exc:
        _fail(exc)
    typer.echo(f"overlap {overlap_id}: Draft registration {row['registration_uuid']} on opportunity "
               f"{row['opportunity_uuid']}; `cosell sync` carries them to Salesforce")
    for conflict in row["channel_conflicts"]:
        typer.echo(f"warning: {conflict}", err=True)


def report_pipeline(
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write CSV or JSON to this file."),
) -> None:
    """The leading indicator: days from overlap import to registration, to submission and to
    approval, per partner and overall (median and 90th percentile)."""
    from rich.console import Console
    from rich.table import Table

    from connector.overlaps.pipeline import STAGES, pipeline_report

    rows = pipeline_report(_book())
    if fmt == "table":
        table = Table(title="Overlap to approved registration, in days (median / p90)")
        for column in ("partner", "overlaps", *STAGES):
            table.add_column(column, justify="left" if column == "partner" else "right")
        for r in rows:
            cells = []
            for stage in STAGES:
                f = getattr(r, stage)
                cells.append(f"{f.count}: {f.median_days:g} / {f.p90_days:g}" if f.count else "0")
            table.add_row(r.partner, str(r.overlaps), *cells)
        Console().print(table)
        return
    flat = [{"partner": r.partner, "overlaps": r.overlaps,
             **{f"{s}_{k}": v for s in STAGES for k, v in vars(getattr(r, s)).items()}} for r in rows]
    from connector.cli import emit

    emit(lambda: _render(flat, fmt), output, len(rows))


def _render(rows: list[dict], fmt: str) -> str:
    """CSV or JSON of flat rows; ValueError for another format."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "csv":
        from connector.spreadsheet import csv_text

        return csv_text(rows, list(rows[0])) if rows else ""
    raise ValueError(f"unknown format {fmt!r}; choose one of: table, csv, json")


__all__ = ["overlaps_app", "report_pipeline"]
