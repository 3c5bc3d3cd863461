"""Background sync: each mapped object polled at its mapping's interval (APScheduler, jobs kept in
the local database), and the lock that keeps runs apart. Every run — scheduled or on demand —
goes through `SyncRunner`, so two runs of one object never overlap, in one process (a mutex) or
across processes sharing a database (PostgreSQL advisory locks; a lock-row table on SQLite).
A lock is taken over only from a holder known dead (its process gone from this host, or its
heartbeat expired); never from one that may be alive."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Column, MetaData, String, Table, and_, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime
from connector.sync.state import HEARTBEAT_TTL, add_missing_columns, beat, new_owner, owner_process, process_gone

__all__ = ["ALL", "Holder", "SyncLock", "SyncRunner", "SyncScheduler", "LockBusy", "new_owner"]

log = logging.getLogger("connector.scheduler")
UTC = dt.timezone.utc
ALL = "*"                      # every mapped object
DEFAULT_TTL = HEARTBEAT_TTL    # seconds a lock row lives without renewal; the runner renews every third
JOB_PREFIX = "sync:"


class LockBusy(Exception):
    """Another run holds an object this run needs."""


@dataclass(frozen=True)
class Holder:
    """Who holds one lock: an owner (`new_owner()`), or None when the database knows only that it
    is held (a PostgreSQL lock taken a moment ago, or by an older version)."""

    name: str
    owner: str | None
    since: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None

    def describe(self, run_id: int | None, now: dt.datetime) -> str:
        process = owner_process(self.owner)
        who = f"run {run_id}" if run_id is not None else ("another run" if process or not self.owner else self.owner)
        facts = [f"host {process[0]}", f"pid {process[1]}"] if process else []
        if self.since is not None:
            facts.append(f"since {self.since:%H:%M:%S} UTC")
        if self.heartbeat_at is not None:
            facts.append(f"heartbeat {max(0, round((now - self.heartbeat_at).total_seconds()))} s ago")
        return who + (f" ({', '.join(facts)})" if facts else " (holder unknown)")


class SyncLock:
    """A lock per object name, held in the local database.

    PostgreSQL: a session-level advisory lock per object on a connection of its own, so it dies with
    the process that holds it; `_cosell_locks` only says who holds it. SQLite: a row in
    `_cosell_locks` (name, owner, expiry) taken by one atomic INSERT … ON CONFLICT DO UPDATE … WHERE
    expired, or by a compare-and-swap on the owner when that owner's process is gone from this host.
    `ALL` stands for every name in `objects`. Acquiring several names is all-or-nothing."""

    def __init__(self, engine: Engine, objects: Iterable[str] = (), *, schema: str | None = None,
                 prefix: str = "") -> None:
        self.engine, self.objects = engine, sorted(objects)
        self.postgres = engine.dialect.name == "postgresql"
        self.schema = schema if self.postgres else None
        self.prefix = prefix
        self.table = Table(meta_table_name("locks", prefix), MetaData(schema=self.schema),
                           Column("name", String(120), primary_key=True),
                           Column("owner", String(200), nullable=False),
                           Column("expires_at", UtcDateTime, nullable=False),
                           Column("acquired_at", UtcDateTime),
                           Column("heartbeat_at", UtcDateTime))
        self._sessions: dict[str, tuple[Connection, set[str]]] = {}   # owner -> PG session, names held
        self._guard = threading.Lock()
        with engine.begin() as conn:
            self.table.create(conn, checkfirst=True)
            add_missing_columns(conn, self.table)

    def names(self, target: str | Iterable[str]) -> list[str]:
        if isinstance(target, str):
            return list(self.objects) if target == ALL else [target]
        out: list[str] = []
        for t in target:
            out.extend(self.names(t))
        return sorted(set(out))

    def _key(self, name: str) -> int:
        # One database may hold several connectors (schemas, prefixes): the key names all three.
        digest = hashlib.blake2b(f"cosell:{self.schema}:{self.prefix}:{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def acquire(self, target: str | Iterable[str], owner: str, ttl: float = DEFAULT_TTL) -> bool:
        """Take every named lock for `owner`, or none of them; never waits."""
        names = self.names(target)
        if self.postgres:
            return self._acquire_pg(names, owner)
        taken: list[str] = []
        for name in names:
            if not self._acquire_row(name, owner, ttl):
                for held in taken:
                    self._release_row(held, owner)
                return False
            taken.append(name)
        return True

    def release(self, target: str | Iterable[str], owner: str) -> None:
        names = self.names(target)
        if self.postgres:
            self._release_pg(names, owner)
            return
        for name in names:
            self._release_row(name, owner)

    def renew(self, target: str | Iterable[str], owner: str, ttl: float = DEFAULT_TTL) -> None:
        """The heartbeat: push back the expiry of the lock rows a long run still holds (on PostgreSQL
        the advisory lock needs none; the row only tells others the holder is alive)."""
        t = self.table
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(update(t).where(and_(t.c.name.in_(self.names(target)), t.c.owner == owner))
                         .values(expires_at=now + dt.timedelta(seconds=ttl), heartbeat_at=now))

    def holders(self) -> dict[str, Holder]:
        """Names locked now and by whom, whichever process holds them."""
        t = self.table
        with self.engine.connect() as conn:
            live = select(t) if self.postgres else select(t).where(t.c.expires_at > _now())
            rows = {r.name: Holder(r.name, r.owner, r.acquired_at, r.heartbeat_at) for r in conn.execute(live)}
            if not self.postgres:
                return {n: h for n, h in rows.items() if not process_gone(h.owner)}
            # The advisory locks are the truth: a row whose lock is free was left by a dead session.
            held = {(r.classid, r.objid) for r in conn.execute(text(
                "SELECT classid, objid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))}
        out: dict[str, Holder] = {}
        for name in sorted(set(self.objects) | set(rows)):
            key = self._key(name) & 0xFFFFFFFFFFFFFFFF
            if (key >> 32, key & 0xFFFFFFFF) in held:
                out[name] = rows.get(name) or Holder(name, None)
        return out

    # PostgreSQL: one session per owner holds all of its advisory locks (a run of every object
    # takes one connection, not one per object); session locks are re-entrant, so never share it.
    def _acquire_pg(self, names: list[str], owner: str) -> bool:
        with self._guard:
            session = self._sessions.get(owner)
        conn = session[0] if session else self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        held: set[str] = session[1] if session else set()
        taken: list[str] = []
        try:
            for name in names:
                if name in held:
                    continue
                if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key(name)}).scalar():
                    for t in taken:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key(t)})
                    if not held:
                        conn.close()
                    return False
                taken.append(name)
            if taken:
                now = _now()
                stmt = postgresql_insert(self.table).values(
                    [dict(name=n, owner=owner, acquired_at=now, heartbeat_at=now,
                          expires_at=now + dt.timedelta(seconds=DEFAULT_TTL)) for n in taken])
                conn.execute(stmt.on_conflict_do_update(index_elements=[self.table.c.name], set_=dict(
                    owner=stmt.excluded.owner, acquired_at=stmt.excluded.acquired_at,
                    heartbeat_at=stmt.excluded.heartbeat_at, expires_at=stmt.excluded.expires_at)))
        except Exception:
            conn.close()
            with self._guard:
                self._sessions.pop(owner, None)
            raise
        with self._guard:
            self._sessions[owner] = (conn, held | set(taken))
        return True

    def _release_pg(self, names: list[str], owner: str) -> None:
        with self._guard:
            session = self._sessions.get(owner)
        if session is None:
            return
        conn, held = session
        try:
            t = self.table
            conn.execute(delete(t).where(and_(t.c.name.in_([n for n in names if n in held]), t.c.owner == owner)))
            for name in names:
                if name in held:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key(name)})
                    held = held - {name}
        finally:
            with self._guard:
                if held:
                    self._sessions[owner] = (conn, held)
                else:
                    self._sessions.pop(owner, None)
            if not held:
                conn.close()

    def _acquire_row(self, name: str, owner: str, ttl: float) -> bool:
        t = self.table
        now = _now()
        mine = dict(owner=owner, expires_at=now + dt.timedelta(seconds=ttl), acquired_at=now, heartbeat_at=now)
        stmt = sqlite_insert(t).values(name=name, **mine)
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.name], set_={k: stmt.excluded[k] for k in mine},
                                          where=t.c.expires_at <= now)
        with self.engine.begin() as conn:
            conn.execute(stmt)
            holder = conn.execute(select(t.c.owner).where(t.c.name == name)).scalar()
            if holder == owner:
                return True
            if not process_gone(holder):
                return False
            # Compare-and-swap on the dead owner: of two processes taking it over, one matches.
            return conn.execute(update(t).where(and_(t.c.name == name, t.c.owner == holder))
                                .values(**mine)).rowcount == 1

    def _release_row(self, name: str, owner: str) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(and_(t.c.name == name, t.c.owner == owner)))


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass
class RunTicket:
    """An on-demand run handed to a background thread."""

    trigger: str
    thread: threading.Thread
    run_id: int | None = None
    error: str | None = None
    started: threading.Event = field(default_factory=threading.Event)


class SyncRunner:
    """Runs the sync engine under the locks. One run at a time per process (the engine keeps
    per-run state), and per object across processes (the database lock)."""

    def __init__(self, connector, lock: SyncLock | None = None, *, ttl: float = DEFAULT_TTL) -> None:
        self.connector = connector
        sync = connector.sync
        self.lock = lock or SyncLock(connector.engine, connector.mapping.objects, schema=sync.schema,
                                     prefix=sync.prefix)
        self.ttl = ttl
        self.mutex = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.current: str | None = None
        self.upkeep = None
        self.last_upkeep: dict[str, object] = {}   # "before"/"after" -> the last co-sell step's UpkeepReport

    def run(self, objects: list[str] | None, *, full: bool = False, trigger: str = "scheduled",
            wait: float | None = None):
        """Run now in this thread; raise LockBusy when another run holds what this one needs.
        `wait`: seconds to wait for a run of this process to end (None: as long as it takes)."""
        owner = self._lock_for_run(objects, -1 if wait is None else wait)
        return self._run_held(objects, full, trigger, owner)

    @contextmanager
    def holding(self, objects: list[str], *, wait: float | None = None) -> Iterator[str]:
        """The locks of `objects` for work smaller than a run (a batch of streamed changes), taken and
        let go the way a run takes them."""
        owner = self._lock_for_run(objects, -1 if wait is None else wait)
        try:
            yield owner
        finally:
            self.lock.release(objects, owner)
            self.mutex.release()

    def _lock_for_run(self, objects: list[str] | None, wait: float) -> str:
        """This process's mutex, then the database lock; the mutex is let go if the database says no."""
        if not self.mutex.acquire(timeout=wait):
            raise LockBusy(f"a run is in progress in this process ({self.current})")
        try:
            return self._take(objects)
        except BaseException:
            self.mutex.release()
            raise

    def start(self, objects: list[str] | None, *, full: bool = False, trigger: str | None = None,
              wait: float = 5.0, before=None) -> RunTicket:
        """Take the locks here (so a busy lock is answered at once), then run in a background thread.
        Returns once the run has its id (or failed before getting one). `before(engine)` runs first,
        under the locks."""
        owner = self._lock_for_run(objects, wait)
        trigger = trigger or f"resync:{uuid.uuid4().hex[:12]}"
        ticket = RunTicket(trigger, threading.Thread(target=lambda: None))

        def work() -> None:
            try:
                if before is not None:
                    self.connector.sync.prepare()
                    before(self.connector.sync)
                self._run_held(objects, full, trigger, owner, ticket)
            except Exception as exc:   # reported on the ticket and in the log; the run row says the rest
                ticket.error = str(exc)
                log.error("on-demand run %s failed: %s", trigger, exc)
            finally:
                ticket.started.set()

        ticket.thread = threading.Thread(target=work, name=f"cosell-{trigger}", daemon=False)
        self.threads = [t for t in self.threads if t.is_alive()] + [ticket.thread]
        ticket.thread.start()
        deadline = time.monotonic() + 60
        while not ticket.started.is_set() and time.monotonic() < deadline:
            ticket.run_id = self._run_id(trigger)
            if ticket.run_id is not None:
                break
            ticket.started.wait(0.05)
        if ticket.run_id is None:
            ticket.run_id = self._run_id(trigger)
        return ticket

    def join(self, timeout: float | None = None) -> None:
        """Wait for on-demand runs to finish (at shutdown)."""
        for t in list(self.threads):
            t.join(timeout)

    def _take(self, objects: list[str] | None) -> str:
        owner = new_owner()
        target = ALL if objects is None else objects
        if not self.lock.acquire(target, owner, self.ttl):
            raise LockBusy(self._busy(self.lock.names(target)))
        return owner

    def _busy(self, wanted: list[str]) -> str:
        """Who holds what this run needs, one clause per holder."""
        held = [h for n, h in self.lock.holders().items() if n in wanted]
        if not held:   # let go between our attempt and this look
            return f"{', '.join(wanted)}: held by another run a moment ago; try again"
        runs = self.connector.sync.state.runs
        owners = sorted({h.owner for h in held if h.owner})
        try:
            with self.connector.engine.connect() as conn:
                run_ids = dict(conn.execute(select(runs.c.owner, runs.c.id).where(
                    and_(runs.c.owner.in_(owners), runs.c.status == "running"))).all())
        except Exception:   # runs table not there yet, or made by an older version
            run_ids = {}
        now = _now()
        clauses = []
        for owner in dict.fromkeys(h.owner for h in held):
            mine = [h for h in held if h.owner == owner]
            names = ", ".join(h.name for h in mine)
            clauses.append(f"{names} {'is' if len(mine) == 1 else 'are'} being synced by "
                           f"{mine[0].describe(run_ids.get(owner), now)}")
        return "; ".join(clauses) + "; wait for it to finish or stop it"

    def _run_held(self, objects, full, trigger, owner, ticket: RunTicket | None = None):
        target = ALL if objects is None else objects
        self.current = trigger
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(target, owner, stop), daemon=True)
        renewer.start()
        try:
            upkeep = self._upkeep(objects)
            self._cosell_step(upkeep, "before")
            report = self.connector.sync.run(objects, full=full, trigger=trigger, owner=owner)
            self._cosell_step(upkeep, "after")
            return report
        finally:
            stop.set()
            self.lock.release(target, owner)
            self.current = None
            self.mutex.release()

    def _upkeep(self, objects: list[str] | None):
        """The co-sell step (expiry before, channel conflicts after) of a run that syncs registrations, under
        the run's locks; None for runs that do not."""
        from connector.registration_upkeep import Upkeep

        if self.upkeep is None:
            self.upkeep = Upkeep(self.connector.sync, getattr(self.connector, "settings", None))
        return self.upkeep if self.upkeep.applies(objects) else None

    def _cosell_step(self, upkeep, when: str) -> None:
        if upkeep is None:
            return
        try:
            done = getattr(upkeep, when)()
        except Exception as exc:   # the sync itself must still run and end; the next run tries again
            log.error("co-sell step %s the sync failed: %s", when, exc)
            return
        self.last_upkeep[when] = done
        if done.expired:
            log.info("expired %d registration(s): %s", len(done.expired), ", ".join(done.expired))
        if done.conflicts:
            log.info("%d open channel conflict(s): ids %s", len(done.conflicts),
                     ", ".join(map(str, done.conflicts)))

    def _renew(self, target, owner: str, stop: threading.Event) -> None:
        # Other processes judge the run row by HEARTBEAT_TTL whatever this runner's lock ttl is.
        while not stop.wait(min(self.ttl, HEARTBEAT_TTL) / 3):
            try:
                self.lock.renew(target, owner, self.ttl)
                with self.connector.engine.begin() as conn:
                    beat(conn, self.connector.sync.state.runs, owner)
            except Exception as exc:   # the run goes on; the next renewal tries again
                log.warning("could not renew the sync lock: %s", exc)

    def _run_id(self, trigger: str) -> int | None:
        runs = self.connector.sync.state.runs
        try:
            with self.connector.engine.connect() as conn:
                return conn.execute(select(runs.c.id).where(runs.c.trigger == trigger)
                                    .order_by(runs.c.id.desc())).scalar()
        except Exception:   # the table may not exist before the first run prepares it
            return None


