"""Dead runs and their locks, on SQLite and PostgreSQL: a run killed with SIGKILL neither blocks the
next one nor stays `running`; a live holder is never taken over and the refusal names it; a holder
of another host whose heartbeat stopped is; an error nobody expected still ends the run row; a runs
table of an older version gains the columns once, with no DDL afterwards."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError

from connector.scheduler import LockBusy, SyncLock, SyncRunner
from connector.sync.push import Pusher
from tests.integration.admin.test_admin_api import make_connector
from tests.integration.sync.test_crash import REPO, mapping_with_schema, worker_env

UTC = dt.timezone.utc


@pytest.fixture
def connector(emulator, database):
    c = make_connector(emulator, database)
    c.sync.prepare()
    return c


def run_rows(connector):
    runs = connector.sync.state.runs
    with connector.engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(runs))}


def test_a_killed_run_frees_its_objects_at_once_and_is_ended_as_failed(connector, emulator, database, tmp_path):
    env = worker_env(emulator, database, mapping_with_schema(database, tmp_path))
    worker = subprocess.Popen([sys.executable, "-m", "tests.integration.sync.sync_worker", "--runner", "1"],
                              cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert worker.stdout.readline().strip() == "ready"
        emulator.latency = 0.5               # every call is slow: the worker is mid-run for seconds
        worker.stdin.write("go\n")
        worker.stdin.flush()
        deadline = time.monotonic() + 60
        while not [r for r in run_rows(connector).values() if r.trigger == "worker" and r.status == "running"]:
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never started its run"
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        emulator.latency = 0.0
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    (dead,) = [r for r in run_rows(connector).values() if r.trigger == "worker"]
    assert dead.status == "running", "killed: nobody ended it yet"

    started = time.monotonic()
    report = SyncRunner(connector).run(["Opportunity"], trigger="cli", wait=0)
    assert report.status == "succeeded", report.error
    assert time.monotonic() - started < 30, "no waiting for the dead run's lock to expire"
    dead = run_rows(connector)[dead.id]
    assert dead.status == "failed" and dead.ended_at is not None
    assert dead.error == (f"the process running it stopped (host {socket.gethostname()}, pid {worker.pid}) "
                          f"without ending it; ended by run {report.run_id}")


def test_a_live_holder_is_not_taken_over_and_the_refusal_names_it(connector, emulator, database):
    other = make_connector(emulator, database)    # a second connector, as another process builds it
    emulator.latency = 0.3
    try:
        ticket = SyncRunner(other).start(["Opportunity"], trigger="scheduled")
        assert ticket.run_id is not None, ticket.error
        with pytest.raises(LockBusy) as busy:
            SyncRunner(connector).run(None, trigger="cli", wait=0)
    finally:
        emulator.latency = 0.0
        ticket.thread.join(120)
    message = str(busy.value)
    assert message.startswith(f"Opportunity is being synced by run {ticket.run_id} "
                              f"(host {socket.gethostname()}, pid {os.getpid()}, since "), message
    assert " UTC, heartbeat " in message and message.endswith("; wait for it to finish or stop it"), message
    assert run_rows(connector)[ticket.run_id].status == "succeeded", "the holder ran to its end"


def test_another_hosts_holder_whose_heartbeat_stopped_is_taken_over(connector, database):
    gone, alive = "far-away-host:4242:0badc0de", "far-away-host:4343:0badc0de"
    if database.name == "sqlite":   # on PostgreSQL the lock dies with the holder's session
        lock = SyncLock(database.engine, ["Opportunity"])
        assert lock.acquire("Opportunity", alive, ttl=60)
        assert not lock.acquire("Opportunity", "me:1:x", ttl=60), "a live heartbeat is respected"
        lock.release("Opportunity", alive)
        assert lock.acquire("Opportunity", gone, ttl=0.05)
        time.sleep(0.1)
        assert lock.acquire("Opportunity", "me:1:x", ttl=60), "an expired heartbeat is taken over"
        lock.release("Opportunity", "me:1:x")
    runs = connector.sync.state.runs
    now = dt.datetime.now(UTC)
    with connector.engine.begin() as conn:
        for owner, beat in ((gone, now - dt.timedelta(minutes=5)), (alive, now)):
            conn.execute(insert(runs).values(started_at=now - dt.timedelta(minutes=10), status="running",
                                             trigger="scheduled", owner=owner, heartbeat_at=beat))
    report = SyncRunner(connector).run(["Account"], trigger="cli", wait=0)
    rows = {r.owner: r for r in run_rows(connector).values()}
    assert rows[gone].status == "failed" and rows[gone].error.startswith(
        "the process running it stopped (host far-away-host, pid 4242, no heartbeat since ")
    assert rows[gone].error.endswith(f"without ending it; ended by run {report.run_id}")
    assert rows[alive].status == "running", "a run whose heartbeat goes on is left alone"


def test_an_error_nobody_expected_still_ends_the_run_row(connector, monkeypatch):
    def push(*args, **kwargs):
        raise DataError("INSERT INTO opportunity ...", {}, ValueError("value too long for type character varying(3)"))

    monkeypatch.setattr(Pusher, "push", push)
    with pytest.raises(DataError):
        SyncRunner(connector).run(["Opportunity"], trigger="cli", wait=0)
    (row,) = [r for r in run_rows(connector).values() if r.trigger == "cli"]
    assert row.status == "failed" and row.ended_at is not None
    assert row.error.startswith("DataError: ") and "value too long" in row.error
    monkeypatch.undo()
    assert SyncRunner(connector).run(["Opportunity"], trigger="cli", wait=0).status == "succeeded", \
        "the lock went with the failed run"


def test_a_runs_table_of_an_older_version_gains_the_columns_once(emulator, database):
    from sqlalchemy import Column, Integer, MetaData, String, Table, Text, event

    from connector.schema_mirror.types import UtcDateTime

    c = make_connector(emulator, database)
    runs = c.sync.state.runs
    old = Table(runs.name, MetaData(schema=runs.schema), Column("id", Integer, primary_key=True, autoincrement=True),
                Column("started_at", UtcDateTime, nullable=False), Column("ended_at", UtcDateTime),
                Column("status", String(20), nullable=False), Column("trigger", String(40), nullable=False),
                Column("counts", Text), Column("api_calls", Integer), Column("error", Text))
    with c.engine.begin() as conn:
        old.create(conn)
        conn.execute(insert(old).values(started_at=dt.datetime.now(UTC), status="succeeded", trigger="cli"))
    statements: list[str] = []

    def seen(conn, cursor, statement, *rest) -> None:
        statements.append(statement)

    event.listen(c.engine, "before_cursor_execute", seen)
    try:
        assert SyncRunner(c).run(None, trigger="cli", wait=0).status == "succeeded"
        altered = [s for s in statements if s.lstrip().upper().startswith("ALTER TABLE")]
        assert len(altered) == 2 and all(runs.name in s for s in altered), altered
        statements.clear()
        assert SyncRunner(c).run(None, trigger="cli", wait=0).status == "succeeded"
        assert not [s for s in statements if s.lstrip().upper().startswith("ALTER")], "no DDL once upgraded"
    finally:
        event.remove(c.engine, "before_cursor_execute", seen)
    rows = sorted(run_rows(c).values(), key=lambda r: r.id)
    assert rows[0].owner is None and rows[-1].owner.startswith(f"{socket.gethostname()}:{os.getpid()}:")
