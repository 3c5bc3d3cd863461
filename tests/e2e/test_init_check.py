"""`cosell init` with flags connects by JWT bearer and writes a working configuration that
only its owner can read; `cosell check` reports each check with what to do."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator

runner = CliRunner()


def test_init_with_flags_writes_a_private_working_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("COSELL_")]:
        monkeypatch.delenv(key)
    with Emulator("cosell_demo", records=5) as org:
        info = org.connection_info()
        config = tmp_path / "cosell.config.yaml"
        result = runner.invoke(app, [
            "init", "--config", str(config), "--login-url", info["login_url"], "--auth", "jwt",
            "--username", info["username"], "--consumer-key", info["consumer_key"],
            "--private-key", info["private_key"], "--ca-cert", info["ca_cert"],
            "--database-url", f"sqlite:///{tmp_path / 'portal.db'}"])
        assert result.exit_code == 0, result.output
        assert "ok   login" in result.output and "object Deal_Registration__c" in result.output
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert info["access_token"] not in config.read_text() and info["access_token"] not in result.output
        # The written file alone is enough: check reads it as the default config in this folder.
        checked = runner.invoke(app, ["check"])
        assert "ok   login" in checked.output and "FAIL schema" in checked.output, checked.output
        assert "run `cosell mirror`" in checked.output and checked.exit_code == 1
        # said up front: portal edits to fields the integration user cannot update are parked, not sent
        assert "cannot update" in checked.output and "IsWon" in checked.output, checked.output
        assert runner.invoke(app, ["mirror", "--no-load"]).exit_code == 0
        assert runner.invoke(app, ["check"]).exit_code == 0


def test_init_refuses_bad_credentials_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Emulator("cosell_demo") as org:
        info = org.connection_info()
        result = runner.invoke(app, [
            "init", "--config", str(tmp_path / "c.yaml"), "--login-url", info["login_url"], "--auth", "password",
            "--username", info["username"], "--consumer-key", info["consumer_key"],
            "--consumer-secret", info["consumer_secret"], "--password", "wrong", "--ca-cert", info["ca_cert"]])
    assert result.exit_code == 2 and "authentication failure" in result.output
    assert "wrong" not in result.output
    assert not (tmp_path / "c.yaml").exists()


def test_init_without_a_terminal_names_the_missing_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("COSELL_")]:
        monkeypatch.delenv(key)
    result = runner.invoke(app, ["init", "--login-url", "https://login.salesforce.com", "--auth", "jwt"])
    assert result.exit_code == 2 and "--username or COSELL_USERNAME" in result.output
