"""The org emulator as tests, benchmarks and the demo drive it: start an org over
HTTPS, connect to it like a real org, and control it from Python — count calls,
inject latency and faults, act as a Salesforce user, change metadata, move time.

The control surface is Python only; nothing here is reachable over HTTP."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from connector.emulator import tls
from connector.emulator.api import OrgApi, Response
from connector.emulator.auth import Authenticator, ConnectedApp, OAuthError
from connector.emulator.cdc import ChangeEventBus
from connector.emulator.orgdef import FieldDef, ObjectDef, OrgDef, load_org
from connector.emulator.pubsub import PubSubService, start_pubsub
from connector.emulator.server import CallCounter, FaultInjector, start_server
from connector.emulator.soql import compile_query
from connector.emulator.store import Clock, Store

DEFAULT_PASSWORD = "emulator-password"
SEEDED_BEFORE_START = dt.timedelta(minutes=1)


class Emulator:
    """One emulated org served on 127.0.0.1 over HTTPS.

    >>> with Emulator("cosell_demo", records=10) as org:
    ...     info = org.connection_info()
    """

    def __init__(self, org: str | Path | OrgDef = "cosell_demo", *, records: int = 0, seed: int = 42,
                 port: int = 0, latency: float = 0.0, daily_limit: int = 15000, session_ttl: float = 7200.0,
                 state_dir: str | Path | None = None, password: str = DEFAULT_PASSWORD,
                 security_token: str = "") -> None:
        self.org: OrgDef = org if isinstance(org, OrgDef) else load_org(org)
        self.clock = Clock()
        self.store = Store(self.org, self.clock)
        # The org's data predates whoever connects to it: seeded and generated records are stamped a
        # minute before the org's clock starts, as in a real org (where a first read covers them all;
        # a read never includes the current second).
        self.clock.advance(-SEEDED_BEFORE_START)
        self.store.load_seed()
        if records:
            from connector.emulator.datagen import generate
            self.generated = generate(self.store, size=records, seed=seed)
        else:
            self.generated = {}
        self.clock.advance(SEEDED_BEFORE_START)
        # Change Data Capture starts with the org's clock: the seeded data predates any subscriber.
        self.cdc = ChangeEventBus(self.store, self.clock)
        self.pubsub = PubSubService(self, self.cdc)
        self._pubsub_server = None
        self._pubsub_port = 0
        self.calls = CallCounter()
        self.faults = FaultInjector()
        self.latency = latency
        self.usage_lock = threading.Lock()
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="cosell-emulator-"))
        self._port = port
        self._server = None
        self._thread = None
        self.api = OrgApi(self.store, login_url=lambda: self.login_url)
        self.api.daily_limit = daily_limit
        user = self.store.fetch("User", self.store.current_user_id or "") or {}
        self.username = user.get("Username") or "integration@emulator.example"
        self.password = password
        self._app_keys = tls.connected_app_keys(self.state_dir)
        self.app = ConnectedApp(consumer_key="3MVG9" + secrets.token_urlsafe(60).replace("-", "A"),
                                consumer_secret=secrets.token_hex(32),
                                certificate_pem=self._app_keys.cert_path.read_bytes())
        self.auth = Authenticator(organization_id=self.org.organization_id, app=self.app, username=self.username,
                                  user_id=self.store.current_user_id or "", password=password,
                                  security_token=security_token, session_ttl=session_ttl)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is None:
            cert = tls.server_certificate(self.state_dir)
            self.ca_cert = str(cert.ca_cert_path)     # clients trust the CA; the server offers the leaf
            self._server, self._thread = start_server(self, self._port, str(cert.cert_path), str(cert.key_path))
            self._pubsub_server, self._pubsub_port = start_pubsub(self, self.pubsub, str(cert.cert_path),
                                                                  str(cert.key_path))
        return self

    def stop(self) -> None:
        if self._pubsub_server is not None:
            self._pubsub_server.stop(0)
            self._pubsub_server = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server.server_address[1]

    @property
    def instance_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def login_url(self) -> str:
        return self.instance_url

    @property
    def pubsub_url(self) -> str:
        """host:port of the Pub/Sub API (gRPC over TLS with the same certificate as HTTPS)."""
        if self._pubsub_server is None:
            raise RuntimeError("the emulator is not started")
        return f"127.0.0.1:{self._pubsub_port}"

    @property
    def private_key(self) -> str:
        return str(self._app_keys.key_path)

    @property
    def consumer_key(self) -> str:
        return self.app.consumer_key

    @property
    def consumer_secret(self) -> str:
        return self.app.consumer_secret

    def new_access_token(self) -> str:
        return self.auth.new_session()

    def new_refresh_token(self) -> str:
        return self.auth.new_refresh_token()

    def connection_info(self) -> dict[str, Any]:
        """What a client needs to connect; the keys match the connector's COSELL_* settings."""
        return {"instance_url": self.instance_url, "login_url": self.login_url,
                "access_token": self.new_access_token(), "ca_cert": self.ca_cert,
                "username": self.username, "consumer_key": self.consumer_key,
                "private_key": self.private_key, "refresh_token": self.new_refresh_token(),
                "consumer_secret": self.consumer_secret, "password": self.password,
                "api_version": self.org.api_version, "organization_id": self.org.organization_id,
                "pubsub_url": self.pubsub_url}

    def token_endpoint(self, body: bytes) -> Response:
        audiences = (self.login_url, "https://login.salesforce.com", "https://test.salesforce.com")
        try:
            payload = self.auth.token(body, instance_url=self.instance_url, login_url=self.login_url,
                                      audiences=audiences)
        except OAuthError as exc:
            return Response(exc.status, exc.body())
        return Response(200, payload)

    # -- limits and sessions ----------------------------------------------------------------
    @property
    def api_used(self) -> int:
        return self.api.api_used

    def set_daily_limit(self, limit: int, *, used: int | None = None) -> None:
        with self.usage_lock:
            self.api.daily_limit = limit
            if used is not None:
                self.api.api_used = used

    def fail_next_records(self, n: int = 1, *, code: str = "UNABLE_TO_LOCK_ROW",
                          message: str = "unable to obtain exclusive access to this record") -> None:
        """Make the next `n` records of collection writes fail one by one with `code`, unapplied, while
        the call itself answers 200 (the way a busy org refuses single records of a batch)."""
        self.api.record_faults.extend([(code, message)] * n)

    def emit_gap(self, object_name: str, record_ids: list[str], change_type: str = "GAP_UPDATE") -> None:
        """Send a header-only GAP_* change event for these records, as Salesforce does when it cannot
        make the real one."""
        self.cdc.gap(object_name, record_ids, change_type)

    def emit_overflow(self, object_name: str) -> None:
        """Send a GAP_OVERFLOW change event for the object (a transaction too large to describe)."""
        self.cdc.overflow(object_name)

    def expire_sessions(self) -> int:
        return self.auth.expire_all()

    def advance_clock(self, **delta: float) -> None:
        """Move the org's time forward (e.g. days=16 to age deletes out of the delete log)."""
        self.clock.advance(dt.timedelta(**delta))

    # -- acting as a Salesforce user --------------------------------------------------------
    def create(self, object_name: str, values: dict[str, Any]) -> str:
        return self.store.create(object_name, values)

    def update(self, object_name: str, record_id: str, values: dict[str, Any]) -> None:
        self.store.update(object_name, record_id, values)

    def delete(self, object_name: str, record_id: str) -> None:
        self.store.delete(object_name, record_id)

    def undelete(self, object_name: str, record_id: str) -> None:
        self.store.undelete(object_name, record_id)

    def get(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        with self.store.lock:
            record = self.store.get(object_name, record_id)
            return dict(record) if record is not None else None

    def records(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Records matching a SOQL query, as stored (wire values), without counting an API call."""
        compiled = compile_query(soql, self.org, self.clock.now())
        obj = self.org.get_object(compiled.object_name)
        with self.store.lock:
            hits = [r for r in self.store.scan(compiled.object_name, include_deleted=include_deleted or
                                                not obj.has_is_deleted)
                    if compiled.matches(r, self.store.fetch)]
            return [dict(r) for r in compiled.order(hits, self.store.fetch)]

    # -- changing metadata as an admin would ------------------------------------------------
    def add_field(self, object_name: str, name: str, type: str, **attrs: Any) -> None:  # noqa: A002
        self.store.add_field(object_name, FieldDef(name=name, type=type, **attrs))

    def remove_field(self, object_name: str, name: str) -> None:
        self.store.remove_field(object_name, name)

    def change_field(self, object_name: str, name: str, **changes: Any) -> None:
        self.store.change_field(object_name, name, **changes)

    def add_picklist_value(self, object_name: str, field_name: str, value: str, **kw: Any) -> None:
        self.store.add_picklist_value(object_name, field_name, value, **kw)

    def add_object(self, name: str, key_prefix: str, fields: dict[str, dict[str, Any]], **attrs: Any) -> None:
        self.store.add_object(ObjectDef.model_validate({"name": name, "key_prefix": key_prefix,
                                                        "fields": fields, **attrs}))

    def remove_object(self, name: str) -> None:
        self.store.remove_object(name)
