"""The `cosell` command line: thin entry points that build objects in one place
and call the same functions the admin API and scheduler use."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Salesforce co-sell sync connector.", no_args_is_help=True, add_completion=False)
emulator_app = typer.Typer(help="The built-in Salesforce org emulator.", no_args_is_help=True)
app.add_typer(emulator_app, name="emulator")
schema_app = typer.Typer(help="The org's metadata: snapshots for offline testing.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
report_app = typer.Typer(help="Reports from the mirrored data.", no_args_is_help=True)
app.add_typer(report_app, name="report")
mapping_app = typer.Typer(help="Mapping files: validate them, export their JSON Schema.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")
registrations_app = typer.Typer(help="Deal registrations: expiry on the org's clock.", no_args_is_help=True)
app.add_typer(registrations_app, name="registrations")
conflicts_app = typer.Typer(help="Channel conflicts between partners' claims: list and resolve them.",
                            no_args_is_help=True)
app.add_typer(conflicts_app, name="conflicts")
from connector.marketplace.cli import marketplace_app, report_reconciliation  # noqa: E402 - sub-apps after `app`
from connector.overlaps.cli import overlaps_app, report_pipeline  # noqa: E402
from connector.partners.cli import partners_app  # noqa: E402

app.add_typer(overlaps_app, name="overlaps")
app.add_typer(marketplace_app, name="marketplace")
app.add_typer(partners_app, name="partners")
report_app.command("pipeline")(report_pipeline)
report_app.command("reconciliation")(report_reconciliation)


def _connector():
    """Settings → client, engine, mapping; fatal configuration problems end the command with a clear line."""
    from connector import logs
    from connector.bootstrap import build
    from connector.config import Settings
    from pydantic import ValidationError

    try:
        settings = Settings()
        logs.configure(settings.log_format, settings.log_level)
        return build(settings)
    except ValidationError as exc:
        typer.echo(f"error: invalid settings: {settings_errors(exc)}", err=True)
        raise typer.Exit(2) from None


def settings_errors(exc) -> str:
    """A settings ValidationError on one line, each problem named by its variable; pydantic's copy of
    the input is left out (a bad value may be a secret, or a key's PEM text)."""
    problems = []
    for err in exc.errors():
        name = "_".join(str(part) for part in err["loc"][:1]).upper()
        problems.append(f"COSELL_{name}: {err['msg']}" if name else err["msg"])
    return "; ".join(problems)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def emit(render: Callable[[], str], output: Optional[Path], rows: int) -> None:
    """A report's CSV or JSON (`render` raises ValueError for an unknown format): to the file asked
    for, else to stdout."""
    try:
        text = render()
    except ValueError as exc:
        _fail(exc)
    if output:
        output.write_text(text)
        typer.echo(f"wrote {rows} rows to {output}")
    else:
        typer.echo(text)


def _print_checks(checks) -> bool:
    from rich.console import Console

    console = Console()
    for check in checks:
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {check.name}: {check.detail}")
        if not check.ok and check.fix:
            console.print(f"       -> {check.fix}")
    return all(c.ok for c in checks)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address the admin API listens on."),
          port: int = typer.Option(8080, min=1, max=65535, help="Port of the admin API.")) -> None:
    """Run the scheduled sync and the admin API in one process until SIGTERM. Needs COSELL_ADMIN_TOKEN
    (at least 16 characters): every route but /health asks for it as a bearer token."""
    from connector.admin.server import serve as run_server
    from connector.errors import ConnectorError

    try:
        run_server(host, port)
    except ConnectorError as exc:
        _fail(exc)