# The job store holds jobs by reference; the live runner is found here by the store's key.
_RUNNERS: dict[str, SyncRunner] = {}


def run_scheduled(key: str, object_name: str) -> None:
    """The job every scheduled object runs (a module-level function, so the job store can name it)."""
    runner = _RUNNERS.get(key)
    if runner is None:
        log.warning("no sync runner for %s in this process; job for %s skipped", key, object_name)
        return
    try:
        report = runner.run([object_name], trigger="scheduled")
    except LockBusy as exc:
        log.info("scheduled sync of %s skipped: %s", object_name, exc)
        return
    log.info("scheduled sync of %s: run %s %s", object_name, report.run_id, report.status)


REGISTRATIONS_JOB = "cosell:registrations"


def run_registration_check(key: str) -> None:
    """The registration check of `cosell serve`: a run of Deal_Registration__c, whose co-sell step expires what
    is due, sends it to Salesforce and looks for channel conflicts."""
    runner = _RUNNERS.get(key)
    if runner is None:
        log.warning("no sync runner for %s in this process; registration check skipped", key)
        return
    try:
        report = runner.run(["Deal_Registration__c"], trigger="registrations")
    except LockBusy as exc:
        log.info("registration check skipped: %s", exc)
        return
    log.info("registration check: run %s %s", report.run_id, report.status)


