"""OAuth 2.0 flows against a configurable login URL (login.salesforce.com,
test.salesforce.com, a My Domain, or the org emulator): JWT bearer, refresh
token and username-password. Returns the token response; never logs secrets.

A failed token request is classified like any other call: a 5xx, or a concurrent-request
limit, is worth retrying (`LoginUnavailable`); the org's daily limit gone or an OAuth error
is not. Key text or a key path is accepted, and a message never repeats the key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connector.config import is_key_text
from connector.errors import ConfigurationError

JWT_LIFETIME_SECONDS = 180
DAILY_LIMIT_MARKER = "TotalRequests"   # REQUEST_LIMIT_EXCEEDED for the daily limit, not the concurrent one


class AuthenticationError(Exception):
    """The org refused the credentials; `error` and `description` are its OAuth error."""

    def __init__(self, error: str, description: str, status: int):
        super().__init__(f"{error}: {description} (HTTP {status})")
        self.error, self.description, self.status = error, description, status


class LoginUnavailable(Exception):
    """The token request met a passing fault (5xx, concurrent-request limit): worth trying again."""

    def __init__(self, reason: str, status: int):
        super().__init__(f"{reason} (HTTP {status})")
        self.reason, self.status = reason, status


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
        body = None
    status = response.status_code
    if status == 200 and isinstance(body, dict) and body.get("access_token") and body.get("instance_url"):
        return Token(body["access_token"], body["instance_url"], body.get("id", ""), body)
    error, description = _oauth_error(body, response.text)
    if status == 200:
        raise AuthenticationError("invalid_response", "the token response holds no access_token and "
                                  "instance_url", status)
    if error == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT_MARKER not in description:
        raise LoginUnavailable(f"{error}: {description}", status)
    if status >= 500:
        raise LoginUnavailable(f"the login service is unavailable: {error}: {description}", status)
    raise AuthenticationError(error, description, status)


def _oauth_error(body: object, text: str) -> tuple[str, str]:
    """(error, description) of a refused token request, whatever its shape: OAuth's
    {"error", "error_description"}, REST's [{"errorCode", "message"}], or an HTML page."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        error = body.get("error") or body.get("errorCode") or "unknown_error"
        description = body.get("error_description") or body.get("message") or ""
        return str(error), str(description)[:300]
    return "unknown_error", " ".join(text.split())[:200]


def signing_key(value: str | Path) -> str:
    """The PEM private key a COSELL_PRIVATE_KEY value gives, as key text or as the path of its file;
    ConfigurationError (never quoting key text) when it is no usable private key."""
    text = str(value)
    if is_key_text(text):
        where = "COSELL_PRIVATE_KEY (key text)"
    else:
        where = f"COSELL_PRIVATE_KEY {text}"
        try:
            text = Path(text).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"{where}: no such file; give the path of the connected app's PEM private "
                                     "key, or the key text itself") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not PEM text"
            raise ConfigurationError(f"{where}: cannot be read ({reason}); give a PEM private key file") from None
    if "PRIVATE KEY-----" not in text and "-----BEGIN CERTIFICATE" in text:
        raise ConfigurationError(f"{where}: holds a certificate, not a private key; give the private key the "
                                 "connected app's certificate was made from (-----BEGIN PRIVATE KEY-----)")
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except TypeError:
        raise ConfigurationError(f"{where}: the private key is encrypted; give it unencrypted (e.g. "
                                 "`openssl pkey -in key.pem -out plain.pem`)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(f"{where}: not a PEM private key; expected -----BEGIN PRIVATE KEY----- "
                                 "or -----BEGIN RSA PRIVATE KEY-----") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{where}: not an RSA key; the JWT bearer flow signs with RS256")
    return text


def jwt_bearer(session: requests.Session, *, login_url: str, consumer_key: str, username: str,
               private_key: str | Path, audience: str | None = None, timeout: float = 30.0) -> Token:
    """The recommended server-to-server flow: an RS256 assertion signed with the connected app's key."""
    key = signing_key(private_key)
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
