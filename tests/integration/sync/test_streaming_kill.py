"""The streaming process SIGKILLed at random instants while both sides keep writing, restarted each
time: once a last process is left running, every value written on either side is on the other, and
no record exists twice. On SQLite and PostgreSQL."""

from __future__ import annotations

import queue
import random
import subprocess
import sys
import threading
import time

from sqlalchemy import func, select, update

from tests.integration.sync.test_crash import REPO, mapping_with_schema, worker_env
from tests.integration.sync.test_streaming import wait_for
from tests.integration.sync.test_sync import Harness

KILLS = 4


def _start(env: dict[str, str], log) -> subprocess.Popen:  # noqa: ANN001
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.sync.stream_worker"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"the stream worker did not start within 60 s (see {log.name})") from None
    assert line.strip() == "streaming", f"the stream worker did not start: {line!r} (see {log.name})"
    return proc


def test_killed_at_random_instants_then_restarted_nothing_is_missed(emulator, database, tmp_path):
    emulator.pubsub.keepalive = 0.3
    mapping_path = mapping_with_schema(database, tmp_path)
    h = Harness(emulator, database, mapping_path)
    h.sync()
    env = worker_env(emulator, database, mapping_path)
    env.update(COSELL_PUBSUB_URL=emulator.pubsub_url, COSELL_STREAM_PUSH_INTERVAL="0.05")
    table = h.tables["Opportunity"]
    ids = [r["Id"] for r in emulator.records("SELECT Id FROM Opportunity ORDER BY Id LIMIT 6")]
    org_side, portal_side = ids[:3], ids[3:]
    want_local: dict[str, str] = {}
    want_org: dict[str, str] = {}
    rng = random.Random(20261202)
    opportunities = emulator.store.count("Opportunity")
    with open(tmp_path / "worker.log", "w") as log:
        for kill in range(KILLS):
            print(f"start {kill}", flush=True)
            proc = _start(env, log)
            deadline, i = time.monotonic() + rng.uniform(0.1, 1.5), 0
            while time.monotonic() < deadline:
                value = f"org {kill}.{i}"
                emulator.update("Opportunity", org_side[i % 3], {"Description": value})
                want_local[org_side[i % 3]] = value
                value = f"portal {kill}.{i}"
                h.execute(update(table).where(table.c.sfid == portal_side[i % 3]).values(description=value))
                want_org[portal_side[i % 3]] = value
                i += 1
                time.sleep(rng.uniform(0, 0.08))
            proc.kill()
            proc.wait()
        last = _start(env, log)
        try:
            def converged() -> bool:
                local = {r["sfid"]: r["description"] for r in h.rows("Opportunity", table.c.sfid.in_(ids))}
                return (all(local[k] == v for k, v in want_local.items())
                        and all((emulator.get("Opportunity", k) or {}).get("Description") == v
                                for k, v in want_org.items()))
            try:
                wait_for(converged, timeout=30, what="both sides to hold every value written")
            except AssertionError:
                local = {r["sfid"]: r["description"] for r in h.rows("Opportunity", table.c.sfid.in_(ids))}
                print("portal wanted", want_local, "has", local)
                print("org wanted", want_org, "has", {k: (emulator.get("Opportunity", k) or {}).get("Description")
                                                      for k in want_org})
                raise
        finally:
            last.kill()
            last.wait()
    assert emulator.store.count("Opportunity") == opportunities
    with database.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar() == opportunities
        assert conn.execute(select(func.count()).select_from(table).group_by(table.c.sfid)
                            .having(func.count() > 1)).all() == []
