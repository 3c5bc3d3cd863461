"""`cosell partners ...`: partner users and their SQL access, on the local database only.

An invite prints its link once (the code after `#` never reaches a server log); only a digest
of it is stored."""

from __future__ import annotations

import json
from typing import Optional

import typer

partners_app = typer.Typer(help="Partner users of the partner workspace: invite, list, disable; SQL access.",
                           no_args_is_help=True)


def _workspace():
    from connector.cli import _connector, _fail
    from connector.errors import ConnectorError
    from connector.partners.service import PartnerWorkspace
    from connector.portal import PortalError

    connector = _connector()
    try:
        return connector, PartnerWorkspace(connector.sync, invite_days=connector.settings.partner_invite_days,
                                           review_days=connector.settings.partner_review_days)
    except (ConnectorError, PortalError) as exc:
        _fail(exc)


@partners_app.command("invite")
def invite(account: str = typer.Option(..., "--account", help="The partner Account: Salesforce Id or exact name."),
           email: str = typer.Option(..., "--email", help="The partner user's e-mail address.")) -> None:
    """Invite a user of a partner account; prints the one-time link to send them (valid
    COSELL_PARTNER_INVITE_DAYS days). Inviting again an invited user replaces their link."""
    from connector.cli import _fail
    from connector.partners.users import PartnerUserError

    connector, workspace = _workspace()
    try:
        made = workspace.users.invite(account, email)
    except PartnerUserError as exc:
        _fail(exc)
    base = connector.settings.partner_base_url.rstrip("/")
    typer.echo(f"invited {made.user.email} of {made.user.account_name}; the link works once, until "
               f"{made.expires_at:%Y-%m-%d %H:%M} UTC:")
    typer.echo(f"{base}/partner/accept#{made.token}")


@partners_app.command("list")
def list_(account: Optional[str] = typer.Option(None, "--account", help="Only this account (Id or name)."),
          fmt: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """Partner users, their account and status (invited, active, disabled)."""
    from rich.console import Console
    from rich.table import Table

    from connector.cli import _fail

    if fmt not in ("table", "json"):
        _fail(ValueError(f"--format {fmt!r}: choose table or json"))
    _, workspace = _workspace()
    users = workspace.users.list(account)
    if fmt == "json":
        typer.echo(json.dumps([{"email": u.email, "account": u.account_name, "account_id": u.account_sfid,
                                "status": u.status, "last_sign_in_at": u.last_sign_in_at.isoformat()
                                if u.last_sign_in_at else None} for u in users], indent=2))
        return
    table = Table(title=f"{len(users)} partner users")
    for column in ("e-mail", "account", "status", "last sign-in"):
        table.add_column(column)
    for u in users:
        table.add_row(u.email, f"{u.account_name} ({u.account_sfid or u.account_uuid})", u.status,
                      f"{u.last_sign_in_at:%Y-%m-%d %H:%M}" if u.last_sign_in_at else "never")
    Console().print(table)


@partners_app.command("disable")
def disable(email: str = typer.Argument(..., help="The user's e-mail address.")) -> None:
    """Disable a user: sign-in refused, open sessions end, an open invite dies."""
    from connector.cli import _fail
    from connector.partners.users import PartnerUserError

    _, workspace = _workspace()
    try:
        user = workspace.users.disable(email)
    except PartnerUserError as exc:
        _fail(exc)
    typer.echo(f"disabled {user.email} of {user.account_name}; their sessions have ended")


@partners_app.command("sql-access")
def sql_access(account: str = typer.Option(..., "--account", help="The partner Account: Salesforce Id or name."),
               role: str = typer.Option(..., "--role", help="The PostgreSQL role (and schema of views) to make."),
               password_stdin: bool = typer.Option(False, "--password-stdin",
                                                   help="Read a password from stdin so the role can log in."),
               revoke: bool = typer.Option(False, "--revoke", help="Drop the role and its views instead.")) -> None:
    """PostgreSQL only: a role that reads this partner's deals, participations, registrations and
    overlaps through views in a schema of its name, and nothing else."""
    import sys

    from connector.cli import _fail
    from connector.partners.scope import PartnerAccount
    from connector.partners.sql_access import grant_sql_access, revoke_sql_access
    from connector.partners.users import PartnerUser, PartnerUserError

    _, workspace = _workspace()
    try:
        if revoke:
            revoke_sql_access(workspace.portal.engine, role)
            typer.echo(f"dropped role {role} and its views")
            return
        with workspace.portal.engine.connect() as conn:
            found = workspace.users.partner_account(conn, account)
        partner: PartnerAccount = workspace.account(found["_uuid"])
        system_user = PartnerUser(0, f"sql:{role}", partner.uuid, partner.sfid, partner.name, "active", 0)
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        views = grant_sql_access(workspace.portal.engine, workspace.scope(system_user), role, password=password)
    except PartnerUserError as exc:
        _fail(exc)
    typer.echo(f"role {role} reads {partner.name}'s rows only, through: {', '.join(views)}"
               + ("" if password_stdin else f" (NOLOGIN: GRANT {role} TO your PRM app's login role)"))
