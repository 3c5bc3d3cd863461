"""Alerts as a webhook receiver sees them, against the org emulator and a real database (SQLite and
PostgreSQL): each kind (failed run, new parked records, new conflicts, channel conflicts, API usage
above its share) arrives once, signed with HMAC-SHA256, and again after the receiver failed; nothing is
announced twice; the outbox outlives the process that filled it; bad alert settings fail clearly."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import insert, select, update

from connector.admin.alerts import (
    ALERT_KINDS,
    SIGNATURE_HEADER,
    AlertService,
    kinds_named,
    verify_signature,
)
from connector.config import Settings
from connector.errors import ConfigurationError

SECRET = b"webhook-secret-0123456789abcdef"
KINDS = {"run_failed", "parked_records", "conflicts", "channel_conflicts", "api_quota"}


class Receiver:
    """A webhook endpoint on loopback that can be told to fail its next requests with a 500."""

    def __init__(self):
        self.received: list[dict] = []      # every request, answered 2xx or not
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                failed = receiver.fail_next > 0
                receiver.fail_next -= failed
                receiver.received.append({"headers": dict(self.headers), "body": body, "failed": failed})
                self.send_response(500 if failed else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cosell"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict]:
        return [r for r in self.received if not r["failed"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def service(admin, receiver, **kwargs) -> AlertService:
    return AlertService(admin.app.state.admin.queries, [receiver.url], SECRET, list(ALERT_KINDS.values()),
                        first_wait=0, **kwargs)


def signature_ok(request) -> bool:
    """Checked the way a receiver would, from the documented scheme, not with the connector's code."""
    parts = dict(p.split("=", 1) for p in request["headers"][SIGNATURE_HEADER].split(","))
    mac = hmac.new(SECRET, parts["t"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


def both_sides_change(admin, row, local, remote):
    """NextStep changed in the portal, then later in Salesforce: a conflict at the next sync."""
    t = admin.tables["Opportunity"]
    admin.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep=local))
    admin.org.advance_clock(seconds=5)
    admin.org.update("Opportunity", row["sfid"], {"NextStep": remote})


def make_every_kind_happen(admin):
    """One of each: a conflict and a parked record from one run, API usage at 70% (the alert share is
    60%, the stop share 80%), a run that fails, two partners' competing registrations."""
    t = admin.tables["Opportunity"]
    row, bad = admin.rows("Opportunity")[:2]
    both_sides_change(admin, row, "portal says", "org says")
    admin.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    admin.org.set_daily_limit(10_000, used=7_000)
    admin.run()
    assert admin.connector.client.usage.share >= 0.6

    admin.org.faults.fail_next(1_000)
    try:
        report = admin.sync.run(["Account"])
        assert report.status == "failed"
    except Exception:   # the run row ends failed whichever way the error surfaces
        pass
    finally:
        admin.org.faults.clear()

    accounts = admin.rows("Account")
    reg = admin.tables["Deal_Registration__c"]
    opp = admin.rows("Opportunity")[3]
    for partner in accounts[:2]:
        admin.execute(insert(reg).values(name=f"claim of {partner['name']}", status__c="Submitted",
                                         partner_account__c=partner["sfid"], opportunity__c=opp["sfid"],
                                         end_customer_account__c=accounts[2]["sfid"]))
    # found as the co-sell step after a sync finds them, and stored (direct ownership aside)
    from connector.channel_conflicts import ChannelConflictRegister
    from connector.cosell.channel import DirectOwnership

    register = ChannelConflictRegister.for_sync(admin.sync, ownership=DirectOwnership(types=frozenset()))
    with admin.database.engine.begin() as conn:
        assert register.check(conn, trigger="sync")


def test_each_kind_arrives_once_signed_and_again_after_a_failure(admin, receiver):
    alerts = service(admin, receiver)
    assert alerts.scan() == [], "the first look notes what is there: history is not news"
    make_every_kind_happen(admin)

    found = alerts.scan()
    assert {a.kind for a in found} == KINDS and len(found) == len(KINDS)
    receiver.fail_next = 2
    assert alerts.deliver_due() == len(KINDS) - 2
    assert alerts.deliver_due() == 2, "the two refused are sent again (first wait 0 here)"
    assert alerts.deliver_due() == 0

    delivered = receiver.delivered()
    bodies = [json.loads(r["body"]) for r in delivered]
    assert sorted(b["kind"] for b in bodies) == sorted(KINDS), "each kind once"
    assert all(signature_ok(r) for r in receiver.received)
    failed_ids = [r["headers"]["X-Cosell-Alert-Id"] for r in receiver.received if r["failed"]]
    assert len(failed_ids) == 2
    assert sorted(r["headers"]["X-Cosell-Alert-Id"] for r in delivered if r["headers"]["X-Cosell-Alert-Id"]
                  in failed_ids) == sorted(failed_ids), "the retry is the same alert"

    by_kind = {b["kind"]: b for b in bodies}
    assert by_kind["run_failed"]["items"][0]["error"]
    parked = by_kind["parked_records"]["items"]
    assert [i["error_code"] for i in parked] == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    assert [i["field"] for i in by_kind["conflicts"]["items"]] == ["NextStep"]
    assert by_kind["channel_conflicts"]["items"][0]["kind"] == "competing_registrations"
    assert by_kind["api_quota"]["items"][0]["used"] >= 7_000

    # a tampered body, a stale timestamp or another key do not verify
    one = delivered[0]
    header = one["headers"][SIGNATURE_HEADER]
    assert verify_signature(SECRET, one["body"], header)
    assert not verify_signature(SECRET, one["body"] + b" ", header)
    assert not verify_signature(b"another-secret-0123456789", one["body"], header)
    assert not verify_signature(SECRET, one["body"], header, now=int(header.split(",")[0][2:]) + 3600)

    # nothing announced twice: the same state, looked at again and after a quiet sync
    admin.run()
    assert alerts.scan() == [] and alerts.deliver_due() == 0
    assert len(receiver.delivered()) == len(KINDS)


