"""Login against the emulator's OAuth token endpoint with each flow an admin uses,
and the real OAuth error bodies when a credential is wrong."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce

from connector.emulator import tls
from connector.salesforce import auth
from connector.salesforce.http import SalesforceSession


@pytest.fixture
def session(emulator):
    return SalesforceSession(ca_cert=emulator.ca_cert)


def _works(emulator, session, token: auth.Token) -> None:
    sf = Salesforce(session_id=token.access_token, instance_url=token.instance_url, session=session)
    assert sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    assert token.identity_url.endswith(f"/id/{emulator.org.organization_id}/{emulator.store.current_user_id}")


def test_jwt_bearer_flow(emulator, session):
    token = auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                            username=emulator.username, private_key=emulator.private_key)
    assert token.raw["token_type"] == "Bearer" and "refresh_token" not in token.raw
    assert token.access_token not in repr(token), "a token never reaches a log line through repr"
    _works(emulator, session, token)


def test_jwt_signed_with_another_key_is_refused(emulator, session, tmp_path):
    stranger = tls.connected_app_keys(tmp_path)
    with pytest.raises(auth.AuthenticationError) as exc:
        auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                        username=emulator.username, private_key=stranger.key_path)
    assert (exc.value.status, exc.value.error, exc.value.description) == (400, "invalid_grant", "invalid assertion")


def test_jwt_with_unknown_consumer_key_or_user_is_refused(emulator, session):
    with pytest.raises(auth.AuthenticationError) as exc:
        auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key="3MVG9wrong",
                        username=emulator.username, private_key=emulator.private_key)
    assert exc.value.error == "invalid_client_id"
    with pytest.raises(auth.AuthenticationError) as exc:
        auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                        username="someone.else@example.com", private_key=emulator.private_key)
    assert exc.value.description == "user hasn't approved this consumer"


def test_jwt_with_wrong_audience_is_refused(emulator, session):
    with pytest.raises(auth.AuthenticationError) as exc:
        auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                        username=emulator.username, private_key=emulator.private_key,
                        audience="https://evil.example.com")
    assert exc.value.description == "audience is invalid"


def test_refresh_token_flow(emulator, session):
    token = auth.refresh_token(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                               refresh=emulator.new_refresh_token())
    assert token.raw["signature"]
    _works(emulator, session, token)
    with pytest.raises(auth.AuthenticationError) as exc:
        auth.refresh_token(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                           refresh="5Aep-not-issued")
    assert (exc.value.error, exc.value.description) == ("invalid_grant", "expired access/refresh token")


def test_username_password_flow(emulator, session):
    token = auth.password(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                          consumer_secret=emulator.consumer_secret, username=emulator.username,
                          password=emulator.password)
    _works(emulator, session, token)
    with pytest.raises(auth.AuthenticationError) as exc:
        auth.password(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                      consumer_secret=emulator.consumer_secret, username=emulator.username, password="wrong")
    assert (exc.value.status, exc.value.error, exc.value.description) == (400, "invalid_grant",
                                                                          "authentication failure")


def test_a_token_from_an_expired_session_is_refused_until_a_new_login(emulator, session):
    token = auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                            username=emulator.username, private_key=emulator.private_key)
    emulator.expire_sessions()
    response = session.get(f"{token.instance_url}/services/data/v59.0/limits",
                           headers={"Authorization": f"Bearer {token.access_token}"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    fresh = auth.jwt_bearer(session, login_url=emulator.login_url, consumer_key=emulator.consumer_key,
                            username=emulator.username, private_key=emulator.private_key)
    _works(emulator, session, fresh)
