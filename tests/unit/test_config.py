"""Settings come from COSELL_* variables, a .env file or the config file, in that
order; secrets never show in their printed form."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connector.config import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("COSELL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_safe_and_local():
    s = Settings()
    assert s.database_url == "sqlite:///cosell.db" and s.auth == "jwt"
    assert s.login_url == "https://login.salesforce.com" and s.quota_share == 0.8


def test_environment_beats_dotenv_beats_config_file(monkeypatch, tmp_path):
    (tmp_path / "cosell.config.yaml").write_text("username: from-file@example.com\nconsumer_key: file-key\n"
                                                 "api_version: '58.0'\n")
    (tmp_path / ".env").write_text("COSELL_USERNAME=from-dotenv@example.com\nCOSELL_CONSUMER_KEY=dotenv-key\n")
    monkeypatch.setenv("COSELL_USERNAME", "from-env@example.com")
    s = Settings()
    assert s.username == "from-env@example.com"
    assert s.consumer_key == "dotenv-key"
    assert s.api_version == "58.0"


def test_secrets_are_masked_when_described(monkeypatch):
    monkeypatch.setenv("COSELL_ACCESS_TOKEN", "00Dxx!supersecret")
    monkeypatch.setenv("COSELL_PASSWORD", "hunter2")
    s = Settings()
    shown = repr(s) + str(s.describe())
    assert "supersecret" not in shown and "hunter2" not in shown
    assert s.describe()["access_token"] == "**********"
    assert s.access_token.get_secret_value() == "00Dxx!supersecret"


@pytest.mark.parametrize("name, value, needle", [
    ("COSELL_AUTH", "kerberos", "jwt"),
    ("COSELL_LOGIN_URL", "http://login.salesforce.com", "https://"),
    ("COSELL_QUOTA_SHARE", "1.5", "quota_share"),
])
def test_invalid_settings_say_what_is_valid(monkeypatch, name, value, needle):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert needle in str(exc.value)


def test_the_emulator_json_line_maps_onto_settings_one_to_one(monkeypatch):
    info = {"instance_url": "https://127.0.0.1:5555", "login_url": "https://127.0.0.1:5555",
            "access_token": "tok", "ca_cert": "/tmp/server.crt", "username": "u@example.com",
            "consumer_key": "ck", "private_key": "/tmp/key.pem", "refresh_token": "rt",
            "consumer_secret": "cs", "password": "pw"}
    for key, value in info.items():
        monkeypatch.setenv(f"COSELL_{key.upper()}", value)
    s = Settings()
    assert s.instance_url == info["instance_url"] and str(s.ca_cert) == info["ca_cert"]
    assert s.refresh_token.get_secret_value() == "rt" and s.private_key.get_secret_value() == info["private_key"]
