"""Login for the emulated org: the OAuth 2.0 token endpoint (JWT bearer checked
against the connected app's certificate, refresh token, username-password), the
SOAP login simple-salesforce uses for a security token, and access tokens that
expire. Error bodies are the real OAuth ones; secrets are never logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

import jwt
from cryptography import x509


@dataclass
class ConnectedApp:
    consumer_key: str
    consumer_secret: str
    certificate_pem: bytes


@dataclass
class Session:
    token: str
    user_id: str
    expires_at: float


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class Authenticator:
    """Issues and checks access tokens for one org."""

    def __init__(self, *, organization_id: str, app: ConnectedApp, username: str, user_id: str,
                 password: str, security_token: str = "", session_ttl: float = 7200.0) -> None:
        self.organization_id = organization_id
        self.app = app
        self.username = username
        self.user_id = user_id
        self.password = password
        self.security_token = security_token
        self.session_ttl = session_ttl
        self._sessions: dict[str, Session] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._public_key = x509.load_pem_x509_certificate(app.certificate_pem).public_key()

    # -- sessions ---------------------------------------------------------------------------
    def new_session(self, user_id: str | None = None) -> str:
        token = f"{self.organization_id[:15]}!AQ" + secrets.token_urlsafe(72)
        with self._lock:
            self._sessions[token] = Session(token, user_id or self.user_id, time.time() + self.session_ttl)
        return token

    def new_refresh_token(self) -> str:
        token = "5Aep" + secrets.token_urlsafe(60)
        with self._lock:
            self._refresh_tokens[token] = self.user_id
        return token

    def check(self, authorization: str | None) -> Session | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return None
        with self._lock:
            session = self._sessions.get(token.strip())
            if session is None:
                return None
            if session.expires_at <= time.time():
                del self._sessions[session.token]
                return None
            return session

    def expire_all(self) -> int:
        """Invalidate every access token (refresh tokens and credentials still work)."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    # -- OAuth token endpoint ---------------------------------------------------------------
    def token(self, body: bytes, *, instance_url: str, login_url: str,
              audiences: tuple[str, ...]) -> dict[str, Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            self._check_jwt(form.get("assertion", ""), audiences)
            return self._token_response(instance_url, login_url, scope="api full", signed=False)
        if grant == "refresh_token":
            self._check_client(form.get("client_id"), form.get("client_secret"), secret_required=False)
            with self._lock:
                known = form.get("refresh_token") in self._refresh_tokens
            if not known:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            return self._token_response(instance_url, login_url, scope="api refresh_token full", signed=True)
        if grant == "password":
            self._check_client(form.get("client_id"), form.get("client_secret"), secret_required=True)
            if not self._password_ok(form.get("username"), form.get("password")):
                raise OAuthError("invalid_grant", "authentication failure")
            return self._token_response(instance_url, login_url, scope=None, signed=True)
        if grant is None:
            raise OAuthError("invalid_request", "grant type not supported")
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _check_client(self, client_id: str | None, secret: str | None, *, secret_required: bool) -> None:
        if not client_id or not hmac.compare_digest(client_id, self.app.consumer_key):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if secret_required or secret is not None:
            if not secret or not hmac.compare_digest(secret, self.app.consumer_secret):
                raise OAuthError("invalid_client", "invalid client credentials")

    def _password_ok(self, username: str | None, password: str | None) -> bool:
        expected = self.password + self.security_token
        return (username or "").lower() == self.username.lower() and hmac.compare_digest(password or "", expected)

    def _check_jwt(self, assertion: str, audiences: tuple[str, ...]) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            claims = jwt.decode(assertion, self._public_key, algorithms=["RS256"],
                                options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp"]})
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims["iss"] != self.app.consumer_key:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        aud = claims["aud"] if isinstance(claims["aud"], str) else (claims["aud"] or [""])[0]
        if aud.rstrip("/") not in audiences:
            raise OAuthError("invalid_grant", "audience is invalid")
        if claims["exp"] > time.time() + 300:
            raise OAuthError("invalid_grant", "invalid assertion")
        if str(claims["sub"]).lower() != self.username.lower():
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

    def _token_response(self, instance_url: str, login_url: str, *, scope: str | None,
                        signed: bool) -> dict[str, Any]:
        issued_at = str(int(time.time() * 1000))
        identity = f"{login_url}/id/{self.organization_id}/{self.user_id}"
        out: dict[str, Any] = {"access_token": self.new_session(), "instance_url": instance_url,
                               "id": identity, "token_type": "Bearer", "issued_at": issued_at}
        if scope:
            out["scope"] = scope
        if signed:
            digest = hmac.new(self.app.consumer_secret.encode(), (identity + issued_at).encode(),
                              hashlib.sha256).digest()
            out["signature"] = base64.b64encode(digest).decode()
        return out

    # -- SOAP login (simple-salesforce's username + password + security token) --------------
    def soap_login(self, body: bytes, *, instance_url: str, version: str) -> tuple[int, str]:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return 500, _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user "
                                                     "locked out.")
        values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        if not self._password_ok(values.get("username"), values.get("password")):
            return 500, _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user "
                                                     "locked out.")
        token = self.new_session()
        server_url = f"{instance_url}/services/Soap/u/{version}/{self.organization_id}"
        return 200, (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
            f"<soapenv:Body><loginResponse><result><metadataServerUrl>{instance_url}/services/Soap/m/{version}/"
            f"{self.organization_id}</metadataServerUrl><passwordExpired>false</passwordExpired>"
            f"<sandbox>false</sandbox><serverUrl>{server_url}</serverUrl><sessionId>{token}</sessionId>"
            f"<userId>{self.user_id}</userId><userInfo><organizationId>{self.organization_id}</organizationId>"
            f"<userName>{self.username}</userName></userInfo></result></loginResponse></soapenv:Body>"
            "</soapenv:Envelope>")


def _soap_fault(code: str, message: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
            f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>"
            f"<sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}"
            "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")