@app.command()
def stream(
    objects: Optional[list[str]] = typer.Option(None, "--object", "-o", help="Stream only this object (repeatable)."),
    refresh: float = typer.Option(1.0, min=0.1, help="Seconds between redraws of the live view."),
) -> None:
    """Stream Salesforce changes (Change Data Capture over the Pub/Sub API) and push local changes as
    they commit, in the foreground with a live view, until Ctrl-C. Objects the org cannot stream are
    polled at the safety-poll interval."""
    import time

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from connector.errors import ConnectorError
    from connector.scheduler import SyncRunner
    from connector.sync.streaming import StreamingService

    connector = _connector()
    try:
        service = StreamingService(connector, SyncRunner(connector), objects=objects).start()
    except ConnectorError as exc:
        _fail(exc)

    def view() -> Table:
        table = Table(title=f"Streaming from {connector.settings.pubsub_url} (Ctrl-C stops)")
        for column in ("object", "mode", "connected", "events", "echoes", "lag s", "recoveries", "reconnects"):
            table.add_column(column, justify="left" if column in ("object", "mode") else "right")
        for name, st in service.status().items():
            table.add_row(name, st["mode"], "yes" if st.get("connected") else "-", str(st.get("events", "")),
                          str(st.get("echoes", "")), str(st.get("lag_seconds") or ""), str(st.get("recoveries", "")),
                          str(st.get("reconnects", "")))
        return table

    try:
        with Live(view(), console=Console(), refresh_per_second=max(1, int(1 / refresh))) as live:
            while True:
                time.sleep(refresh)
                live.update(view())
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()


@app.command()
def check() -> None:
    """Check the installation: login, identity, API usage, mapped objects and permissions, database,
    pending schema drift. Exit status 1 when a check fails."""
    from connector.checks import run_checks

    if not _print_checks(run_checks(_connector())):
        raise typer.Exit(1)


_SECRETS = ("consumer_secret", "refresh_token", "password", "security_token", "access_token")


