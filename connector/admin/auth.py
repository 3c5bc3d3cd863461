"""Who may use the admin surface: the bearer token for the JSON API, and for the console a signed
session cookie the token is exchanged for at sign-in, with a CSRF token bound to the session that every
form must carry. The session key is derived from the admin token, so rotating the token signs every
console session out. Nothing here logs or returns the token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = ["AdminSession", "Sessions", "QUERY_TOKEN_NAMES", "SESSION_COOKIE", "LOGIN_COOKIE", "bearer_dependency",
           "token_matches"]

# Query parameters that look like credentials: refused outright, whatever their value.
QUERY_TOKEN_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "key", "auth", "authorization",
                               "bearer", "admin_token", "session_id", "sid"})
SESSION_COOKIE = "cosell_admin"
# Set by the sign-in page: binds the sign-in form's CSRF token to this browser before any session exists.
LOGIN_COOKIE = "cosell_signin"


def token_matches(given: str | bytes, expected: bytes) -> bool:
    """Constant time, even for a missing token, so timing says nothing."""
    return hmac.compare_digest(given.encode() if isinstance(given, str) else given, expected)


def bearer_dependency(expected: bytes):
    bearer = HTTPBearer(auto_error=False, description="The admin token (COSELL_ADMIN_TOKEN).")

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not token_matches(credentials.credentials if credentials is not None else b"", expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    return authorized


@dataclass(frozen=True)
class AdminSession:
    name: str      # who signed in: recorded on what they resolve or dismiss
    csrf: str      # the token every form of this session carries


class Sessions:
    """Signed, timed cookies (itsdangerous); the content is readable by its holder but not forgeable."""

    def __init__(self, token: bytes, max_age: int) -> None:
        key = hmac.new(token, b"cosell admin console session", hashlib.sha256).hexdigest()
        self.max_age = max_age
        self._session = URLSafeTimedSerializer(key, salt="session")
        self._login = URLSafeTimedSerializer(key, salt="sign-in")

    def issue(self, name: str) -> tuple[str, AdminSession]:
        session = AdminSession(name=name, csrf=secrets.token_urlsafe(24))
        return self._session.dumps({"name": session.name, "csrf": session.csrf}), session

    def read(self, request: Request) -> AdminSession | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=self.max_age)
        except BadSignature:   # also an expired one (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("csrf"), str):
            return None
        return AdminSession(name=data["name"], csrf=data["csrf"])

    def login_nonce(self) -> tuple[str, str]:
        """(cookie value, form value) of a sign-in form: the form's value must match this browser's cookie."""
        nonce = secrets.token_urlsafe(24)
        return self._login.dumps(nonce), nonce

    def login_nonce_ok(self, request: Request, given: str | None) -> bool:
        raw = request.cookies.get(LOGIN_COOKIE)
        if not raw or not given:
            return False
        try:
            nonce = self._login.loads(raw, max_age=3600)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce.encode(), given.encode())

    @staticmethod
    def csrf_ok(session: AdminSession, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf.encode(), given.encode())
