"""Nothing lost while both sides keep writing: a portal user editing through SQL and a
Salesforce user editing through simple-salesforce, at random instants, while `cosell sync`
(the real CLI, a subprocess per cycle) runs in a loop. On SQLite and PostgreSQL:

- after the writers stop and two more cycles, every mapped field of the records they edited
  is equal on both sides;
- every value either writer wrote that the connector later overwrote on the writer's own
  side had reached the other side first, or is kept in the conflict log.

One exception is counted and printed, not failed: an org value saved after the connector's
last read of its object and before its push arrived (milliseconds; `SyncEngine._catch_up`
says why no REST write of Salesforce can close that window). Anything the connector could
have read fails the test. The second test kills the sync processes (SIGKILL) mid-cycle
while the writers write and the portal creates opportunities: the same, and nothing is
created twice in the org.

To tell the two apart the test keeps its own books, outside the connector: every write
(each value unique, so a value names its write), an audit trigger on the mirrored tables
logging every value the portal held (the connector's writes included), and a journal of
every value the org held (the Salesforce user's saves and the connector's alike)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import OperationalError

from tests.conftest import connect
from tests.integration.sync.test_convergence import (assert_converged, fast_commits, norm, norm_logged, snapshot,
                                                     synced_objects, to_wire)
from tests.integration.sync.test_crash import Workers, mapping_with_schema, worker_env
from tests.integration.sync.test_sync import Harness

OPP, PART = "Opportunity", "Co_Sell_Participant__c"
# The fields the writers edit, with the portal's column.
WATCHED = {OPP: {"NextStep": "nextstep", "Description": "description", "Amount": "amount"},
           PART: {"Notes__c": "notes__c", "Split_Percent__c": "split_percent__c"}}
DEALS = 3                       # opportunities, each with one participant
WRITE_FOR = float(os.environ.get("COSELL_WRITERS_SECONDS", "10"))
PAUSE = (0.03, 0.25)            # seconds between two writes of one writer
SEED = int(os.environ.get("COSELL_WRITERS_SEED", "20261201"))
AUDIT = "writers_audit"
SIDES = ("portal", "org")


# -- the test's books ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Write:
    side: str                   # "portal" or "org"
    seq: int                    # order among all writes of both writers
    obj: str
    record: int                 # index into Books.records
    field: str
    value: Any                  # normalised
    at: float                   # seconds since the writers started


class Books:
    """What each writer wrote and what each side held, per (record, field), in order."""

    def __init__(self, records: list[tuple[str, str, str]]) -> None:
        self.records = records                      # (object, sfid, portal uuid)
        self.by_sfid = {sfid: i for i, (_, sfid, _) in enumerate(records)}
        self.by_uuid = {uuid: i for i, (_, _, uuid) in enumerate(records)}
        self.writes: list[Write] = []
        self.created: list[str] = []                # portal UUIDs of opportunities the portal writer made
        self.by_value: dict[Any, Write] = {}
        self.org_held: dict[tuple[int, str], list[Any]] = {}
        self.org_held_at: dict[tuple[int, str], list[float]] = {}   # when the org took each value
        self.org_sent_at: dict[tuple[int, str], list[float]] = {}   # when the request carrying it arrived
        self.org_reads: list[tuple[float, str]] = []                 # when each query call ended, its text
        self.raced: list[str] = []
        self.killed_in_flight: list[str] = []
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.started = time.monotonic()

    def fresh(self, side: str, field: str) -> tuple[int, Any]:
        """A value nobody wrote before: text tagged with the side, numbers unique by value."""
        n = next(self.counter)
        if field == "Amount":
            return n, Decimal(f"{20000 + n}.{n % 100:02d}")
        if field == "Split_Percent__c":
            return n, Decimal(f"{n // 100}.{n % 100:02d}") + 20
        return n, f"{'P' if side == 'portal' else 'S'}-{n}"

    def wrote(self, side: str, seq: int, record: int, field: str, value: Any) -> None:
        w = Write(side, seq, self.records[record][0], record, field, norm(value), time.monotonic() - self.started)
        with self.lock:
            self.writes.append(w)
            self.by_value[w.value] = w

    def count(self, side: str) -> int:
        return sum(1 for w in self.writes if w.side == side)


def install_audit(h: Harness) -> None:
    """Test-only triggers logging every value the portal's rows held in the watched columns, in
    commit order per row (the row lock orders two writers of one row)."""
    schema = h.database.schema
    q = (lambda name: f'"{schema}"."{name}"') if schema else (lambda name: f'"{name}"')
    with h.database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"CREATE TABLE {q(AUDIT)} (id BIGSERIAL PRIMARY KEY, object_name TEXT, "
                              "row_uuid TEXT, field_name TEXT, value TEXT)"))
        else:
            conn.execute(text(f"CREATE TABLE {q(AUDIT)} (id INTEGER PRIMARY KEY AUTOINCREMENT, object_name TEXT, "
                              "row_uuid TEXT, field_name TEXT, value TEXT)"))
        for obj, columns in WATCHED.items():
            table = h.schemas[obj].table
            if conn.dialect.name == "postgresql":
                checks = "\n".join(
                    f"  IF NEW.{col} IS DISTINCT FROM OLD.{col} THEN INSERT INTO {q(AUDIT)} "
                    f"(object_name, row_uuid, field_name, value) VALUES ('{obj}', NEW._uuid, '{name}', "
                    f"NEW.{col}::text); END IF;" for name, col in columns.items())
                function = q(f"writers_audit_{table}")
                conn.execute(text(f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                                  f"BEGIN\n{checks}\n  RETURN NEW;\nEND\n$$"))
                conn.execute(text(f'CREATE TRIGGER "writers_audit" AFTER UPDATE ON {q(table)} '
                                  f"FOR EACH ROW EXECUTE FUNCTION {function}()"))
            else:
                for name, col in columns.items():
                    conn.execute(text(
                        f'CREATE TRIGGER "writers_audit_{table}_{col}" AFTER UPDATE OF {col} ON "{table}" '
                        f"WHEN NEW.{col} IS NOT OLD.{col} BEGIN INSERT INTO \"{AUDIT}\" "
                        f"(object_name, row_uuid, field_name, value) VALUES ('{obj}', NEW._uuid, '{name}', "
                        f"CAST(NEW.{col} AS TEXT)); END"))


def portal_history(h: Harness, books: Books) -> dict[tuple[int, str], list[Any]]:
    schema = h.database.schema
    audit = f'"{schema}"."{AUDIT}"' if schema else f'"{AUDIT}"'
    held: dict[tuple[int, str], list[Any]] = {}
    with h.database.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT row_uuid, field_name, value FROM {audit} ORDER BY id")).all()
    for uuid, field, value in rows:
        if uuid in books.by_uuid:
            if value is not None and field in ("Amount", "Split_Percent__c"):
                value = Decimal(value)
            held.setdefault((books.by_uuid[uuid], field), []).append(norm(value))
    return held


def journal_org(emulator, books: Books) -> None:
    """Every save of a watched record, whoever made it (the org writer, the connector), notes the
    values the record then holds. Test bookkeeping around the in-process store; the org's
    behaviour is unchanged."""
    store = emulator.store
    original = store.update
    request = threading.local()       # when the request being answered on this thread arrived

    def update_and_note(object_name, record_id, values, **kw):
        with store.lock:
            original(object_name, record_id, values, **kw)
            i = books.by_sfid.get(record_id)
            if i is None:
                return
            record = store.get(books.records[i][0], record_id)
            for name in WATCHED[books.records[i][0]]:
                seen = books.org_held.setdefault((i, name), [])
                value = norm(record.get(name))
                if not seen or seen[-1] != value:
                    seen.append(value)
                    now = time.monotonic() - books.started
                    books.org_held_at.setdefault((i, name), []).append(now)
                    books.org_sent_at.setdefault((i, name), []).append(getattr(request, "arrived", now))

    store.update = update_and_note
    handle = emulator.api.handle

    def handle_and_note(req):
        # The server sleeps `emulator.latency` between reading a request and answering it; a
        # composite request's subrequests come back through here and keep its arrival.
        outer = not hasattr(request, "arrived")
        if outer:
            request.arrived = time.monotonic() - emulator.latency - books.started
        try:
            response = handle(req)
        finally:
            if outer:
                del request.arrived
        if req.path.startswith(("/query", "/composite")) and req.method in ("GET", "POST"):
            books.org_reads.append((time.monotonic() - books.started,
                                    (req.param("q") or req.body.decode(errors="replace")).lower()))
        return response

    emulator.api.handle = handle_and_note


def last_read_before(books: Books, obj: str, at: float) -> float | None:
    """When the connector's last query of `obj` that ended before `at` ended."""
    reads = [t for t, q in books.org_reads if t < at and f"from {obj.lower()}" in q]
    return reads[-1] if reads else None


