"""`cosell serve` with streaming on: the app's lifespan starts the streams before the scheduler,
streamed objects get no poll job, and /status says each object's mode, lag and replay position."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from connector.admin.api import create_app
from connector.scheduler import SyncRunner, SyncScheduler
from connector.sync.streaming import StreamingService
from tests.conftest import settings_for
from tests.integration.admin.test_admin_api import TOKEN, make_connector


def test_status_shows_streamed_and_polled_objects(emulator, database):
    emulator.pubsub.keepalive = 0.3
    connector = make_connector(emulator, database)
    connector.client.settings = settings_for(emulator, pubsub_url=emulator.pubsub_url)
    connector.sync.run()
    scheduler = SyncScheduler(SyncRunner(connector))
    streaming = StreamingService(connector, scheduler.runner)
    app = create_app(connector, TOKEN, scheduler=scheduler, streaming=streaming)
    with TestClient(app) as http:
        deadline = time.monotonic() + 15
        while streaming.caught_up != set(streaming.streams) and time.monotonic() < deadline:
            time.sleep(0.05)
        opp = emulator.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
        emulator.update("Opportunity", opp, {"Description": "seen by /status"})
        deadline = time.monotonic() + 10
        while streaming.streams["Opportunity"].events == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        body = http.get("/status", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        jobs = {job.id for job in scheduler.scheduler.get_jobs()}
    by_name = {o["name"]: o for o in body["objects"]}
    assert by_name["Opportunity"]["mode"] == "stream"
    assert by_name["Opportunity"]["replay_id"] and by_name["Opportunity"]["stream_lag_seconds"] is not None
    assert by_name["CurrencyType"]["mode"] == "poll" and by_name["CurrencyType"]["replay_id"] is None
    assert "sync:Opportunity" not in jobs and "sync:CurrencyType" in jobs
