"""`cosell init` against an existing config file.

Tried: an existing world-readable file overwritten with --force (its mode is 600 before the first
secret is written); an existing file without --force (refused, untouched); key text given in
COSELL_PRIVATE_KEY (said to be held, never printed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator

runner = CliRunner()


def _init_args(info, config, *extra):
    return ["init", "--config", str(config), "--login-url", info["login_url"], "--auth", "jwt",
            "--username", info["username"], "--consumer-key", info["consumer_key"],
            "--ca-cert", info["ca_cert"], "--database-url", f"sqlite:///{config.parent / 'portal.db'}", *extra]


def test_an_existing_file_is_made_private_before_a_secret_is_written(clean_env, monkeypatch):
    config = clean_env / "cosell.config.yaml"
    config.write_text("# old\n")
    os.chmod(config, 0o644)
    modes: list[int] = []
    real_dump = yaml.safe_dump

    def spying_dump(data, stream=None, **kwargs):
        modes.append(stat.S_IMODE(config.stat().st_mode))
        return real_dump(data, stream, **kwargs)

    monkeypatch.setattr(yaml, "safe_dump", spying_dump)
    with Emulator("cosell_demo", records=2) as org:
        info = org.connection_info()
        key_text = Path(info["private_key"]).read_text()
        monkeypatch.setenv("COSELL_PRIVATE_KEY", key_text)
        result = runner.invoke(app, _init_args(info, config, "--force"))
    assert result.exit_code in (0, 1), result.output
    assert modes == [0o600], f"mode when the secrets were written: {modes}"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "holds private_key" in result.output
    assert not any(line in result.output for line in key_text.splitlines()[1:-1])


def test_an_existing_file_is_not_overwritten_without_force(clean_env):
    config = clean_env / "cosell.config.yaml"
    config.write_text("login_url: https://example.my.salesforce.com\n")
    result = runner.invoke(app, ["init", "--config", str(config), "--login-url", "https://login.salesforce.com",
                                 "--auth", "jwt"])
    assert result.exit_code == 2 and "exists; nothing written (pass --force" in result.output
    assert config.read_text() == "login_url: https://example.my.salesforce.com\n"


def test_interactive_init_asks_for_the_database_and_the_ca_certificate(clean_env, monkeypatch):
    import types

    import connector.cli as cli

    monkeypatch.setattr(cli, "sys", types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True)))
    config = clean_env / "cosell.config.yaml"
    with Emulator("cosell_demo", records=2) as org:
        info = org.connection_info()
        answers = [info["login_url"], "jwt", f"sqlite:///{clean_env / 'asked.db'}", info["username"],
                   info["consumer_key"], info["private_key"], info["ca_cert"]]
        result = runner.invoke(app, ["init", "--config", str(config)], input="\n".join(answers) + "\n")
    assert "Database URL" in result.output and "CA certificate to trust" in result.output, result.output
    assert "ok   login" in result.output and result.exit_code in (0, 1), result.output
    written = yaml.safe_load(config.read_text())
    assert written["ca_cert"] == info["ca_cert"] and written["database_url"].endswith("asked.db")
