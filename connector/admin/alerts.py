"""Alerts: webhooks told of a failed run, new parked records, new conflicts, channel conflicts and API
usage above its share. Kinds are plug-ins registered by name (`register_alert_kind`); each looks at the
sync's state through the query layer and names what it found by a key, so nothing is announced twice.

Found alerts go to an outbox table first, in the same transaction that marks their items seen; a
delivery is retried with doubling waits until the receiver answers 2xx or the attempts run out, so an
alert survives a restart or a receiver that is down. Every POST is signed: `X-Cosell-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under COSELL_ALERT_WEBHOOK_SECRET>`. Nothing here
writes to the sync's own tables or calls Salesforce."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    insert,
    select,
    update,
)

from connector.admin.queries import AdminQueries
from connector.errors import ConfigurationError
from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime

__all__ = ["ALERT_KINDS", "Alert", "AlertItem", "AlertKind", "AlertService", "SIGNATURE_HEADER", "register_alert_kind",
           "sign", "verify_signature"]

log = logging.getLogger("connector.alerts")
UTC = dt.timezone.utc
SIGNATURE_HEADER = "X-Cosell-Signature"
# Rows are looked for from this long before the last look: a transaction that commits late (a run's
# conflicts commit with its page) is still seen; the seen keys keep it from being announced twice.
LOOKBACK = dt.timedelta(minutes=15)
# Items listed in one alert at most; the rest are counted (`more`), so a run that parks thousands of
# records sends one readable alert, not thousands.
MAX_ITEMS = 50


@dataclass(frozen=True)
class AlertItem:
    key: str                 # unique within its kind, for good: an item is announced once
    data: dict[str, Any]


@dataclass(frozen=True)
class Alert:
    kind: str
    summary: str
    items: list[AlertItem]


class AlertKind(Protocol):
    """A kind of alert: what it looks at and how it names what it found."""

    name: str
    # Events (a run failed, a record was parked) found at the very first look are history, noted and not
    # sent; a standing state (a channel conflict, usage over its share) is news whenever first seen.
    history_at_first_look: bool

    def collect(self, queries: AdminQueries, since: dt.datetime, now: dt.datetime) -> list[AlertItem]:
        """Items to announce, found from `since` on (every item still current, for kinds without a time)."""

    def summary(self, items: list[AlertItem]) -> str: ...


ALERT_KINDS: dict[str, AlertKind] = {}


def register_alert_kind(kind: AlertKind) -> AlertKind:
    ALERT_KINDS[kind.name] = kind
    return kind


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- the kinds ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunFailed:
    history_at_first_look: bool = True
    name: str = "run_failed"

    def collect(self, queries, since, now):
        runs = queries.connector.sync.state.runs
        with queries.connector.engine.connect() as conn:
            rows = conn.execute(select(runs).where(and_(runs.c.status == "failed", runs.c.ended_at >= since))
                                .order_by(runs.c.id)).all()
        return [AlertItem(str(r.id), {"run_id": r.id, "trigger": r.trigger, "error": r.error,
                                      "started_at": _iso(r.started_at), "ended_at": _iso(r.ended_at)}) for r in rows]

    def summary(self, items):
        return f"{len(items)} sync run(s) failed: " + "; ".join(
            f"run {i.data['run_id']}: {(i.data['error'] or '')[:200]}" for i in items[:3])


@dataclass(frozen=True)
class ParkedRecords:
    history_at_first_look: bool = True
    name: str = "parked_records"

    def collect(self, queries, since, now):
        dl = queries.connector.sync.state.dead_letters
        with queries.connector.engine.connect() as conn:
            rows = conn.execute(select(dl).where(dl.c.first_failed_at >= since).order_by(dl.c.first_failed_at)).all()
        # A record parked again after a retry starts a new first_failed_at: announced again, rightly.
        return [AlertItem(f"{r.object_name}:{r.record_uuid}:{r.first_failed_at.isoformat()}", {
            "object": r.object_name, "record_uuid": r.record_uuid, "sfid": r.sfid, "operation": r.operation,
            "error_code": r.error_code, "message": r.message, "failed_at": _iso(r.first_failed_at)}) for r in rows]

    def summary(self, items):
        objects = sorted({i.data["object"] for i in items})
        return f"{len(items)} record(s) parked ({', '.join(objects)}): Salesforce or the database refused them"


@dataclass(frozen=True)
class Conflicts:
    history_at_first_look: bool = True
    name: str = "conflicts"

    def collect(self, queries, since, now):
        c = queries.connector.sync.state.conflicts
        with queries.connector.engine.connect() as conn:
            rows = conn.execute(select(c.c.id, c.c.run_id, c.c.object_name, c.c.sfid, c.c.field_name, c.c.policy,
                                       c.c.winner, c.c.parked).where(c.c.created_at >= since).order_by(c.c.id)).all()
        return [AlertItem(str(r.id), {"conflict_id": r.id, "run_id": r.run_id, "object": r.object_name,
                                      "sfid": r.sfid, "field": r.field_name, "policy": r.policy, "winner": r.winner,
                                      "held_for_admin": bool(r.parked)}) for r in rows]

    def summary(self, items):
        held = sum(1 for i in items if i.data["held_for_admin"])
        return f"{len(items)} new conflict(s), {held} held for an admin to resolve"


@dataclass(frozen=True)
class ChannelConflicts:
    history_at_first_look: bool = False
    name: str = "channel_conflicts"

    def collect(self, queries, since, now):
        return [AlertItem(f"{c.kind}:{','.join(sorted(c.registration_keys))}",
                          {"kind": c.kind, "registrations": list(c.registration_keys), "reason": c.reason})
                for c in queries.channel_conflicts()]

    def summary(self, items):
        return f"{len(items)} channel conflict(s) between deal registrations: " + "; ".join(
            i.data["reason"] for i in items[:3])


@dataclass(frozen=True)
class ApiQuota:
    history_at_first_look: bool = False
    name: str = "api_quota"

    def collect(self, queries, since, now):
        usage = queries.api_usage()
        share = queries.connector.settings.alert_quota_share
        if not usage.limit or usage.share < share:
            return []
        # Once per UTC day: the limit is a rolling 24 hours, a day is as often as it is news.
        return [AlertItem(now.date().isoformat(), {"used": usage.used, "limit": usage.limit,
                                                   "share": round(usage.share, 4), "alert_share": share,
                                                   "stop_at_share": usage.stop_at_share})]

    def summary(self, items):
        d = items[0].data
        return (f"API usage at {d['share']:.0%} of the org's daily limit ({d['used']}/{d['limit']}); the connector "
                f"stops at {d['stop_at_share']:.0%}")


for _kind in (RunFailed(), ParkedRecords(), Conflicts(), ChannelConflicts(), ApiQuota()):
    register_alert_kind(_kind)


# -- signing ---------------------------------------------------------------------------------------
def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes, body: bytes, header: str, *, tolerance: float = 300,
                     now: float | None = None) -> bool:
    """For receivers: the signature is ours and recent (a replayed old POST fails)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    timestamp = int(parts["t"])
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), f"t={timestamp},v1={parts['v1']}")


