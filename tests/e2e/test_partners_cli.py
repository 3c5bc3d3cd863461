"""`cosell partners ...` as an admin runs it: invite prints a one-time link whose code sets the
password once; list and disable; bad accounts and e-mails end with one clear line (exit 2)."""

from __future__ import annotations

import json

from sqlalchemy import create_engine
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator
from connector.partners.users import PartnerUserError, PartnerUsers
from tests.e2e.test_mirror_cli import _env

runner = CliRunner()


def _run(args, env, code=0):
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_invite_accept_list_and_disable_from_the_command_line(tmp_path):
    with Emulator("cosell_demo", records=5, seed=3) as org:
        partner = org.create("Account", {"Name": "CLI Partner Co", "Is_Partner__c": True})
        org.create("Account", {"Name": "Just A Customer"})
        env = {**_env(org, tmp_path), "COLUMNS": "200", "COSELL_PARTNER_BASE_URL": "https://prm.example"}
        org.advance_clock(seconds=1)
        _run(["mirror"], env)
        _run(["sync"], env)

        out = _run(["partners", "invite", "--account", "CLI Partner Co", "--email", "Ann@CLI.example"], env)
        assert "invited ann@cli.example of CLI Partner Co" in out
        link = out.strip().splitlines()[-1]
        assert link.startswith("https://prm.example/partner/accept#")
        token = link.split("#", 1)[1]
        # Refused, one line each: unknown account, not a partner, not an e-mail, a user of another partner
        assert "no Account 'Nobody'" in _run(["partners", "invite", "--account", "Nobody", "--email", "a@b.example"],
                                             env, 2)
        assert "not a partner account" in _run(["partners", "invite", "--account", "Just A Customer",
                                                "--email", "a@b.example"], env, 2)
        assert "is not an e-mail address" in _run(["partners", "invite", "--account", partner, "--email", "ann"],
                                                  env, 2)
        listed = json.loads(_run(["partners", "list", "--format", "json"], env))
        assert [(u["email"], u["account_id"], u["status"]) for u in listed] == [("ann@cli.example", partner,
                                                                                 "invited")]
        # The link's code sets the password once; the database holds neither.
        engine = create_engine(env["COSELL_DATABASE_URL"])
        from connector.bootstrap import build
        from tests.conftest import settings_for

        accounts = build(settings_for(org, database_url=env["COSELL_DATABASE_URL"])).mirror.table("Account")
        users = PartnerUsers(engine, accounts)
        users.accept(token, "a-long-enough-password")
        try:
            users.accept(token, "another-long-password")
            raise AssertionError("an invite worked twice")
        except PartnerUserError as exc:
            assert "unknown, used or expired" in str(exc)
        with engine.connect() as conn:
            stored = repr([dict(r._mapping) for r in conn.execute(users.users.select())])
        assert token not in stored and "a-long-enough-password" not in stored and "$argon2id$" in stored
        assert users.authenticate("ann@cli.example", "a-long-enough-password") is not None
        assert users.authenticate("ann@cli.example", "wrong-password-here") is None

        assert "disabled ann@cli.example" in _run(["partners", "disable", "ann@cli.example"], env)
        assert users.authenticate("ann@cli.example", "a-long-enough-password") is None
        assert json.loads(_run(["partners", "list", "--format", "json"], env))[0]["status"] == "disabled"
        assert "no partner user nobody@x.example" in _run(["partners", "disable", "nobody@x.example"], env, 2)
        assert "only door" in _run(["partners", "sql-access", "--account", partner, "--role", "prm_cli"], env, 2)

