"""HTTPS transport of the org emulator: a threaded HTTP/1.1 server on 127.0.0.1
with keep-alive, login endpoints, bearer authentication, the daily API limit
with `Sforce-Limit-Info`, call counting, latency and fault injection.

What an endpoint answers is decided in `api.py`; this module only carries it,
so the fault rules apply the same way to every resource."""

from __future__ import annotations

import logging
import random
import re
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlsplit

from connector.emulator import cdc
from connector.emulator.api import SUPPORTED_VERSIONS, VERSION_LABELS, Request, Response, error
from connector.emulator.values import http_date

if TYPE_CHECKING:
    from connector.emulator.emulator import Emulator

log = logging.getLogger("connector.emulator")
_DATA_PATH = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")


class CallCounter:
    """Every HTTP call the emulator received, by kind (query, describe, collections_create, ...)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self, *, exclude: tuple[str, ...] = ("versions", "oauth_token", "soap_login")) -> int:
        with self._lock:
            return sum(n for k, n in self._counts.items() if k not in exclude)

    def __getitem__(self, kind: str) -> int:
        with self._lock:
            return self._counts.get(kind, 0)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


FaultAction = Literal["error", "drop", "expire_session", "lock_row"]


@dataclass
class FaultRule:
    action: FaultAction
    status: int = 503
    error_code: str = "SERVER_UNAVAILABLE"
    message: str = "Server temporarily unavailable"
    path: re.Pattern[str] | None = None
    method: str | None = None
    remaining: int | None = None
    share: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    choices: tuple[FaultAction, ...] = ()

    def applies(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return self.path is None or bool(self.path.search(path))


class FaultInjector:
    """Rules that make matching calls fail: the next N of them, or a seeded share at random."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def fail_next(self, n: int = 1, *, status: int = 503, error_code: str = "SERVER_UNAVAILABLE",
                  message: str = "Server temporarily unavailable", path: str | None = None,
                  method: str | None = None) -> None:
        self._add(FaultRule("error", status, error_code, message, _pattern(path), method, remaining=n))

    def drop_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Close the connection without answering, as a load balancer or a network fault does."""
        self._add(FaultRule("drop", path=_pattern(path), method=method, remaining=n))

    def expire_session_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Invalidate every access token just before the next matching call."""
        self._add(FaultRule("expire_session", path=_pattern(path), method=method, remaining=n))

    def fail_randomly(self, share: float, *, seed: int = 0, path: str | None = r"^/services/data/v",
                      actions: tuple[FaultAction, ...] = ("error", "lock_row", "drop", "expire_session")) -> None:
        """Fail `share` of matching calls at random (seeded), picking among `actions`."""
        if not 0 <= share <= 1:
            raise ValueError("share is a fraction between 0 and 1")
        self._add(FaultRule("error", path=_pattern(path), share=share, rng=random.Random(seed), choices=actions))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in list(self._rules):
                if not rule.applies(method, path):
                    continue
                if rule.share is not None:
                    if rule.rng.random() >= rule.share:
                        continue
                    action = rule.rng.choice(rule.choices)
                    if action == "lock_row" and method == "GET":
                        action = "error"
                    chosen = _random_fault(action)
                else:
                    chosen = rule
                    rule.remaining = (rule.remaining or 1) - 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                self.injected[chosen.action] += 1
                return chosen
        return None