# -- the writers and the sync loop ---------------------------------------------------------------------
def portal_writer(h: Harness, books: Books, rng: random.Random, stop: threading.Event, errors: list,
                  creates: bool = False) -> None:
    try:
        while not stop.wait(rng.uniform(*PAUSE)):
            if creates and rng.random() < 0.1:
                portal_create(h, books)
                continue
            i = rng.randrange(len(books.records))
            obj, _, uuid = books.records[i]
            name = rng.choice(sorted(WATCHED[obj]))
            n, value = books.fresh("portal", name)
            table = h.tables[obj]
            for attempt in range(20):       # SQLite: the sync process may hold the write lock a while
                try:
                    with h.database.engine.begin() as conn:
                        conn.execute(update(table).where(table.c._uuid == uuid).values({WATCHED[obj][name]: value}))
                    break
                except OperationalError:
                    if attempt == 19:
                        raise
                    time.sleep(0.05)
            books.wrote("portal", n, i, name, value)
    except BaseException as exc:      # noqa: BLE001 - reported by the test
        errors.append(("portal writer", exc))


def portal_create(h: Harness, books: Books) -> None:
    """A new opportunity in the portal: it must reach the org once, however the sync process dies."""
    n, _ = books.fresh("portal", "Name")
    table = h.tables[OPP]
    with h.database.engine.begin() as conn:
        conn.execute(insert(table).values(name=f"Writers new deal {n}", stagename="Prospecting",
                                          closedate=dt.date(2027, 6, 30), amount=Decimal(f"{n}.50")))
        uuid = conn.execute(select(table.c._uuid).where(table.c.name == f"Writers new deal {n}")).scalar_one()
    books.created.append(uuid)


