"""`cosell serve` as a real subprocess against the emulator: it syncs on schedule (a change
made in the org reaches the local database without anyone asking), POST /resync answers 202
and runs, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator
from connector.mapping import DEFAULT_MAPPING_PATH
from tests.e2e.test_mirror_cli import _env

TOKEN = "e2e-admin-token-0123456789"


def _wait(predicate, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return None


def test_serve_syncs_on_schedule_answers_resync_and_stops_on_sigterm(tmp_path):
    data = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())
    data["objects"]["Opportunity"]["poll_interval"] = 10
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(data))
    with Emulator("cosell_demo", records=10, seed=6) as org:
        env = {**os.environ, **_env(org, tmp_path), "COSELL_MAPPING": str(mapping), "COSELL_ADMIN_TOKEN": TOKEN,
               "COSELL_LOG_FORMAT": "json"}
        assert CliRunner().invoke(app, ["mirror"], env=env).exit_code == 0
        port = 18000 + os.getpid() % 1000
        server = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        try:
            assert _wait(lambda: _ok(f"{base}/health"), 60), "the admin API came up"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert requests.get(f"{base}/status", timeout=10).status_code == 401
            console = requests.get(base, timeout=10)   # / leads to the console's sign-in
            assert console.url == f"{base}/console/login" and "Admin sign-in" in console.text
            opp = org.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
            org.update("Opportunity", opp, {"NextStep": "changed in the org, nobody asked"})
            db = create_engine(env["COSELL_DATABASE_URL"])

            def local_next_step():
                with db.connect() as conn:
                    return conn.execute(text("SELECT nextstep FROM opportunity WHERE sfid = :id"),
                                        {"id": opp}).scalar() == "changed in the org, nobody asked"
            assert _wait(local_next_step, 45), "the scheduled poll brought the change"

            org.update("Opportunity", opp, {"NextStep": "resync now"})
            time.sleep(1.1)
            answer = requests.post(f"{base}/resync", json={"records": [opp]}, headers=auth, timeout=10)
            assert answer.status_code == 202, answer.text
            run_id = answer.json()["run_id"]
            done = _wait(lambda: requests.get(f"{base}/runs/{run_id}", headers=auth, timeout=10).json()
                         .get("status") in ("succeeded", "parked", "failed"), 45)
            assert done
            with db.connect() as conn:
                assert conn.execute(text("SELECT nextstep FROM opportunity WHERE sfid = :id"),
                                    {"id": opp}).scalar() == "resync now"
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
            err = server.stderr.read()
        # uvicorn finishes its shutdown, then re-raises SIGTERM so the exit status says why it stopped.
        assert code in (0, -signal.SIGTERM), err[-2000:]
        assert "Application shutdown complete" in err and "Scheduler has been shut down" in err
        assert TOKEN not in err and org.new_access_token()[:15] not in err


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
