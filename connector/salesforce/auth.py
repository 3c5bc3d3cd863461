"""OAuth 2.0 flows against a configurable login URL (login.salesforce.com,
test.salesforce.com, a My Domain, or the org emulator): JWT bearer, refresh
token and username-password. Returns the token response; never logs secrets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

JWT_LIFETIME_SECONDS = 180


class AuthenticationError(Exception):
    """The org refused the credentials; `error` and `description` are its OAuth error."""

    def __init__(self, error: str, description: str, status: int):
        super().__init__(f"{error}: {description} (HTTP {status})")
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str
    identity_url: str
    raw: dict[str, Any]

    def __repr__(self) -> str:  # the token itself must never reach a log line
        return f"Token(instance_url={self.instance_url!r}, identity_url={self.identity_url!r})"


def _post(session: requests.Session, login_url: str, form: dict[str, str], timeout: float) -> Token:
    response = session.post(f"{login_url.rstrip('/')}/services/oauth2/token", data=form, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        raise AuthenticationError(body.get("error", "unknown_error"),
                                  body.get("error_description", response.text[:200]), response.status_code)
    return Token(body["access_token"], body["instance_url"], body.get("id", ""), body)


def jwt_bearer(session: requests.Session, *, login_url: str, consumer_key: str, username: str,
               private_key: str | Path, audience: str | None = None, timeout: float = 30.0) -> Token:
    """The recommended server-to-server flow: an RS256 assertion signed with the connected app's key."""
    key = Path(private_key).read_text() if not str(private_key).lstrip().startswith("-----") else str(private_key)
    claims = {"iss": consumer_key, "sub": username, "aud": (audience or login_url).rstrip("/"),
              "exp": int(time.time()) + JWT_LIFETIME_SECONDS}
    assertion = jwt.encode(claims, key, algorithm="RS256")
    return _post(session, login_url, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": assertion}, timeout)


def refresh_token(session: requests.Session, *, login_url: str, consumer_key: str, refresh: str,
                  consumer_secret: str | None = None, timeout: float = 30.0) -> Token:
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": consumer_key}
    if consumer_secret:
        form["client_secret"] = consumer_secret
    return _post(session, login_url, form, timeout)


def password(session: requests.Session, *, login_url: str, consumer_key: str, consumer_secret: str,
             username: str, password: str, security_token: str = "", timeout: float = 30.0) -> Token:
    return _post(session, login_url, {"grant_type": "password", "client_id": consumer_key,
                                      "client_secret": consumer_secret, "username": username,
                                      "password": password + security_token}, timeout)
