"""The admin API as an admin drives it, against the org emulator and a real database (SQLite and
PostgreSQL): the token guards every route but /health, status and runs tell the truth, an
on-demand resync runs under the lock, a resolved conflict reaches both sides on the next sync."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from connector.admin.api import create_app
from connector.bootstrap import build
from connector.scheduler import SyncLock, new_owner
from tests.conftest import mapping_for, settings_for

TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_connector(org, database):
    """The connector as `cosell serve` builds it, on the test's database and schema, mirrored and synced once."""
    url = database.engine.url.render_as_string(hide_password=False)
    connector = build(settings_for(org, database_url=url))
    connector.__dict__["engine"] = database.engine
    connector.__dict__["mapping"] = mapping_for(database)
    connector.mirror.apply(connector.mirror.plan())
    return connector


class Admin:
    def __init__(self, org, database):
        self.org, self.database = org, database
        self.connector = make_connector(org, database)
        self.sync = self.connector.sync
        self.schemas = self.sync.prepare()
        self.tables = self.sync.tables(self.schemas)
        self.app = create_app(self.connector, TOKEN)
        self.http = TestClient(self.app)

    def run(self, *objects):
        self.org.advance_clock(seconds=1)
        report = self.sync.run(objects or None)
        assert report.status in ("succeeded", "parked"), report.error
        return report

    def rows(self, name, *where):
        with self.database.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(self.tables[name]).where(*where))]

    def execute(self, statement):
        with self.database.engine.begin() as conn:
            return conn.execute(statement)

    def count(self, table) -> int:
        with self.database.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar()

    def wait(self):
        self.app.state.runner.join(60)


@pytest.fixture
def admin(emulator, database):
    a = Admin(emulator, database)
    with a.http:
        a.run()
        yield a