def test_the_outbox_outlives_its_process_and_gives_up_politely(admin, receiver):
    first = service(admin, receiver)
    first.scan()
    row = admin.rows("Opportunity")[0]
    both_sides_change(admin, row, "portal", "org")
    admin.run()
    assert [a.kind for a in first.scan()] == ["conflicts"]
    receiver.fail_next = 1
    assert first.deliver_due() == 0                    # the receiver was down; then this process stops

    second = service(admin, receiver)                  # a restart: a new service over the same tables
    assert second.scan() == []
    assert second.deliver_due() == 1
    assert [json.loads(r["body"])["kind"] for r in receiver.delivered()] == ["conflicts"]

    both_sides_change(admin, row, "portal again", "org again")
    admin.run()
    stubborn = service(admin, receiver, max_attempts=2)
    assert [a.kind for a in stubborn.scan()] == ["conflicts"]
    receiver.fail_next = 10
    assert stubborn.deliver_due() == 0 and stubborn.deliver_due() == 0
    kept = [o for o in stubborn.pending() if o["failed_at"] is not None]
    assert len(kept) == 1 and kept[0]["attempts"] == 2 and kept[0]["last_error"] == "HTTP 500"
    assert stubborn.deliver_due() == 0, "given up: not sent again"
    with admin.database.engine.connect() as conn:
        assert conn.execute(select(stubborn.outbox.c.payload).where(stubborn.outbox.c.failed_at.is_not(None))).scalar()


def test_bad_alert_settings_fail_clearly(admin):
    with pytest.raises(ConfigurationError, match="choose all or some of: run_failed, parked_records"):
        kinds_named("conflicts, nope")
    assert [k.name for k in kinds_named("conflicts,api_quota")] == ["conflicts", "api_quota"]
    with pytest.raises(ValueError, match="http:// only to localhost"):
        Settings(alert_webhook_urls="http://hooks.example.com/x", config="/nonexistent/cosell.config.yaml")
    assert Settings(alert_webhook_urls="https://hooks.example.com/x, http://127.0.0.1:9/y",
                    config="/nonexistent/cosell.config.yaml").webhooks == ["https://hooks.example.com/x",
                                                                          "http://127.0.0.1:9/y"]
    admin.connector.settings.__dict__.update(alert_webhook_urls="https://hooks.example.com/x",
                                             alert_webhook_secret=None)
    with pytest.raises(ConfigurationError, match="COSELL_ALERT_WEBHOOK_SECRET must be set"):
        AlertService.from_settings(admin.connector, admin.app.state.admin.queries)


def test_the_app_runs_the_watcher_when_webhooks_are_configured(admin, receiver):
    """As `cosell serve` runs it: settings name the webhook, the app's lifespan starts the watcher."""
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from connector.admin.api import create_app
    from tests.integration.admin.test_admin_api import TOKEN

    admin.connector.settings.__dict__.update(alert_webhook_urls=receiver.url, alert_interval=0.1,
                                             alert_webhook_secret=SecretStr(SECRET.decode()))
    app = create_app(admin.connector, TOKEN)
    with TestClient(app):
        deadline = time.monotonic() + 20
        while not _looked(app) and time.monotonic() < deadline:
            time.sleep(0.05)
        both_sides_change(admin, admin.rows("Opportunity")[0], "portal", "org")
        admin.run()
        while not receiver.delivered() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [json.loads(r["body"])["kind"] for r in receiver.delivered()] == ["conflicts"]
    assert signature_ok(receiver.delivered()[0])


def _looked(app) -> bool:
    """The watcher's first look (which only notes what is there) is done for every kind."""
    alerts = app.state.alerts
    with alerts.queries.connector.engine.connect() as conn:
        return len(conn.execute(select(alerts.cursors.c.kind)).all()) == len(alerts.kinds)


def test_a_standing_state_is_news_at_the_first_look_and_past_events_are_not(admin, receiver):
    make_every_kind_happen(admin)            # all of it before the watcher's first look
    found = service(admin, receiver).scan()
    assert sorted(a.kind for a in found) == ["api_quota", "channel_conflicts"]