@app.command()
def init(
    config: Path = typer.Option(Path("cosell.config.yaml"), envvar="COSELL_CONFIG",
                                help="Where to write the configuration."),
    login_url: str = typer.Option(None, envvar="COSELL_LOGIN_URL",
                                  help="https://login.salesforce.com, https://test.salesforce.com or your My Domain."),
    auth: str = typer.Option(None, envvar="COSELL_AUTH", help="jwt (recommended), refresh_token or password."),
    username: Optional[str] = typer.Option(None, envvar="COSELL_USERNAME"),
    consumer_key: Optional[str] = typer.Option(None, envvar="COSELL_CONSUMER_KEY"),
    private_key: Optional[str] = typer.Option(None, envvar="COSELL_PRIVATE_KEY",
                                              help="The JWT signing key: its file's path, or the PEM text."),
    consumer_secret: Optional[str] = typer.Option(None, envvar="COSELL_CONSUMER_SECRET"),
    refresh_token: Optional[str] = typer.Option(None, envvar="COSELL_REFRESH_TOKEN"),
    password: Optional[str] = typer.Option(None, envvar="COSELL_PASSWORD"),
    ca_cert: Optional[Path] = typer.Option(None, envvar="COSELL_CA_CERT",
                                           help="A CA certificate to trust (the emulator's ca_cert)."),
    database_url: Optional[str] = typer.Option(None, envvar="COSELL_DATABASE_URL",
                                               help="SQLAlchemy URL of the portal database."),
    mapping: Optional[Path] = typer.Option(None, envvar="COSELL_MAPPING"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing configuration file."),
) -> None:
    """Connect an org step by step, verify the connection and the mapping, and write the configuration
    (readable by its owner only). Everything it asks can be given by flags or COSELL_* variables."""
    import os
    import stat

    import yaml

    from connector.bootstrap import build
    from connector.checks import run_checks
    from connector.config import AUTH_FLOWS, Settings, is_key_text

    interactive = sys.stdin.isatty()
    if config.exists() and not force:
        _fail(ValueError(f"{config} exists; nothing written (pass --force to overwrite it)"))

    def ask(name: str, value, prompt: str, *, secret: bool = False, default=None):
        if value is not None:
            return value
        if not interactive:
            typer.echo(f"error: {prompt} is needed: pass --{name.replace('_', '-')} or COSELL_{name.upper()}",
                       err=True)
            raise typer.Exit(2)
        return typer.prompt(prompt, hide_input=secret, default=default)

    login_url = ask("login_url", login_url, "Login URL", default="https://login.salesforce.com")
    auth = ask("auth", auth, f"Auth flow ({', '.join(a for a in AUTH_FLOWS if a != 'session')})", default="jwt")
    values = {"login_url": login_url, "auth": auth,
              "database_url": database_url or (typer.prompt("Database URL", default="sqlite:///cosell.db")
                                               if interactive else "sqlite:///cosell.db")}
    if auth == "jwt":
        values.update(username=ask("username", username, "Integration user's username"),
                      consumer_key=ask("consumer_key", consumer_key, "Connected app consumer key"),
                      private_key=str(ask("private_key", private_key, "Path of the JWT signing key")))
    elif auth == "refresh_token":
        values.update(consumer_key=ask("consumer_key", consumer_key, "Connected app consumer key"),
                      refresh_token=ask("refresh_token", refresh_token, "Refresh token", secret=True))
        if consumer_secret:
            values["consumer_secret"] = consumer_secret
    elif auth == "password":
        values.update(username=ask("username", username, "Integration user's username"),
                      consumer_key=ask("consumer_key", consumer_key, "Connected app consumer key"),
                      consumer_secret=ask("consumer_secret", consumer_secret, "Consumer secret", secret=True),
                      password=ask("password", password, "Password (with security token)", secret=True))
    else:
        _fail(ValueError(f"auth flow {auth!r} is not one init sets up; choose one of: jwt, refresh_token, "
                         "password"))
    if ca_cert is None and interactive:
        ca_cert = typer.prompt("CA certificate to trust (empty: the system store)", default="",
                               show_default=False) or None
    if ca_cert:
        values["ca_cert"] = str(ca_cert)
    if mapping:
        values["mapping"] = str(mapping)
    try:
        settings = Settings(**values, config=Path("/nonexistent/cosell.config.yaml"), _env_file=None)
    except Exception as exc:
        _fail(exc)
    checks = run_checks(build(settings), drift=False)
    ok = _print_checks(checks)
    if not any(c.name == "login" and c.ok for c in checks):
        typer.echo("error: could not connect; nothing written", err=True)
        raise typer.Exit(2)
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    # An existing file keeps its mode through O_CREAT: tighten it before a secret is in it.
    os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Written by `cosell init`. Holds secrets: keep it readable by its owner only.\n")
        yaml.safe_dump(values, handle, sort_keys=False)
    secrets = [k for k in values if k in _SECRETS or (k == "private_key" and is_key_text(values[k]))]
    typer.echo(f"wrote {config} (mode 600" + (f"; holds {', '.join(secrets)}" if secrets else "") + ")")
    if not ok:
        typer.echo("some checks failed: fix them, then run `cosell check`", err=True)
        raise typer.Exit(1)


@app.command()
def mirror(
    plan_only: bool = typer.Option(False, "--plan", help="Show the plan and change nothing."),
    allow_drop: bool = typer.Option(False, "--allow-drop", help="Drop columns and tables of fields and objects "
                                                                "that went away, instead of retiring them."),
    load: bool = typer.Option(True, "--load/--no-load", help="Read the rows of the mirrored objects afterwards."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Mirror the rest when mapped objects or "
                                      "fields are missing from the org, instead of refusing."),
) -> None:
    """Mirror the mapped objects of the org as tables: show the plan, apply it, load the rows. Mapped
    objects or fields the org lacks are an error (exit 2) unless --skip-missing."""
    from rich.console import Console
    from rich.progress import Progress

    from connector.errors import ConnectorError
    from connector.mapping import MappingError

    console = Console()
    connector = _connector()
    try:
        plan = connector.mirror.plan(allow_drop=allow_drop)
    except (ConnectorError, MappingError) as exc:
        _fail(exc)
    for problem in plan.problems:
        console.print(f"[yellow]skipped[/yellow] {problem}" if skip_missing else f"[red]missing[/red] {problem}")
    if plan.problems and not skip_missing:
        _fail(ValueError(f"{len(plan.problems)} mapped object(s) or field(s) the org lacks (listed above); nothing "
                         "changed: fix the mapping (`cosell mapping check --org`) or the integration user's access, "
                         "or pass --skip-missing to mirror the rest"))
    if plan.changes:
        console.print(f"Plan ({len(plan.pending)} change(s) to apply):")
        for change in plan.changes:
            console.print(f"  {'' if change.applies else '[dim](info)[/dim] '}{change}")
    else:
        console.print("The database matches the org and the mapping: nothing to change.")
    if plan_only:
        return
    try:
        connector.mirror.apply(plan)
    except ConnectorError as exc:
        _fail(exc)
    console.print(f"Applied {len(plan.pending)} change(s).")
    mirrored = {o.name for o in plan.objects}
    synced = [n for n, om in connector.mapping.objects.items() if om.direction == "read_write" and n in mirrored]
    if synced:
        # Capture from the moment the tables exist: a portal write made before the first sync is not missed.
        try:
            connector.sync.prepare()
        except ConnectorError as exc:
            _fail(exc)
        console.print("Change capture is on for the read-write tables: portal writes reach Salesforce at the "
                      "next `cosell sync`.")
        # A record Salesforce refused may have been refused for the schema this plan just fixed.
        changed = sorted({c.object_name for c in plan.pending} & set(synced))
        for name in changed:
            queued = connector.sync.retry_parked(name)
            if queued:
                console.print(f"{queued} parked {name} record(s) will be sent again at the next sync: "
                              "the object's schema changed")
    if load:
        # Read-only objects are copied here. Read-write objects are loaded by the sync: it records the
        # values both sides agree on (the merge's base) and its writes are never mistaken for portal
        # edits; a plain copy over them would overwrite pending portal edits and echo back as changes.
        with Progress(console=console, transient=True) as progress:
            tasks: dict[str, int] = {}

            def report(name: str, count: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(f"loading {name}", total=None)
                progress.update(tasks[name], completed=count, description=f"loading {name}: {count:,} rows")

            try:
                counts = connector.mirror.load(plan, [n for n in mirrored if n not in synced], progress=report)
            except ConnectorError as exc:
                _fail(exc)
        for name, count in counts.items():
            console.print(f"  {name}: {count:,} rows")
    views = connector.mirror.create_views(plan)
    if views:
        console.print(f"Corporate-currency views: {', '.join(views)}")
    if load and synced:
        _load_synced(console, connector, plan, synced)
    usage = connector.client.usage
    console.print(f"API calls: {connector.client.calls} (org usage {usage.used}/{usage.total})")


def _load_synced(console, connector, plan, synced: list[str]) -> None:
    """Read-write objects never loaded get their first sync run; those that gained columns are read
    again in full, which fills the new columns. Runs take the same lock as `cosell serve`."""
    from sqlalchemy import select

    state = connector.sync.state.state
    with connector.engine.connect() as conn:
        loaded = {r[0] for r in conn.execute(select(state.c.object_name).where(state.c.watermark.is_not(None)))}
    added = {c.object_name for c in plan.pending if c.kind in ("add_column", "restore_column")}
    first = [n for n in synced if n not in loaded]
    refill = [n for n in synced if n in loaded and n in added]
    for objects, full, what in ((first, False, "loaded"), (refill, True, "read again in full (new columns)")):
        if objects:
            result = _run_sync(console, connector, objects, full=full, trigger="mirror")
            console.print(f"Read-write objects {what} by sync run {result.run_id} ({result.status}):")
            for name, c in result.objects.items():
                sent = c.created_remote + c.updated_remote + c.deleted_remote
                console.print(f"  {name}: {c.pulled:,} rows" + (f"; {sent} pending portal change(s) sent" if sent
                                                                 else "")
                              + (f"; [yellow]{c.parked} parked[/yellow]" if c.parked else ""))
            if result.error:
                fix = " --full" if full else ""
                _fail(RuntimeError(f"{result.error}; the schema is applied: finish with `cosell sync "
                                   f"{' '.join('--object ' + n for n in objects)}{fix}`"))


def _run_sync(console, connector, objects: list[str] | None, *, full: bool, trigger: str):
    """One sync run under the lock every runner takes (`cosell serve`, the admin API), with progress."""
    from rich.progress import Progress

    from connector.errors import ConnectorError
    from connector.scheduler import LockBusy, SyncRunner

    with Progress(console=console, transient=True) as progress:
        tasks: dict[str, int] = {}

        def report(name: str, what: str, count: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=None)
            progress.update(tasks[name], completed=count, description=f"{name}: {what} {count:,}")

        connector.sync.progress = report
        try:
            return SyncRunner(connector).run(objects, full=full, trigger=trigger, wait=0)
        except LockBusy as exc:
            _fail(RuntimeError(str(exc)))
        except ConnectorError as exc:
            _fail(exc)


@app.command()
def sync(
    objects: Optional[list[str]] = typer.Option(None, "--object", "-o", help="Sync only this object (repeatable)."),
    full: bool = typer.Option(False, "--full", help="Read every record again instead of the changes since the "
                                                    "last run (reconciles deletes the delete log no longer has)."),
    retry_parked: bool = typer.Option(False, "--retry-parked", help="Send parked records again (after fixing "
                                                                    "what Salesforce refused)."),
) -> None:
    """Run one sync cycle: pull Salesforce changes, merge, push local changes. Exit status 1 when
    records were parked (rejected by Salesforce; see the dead-letter table), 2 on a fatal error."""
    from rich.console import Console
    from rich.table import Table

    from connector.errors import ConnectorError

    console = Console()
    connector = _connector()
    if retry_parked:
        try:
            connector.sync.prepare()
            queued = connector.sync.retry_parked()
        except ConnectorError as exc:
            _fail(exc)
        console.print(f"{queued} parked record(s) queued to be sent again")
    result = _run_sync(console, connector, objects, full=full, trigger="cli")
    table = Table(title=f"Sync run {result.run_id}: {result.status}")
    table.add_column("object", overflow="fold")
    for column in ("pulled", "to portal\n+new ~upd -del", "to Salesforce\n+new ~upd -del", "conflicts", "parked"):
        table.add_column(column, justify="right")
    for name, c in result.objects.items():
        table.add_row(name, str(c.pulled), f"+{c.created_local} ~{c.updated_local} -{c.deleted_local}",
                      f"+{c.created_remote} ~{c.updated_remote} -{c.deleted_remote}", str(c.conflicts),
                      str(c.parked) + (f" ({c.waiting} waiting)" if c.waiting else ""))
    console.print(table)
    console.print(f"API calls: {result.api_calls}")
    if result.retrying:
        console.print(f"[yellow]{result.retrying} record(s) will be sent again[/yellow]: Salesforce refused them for "
                      "a passing reason (e.g. UNABLE_TO_LOCK_ROW); later runs retry them, with a growing wait, "
                      "and park them if they keep failing.")
    if result.error:
        console.print(f"[red]{result.error}[/red]")
        raise typer.Exit(2)
    if result.parked:
        console.print(f"[yellow]{result.parked} record(s) parked[/yellow]: Salesforce refused them; the error is on "
                      "each row (_sync_error) and in _cosell_dead_letters. They are retried when the row changes.")
        raise typer.Exit(1)


@registrations_app.command("expire")
def registrations_expire() -> None:
    """Move every approved registration past its expiry date (the org's date) to Expired, in the portal and in
    Salesforce: for cron users; `cosell serve` does it on its own (COSELL_REGISTRATION_CHECK_INTERVAL)."""
    from rich.console import Console

    from connector.registration_upkeep import REGISTRATION

    from connector.scheduler import LockBusy, SyncRunner

    console = Console()
    connector = _connector()
    runner = SyncRunner(connector)
    try:
        result = runner.run([REGISTRATION], trigger="registrations", wait=0)
    except LockBusy as exc:
        _fail(RuntimeError(str(exc)))
    expired = [x for step in runner.last_upkeep.values() for x in step.expired]
    console.print(f"registration check: run {result.run_id} {result.status}; {len(expired)} registration(s) "
                  f"expired{': ' + ', '.join(expired) if expired else ''}")
    if result.error:
        console.print(f"[red]{result.error}[/red]")
        raise typer.Exit(2)


def _conflict_register(connector):
    from connector.channel_conflicts import ChannelConflictRegister
    from connector.errors import ConnectorError

    try:
        connector.sync.prepare()
    except ConnectorError as exc:
        _fail(exc)
    s = connector.settings
    return ChannelConflictRegister.for_sync(connector.sync, ownership=s.direct_ownership(),
                                            flag=s.channel_conflict_flag)


@conflicts_app.command("list")
def conflicts_list(
    status: str = typer.Option("open", "--status", help="open, resolved, or all."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """The channel conflicts found so far, oldest first, with both claims."""
    from rich.console import Console
    from rich.table import Table

    from connector.channel_conflicts import ChannelConflictError

    try:
        found = _conflict_register(_connector()).list(status=None if status == "all" else status)
    except ChannelConflictError as exc:
        _fail(exc)
    if fmt == "json":
        typer.echo(json.dumps([c.as_dict() for c in found], indent=2))
        return
    if fmt != "table":
        _fail(ValueError(f"unknown format {fmt!r}; choose one of: table, json"))
    table = Table(title=f"Channel conflicts ({status})")
    for column in ("id", "kind", "claims", "found", "status"):
        table.add_column(column, overflow="fold")
    for c in found:
        claims = "\n".join(f"{x['registration_id'] or x['registration']}: {x['partner_name']} ({x['status']}) "
                            f"on {x['opportunity_name'] or 'no opportunity'}" for x in c.claims)
        table.add_row(str(c.id), c.kind, claims, f"{c.detected_by} {c.detected_at:%Y-%m-%d %H:%M}",
                      c.status if c.status == "open" else f"{c.decision} by {c.resolved_by}")
    Console().print(table)


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: int = typer.Argument(..., help="The conflict's id (cosell conflicts list)."),
    decision: str = typer.Option(..., "--decision", help="honour (one claim stands) or dismiss (not a conflict)."),
    by: str = typer.Option(..., "--by", help="Who decided (recorded)."),
    winner: Optional[str] = typer.Option(None, "--winner", help="honour: the registration that stands (Id)."),
    note: Optional[str] = typer.Option(None, "--note", help="Why (required to dismiss)."),
) -> None:
    """Record an admin's decision on a channel conflict; the opportunity's flag clears at the next sync."""
    from connector.channel_conflicts import ChannelConflictError

    try:
        done = _conflict_register(_connector()).resolve(conflict_id, decision=decision, by=by, winner=winner,
                                                        note=note)
    except ChannelConflictError as exc:
        _fail(exc)
    typer.echo(f"channel conflict {done.id} resolved: {done.decision} by {done.resolved_by}")


@report_app.command("attribution")
def report_attribution(
    period: str = typer.Option("quarter", help="month, quarter or year (by close date)."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write CSV or JSON to this file."),
) -> None:
    """Per partner and period: sourced, influenced and delivered pipeline and closed-won revenue,
    with split amounts, in the corporate currency at the dated rates."""
    from rich.console import Console
    from rich.table import Table

    from connector.cosell.attribution import PERIODS
    from connector.reports import attribution_report, render

    if period not in PERIODS:
        _fail(ValueError(f"unknown period {period!r}; choose one of: {', '.join(PERIODS)}"))
    connector = _connector()
    try:
        rows = attribution_report(connector.mirror, period=period)
    except KeyError as exc:
        _fail(exc)
    if fmt == "table":
        table = Table(title=f"Partner attribution by {period} (corporate currency)")
        for column in ("partner", "period", "attribution", "deals", "pipeline", "split pipeline", "closed won",
                       "split closed won"):
            table.add_column(column, justify="right" if column not in ("partner", "attribution") else "left")
        for r in rows:
            table.add_row(r.partner_name, r.period, r.attribution, str(r.deals), f"{r.pipeline:,.2f}",
                          f"{r.split_pipeline:,.2f}", f"{r.closed_won:,.2f}", f"{r.split_closed_won:,.2f}")
        Console().print(table)
        return
    emit(lambda: render(rows, fmt), output, len(rows))


@schema_app.command("snapshot")
def schema_snapshot(folder: Path = typer.Argument(..., help="Folder to write <ApiName>.json describe payloads to."),
                    ) -> None:
    """Save the mapped objects' describe payloads in the folder format `cosell emulator serve --org` reads."""
    from connector.errors import ConnectorError

    connector = _connector()
    try:
        written = connector.mirror.snapshot(folder)
    except ConnectorError as exc:
        _fail(exc)
    typer.echo(f"wrote {len(written)} describe payloads to {folder}")


@schema_app.command("package")
def schema_package(
    folder: Path = typer.Argument(Path("salesforce"), help="Folder to write the Salesforce DX project to."),
    org: str = typer.Option("cosell_demo", help="The org definition the objects come from: a shipped org "
                                                "name or an org YAML file."),
    mapping: Optional[Path] = typer.Option(None, help="Mapping file (default: the configured one, else the "
                                                      "shipped one); the package holds what it syncs."),
    certificate: Optional[Path] = typer.Option(None, help="PEM certificate of the connector's JWT key: adds "
                                                          "the connected app to the package."),
    contact_email: Optional[str] = typer.Option(None, help="The connected app's contact email (with "
                                                           "--certificate)."),
) -> None:
    """Write the deployable metadata package (objects, fields, validation rules, permission set and
    optionally the connected app) for `sf project deploy start`."""
    from connector.emulator.orgdef import OrgDefinitionError, load_org
    from connector.mapping import MappingError, load_mapping
    from connector.sfdx import Certificate, PackageError, render_package, write_package
    from pydantic import ValidationError

    try:
        if mapping is None:
            from connector.config import Settings

            mapping = Settings().mapping
        cert = Certificate.from_pem(certificate) if certificate else None
        files = render_package(load_org(org), load_mapping(mapping), certificate=cert, contact_email=contact_email)
    except ValidationError as exc:
        _fail(ValueError(f"invalid settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"))
    except (OrgDefinitionError, MappingError, PackageError, OSError) as exc:
        _fail(exc)
    write_package(folder, files)
    typer.echo(f"wrote {len(files)} files to {folder}; deploy from there with: "
               "sf project deploy start --source-dir force-app --target-org <alias>")


@mapping_app.command("schema")
def mapping_schema(output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file.")) -> None:
    """Print the JSON Schema of the mapping file format (for editors)."""
    from connector.mapping import mapping_json_schema

    text = json.dumps(mapping_json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        typer.echo(f"wrote {output}")
    else:
        typer.echo(text)


@mapping_app.command("check")
def mapping_check(path: Optional[Path] = typer.Argument(None, help="Mapping file (default: the configured one)."),
                  org: bool = typer.Option(False, "--org", help="Also check it against the configured org: "
                                           "objects, fields, external IDs, policies, permissions.")) -> None:
    """Validate a mapping file and list what it maps; with --org, against the org too (exit 1 on a problem)."""
    from connector.errors import ConnectorError
    from connector.mapping import MappingError, load_mapping

    try:
        mapping = load_mapping(path)
    except MappingError as exc:
        _fail(exc)
    for name, obj in mapping.objects.items():
        typer.echo(f"{name}: {obj.direction}, policy {obj.conflict_policy}, every {obj.poll_interval}s")
    if org:
        from connector.checks import mapping_checks

        connector = _connector()
        connector.__dict__["mapping"] = mapping
        try:
            connector.client.login()
            checks = mapping_checks(connector)
        except ConnectorError as exc:
            _fail(exc)
        if not _print_checks(checks):
            raise typer.Exit(1)


@emulator_app.command("serve")
def emulator_serve(
    org: str = typer.Option("cosell_demo", help="A shipped org name, an org YAML file, or a folder of "
                                                "describe payloads."),
    records: int = typer.Option(100, min=0, help="Opportunities (or records per object) to generate."),
    seed: int = typer.Option(42, help="Seed of the data generator; the same seed gives the same data."),
    port: int = typer.Option(0, min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one."),
    latency: float = typer.Option(0.0, min=0.0, help="Seconds added to every call."),
    daily_limit: int = typer.Option(15000, min=1, help="The org's daily API request limit."),
    state_dir: Optional[Path] = typer.Option(None, help="Where to write the certificate and keys "
                                                        "(default: a temporary folder)."),
) -> None:
    """Serve an emulated org over HTTPS until interrupted.

    The first line of standard output is one JSON object with what a client needs
    to connect (instance_url, login_url, access_token, ca_cert, username,
    consumer_key, private_key, ...)."""
    from connector.emulator import Emulator, OrgDefinitionError

    try:
        emulator = Emulator(org, records=records, seed=seed, port=port, latency=latency,
                            daily_limit=daily_limit, state_dir=state_dir)
    except OrgDefinitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    emulator.start()
    sys.stdout.write(json.dumps(emulator.connection_info()) + "\n")
    sys.stdout.flush()
    counts = ", ".join(f"{n} {obj}" for obj, n in emulator.generated.items()) or "seed records only"
    typer.echo(f"Org emulator '{emulator.org.name}' serving {emulator.instance_url} ({counts}). "
               "Ctrl-C to stop.", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


@emulator_app.command("orgs")
def emulator_orgs() -> None:
    """List the org definitions shipped with the package."""
    from connector.emulator import shipped_orgs

    for name in shipped_orgs():
        typer.echo(name)


@app.command()
def demo(
    records: int = typer.Option(200, min=1, help="Opportunities the demo org starts with."),
    seed: int = typer.Option(42, help="Seed of the data generator."),
) -> None:
    """Start the built-in org emulator and show what the connector sees in it."""
    from connector.demo import run_demo

    raise typer.Exit(run_demo(records=records, seed=seed))


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