def org_writer(emulator, books: Books, rng: random.Random, stop: threading.Event, errors: list) -> None:
    try:
        sf = connect(emulator)
        while not stop.wait(rng.uniform(*PAUSE)):
            i = rng.randrange(len(books.records))
            obj, sfid, _ = books.records[i]
            name = rng.choice(sorted(WATCHED[obj]))
            n, value = books.fresh("org", name)
            getattr(sf, obj).update(sfid, {name: to_wire(value)})
            books.wrote("org", n, i, name, value)
    except BaseException as exc:      # noqa: BLE001 - reported by the test
        errors.append(("org writer", exc))


class SyncLoop:
    """`cosell sync` again and again, each a process of its own, as cron would run it."""

    def __init__(self, env: dict[str, str], cwd) -> None:
        self.env, self.cwd = env, cwd
        self.runs: list[tuple[int, str]] = []
        self.spans: list[tuple[float, float]] = []      # (start, end), monotonic
        self.started = time.monotonic()

    def once(self) -> int:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "connector.cli", "sync"], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=180)
        self.runs.append((done.returncode, done.stdout + done.stderr))
        self.spans.append((start, time.monotonic()))
        return done.returncode

    def until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.once()

    def failures(self) -> list[str]:
        return [f"exit {code}:\n{output[-3000:]}" for code, output in self.runs if code != 0]


# A kill this soon after a push reached the org can land before the connector logged what the push
# overwrote (see lost_values).
KILL_WINDOW = 0.1