class SyncScheduler:
    """One interval job per mapped object, stored in the local database (`_cosell_jobs`), with
    `max_instances=1` and coalescing: missed runs collapse into one, and a run never overlaps itself."""

    def __init__(self, runner: SyncRunner, *, misfire_grace_time: int = 300) -> None:
        # APScheduler is imported here, not at the top: `cosell sync` uses the runner and the lock only.
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runner = runner
        # Objects a StreamingService streams: their changes arrive as they happen, so no interval job.
        self.streamed: set[str] = set()
        sync = runner.connector.sync
        self.key = f"{runner.connector.engine.url.render_as_string(hide_password=True)}|{sync.schema}|{sync.prefix}"
        self.jobstore = SQLAlchemyJobStore(engine=runner.connector.engine,
                                           tablename=meta_table_name("jobs", sync.prefix), tableschema=sync.schema)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": self.jobstore},
            # one worker: runs of this process queue up instead of contending for the engine
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": misfire_grace_time},
            timezone=UTC)

    def start(self) -> None:
        _RUNNERS[self.key] = self.runner
        self.scheduler.start(paused=True)
        self.reconcile()
        self.scheduler.resume()

    def reconcile(self) -> None:
        """Make the stored jobs match the mapping: keep a job whose interval is unchanged (and its
        next run time), replace a changed one, drop the jobs of objects no longer mapped."""
        from apscheduler.triggers.interval import IntervalTrigger

        wanted = {JOB_PREFIX + name: om.poll_interval for name, om in self.runner.connector.mapping.objects.items()
                  if name not in self.streamed}
        registrations = self.runner.connector.mapping.objects.get("Deal_Registration__c")
        settings = getattr(self.runner.connector, "settings", None)
        check = settings.registration_check_interval if settings is not None else 3600
        if registrations is not None and registrations.direction == "read_write":
            wanted[REGISTRATIONS_JOB] = check
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        if REGISTRATIONS_JOB in wanted:
            job = self.scheduler.get_job(REGISTRATIONS_JOB)
            if job is None or job.trigger.interval != dt.timedelta(seconds=check):
                self.scheduler.add_job(run_registration_check, IntervalTrigger(seconds=check, timezone=UTC),
                                       args=[self.key], id=REGISTRATIONS_JOB, name="registration check",
                                       replace_existing=True)
        for job_id, seconds in wanted.items():
            if not job_id.startswith(JOB_PREFIX):
                continue
            job = self.scheduler.get_job(job_id)
            same = (job is not None and isinstance(job.trigger, IntervalTrigger)
                    and job.trigger.interval == dt.timedelta(seconds=seconds) and job.args == (self.key, job_id[len(JOB_PREFIX):]))
            if same:
                continue
            self.scheduler.add_job(run_scheduled, IntervalTrigger(seconds=seconds, timezone=UTC),
                                   args=[self.key, job_id[len(JOB_PREFIX):]], id=job_id,
                                   name=f"sync {job_id[len(JOB_PREFIX):]}", replace_existing=True)

    def next_runs(self) -> dict[str, dt.datetime | None]:
        if not self.scheduler.running:
            return {}
        return {job.id[len(JOB_PREFIX):]: job.next_run_time for job in self.scheduler.get_jobs()
                if job.id.startswith(JOB_PREFIX)}

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling; with `wait`, a run in progress finishes (and commits) first."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        _RUNNERS.pop(self.key, None)
