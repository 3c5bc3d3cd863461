"""The sync lock and the scheduler on SQLite and PostgreSQL: two holders never hold one object at
once (two engines stand for two connector processes), jobs come back from the database after a
restart with their next run time, and a scheduled job runs the sync of its object."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from connector.bootstrap import make_engine
from connector.scheduler import ALL, JOB_PREFIX, REGISTRATIONS_JOB, SyncLock, SyncRunner, SyncScheduler, new_owner
from tests.integration.admin.test_admin_api import make_connector

OBJECTS = ["Account", "Opportunity", "Co_Sell_Participant__c"]


def second_process_engine(database):
    """Another engine (its own connection pool) on the same database, as a second process has."""
    return make_engine(database.engine.url.render_as_string(hide_password=False)) \
        if database.name == "postgresql" else database.engine


def test_two_holders_never_hold_the_same_object(database):
    a = SyncLock(database.engine, OBJECTS, schema=database.schema)
    other = second_process_engine(database)
    b = SyncLock(other, OBJECTS, schema=database.schema)
    try:
        one, two = new_owner(), new_owner()
        assert a.acquire("Opportunity", one, ttl=60)
        assert not b.acquire("Opportunity", two, ttl=60)
        assert not a.acquire("Opportunity", two, ttl=60), "not even through the same lock object"
        assert b.acquire("Account", two, ttl=60)
        # all-or-nothing: ALL fails on Opportunity, and must not keep Co_Sell_Participant__c either
        assert not b.acquire(ALL, two, ttl=60)
        assert a.acquire("Co_Sell_Participant__c", one, ttl=60)
        a.release(["Opportunity", "Co_Sell_Participant__c"], one)
        b.release("Account", two)
        assert b.acquire(ALL, two, ttl=60)
        assert not a.acquire("Account", one, ttl=60)
        b.release(ALL, two)

        # contention: four threads (two per "process") hammer one object; never two inside at once
        inside, overlaps, entered = [0], [0], [0]
        guard = threading.Lock()

        def worker(lock: SyncLock) -> None:
            for _ in range(25):
                owner = new_owner()
                if not lock.acquire("Opportunity", owner, ttl=60):
                    time.sleep(0.001)
                    continue
                with guard:
                    inside[0] += 1
                    entered[0] += 1
                    overlaps[0] += inside[0] > 1
                time.sleep(0.002)
                with guard:
                    inside[0] -= 1
                lock.release("Opportunity", owner)

        threads = [threading.Thread(target=worker, args=(lock,)) for lock in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert overlaps[0] == 0 and entered[0] > 0
    finally:
        if other is not database.engine:
            other.dispose()


def test_a_lock_whose_holder_died_can_be_taken(database):
    lock = SyncLock(database.engine, OBJECTS, schema=database.schema)
    if database.name == "postgresql":
        dead = SyncLock(second_process_engine(database), OBJECTS, schema=database.schema)
        assert dead.acquire("Opportunity", "dead", ttl=60)
        dead.engine.dispose()
        for conn, _ in list(dead._sessions.values()):   # the process ends: its session closes
            conn.invalidate()
    else:
        assert lock.acquire("Opportunity", "dead", ttl=0.05)
        time.sleep(0.1)
    assert lock.acquire("Opportunity", "alive", ttl=60)
    lock.release("Opportunity", "alive")


@pytest.fixture
def connector(emulator, database):
    c = make_connector(emulator, database)
    c.sync.prepare()
    return c


def test_jobs_come_back_from_the_database_after_a_restart(connector):
    first = SyncScheduler(SyncRunner(connector))
    first.start()
    try:
        jobs = {j.id: j for j in first.scheduler.get_jobs()}
        # one job per mapped object, and the registration check (expiry, channel conflicts) of issue 14
        assert set(jobs) == {JOB_PREFIX + n for n in connector.mapping.objects} | {REGISTRATIONS_JOB}
        assert jobs[REGISTRATIONS_JOB].trigger.interval == dt.timedelta(
            seconds=connector.settings.registration_check_interval)
        opp = jobs[JOB_PREFIX + "Opportunity"]
        assert opp.trigger.interval == dt.timedelta(seconds=300) and opp.max_instances == 1 and opp.coalesce
        before = {j.id: j.next_run_time for j in jobs.values()}
    finally:
        first.shutdown()
    time.sleep(1.1)
    second = SyncScheduler(SyncRunner(connector))
    second.start()
    try:
        after = {j.id: j.next_run_time for j in second.scheduler.get_jobs()}
        assert after == before, "the stored jobs are kept, not scheduled anew"
    finally:
        second.shutdown()

    # a changed interval in the mapping replaces that object's job
    objects = dict(connector.mapping.objects)
    objects["Opportunity"] = objects["Opportunity"].model_copy(update={"poll_interval": 60})
    connector.__dict__["mapping"] = connector.mapping.model_copy(update={"objects": objects})
    third = SyncScheduler(SyncRunner(connector))
    third.start()
    try:
        job = third.scheduler.get_job(JOB_PREFIX + "Opportunity")
        assert job.trigger.interval == dt.timedelta(seconds=60)
        assert third.scheduler.get_job(JOB_PREFIX + "Account").next_run_time == before[JOB_PREFIX + "Account"]
    finally:
        third.shutdown()


def test_a_scheduled_job_runs_the_sync_of_its_object(connector, emulator):
    runs = connector.sync.state.runs
    scheduler = SyncScheduler(SyncRunner(connector))
    scheduler.start()
    try:
        emulator.advance_clock(seconds=1)
        scheduler.scheduler.modify_job(JOB_PREFIX + "Opportunity", next_run_time=dt.datetime.now(dt.timezone.utc))
        deadline = time.monotonic() + 60
        row = None
        while time.monotonic() < deadline:
            with connector.engine.connect() as conn:
                row = conn.execute(select(runs).where(runs.c.trigger == "scheduled")).first()
            if row is not None and row.status != "running":
                break
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=True)
    assert row is not None and row.status == "succeeded", row
    assert '"Opportunity"' in row.counts and '"Account"' not in row.counts
    assert len(emulator.records("SELECT Id FROM Opportunity")) > 0


def test_a_scheduled_run_skips_an_object_another_process_holds(connector, emulator, database):
    runner = SyncRunner(connector)
    other = SyncLock(second_process_engine(database), connector.mapping.objects, schema=connector.sync.schema)
    owner = new_owner()
    assert other.acquire("Opportunity", owner, ttl=60)
    try:
        from connector.scheduler import LockBusy
        with pytest.raises(LockBusy):
            runner.run(["Opportunity"], trigger="scheduled")
        assert not runner.mutex.locked(), "a refused run leaves the process free"
    finally:
        other.release("Opportunity", owner)
    report = runner.run(["Opportunity"], trigger="scheduled")
    assert report.status == "succeeded"