# -- the judgement -----------------------------------------------------------------------------------
def lost_values(h: Harness, books: Books, loop) -> list[str]:
    """Every write the connector overwrote on its writer's side, that never reached the other side
    and is not in the conflict log."""
    held = {"portal": portal_history(h, books), "org": books.org_held}
    conflicts = h.conflicts()
    lost = []
    for w in books.writes:
        obj, sfid, uuid = books.records[w.record]
        mine, theirs = held[w.side].get((w.record, w.field), []), held[_other(w.side)].get((w.record, w.field), [])
        where = f"{obj} {sfid} {w.field}: the {w.side} wrote {w.value!r} at +{w.at:.2f}s"
        if w.value not in mine:
            lost.append(f"{where}, and its own side never held it (the test's books are wrong)")
            continue
        after = mine[mine.index(w.value) + 1:]
        if not after:
            continue                # still there: convergence judges it
        nxt = books.by_value.get(after[0])
        if nxt is not None and nxt.side == w.side and nxt.seq > w.seq:
            continue                # its own writer replaced it
        if w.value in theirs:
            continue                # it reached the other side, which moved on from it
        schema = h.schemas[obj]
        logged = {norm_logged(schema, w.field, c[column]) for c in conflicts
                  if c["object_name"] == obj and c["field_name"] == w.field
                  and (c["sfid"] == sfid or c["record_uuid"] == uuid) for column in ("local_value", "remote_value")}
        if w.value in logged:
            continue
        by = (f"{after[0]!r}, written by the {nxt.side} at +{nxt.at:.2f}s" if nxt is not None
              else f"{after[0]!r}, which no writer wrote")
        entries = [(c["local_value"], c["remote_value"], c["winner"]) for c in conflicts
                   if c["object_name"] == obj and c["field_name"] == w.field
                   and (c["sfid"] == sfid or c["record_uuid"] == uuid)]
        if w.side == "org":
            times = books.org_held_at[(w.record, w.field)]
            took, replaced = times[len(mine) - len(after) - 1], times[len(mine) - len(after)]
            sent = books.org_sent_at[(w.record, w.field)][len(mine) - len(after)]
            read = last_read_before(books, obj, replaced)
            by += (f", which reached the org at +{replaced:.3f}s (the org took {w.value!r} at +{took:.3f}s; "
                   f"the connector's last read of {obj} before its write ended at "
                   + (f"+{read:.3f}s)" if read is not None else "never)"))
            # The push that replaced it may have been sent by a process killed before the org
            # applied it: its request arrived while the process lived.
            killer = next((b for (a, b), outcome in zip(loop.spans, getattr(loop, "outcomes", []))
                           if outcome.startswith("killed") and a <= sent + books.started <= b
                           and b - (sent + books.started) < KILL_WINDOW), None)
            if killer is not None:
                # The engine's one documented window: the update and its read of the record ran in
                # Salesforce, and the process died (SIGKILL) before it could log what it overwrote;
                # the resent update then reads its own value. Counted and shown, not hidden.
                books.killed_in_flight.append(f"{where}; replaced by {by}; the process was killed "
                                              f"{killer - sent - books.started:+.3f}s after sending that write")
                continue
        runs = ", ".join(f"{a - books.started:+.2f}..{b - books.started:+.2f}s" for a, b in loop.spans
                         if b >= books.started)
        lost.append(f"{where}; the connector replaced it there by {by}; the {_other(w.side)} never held it; "
                    f"the {w.side} held {mine}, the {_other(w.side)} held {theirs}; conflict log (local, remote, "
                    f"winner) for this field: {entries}; sync runs: {runs}")
    return lost


def _other(side: str) -> str:
    return "org" if side == "portal" else "portal"


# -- the tests ---------------------------------------------------------------------------------------
def watched_records(emulator, database, tmp_path, first_cycle) -> tuple[Harness, Books, dict]:
    """The mirror, three opportunities with a participant each made in the org and synced by
    `first_cycle()`, and the books open on them."""
    mapping_path = mapping_with_schema(database, tmp_path)
    fast_commits(database)
    h = Harness(emulator, database, mapping_path)
    h.engine.run(synced_objects(h))             # mirrored and loaded; the org's clock is left to real time
    before = snapshot(h)
    sfids = []
    for d in range(DEALS):
        opp = emulator.create(OPP, {"Name": f"Writers deal {d}", "StageName": "Qualification",
                                    "CloseDate": "2027-03-31", "Amount": 500 + d, "NextStep": "initial",
                                    "Description": "initial"})
        part = emulator.create(PART, {"Opportunity__c": opp, "Role__c": "System Integrator",
                                      "Attribution__c": "Influenced", "Split_Type__c": "Influence",
                                      "Split_Percent__c": 10, "Notes__c": "initial"})
        sfids += [(OPP, opp), (PART, part)]
    time.sleep(1.1)                              # a read never includes the current second
    first_cycle()
    records = []
    for obj, sfid in sfids:
        rows = h.rows(obj, h.tables[obj].c.sfid == sfid)
        assert rows, f"{obj} {sfid} did not reach the portal"
        records.append((obj, sfid, rows[0]["_uuid"]))
    books = Books(records)
    install_audit(h)
    journal_org(emulator, books)
    return h, books, before