def test_every_route_but_health_needs_the_token(admin):
    st = admin.sync.state
    runs_before, changes_before = admin.count(st.runs), admin.count(st.changes)
    assert admin.http.get("/health").json() == {"status": "ok"}
    routes = [("get", "/status"), ("get", "/runs"), ("get", "/runs/1"), ("get", "/conflicts"),
              ("post", "/conflicts/1/resolve"), ("get", "/parked"), ("post", "/parked/retry"),
              ("post", "/parked/dismiss"),
              ("post", "/resync"), ("get", "/metrics"), ("get", "/reports/pipeline"),
              ("get", "/reports/reconciliation")]
    for method, path in routes:
        none = admin.http.request(method, path, json={})
        assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer", path
        wrong = admin.http.request(method, path, json={}, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
        assert wrong.status_code == 401, path
        basic = admin.http.request(method, path, json={}, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401, path
        in_query = admin.http.request(method, path, json={}, params={"access_token": TOKEN})
        assert in_query.status_code == 400, path
        # even alongside a good header: the token has already leaked into a URL
        assert admin.http.request(method, path, json={}, params={"token": TOKEN}, headers=AUTH).status_code == 400
        assert TOKEN not in none.text + wrong.text + in_query.text
    admin.app.state.runner.join(10)
    assert admin.count(st.runs) == runs_before and admin.count(st.changes) == changes_before, "nothing changed"


def test_no_secret_appears_in_any_response(admin):
    info = admin.org.connection_info()
    secrets = [v for k, v in info.items() if k in ("access_token", "refresh_token", "consumer_secret", "password")
               and v]
    secrets.append(admin.connector.client._token().access_token if hasattr(admin.connector.client, "_token") else "")
    bodies = "".join(admin.http.get(p, headers=AUTH).text for p in ("/status", "/runs", "/conflicts", "/parked",
                                                                       "/metrics", "/openapi.json"))
    for secret in filter(None, secrets):
        assert str(secret) not in bodies
    assert TOKEN not in bodies


def test_status_shows_watermarks_pending_changes_parked_records_and_api_usage(admin):
    t = admin.tables["Opportunity"]
    bad, good = admin.rows("Opportunity")[:2]
    admin.execute(update(t).where(t.c._uuid == good["_uuid"]).values(nextstep="waiting to go"))
    body = admin.http.get("/status", headers=AUTH).json()
    opp = next(o for o in body["objects"] if o["name"] == "Opportunity")
    assert opp["pending_local_changes"] == 1 and opp["parked_records"] == 0
    assert opp["watermark"] is not None and opp["last_run_status"] == "succeeded"
    assert opp["poll_interval"] == 300
    assert body["api_usage"]["limit"] > 0 and 0 < body["api_usage"]["used"] <= body["api_usage"]["limit"]
    assert body["api_usage"]["stop_at_share"] == admin.connector.settings.quota_share

    admin.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    report = admin.run()
    body = admin.http.get("/status", headers=AUTH).json()
    opp = next(o for o in body["objects"] if o["name"] == "Opportunity")
    assert opp["pending_local_changes"] == 0 and opp["parked_records"] == 1
    assert opp["last_run_id"] == report.run_id and opp["last_run_status"] == "parked"

    parked = admin.http.get("/parked", headers=AUTH).json()
    assert [(p["record_uuid"], p["error_code"], p["fields"]) for p in parked] == [
        (bad["_uuid"], "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["StageName"])]
    retried = admin.http.post("/parked/retry", headers=AUTH, json={"object": "Opportunity"})
    assert retried.status_code == 200 and retried.json() == {"queued": 1}
    body = admin.http.get("/status", headers=AUTH).json()
    assert next(o for o in body["objects"] if o["name"] == "Opportunity")["pending_local_changes"] == 1
    assert admin.http.post("/parked/retry", headers=AUTH, json={"object": "Nope__c"}).status_code == 422


def test_runs_list_and_detail(admin):
    report = admin.run("Opportunity")
    runs = admin.http.get("/runs", headers=AUTH).json()
    assert runs[0]["id"] == report.run_id and runs[0]["status"] == "succeeded"
    assert list(runs[0]["objects"]) == ["Opportunity"]
    one = admin.http.get(f"/runs/{report.run_id}", headers=AUTH).json()
    assert one["api_calls"] == report.api_calls and one["objects"]["Opportunity"]["pulled"] == 0
    assert admin.http.get("/runs/999999", headers=AUTH).status_code == 404
    assert len(admin.http.get("/runs", headers=AUTH, params={"limit": 1}).json()) == 1


def test_resync_runs_in_the_background_and_answers_with_the_run_id(admin):
    t = admin.tables["Opportunity"]
    row = admin.rows("Opportunity")[0]
    admin.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="sent by a resync"))
    admin.org.advance_clock(seconds=1)
    answer = admin.http.post("/resync", headers=AUTH, json={"objects": ["opportunity"], "mode": "incremental"})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert run_id is not None and answer.headers["location"] == f"/runs/{run_id}"
    admin.wait()
    run = admin.http.get(f"/runs/{run_id}", headers=AUTH).json()
    assert run["status"] == "succeeded" and list(run["objects"]) == ["Opportunity"]
    assert run["trigger"].startswith("resync:") and run["objects"]["Opportunity"]["updated_remote"] == 1
    assert admin.org.get("Opportunity", row["sfid"])["NextStep"] == "sent by a resync"

    admin.org.advance_clock(seconds=1)
    full = admin.http.post("/resync", headers=AUTH, json={"mode": "full"})
    assert full.status_code == 202
    admin.wait()
    run = admin.http.get(f"/runs/{full.json()['run_id']}", headers=AUTH).json()
    assert run["status"] == "succeeded" and set(run["objects"]) >= {"Account", "Opportunity"}
    assert run["objects"]["Opportunity"]["pulled"] == admin.org.store.count("Opportunity")


def test_resync_of_records_sends_them_again(admin):
    row = admin.rows("Opportunity")[0]
    admin.org.advance_clock(seconds=1)
    answer = admin.http.post("/resync", headers=AUTH, json={"records": [row["sfid"]]})
    assert answer.status_code == 202, answer.text
    admin.wait()
    run = admin.http.get(f"/runs/{answer.json()['run_id']}", headers=AUTH).json()
    assert run["status"] == "succeeded" and list(run["objects"]) == ["Opportunity"]
    bad = admin.http.post("/resync", headers=AUTH, json={"records": ["006000000000000AAA"]})
    assert bad.status_code == 422 and "006000000000000AAA" in bad.json()["detail"]


def test_resync_takes_a_record_by_its_15_character_id_as_salesforce_does(admin):
    row = admin.rows("Opportunity")[0]
    admin.org.advance_clock(seconds=1)
    answer = admin.http.post("/resync", headers=AUTH, json={"records": [row["sfid"][:15]]})
    assert answer.status_code == 202, answer.text
    admin.wait()
    run = admin.http.get(f"/runs/{answer.json()['run_id']}", headers=AUTH).json()
    assert run["status"] == "succeeded" and list(run["objects"]) == ["Opportunity"]
    wrong_case = row["sfid"][:15].swapcase()   # a 15-character Id is case-sensitive: another record
    assert admin.http.post("/resync", headers=AUTH, json={"records": [wrong_case]}).status_code == 422


def test_resync_refuses_unknown_objects_and_a_held_lock(admin):
    runs_before = admin.count(admin.sync.state.runs)
    assert admin.http.post("/resync", headers=AUTH, json={"objects": ["Nope__c"]}).status_code == 422
    assert admin.http.post("/resync", headers=AUTH, json={"mode": "sometimes"}).status_code == 422
    other = SyncLock(admin.database.engine, admin.connector.mapping.objects, schema=admin.sync.schema,
                     prefix=admin.sync.prefix)
    owner = new_owner()
    assert other.acquire("Opportunity", owner, ttl=60)
    try:
        busy = admin.http.post("/resync", headers=AUTH, json={"objects": ["Opportunity"]})
        assert busy.status_code == 409, busy.text
        everything = admin.http.post("/resync", headers=AUTH, json={})
        assert everything.status_code == 409, "a run of all objects needs Opportunity too"
    finally:
        other.release("Opportunity", owner)
    assert admin.count(admin.sync.state.runs) == runs_before
    ok = admin.http.post("/resync", headers=AUTH, json={"objects": ["Account"]})
    assert ok.status_code == 202
    admin.wait()


@pytest.mark.parametrize("take", ["local", "salesforce", "value"])
def test_resolving_a_conflict_changes_both_sides_after_the_next_sync(admin, take):
    t = admin.tables["Opportunity"]
    row = admin.rows("Opportunity")[0]
    admin.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="portal says"))
    admin.org.advance_clock(seconds=5)
    admin.org.update("Opportunity", row["sfid"], {"NextStep": "org says"})
    admin.run()
    # latest_wins: the org's later edit won on both sides, the portal's value is in the log
    assert admin.org.get("Opportunity", row["sfid"])["NextStep"] == "org says"
    conflicts = admin.http.get("/conflicts", headers=AUTH, params={"object": "Opportunity"}).json()
    conflict = next(c for c in conflicts if c["field_name"] == "NextStep" and c["record_uuid"] == row["_uuid"])
    assert conflict["local_value"] == "portal says" and conflict["remote_value"] == "org says"
    assert conflict["resolved_at"] is None

    body = {"take": take} if take != "value" else {"take": "value", "value": "agreed on a call"}
    expected = {"local": "portal says", "salesforce": "org says", "value": "agreed on a call"}[take]
    resolved = admin.http.post(f"/conflicts/{conflict['id']}/resolve", headers=AUTH, json=body)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolved_at"] is not None
    assert json.loads(resolved.json()["resolution"]) == {"take": take, "value": expected}
    assert admin.rows("Opportunity", t.c._uuid == row["_uuid"])[0]["nextstep"] == expected
    admin.run()
    assert admin.org.get("Opportunity", row["sfid"])["NextStep"] == expected
    assert admin.rows("Opportunity", t.c._uuid == row["_uuid"])[0]["nextstep"] == expected
    again = admin.http.post(f"/conflicts/{conflict['id']}/resolve", headers=AUTH, json=body)
    assert again.status_code == 409
    assert admin.http.post("/conflicts/999999/resolve", headers=AUTH, json=body).status_code == 404
    assert admin.http.post(f"/conflicts/{conflict['id']}/resolve", headers=AUTH,
                           json={"take": "neither"}).status_code == 422


