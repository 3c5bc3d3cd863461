"""The admin API's outer wall, in front of FastAPI: the bearer token is checked on the request's
headers before a byte of its body is read, and a body over the size limit is refused before it is
parsed. FastAPI itself reads and parses a body before a route's dependencies run, so a check there
would come too late: a 100 MB body with no token would already be in memory."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Routes anyone may call: the liveness probe and the API's own description.
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"})
# Pages with a sign-in of their own (the admin console's and the partners' session cookies, CSRF on
# every form) and their static files: the body limit applies, the bearer token does not.
OWN_SIGN_IN = ("/console", "/partner", "/static/")


class AdminGuard:
    """ASGI middleware: 401 without the right bearer token, 413 for a body over `max_body_bytes`
    (by Content-Length, or counted as it streams in), before the application sees the request."""

    def __init__(self, app: ASGIApp, token: str, *, max_body_bytes: int) -> None:
        self.app, self.expected, self.max_body_bytes = app, token.encode(), max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        path = scope["path"]
        open_ = path in OPEN_PATHS or path.startswith(OWN_SIGN_IN)
        if not open_ and not self._authorized(headers.get("authorization", b"")):
            await _answer(send, 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
            return
        declared = headers.get("content-length", b"")
        if declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, self._too_large())
            return
        body, more = bytearray(), True
        while more:   # the body is small by now: read it here, counting, and hand it on whole
            message = await receive()
            if message["type"] != "http.request":   # the client went away mid-body: nothing to answer
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _answer(send, 413, self._too_large())
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    def _authorized(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        # compare_digest even for a missing or malformed header, so timing says nothing
        return hmac.compare_digest(given.strip() if scheme.lower() == b"bearer" else b"", self.expected)

    def _too_large(self) -> str:
        return (f"request body over {self.max_body_bytes:,} bytes (COSELL_ADMIN_MAX_BODY_BYTES); admin requests "
                "are small JSON documents")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives the buffered body once, then whatever the client sends next
    (its disconnect, which the server reports when it happens)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _answer(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close"), *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})


__all__ = ["AdminGuard", "OPEN_PATHS"]