def write_while(h: Harness, emulator, books: Books, rng: random.Random, sync_thread: threading.Thread,
                syncing: threading.Event, cycles, creates: bool = False) -> None:
    """Both writers for WRITE_FOR seconds (longer if fewer than three sync cycles ran meanwhile)
    beside the sync thread; returns when all three stopped.
    (Times in the books count from when they were opened.)"""
    stop, errors = threading.Event(), []
    threads = [threading.Thread(target=portal_writer,
                                args=(h, books, random.Random(rng.random()), stop, errors, creates)),
               threading.Thread(target=org_writer, args=(emulator, books, random.Random(rng.random()), stop, errors))]
    for t in (*threads, sync_thread):
        t.start()
    try:
        time.sleep(WRITE_FOR)
        deadline = time.monotonic() + 2 * WRITE_FOR     # a slow machine: on, until three cycles ran
        while cycles() < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        syncing.set()
        sync_thread.join(240)
    assert not errors, f"a writer failed: {errors}"


def judge(h: Harness, books: Books, loop, before, cycles: int, extra: str = "") -> None:
    lost = lost_values(h, books, loop)
    ours = {uuid for _, _, uuid in books.records} | {sfid for _, sfid, _ in books.records}
    logged = [c for c in h.conflicts() if c["record_uuid"] in ours or c["sfid"] in ours]
    print(f"{h.database.name}: {books.count('portal')} portal writes, {books.count('org')} org writes, "
          f"{cycles} sync cycles while writing (+2 after){extra}, {len(logged)} conflicts logged, "
          f"{len(lost)} values lost" + (f", {len(books.killed_in_flight)} org values lost to a kill between "
                                        "Salesforce applying a push and the connector logging what it "
                                        "overwrote:\n  " + "\n  ".join(books.killed_in_flight)
                                        if books.killed_in_flight else "")
          + (f", {len(books.raced)} org values lost to a push in flight "
                                        f"(saved after the connector's last read):\n  " + "\n  ".join(books.raced)
                                        if books.raced else ""))
    try:
        assert_converged(h, before)
        diverged = None
    except AssertionError as exc:
        diverged = str(exc)
    assert books.count("portal") >= 10 and books.count("org") >= 10, "the writers barely wrote"
    assert cycles >= 2, f"only {cycles} sync cycles ran while the writers wrote"
    assert not lost and diverged is None, (
        f"seed {SEED}: " + (f"the sides differ: {diverged}\n" if diverged else "")
        + f"{len(lost)} value(s) lost without a trace:\n" + "\n".join(lost))


def test_nothing_is_lost_while_both_sides_keep_writing(emulator, database, tmp_path):
    print(f"seed {SEED} (COSELL_WRITERS_SEED picks another; the writers' timing varies anyway)")
    loop = SyncLoop(worker_env(emulator, database, mapping_with_schema(database, tmp_path)), tmp_path)

    def first_cycle():
        assert loop.once() == 0, loop.failures()

    h, books, before = watched_records(emulator, database, tmp_path, first_cycle)
    syncing = threading.Event()
    write_while(h, emulator, books, random.Random(SEED), threading.Thread(target=loop.until, args=(syncing,)),
                syncing, cycles=lambda: len(loop.runs) - 1)
    during = len(loop.runs) - 1
    for _ in range(2):
        time.sleep(1.1)
        loop.once()
    assert not loop.failures(), "a sync run failed:\n" + "\n".join(loop.failures())
    judge(h, books, loop, before, during)