def _random_fault(action: FaultAction) -> FaultRule:
    if action == "lock_row":
        return FaultRule("error", 400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
    return FaultRule(action)


def _pattern(path: str | None) -> re.Pattern[str] | None:
    return re.compile(path) if path else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    emulator: Emulator

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that drops the connection or refuses the certificate is not the server's fault.
        log.debug("connection from %s ended abnormally", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "SFDC"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY every answer waits for
        # the peer's delayed ACK (~40 ms), which no real org adds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_GET

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        method = self.command
        headers = {k.lower(): v for k, v in self.headers.items()}
        kind = "unknown"
        try:
            fault = emulator.faults.pick(method, url.path)
            if fault is not None:
                if fault.action == "drop":
                    emulator.calls.add("dropped")
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.action == "expire_session":
                    emulator.auth.expire_all()
                else:
                    emulator.calls.add("faulted")
                    self._send(error(fault.status, fault.error_code, fault.message))
                    return
            if emulator.latency:
                time.sleep(emulator.latency)
            kind, response = self._answer(emulator, method, url.path, url.query, headers, body)
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True
            return
        emulator.calls.add(kind)
        self._send(response)

    def _answer(self, emulator: Emulator, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> tuple[str, Response]:
        if path.rstrip("/") == "/services/data":
            return "versions", Response(200, [
                {"label": VERSION_LABELS.get(v, f"v{v}"), "url": f"/services/data/v{v}", "version": v}
                for v in SUPPORTED_VERSIONS])
        if path == "/services/oauth2/token" and method == "POST":
            return "oauth_token", emulator.token_endpoint(body)
        if path.startswith("/services/Soap/u/") and method == "POST":
            version = path.split("/")[4] if len(path.split("/")) > 4 else emulator.org.api_version
            status, xml = emulator.auth.soap_login(body, instance_url=emulator.instance_url, version=version)
            return "soap_login", Response(status, xml.encode(), content_type="text/xml;charset=UTF-8")
        if path.startswith("/id/"):
            return "identity", self._identity(emulator, headers)
        m = _DATA_PATH.match(path)
        if not m:
            return "unknown", error(404, "NOT_FOUND", "The requested resource does not exist")
        version, rest = m.group(1), m.group(2) or "/"
        if version not in SUPPORTED_VERSIONS:
            return "unknown", error(404, "NOT_FOUND", "The requested resource does not exist")
        session = emulator.auth.check(headers.get("authorization"))
        req = Request(method=method, path=rest, version=version, query=parse_qs(query), headers=headers, body=body)
        kind = emulator.api.kind(req)
        if session is None:
            resp = error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            resp.headers["WWW-Authenticate"] = "Token"
            return kind, resp
        api = emulator.api
        cost = api.subrequest_count(req) if kind == "composite_batch" else 1
        with emulator.usage_lock:
            if api.api_used + cost > api.daily_limit:
                resp = error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                resp.headers["Sforce-Limit-Info"] = f"api-usage={api.api_used}/{api.daily_limit}"
                return kind, resp
            api.api_used += cost
        # Saves made by this call carry its client id into their change events (`changeOrigin`).
        origin = cdc.call_origin.set(cdc.origin_of(headers.get("sforce-call-options"), version))
        try:
            response = api.handle(req)
        finally:
            cdc.call_origin.reset(origin)
        response.headers["Sforce-Limit-Info"] = f"api-usage={api.api_used}/{api.daily_limit}"
        return kind, response

    def _identity(self, emulator: Emulator, headers: dict[str, str]) -> Response:
        session = emulator.auth.check(headers.get("authorization"))
        if session is None:
            return Response(403, b"Bad_OAuth_Token", content_type="text/plain")
        user = emulator.store.fetch("User", session.user_id) or {}
        return Response(200, {"id": f"{emulator.login_url}/id/{emulator.org.organization_id}/{session.user_id}",
                              "organization_id": emulator.org.organization_id, "user_id": session.user_id,
                              "username": user.get("Username"), "display_name": user.get("Name"),
                              "email": user.get("Email"), "active": True, "user_type": "STANDARD",
                              "urls": {"rest": f"{emulator.instance_url}/services/data/v{{version}}/"}})

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header tells clients the org's own time (clients bound their read windows by it).
        return http_date(self.server.emulator.clock.now())

    def _send(self, response: Response) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        if response.status != 304 and (payload or response.status not in (204,)):
            self.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)


def start_server(emulator: Emulator, port: int, cert_path: str, key_path: str) -> tuple[_Server, threading.Thread]:
    """Serve `emulator` over HTTPS on 127.0.0.1:`port` (0 picks a free port) in a daemon thread."""
    server = _Server(("127.0.0.1", port), _Handler)
    server.emulator = emulator
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    # The handshake runs in the request thread, so one slow client cannot stall accept().
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="org-emulator", daemon=True,
                              kwargs={"poll_interval": 0.2})
    thread.start()
    return server, thread


__all__ = ["CallCounter", "FaultInjector", "FaultRule", "start_server"]