def test_metrics_in_the_prometheus_text_format(admin):
    t = admin.tables["Opportunity"]
    row = admin.rows("Opportunity")[0]
    admin.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="pending"))
    answer = admin.http.get("/metrics", headers=AUTH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    # written by prometheus-client, which spells every value as a float
    assert 'cosell_pending_local_changes{object="Opportunity"} 1.0' in lines
    assert 'cosell_parked_records{object="Opportunity"} 0.0' in lines
    assert 'cosell_runs_total{status="succeeded"} 1.0' in lines
    assert "# TYPE cosell_runs_total counter" in lines
    assert any(line.startswith('cosell_watermark_timestamp_seconds{object="Opportunity"} ') for line in lines)
    for line in lines:
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2 and float(line.rsplit(" ", 1)[1]) >= 0


def test_the_openapi_document_describes_the_routes_and_the_bearer_scheme(admin):
    doc = admin.http.get("/openapi.json").json()
    partner = {p for p in doc["paths"] if p.startswith("/partner/api/")}   # connector.partners: its own sign-in
    assert "/partner/api/deals/{deal_id}" in partner
    assert set(doc["paths"]) - partner == {"/health", "/status", "/runs", "/runs/{run_id}", "/conflicts",
                                 "/conflicts/{conflict_id}/resolve", "/parked", "/parked/retry", "/resync",
                                 "/parked/dismiss",
                                 "/metrics", "/reports/pipeline", "/reports/reconciliation", "/channel-conflicts",
                                 "/channel-conflicts/{conflict_id}/resolve"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "security" not in doc["paths"]["/health"]["get"]
    assert doc["paths"]["/status"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "202" in doc["paths"]["/resync"]["post"]["responses"]
    schema = doc["components"]["schemas"]["Resolve"]["properties"]["take"]
    assert schema["enum"] == ["local", "salesforce", "value"]


def test_the_pipeline_report_shows_how_fast_overlaps_become_registrations(admin, tmp_path):
    import datetime as dt

    from connector.overlaps import OverlapBook

    admin.org.create("Account", {"Name": "Pipeline Partner Co", "Is_Partner__c": True,
                                 "Partner_Type__c": "Reseller"})
    for name in ("Pipe One", "Pipe Two"):
        admin.org.create("Account", {"Name": name, "Website": f"{name.replace(' ', '').lower()}.example"})
    admin.run()
    assert admin.http.get("/reports/pipeline", headers=AUTH).json() == []
    export = tmp_path / "overlaps.csv"
    export.write_text("Partner,Account Name,Domain,Population,Record ID\n"
                      "Pipeline Partner Co,Pipe One,pipeone.example,Customers,r1\n"
                      "Pipeline Partner Co,Pipe Two,pipetwo.example,Prospects,r2\n")
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    book = OverlapBook.for_sync(admin.sync, writes=True)
    book.import_file(export, at=t0)
    first = min(r["id"] for r in book.list())
    book.register(first, close_date=dt.date(2026, 8, 1), at=t0 + dt.timedelta(hours=36))
    rows = {r["partner"]: r for r in admin.http.get("/reports/pipeline", headers=AUTH).json()}
    assert set(rows) == {"Pipeline Partner Co", "(all partners)"}
    mine = rows["Pipeline Partner Co"]
    assert mine["overlaps"] == 2
    assert mine["registered"] == {"count": 1, "median_days": 1.5, "p90_days": 1.5}
    assert mine["submitted"] == mine["approved"] == {"count": 0, "median_days": None, "p90_days": None}


def test_the_reconciliation_report_lists_the_exceptions(admin):
    import datetime as dt
    from pathlib import Path

    from connector.marketplace import PayoutLedger, Rules, parse_feed

    data = Path(__file__).parents[2] / "data" / "marketplace"
    short = admin.org.create("Opportunity", {
        "Name": "Admin recon short", "StageName": "Closed Won", "CloseDate": "2025-02-14", "Amount": 50000,
        "CurrencyIsoCode": "USD", "Cloud_Marketplace__c": "AWS Marketplace", "Marketplace_Offer_Id__c": "offer-x",
        "Marketplace_Agreement_Id__c": "agmt-SHORT"})
    paid = admin.org.create("Opportunity", {
        "Name": "Admin recon paid", "StageName": "Closed Won", "CloseDate": "2025-02-14", "Amount": 100000,
        "CurrencyIsoCode": "USD", "Cloud_Marketplace__c": "AWS Marketplace", "Marketplace_Offer_Id__c": "offer-y",
        "Marketplace_Agreement_Id__c": "agmt-MATCHED"})
    admin.run()
    assert admin.http.get("/reports/reconciliation", headers=AUTH).json() == []
    PayoutLedger(admin.connector.mirror).import_feed(parse_feed(data / "aws_billing_events.csv"),
                                                     rules=Rules(today=dt.date(2025, 6, 1)))
    exceptions = admin.http.get("/reports/reconciliation", headers=AUTH).json()
    mine = next(r for r in exceptions if r["sfid"] == short)
    assert (mine["status"], mine["matched_by"], mine["currency"]) == ("amount_mismatch", "agreement", "USD")
    assert float(mine["difference"]) == -5000.0
    # The payouts of deals this org does not have are exceptions too; matched deals only with all=true.
    assert {r["status"] for r in exceptions} <= {"amount_mismatch", "payout_without_deal", "ambiguous",
                                                 "missing_payout"}
    assert "payout_without_deal" in {r["status"] for r in exceptions}
    assert paid not in {r["sfid"] for r in exceptions}
    everything = admin.http.get("/reports/reconciliation", params={"all": "true"}, headers=AUTH).json()
    assert next(r for r in everything if r["sfid"] == paid)["status"] == "matched"


def test_a_resolution_records_who_and_why_and_a_parked_record_can_be_dismissed(admin):
    t = admin.tables["Opportunity"]
    row, bad = admin.rows("Opportunity")[:2]
    admin.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="portal says"))
    admin.org.advance_clock(seconds=5)
    admin.org.update("Opportunity", row["sfid"], {"NextStep": "org says"})
    admin.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    admin.run()
    conflict = next(c for c in admin.http.get("/conflicts", headers=AUTH).json() if c["field_name"] == "NextStep")
    resolved = admin.http.post(f"/conflicts/{conflict['id']}/resolve", headers=AUTH,
                               json={"take": "local", "comment": "  agreed on the call  "}).json()
    assert resolved["resolved_by"] == "admin API" and resolved["resolution_comment"] == "agreed on the call"
    assert admin.http.post(f"/conflicts/{conflict['id']}/resolve", headers=AUTH,
                           json={"take": "local", "comment": "x" * 2001}).status_code == 422

    body = {"object": "opportunity", "record_uuid": bad["_uuid"]}   # object names are case-insensitive
    assert admin.http.post("/parked/dismiss", headers=AUTH, json=body).status_code == 204
    assert admin.http.get("/parked", headers=AUTH).json() == []
    assert admin.rows("Opportunity", t.c._uuid == bad["_uuid"])[0]["_sync_error"] is None
    again = admin.http.post("/parked/dismiss", headers=AUTH, json=body)
    assert again.status_code == 404 and bad["_uuid"] in again.json()["detail"]
    unmapped = admin.http.post("/parked/dismiss", headers=AUTH, json={"object": "Nope__c", "record_uuid": "x"})
    assert unmapped.status_code == 422 and "mapped objects: " in unmapped.json()["detail"]


def test_channel_conflicts_are_shown_and_resolved_through_the_api(admin):
    import datetime as dt

    from connector.portal import Portal

    a = admin.org.create("Account", {"Name": "API Alpha", "Is_Partner__c": True})
    customer = admin.org.create("Account", {"Name": "API Direct Customer", "Type": "Customer - Direct"})
    admin.run()
    assert admin.http.get("/channel-conflicts", headers={}).status_code == 401
    deal = Portal.for_sync(admin.sync).register_deal(partner=a, end_customer=customer, name="API turf",
                                                     close_date=dt.date(2027, 2, 1))
    listed = [c for c in admin.http.get("/channel-conflicts", headers=AUTH).json()
              if any(x["end_customer_name"] == "API Direct Customer" for x in c["claims"])]
    assert [(c["kind"], c["claims"][0]["registration"]) for c in listed] == [("direct_owned_account",
                                                                              deal.registration)]
    path = f"/channel-conflicts/{listed[0]['id']}/resolve"
    refused = admin.http.post(path, headers=AUTH, json={"decision": "dismiss", "by": "ops"})
    assert refused.status_code == 409 and "needs a note" in refused.json()["detail"]
    assert admin.http.post("/channel-conflicts/999999/resolve", headers=AUTH,
                           json={"decision": "dismiss", "by": "ops", "note": "x"}).status_code == 404
    done = admin.http.post(path, headers=AUTH, json={"decision": "dismiss", "by": "ops",
                                                     "note": "the account team handed it to the channel"})
    assert done.status_code == 200 and done.json()["status"] == "resolved" and done.json()["resolved_by"] == "ops"
    resolved = admin.http.get("/channel-conflicts?state=resolved", headers=AUTH).json()
    assert listed[0]["id"] in [c["id"] for c in resolved]