class KillingLoop:
    """Sync processes one after another (`sync_worker`, a cycle each), every second one SIGKILLed
    at a random instant of its cycle, mostly in its last part, where the pushes are."""

    def __init__(self, workers: Workers, rng: random.Random) -> None:
        self.workers, self.rng = workers, rng
        self.spans: list[tuple[float, float]] = []
        self.outcomes: list[str] = []
        self.one_cycle = 1.0

    def once(self, kill: bool = False) -> str:
        start = time.monotonic()
        pid = self.workers.start(cycles=1)
        if kill:
            time.sleep(self.one_cycle * self.rng.uniform(0.2, 1.0))
            outcome = "killed at " + self.workers.kill(pid)
        else:
            lines = self.workers.wait(pid)
            outcome = "finished" if '"status": "succeeded"' in lines[0] else f"finished: {lines[0]}"
            self.one_cycle = time.monotonic() - start     # the kills aim at cycles as long as the last one
        self.spans.append((start, time.monotonic()))
        self.outcomes.append(outcome)
        return outcome

    def until(self, stop: threading.Event) -> None:
        n = 0
        while not stop.is_set():
            self.once(kill=n % 2 == 0)
            n += 1


def test_killed_while_both_sides_write_nothing_is_lost_or_duplicated(emulator, database, tmp_path):
    """The same writers, and the portal's also creates opportunities now and then; the sync
    processes are killed with SIGKILL while they work and started again, as a supervisor would."""
    print(f"seed {SEED} (COSELL_WRITERS_SEED picks another; the writers' timing varies anyway)")
    rng = random.Random(SEED)
    workers = Workers(worker_env(emulator, database, mapping_with_schema(database, tmp_path)), tmp_path,
                      tmp_path / "worker.log")
    loop = KillingLoop(workers, random.Random(rng.random()))
    try:
        def first_cycle():
            assert loop.once() == "finished", loop.outcomes

        h, books, before = watched_records(emulator, database, tmp_path, first_cycle)
        syncing = threading.Event()
        emulator.latency = 0.01                  # every API call takes a little: kills land mid-run
        try:
            write_while(h, emulator, books, rng, threading.Thread(target=loop.until, args=(syncing,)), syncing,
                        cycles=lambda: len(loop.outcomes) - 1, creates=True)
        finally:
            emulator.latency = 0.0
        during = len(loop.outcomes) - 1
        for _ in range(2):
            time.sleep(1.1)
            assert loop.once() == "finished", loop.outcomes
    finally:
        workers.close()
    kills = [o for o in loop.outcomes if o.startswith("killed")]
    mid_run = [o for o in kills if o != "killed at done"]
    for name in (OPP, PART):
        ids = Counter(r.get("Portal_Id__c") for r in emulator.records(f"SELECT Id, Portal_Id__c FROM {name}"))
        twice = {k: n for k, n in ids.items() if k and n > 1}
        assert not twice, f"{name} created more than once in Salesforce: {twice}"
    for uuid in books.created:
        found = emulator.records(f"SELECT Id FROM {OPP} WHERE Portal_Id__c = '{uuid}'")
        if len(found) != 1:
            t = h.tables[OPP]
            st = h.engine.state
            with h.database.engine.connect() as conn:
                row = conn.execute(select(t.c.sfid, t.c._sync_error, t.c._base.is_(None)).where(t.c._uuid == uuid)).first()
                changes = conn.execute(select(st.changes).where(st.changes.c.row_uuid == uuid)).all()
                letters = conn.execute(select(st.dead_letters).where(st.dead_letters.c.record_uuid == uuid)).all()
                retries = conn.execute(select(st.retries).where(st.retries.c.record_uuid == uuid)).all()
            raise AssertionError(f"the portal's new opportunity {uuid} is {len(found)} times in the org; the portal "
                                 f"row (sfid, error, no base): {row}; queued changes {changes}; parked {letters}; "
                                 f"retries {retries}; runs {loop.outcomes}")
    assert mid_run, f"no kill landed while a sync process worked: {loop.outcomes}"
    judge(h, books, loop, before, during,
          extra=f", {len(kills)} killed ({len(mid_run)} mid-cycle), {len(books.created)} portal creates")
