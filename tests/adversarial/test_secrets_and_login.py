"""Private keys given as text, a certificate given as the key, and faults of the token request.

Tried: COSELL_PRIVATE_KEY holding PEM key text (accepted); holding broken key text and a certificate
(one-line error; the text never appears in `cosell check`, in a log line, or in the run's error that
GET /runs serves); a 503 / 500 with a REST error list / an HTML page on the token request (retried,
then a clear error); 403 ConcurrentRequests on login (retried); 403 TotalRequests on login and on a
call (not retried); an untrusted certificate (a hint naming --ca-cert)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from connector.admin.api import create_app
from connector.cli import app
from connector.errors import (AuthenticationFailed, ConfigurationError, DailyLimitReached, PermanentApiError)
from connector.salesforce.client import SalesforceClient
from tests.conftest import settings_for
from tests.integration.admin.test_admin_api import AUTH, TOKEN, make_connector

runner = CliRunner()
TOKEN_PATH = "/services/oauth2/token"


def _body_lines(pem: str) -> list[str]:
    """The lines of a PEM text that would give it away (not the armour, which is public)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _broken(pem: str) -> str:
    lines = pem.splitlines()
    return "\n".join([lines[0], *(line[::-1] for line in lines[1:-1]), lines[-1]]) + "\n"


def test_key_text_in_cosell_private_key_logs_in(emulator):
    text = Path(emulator.private_key).read_text()
    client = SalesforceClient(settings_for(emulator, private_key=text))
    client.login()
    assert client.count("SELECT COUNT() FROM Account") >= 0
    assert settings_for(emulator, private_key=text).describe()["private_key"] == "**********"
    assert settings_for(emulator).describe()["private_key"] == emulator.private_key   # a path is shown


@pytest.mark.parametrize("what", ["broken key text", "certificate text", "certificate file"])
def test_a_bad_key_is_one_clear_line_and_never_echoed(emulator, what, clean_env, monkeypatch):
    pem = Path(emulator.private_key).read_text()
    cert = Path(emulator.private_key).with_suffix(".crt")
    value = {"broken key text": _broken(pem), "certificate text": cert.read_text(),
             "certificate file": str(cert)}[what]
    with pytest.raises(ConfigurationError) as exc:
        SalesforceClient(settings_for(emulator, private_key=value)).login()
    message = str(exc.value)
    assert "\n" not in message and "COSELL_PRIVATE_KEY" in message
    assert ("holds a certificate, not a private key" in message) == what.startswith("certificate")
    secret_lines = _body_lines(pem) + _body_lines(cert.read_text())
    assert not any(line in message for line in secret_lines)
    # cosell check, driven by the environment as in a container
    info = emulator.connection_info()
    for name in ("login_url", "username", "consumer_key", "ca_cert"):
        monkeypatch.setenv(f"COSELL_{name.upper()}", info[name])
    monkeypatch.setenv("COSELL_PRIVATE_KEY", value)
    checked = runner.invoke(app, ["check"])
    assert checked.exit_code == 1 and "FAIL login" in checked.output and "Traceback" not in checked.output
    assert not any(line in checked.output for line in secret_lines), checked.output


def test_a_failing_run_with_key_text_never_shows_the_key(emulator, database, caplog):
    connector = make_connector(emulator, database)
    pem = Path(emulator.private_key).read_text()
    bad = _broken(pem)
    connector.client.settings = connector.client.settings.model_copy(update={"private_key": SecretStr(bad)})
    connector.client._sf = None
    with caplog.at_level(logging.INFO):
        report = connector.sync.run()
    assert report.status == "failed" and "COSELL_PRIVATE_KEY" in report.error
    http = TestClient(create_app(connector, TOKEN))
    runs = http.get("/runs", headers=AUTH).text
    assert "COSELL_PRIVATE_KEY" in runs
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for surface in (report.error, runs, logged):
        assert not any(line in surface or line[::-1] in surface for line in _body_lines(pem))


@pytest.mark.parametrize("body", ["rest-list", "html"])
def test_login_5xx_is_retried_then_succeeds(emulator, body):
    client = SalesforceClient(settings_for(emulator, max_attempts=3))
    if body == "rest-list":
        emulator.faults.fail_next(2, status=503, error_code="SERVER_UNAVAILABLE", path=TOKEN_PATH)
    else:
        emulator.faults.fail_next(2, status=500, error_code="UNKNOWN_EXCEPTION", path=TOKEN_PATH)
    client.login()
    assert emulator.faults.injected["error"] == 2
    assert client.count("SELECT COUNT() FROM Account") >= 0


def test_login_5xx_that_persists_is_a_clear_error_not_an_attribute_error(emulator):
    client = SalesforceClient(settings_for(emulator, max_attempts=2))
    emulator.faults.fail_next(5, status=503, error_code="SERVER_UNAVAILABLE", path=TOKEN_PATH)
    with pytest.raises(PermanentApiError, match=r"login to .* failed 2 time\(s\): the login service is "
                                                r"unavailable: SERVER_UNAVAILABLE"):
        client.login()
    assert emulator.faults.injected["error"] == 2, "retried up to max_attempts, not multiplied"


def test_login_concurrent_limit_is_retried(emulator):
    client = SalesforceClient(settings_for(emulator))
    emulator.faults.fail_next(1, status=403, error_code="REQUEST_LIMIT_EXCEEDED", path=TOKEN_PATH,
                              message="ConcurrentRequests (Concurrent API Requests) Limit exceeded.")
    client.login()
    assert emulator.faults.injected["error"] == 1


def test_daily_limit_on_login_is_not_retried(emulator):
    client = SalesforceClient(settings_for(emulator))
    emulator.faults.fail_next(5, status=403, error_code="REQUEST_LIMIT_EXCEEDED", path=TOKEN_PATH,
                              message="TotalRequests Limit exceeded.")
    with pytest.raises(DailyLimitReached, match="daily API limit is used up"):
        client.login()
    assert emulator.faults.injected["error"] == 1


def test_daily_limit_on_a_call_is_not_retried_and_stops_the_run(emulator):
    client = SalesforceClient(settings_for(emulator, max_attempts=5))
    client.login()
    emulator.calls.reset()
    emulator.set_daily_limit(100, used=100)
    with pytest.raises(DailyLimitReached, match="TotalRequests"):
        client.count("SELECT COUNT() FROM Account")
    assert emulator.calls.total() == 1, "REQUEST_LIMIT_EXCEEDED (daily) was retried"


def test_wrong_credentials_stay_an_authentication_failure(emulator):
    with pytest.raises(AuthenticationFailed, match="invalid_grant"):
        SalesforceClient(settings_for(emulator, auth="password", password="wrong")).login()


def test_an_untrusted_certificate_names_ca_cert(emulator):
    client = SalesforceClient(settings_for(emulator, ca_cert=None))
    with pytest.raises(ConfigurationError, match="--ca-cert"):
        client.login()


def test_an_invalid_setting_is_one_line_naming_the_variable_without_its_value(clean_env, monkeypatch):
    monkeypatch.setenv("COSELL_QUOTA_SHARE", "5")
    monkeypatch.setenv("COSELL_LOGIN_URL", "http://secret-host.example")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = result.output.strip()
    assert "\n" not in line and "COSELL_QUOTA_SHARE: Input should be less than or equal to 1" in line
    assert "COSELL_LOGIN_URL: Value error, must be an https:// URL" in line