# -- the service -----------------------------------------------------------------------------------
def alert_tables(metadata: MetaData, prefix: str = "") -> tuple[Table, Table, Table]:
    outbox = Table(
        meta_table_name("alert_outbox", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("alert_id", String(36), nullable=False),     # one alert, sent to each webhook
        Column("kind", String(60), nullable=False),
        Column("url", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UtcDateTime, nullable=False),
        Column("delivered_at", UtcDateTime),
        Column("failed_at", UtcDateTime),                   # given up after the last attempt; kept
        Column("last_error", Text),
    )
    seen = Table(
        meta_table_name("alert_seen", prefix), metadata,
        Column("kind", String(60), nullable=False),
        Column("item_key", String(400), nullable=False),
        Column("seen_at", UtcDateTime, nullable=False),
        PrimaryKeyConstraint("kind", "item_key"),
    )
    cursors = Table(
        meta_table_name("alert_cursors", prefix), metadata,
        Column("kind", String(60), primary_key=True),
        Column("looked_at", UtcDateTime, nullable=False),
    )
    return outbox, seen, cursors


@dataclass
class AlertService:
    queries: AdminQueries
    urls: list[str]
    secret: bytes
    kinds: list[AlertKind]
    interval: float = 30.0
    max_attempts: int = 10
    first_wait: float = 10.0
    max_wait: float = 3600.0
    timeout: float = 10.0
    session: requests.Session = field(default_factory=requests.Session)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)

    def __post_init__(self) -> None:
        sync = self.queries.connector.sync
        self._meta = MetaData(schema=sync.schema)
        self.outbox, self.seen, self.cursors = alert_tables(self._meta, sync.prefix)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = False

    @classmethod
    def from_settings(cls, connector, queries: AdminQueries) -> AlertService:
        s = connector.settings
        if s.alert_webhook_secret is None or len(s.alert_webhook_secret.get_secret_value()) < 16:
            raise ConfigurationError("COSELL_ALERT_WEBHOOK_SECRET must be set (at least 16 characters) when "
                                     "COSELL_ALERT_WEBHOOK_URLS is: every alert is signed with it")
        return cls(queries, s.webhooks, s.alert_webhook_secret.get_secret_value().encode(), kinds_named(s.alert_kinds),
                   interval=s.alert_interval, max_attempts=s.alert_max_attempts)

    # -- finding -------------------------------------------------------------------------------
    def ensure(self) -> None:
        if not self._ready:
            with self.queries.connector.engine.begin() as conn:
                self._meta.create_all(conn, checkfirst=True)
            self._ready = True

    def scan(self) -> list[Alert]:
        """Look for what each kind finds since its last look; queue one alert per kind with new items.
        An event kind's first look only notes what is already there: history is not news."""
        self.ensure()
        now = self.clock()
        found: list[Alert] = []
        engine = self.queries.connector.engine
        for kind in self.kinds:
            with engine.connect() as conn:
                looked = conn.execute(select(self.cursors.c.looked_at).where(self.cursors.c.kind == kind.name)).scalar()
            first = looked is None
            try:
                items = kind.collect(self.queries, (looked or now) - LOOKBACK, now)
            except Exception:   # one broken kind (a plug-in) must not stop the others
                log.exception("alert kind %s failed to look", kind.name)
                continue
            with engine.begin() as conn:
                keys = [i.key[:400] for i in items]
                known = {r[0] for start in range(0, len(keys), 500) for r in conn.execute(
                    select(self.seen.c.item_key).where(and_(self.seen.c.kind == kind.name,
                                                            self.seen.c.item_key.in_(keys[start:start + 500]))))}
                new = [i for i in items if i.key[:400] not in known]
                if new:
                    conn.execute(insert(self.seen), [dict(kind=kind.name, item_key=i.key[:400], seen_at=now)
                                                     for i in new])
                if first:
                    conn.execute(insert(self.cursors).values(kind=kind.name, looked_at=now))
                else:
                    conn.execute(update(self.cursors).where(self.cursors.c.kind == kind.name).values(looked_at=now))
                if new and not (first and kind.history_at_first_look):
                    alert = Alert(kind.name, kind.summary(new), new)
                    self._queue(conn, alert, now)
                    found.append(alert)
        return found

    def _queue(self, conn, alert: Alert, now: dt.datetime) -> None:
        alert_id = str(uuid.uuid4())
        payload = json.dumps({"id": alert_id, "kind": alert.kind, "created_at": now.isoformat(),
                              "summary": alert.summary, "count": len(alert.items),
                              "items": [i.data for i in alert.items[:MAX_ITEMS]],
                              "more": max(0, len(alert.items) - MAX_ITEMS)}, sort_keys=True, default=str)
        conn.execute(insert(self.outbox), [dict(alert_id=alert_id, kind=alert.kind, url=url, payload=payload,
                                                created_at=now, attempts=0, next_attempt_at=now)
                                           for url in self.urls])
        log.info("alert %s queued: %s", alert.kind, alert.summary)

    # -- delivering ----------------------------------------------------------------------------
    def deliver_due(self) -> int:
        """POST every queued alert whose time has come; returns how many were delivered now."""
        self.ensure()
        now = self.clock()
        o = self.outbox
        engine = self.queries.connector.engine
        with engine.connect() as conn:
            due = conn.execute(select(o).where(and_(o.c.delivered_at.is_(None), o.c.failed_at.is_(None),
                                                    o.c.next_attempt_at <= now)).order_by(o.c.id)).all()
        delivered = 0
        for row in due:
            error = self._post(row)
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": error}
            if error is None:
                values["delivered_at"] = self.clock()
                delivered += 1
            elif attempts >= self.max_attempts:
                values["failed_at"] = self.clock()
                log.error("alert %s to %s given up after %d attempts: %s", row.kind, _host(row.url), attempts, error)
            else:
                wait = min(self.first_wait * 2 ** (attempts - 1), self.max_wait)
                values["next_attempt_at"] = self.clock() + dt.timedelta(seconds=wait)
                log.warning("alert %s to %s failed (%s); tried again in %.0f s", row.kind, _host(row.url), error, wait)
            with engine.begin() as conn:
                conn.execute(update(o).where(o.c.id == row.id).values(**values))
        return delivered

    def _post(self, row) -> str | None:
        body = row.payload.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "cosell-connector-alerts",
                   SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
                   "X-Cosell-Alert-Id": row.alert_id, "X-Cosell-Alert-Kind": row.kind}
        try:
            answer = self.session.post(row.url, data=body, headers=headers, timeout=self.timeout,
                                       allow_redirects=False)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {str(exc)[:300]}"
        return None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"

    def pending(self) -> list[dict[str, Any]]:
        """The outbox as the console shows it: newest first."""
        self.ensure()
        o = self.outbox
        with self.queries.connector.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(o.c.id, o.c.kind, o.c.url, o.c.created_at,
                                                                  o.c.attempts, o.c.delivered_at, o.c.failed_at,
                                                                  o.c.last_error).order_by(o.c.id.desc()).limit(50))]

    # -- the watcher ---------------------------------------------------------------------------
    def start(self) -> None:
        self.ensure()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cosell-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
                self.deliver_due()
            except Exception:   # the database may be away for a moment: look again next time
                log.exception("alert watcher: looking for alerts failed")
            self._stop.wait(self.interval)


def kinds_named(spec: str) -> list[AlertKind]:
    """`all`, or comma-separated kind names; an unknown one names the valid choices."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names in ([], ["all"]):
        return list(ALERT_KINDS.values())
    unknown = [n for n in names if n not in ALERT_KINDS]
    if unknown:
        raise ConfigurationError(f"COSELL_ALERT_KINDS: unknown kind(s) {', '.join(unknown)}; "
                                 f"choose all or some of: {', '.join(ALERT_KINDS)}")
    return [ALERT_KINDS[n] for n in names]


def _host(url: str) -> str:
    """A webhook URL as logged: its host only (a path or query may hold a token)."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc
