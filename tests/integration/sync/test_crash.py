"""The kill test: a real sync process, SIGKILLed at a random instant while it works, then
restarted. On SQLite and PostgreSQL, whatever the instant:

- no record exists twice in Salesforce (creates are upserts on Portal_Id__c);
- every row the portal created reached Salesforce exactly once, children linked to
  their parent;
- every change made on either side before the run — updates, creates, deletes — is
  on both sides after the restart, and both sides hold the same records and values.

The org emulator runs in the test process and serves the worker over HTTPS, as a real
org would; `sync_worker.py` is the worker (settings from COSELL_* variables)."""

from __future__ import annotations

import datetime as dt
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert, select, update

import connector
from connector.sync import cosell_rules
from connector.sync.engine import SyncEngine
from tests.integration.sync.test_convergence import assert_converged, fast_commits, norm, synced_objects
from tests.integration.sync.test_sync import Harness

OPP, PART = "Opportunity", "Co_Sell_Participant__c"
TRIALS = int(os.environ.get("COSELL_CRASH_TRIALS", "20"))
MAX_KILL_DELAY = 1.5          # seconds after the worker started, or one cycle where that takes longer
WORKER_CYCLES = 3
REPO = Path(__file__).resolve().parents[3]
SHIPPED_MAPPING = Path(connector.__file__).parent / "mappings" / "cosell.yaml"


# -- the worker processes ---------------------------------------------------------------------
class Workers:
    """`sync_worker --fork-server`: imports once, then forks a fresh sync process per trial, which
    the test kills with SIGKILL. Each worker is a real process of its own (own connections to the
    database and the org); forking only spares it Python's imports."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log.open("ab")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.sync.sync_worker", "--fork-server"],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.control: queue.Queue[str | None] = queue.Queue()
        self.progress: dict[int, list[str]] = {}
        self.running: set[int] = set()
        threading.Thread(target=self._read, daemon=True).start()
        self._expect("ready", timeout=120)

    def _read(self) -> None:
        for line in self.server.stdout:
            head, _, rest = line.strip().partition(" ")
            if head.isdigit():
                self.progress.setdefault(int(head), []).append(rest)
            else:
                self.control.put(line.strip())
        self.control.put(None)

    def _expect(self, prefix: str, timeout: float = 60.0) -> str:
        line = self.control.get(timeout=timeout)
        assert line is not None and line.startswith(prefix), (
            f"the worker server said {line!r}, not {prefix!r}; see {self.log.name}")
        return line

    def _send(self, command: str) -> None:
        self.server.stdin.write(command + "\n")
        self.server.stdin.flush()

    def start(self, cycles: int = WORKER_CYCLES) -> int:
        self._send(f"fork {cycles}")
        pid = int(self._expect("forked ").split()[1])
        self.running.add(pid)
        return pid

    def kill(self, pid: int) -> str:
        """SIGKILL: no clean-up of any kind. Returns how far it got: 'cycle N' (N cycles were
        finished) or 'done'."""
        os.kill(pid, signal.SIGKILL)
        self._reap(pid)
        return self.how_far(pid)

    def _reap(self, pid: int) -> None:
        self._send(f"reap {pid}")
        self._expect(f"reaped {pid}")
        self.running.discard(pid)

    def wait(self, pid: int, timeout: float = 120.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while "done" not in self.progress.get(pid, []):
            assert "failed" not in self.progress.get(pid, []), f"worker {pid} failed; see {self.log.name}"
            assert time.monotonic() < deadline, f"worker {pid} did not finish; see {self.log.name}"
            time.sleep(0.05)
        self._reap(pid)
        return self.progress[pid]

    def how_far(self, pid: int) -> str:
        lines = self.progress.get(pid, [])
        return "done" if "done" in lines else f"cycle {sum(1 for line in lines if line.startswith('cycle'))}"

    def close(self) -> None:
        for pid in list(self.running):      # a test that failed mid-trial leaves no worker behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.server.poll() is None:
            self.server.stdin.close()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.log.close()


def worker_env(org, database, mapping_path: Path) -> dict[str, str]:
    """The COSELL_* variables a deployment would set, pointing at the emulator and the test's database."""
    info = org.connection_info()
    if database.name == "sqlite":
        url = f"sqlite:///{database.engine.url.database}"
    else:
        url = database.engine.url.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSELL_")}
    env.update(PYTHONPATH=str(REPO), COSELL_DATABASE_URL=url, COSELL_MAPPING=str(mapping_path),
               COSELL_CONFIG="/nonexistent/cosell.config.yaml", COSELL_AUTH="jwt",
               COSELL_LOGIN_URL=info["login_url"], COSELL_USERNAME=info["username"],
               COSELL_CONSUMER_KEY=info["consumer_key"], COSELL_PRIVATE_KEY=info["private_key"],
               COSELL_CA_CERT=info["ca_cert"], COSELL_API_VERSION=info["api_version"],
               COSELL_RETRY_INITIAL_WAIT="0.01", COSELL_RETRY_MAX_WAIT="0.05")
    return env


def mapping_with_schema(database, directory: Path) -> Path:
    """The shipped mapping with the test's PostgreSQL schema (none on SQLite), as a file."""
    document = yaml.safe_load(SHIPPED_MAPPING.read_text())
    document.setdefault("database", {})["schema"] = database.schema
    path = directory / "mapping.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


# -- pending work and what it must become --------------------------------------------------------
@dataclass
class Trial:
    n: int
    new_opps: dict[str, dict] = field(default_factory=dict)           # portal uuid -> values
    new_parts: dict[str, tuple[str, dict]] = field(default_factory=dict)  # uuid -> (parent uuid, values)
    portal_updates: dict[tuple[str, str], dict] = field(default_factory=dict)  # (object, uuid) -> {Field: value}
    org_updates: dict[tuple[str, str], dict] = field(default_factory=dict)     # (object, sfid) -> {Field: value}
    org_created: dict[str, dict] = field(default_factory=dict)        # sfid -> values
    portal_deleted: list[str] = field(default_factory=list)           # sfids
    org_deleted: list[str] = field(default_factory=list)              # sfids


class Crash:
    """The in-process side: the org, the database, a pool of synced opportunities to work on."""

    def __init__(self, h: Harness, rng: random.Random) -> None:
        self.h, self.rng = h, rng
        self.opps = h.tables[OPP]
        self.parts = h.tables[PART]
        self.pool: list[str] = []             # sfids of synced opportunities of this test (no registrations)
        for i in range(10):
            self.pool.append(h.org.create(OPP, {"Name": f"Crash pool {i}", "StageName": "Qualification",
                                                "CloseDate": "2027-01-31", "Amount": 1000 + i}))

    def local(self, table, *where):
        return self.h.rows(table, *where)

    def prepare(self, n: int) -> Trial:
        """About twenty records of pending work on both sides."""
        t, h = Trial(n), self.h
        targets = self.rng.sample(self.pool, 8)
        portal_upd, org_upd, portal_del, org_del = targets[:3], targets[3:6], targets[6], targets[7]
        # the portal creates three opportunities, each with two participants named by the parent's row UUID
        for i in range(3):
            name = f"Crash {n}.{i}"
            values = {"Name": name, "StageName": "Prospecting", "CloseDate": dt.date(2027, 6, 30),
                      "Amount": Decimal(f"{n * 100 + i}.25")}
            h.execute(insert(self.opps).values(name=name, stagename="Prospecting", closedate=values["CloseDate"],
                                               amount=values["Amount"]))
            uuid = self.local(OPP, self.opps.c.name == name)[0]["_uuid"]
            t.new_opps[uuid] = values
            for j, role in enumerate(("Cloud Provider", "System Integrator")):
                notes = f"crash {n}.{i}.{j}"
                h.execute(insert(self.parts).values(role__c=role, attribution__c="Influenced",
                                                    split_type__c="Influence", split_percent__c=Decimal("25"),
                                                    notes__c=notes, _opportunity__c_uuid=uuid))
                part = self.local(PART, self.parts.c.notes__c == notes)[0]["_uuid"]
                t.new_parts[part] = (uuid, {"Role__c": role, "Notes__c": notes})
        # the portal edits three synced opportunities and a participant of one of them
        for sfid in portal_upd:
            row = self.local(OPP, self.opps.c.sfid == sfid)[0]
            values = {"NextStep": f"portal step {n} {sfid}", "Amount": Decimal(f"{n}{self.rng.randrange(1000)}.50")}
            h.execute(update(self.opps).where(self.opps.c._uuid == row["_uuid"]).values(
                nextstep=values["NextStep"], amount=values["Amount"]))
            t.portal_updates[(OPP, row["_uuid"])] = values
        for row in self.local(PART, self.parts.c.opportunity__c == portal_upd[0])[:1]:
            values = {"Notes__c": f"portal notes {n}"}
            h.execute(update(self.parts).where(self.parts.c._uuid == row["_uuid"]).values(notes__c=values["Notes__c"]))
            t.portal_updates[(PART, row["_uuid"])] = values
        # Salesforce users edit three others and create one
        for sfid in org_upd:
            values = {"Description": f"org description {n} {sfid}", "NextStep": f"org step {n}"}
            h.org.update(OPP, sfid, values)
            t.org_updates[(OPP, sfid)] = values
        values = {"Name": f"Org crash {n}", "StageName": "Needs Analysis", "CloseDate": "2027-09-30", "Amount": 77.5}
        t.org_created[h.org.create(OPP, values)] = values
        # a delete on each side; the portal removes the opportunity's participants with it
        row = self.local(OPP, self.opps.c.sfid == portal_del)[0]
        h.execute(self.parts.delete().where((self.parts.c.opportunity__c == portal_del)
                                            | (self.parts.c._opportunity__c_uuid == row["_uuid"])))
        h.execute(self.opps.delete().where(self.opps.c._uuid == row["_uuid"]))
        t.portal_deleted.append(portal_del)
        h.org.delete(OPP, org_del)
        t.org_deleted.append(org_del)
        self.pool = [s for s in self.pool if s not in (portal_del, org_del)]
        return t

    def in_org(self, name: str, uuid: str) -> bool:
        return bool(self.h.org.records(f"SELECT Id FROM {name} WHERE Portal_Id__c = '{uuid}'"))

    def landing(self, t: Trial) -> str:
        """Where in the work the kill landed, as the two sides show it before the restart."""
        created = [(OPP, uuid) for uuid in t.new_opps] + [(PART, uuid) for uuid in t.new_parts]
        in_org = {(name, uuid) for name, uuid in created if self.in_org(name, uuid)}
        recorded = {(name, uuid) for name, uuid in created
                    if self.local(name, self.h.tables[name].c._uuid == uuid)[0]["sfid"]}
        if in_org - recorded:
            return "created in the org, not yet recorded locally"
        if recorded == set(created):
            return "creates pushed and recorded"
        if recorded:
            return "some creates pushed and recorded"
        pulled = all(self.local(name, self.h.tables[name].c.sfid == sfid)[0][next(iter(v)).lower()]
                     == next(iter(v.values())) for (name, sfid), v in t.org_updates.items())
        return "pulled, nothing pushed" if pulled else "before the pushes"

    def recover(self) -> None:
        """The restart: a fresh engine on the same database runs two cycles. The first comes at once,
        as a supervisor restarts a process, without moving the org's clock: records the killed run
        saved in this very second are outside its read window, so only the upsert on Portal_Id__c
        stands between them and a second copy. The second cycle comes a second later."""
        h = self.h
        h.engine = SyncEngine(h.client, h.database.engine, h.engine.mapping, h.mirror)
        cosell_rules.install(h.engine)
        report = h.engine.run(synced_objects(h))
        assert report.status in ("succeeded", "parked"), report.error
        h.sync(*synced_objects(h))

    def check(self, t: Trial, how_far: str) -> None:
        h, org = self.h, self.h.org
        where = f"trial {t.n} (killed at {how_far})"
        for name in synced_objects(h):
            ids = Counter(r.get("Portal_Id__c") for r in org.records(f"SELECT Id, Portal_Id__c FROM {name}"))
            twice = {k: c for k, c in ids.items() if k and c > 1}
            assert not twice, f"{where}: {name} created more than once in Salesforce: {twice}"
        for uuid, values in t.new_opps.items():
            found = org.records(f"SELECT Id, Name, Amount FROM {OPP} WHERE Portal_Id__c = '{uuid}'")
            assert len(found) == 1, f"{where}: portal opportunity {values['Name']} is {len(found)} times in the org"
            assert found[0]["Name"] == values["Name"] and norm(found[0]["Amount"]) == norm(values["Amount"])
            assert self.local(OPP, self.opps.c._uuid == uuid)[0]["sfid"] == found[0]["Id"], where
        for uuid, (parent, values) in t.new_parts.items():
            found = org.records(f"SELECT Id, Opportunity__c, Notes__c FROM {PART} WHERE Portal_Id__c = '{uuid}'")
            assert len(found) == 1, f"{where}: portal participant {values['Notes__c']} is {len(found)} times in the org"
            parent_sfid = self.local(OPP, self.opps.c._uuid == parent)[0]["sfid"]
            assert found[0]["Opportunity__c"] == parent_sfid, f"{where}: participant not linked to its opportunity"
            assert found[0]["Notes__c"] == values["Notes__c"], where
        for (name, uuid), values in t.portal_updates.items():
            sfid = self.local(name, h.tables[name].c._uuid == uuid)[0]["sfid"]
            record = org.get(name, sfid)
            for f, v in values.items():
                assert norm(record.get(f)) == norm(v), f"{where}: the portal's {name}.{f} = {v!r} is not in the org"
        for (name, sfid), values in t.org_updates.items():
            row = self.local(name, h.tables[name].c.sfid == sfid)
            assert row, f"{where}: {name} {sfid} edited in Salesforce is missing in the portal"
            for f, v in values.items():
                assert norm(row[0][f.lower()]) == norm(v), f"{where}: the org's {name}.{f} = {v!r} is not in the portal"
        for sfid, values in t.org_created.items():
            row = self.local(OPP, self.opps.c.sfid == sfid)
            assert len(row) == 1 and row[0]["name"] == values["Name"], f"{where}: {values['Name']} not in the portal"
        for sfid in t.portal_deleted:
            assert org.get(OPP, sfid)["IsDeleted"], f"{where}: the portal's delete of {sfid} did not reach the org"
        for sfid in t.org_deleted:
            assert not self.local(OPP, self.opps.c.sfid == sfid), f"{where}: the org deleted {sfid}, the portal has it"
        assert_converged(h, {name: (set(), set()) for name in synced_objects(h)})
        # and nothing of it waits for an admin: no parked record, no error on a row
        letters = h.engine.state.dead_letters
        with h.database.engine.connect() as conn:
            parked = conn.execute(select(letters.c.object_name, letters.c.record_uuid, letters.c.operation,
                                         letters.c.error_code, letters.c.message)).all()
        assert not parked, f"{where}: records parked after the restart: {parked}"
        for name in synced_objects(h):
            errors = [r["_sync_error"] for r in h.rows(name, h.tables[name].c._sync_error.is_not(None))]
            assert not errors, f"{where}: {name} rows carry sync errors after the restart: {errors}"

    def grow(self, t: Trial) -> None:
        """The records this trial made join the pool the next ones work on."""
        for uuid in t.new_opps:
            self.pool.append(self.local(OPP, self.opps.c._uuid == uuid)[0]["sfid"])
        self.pool.extend(t.org_created)


def test_killed_at_any_instant_then_restarted_nothing_is_duplicated_or_lost(emulator, database, tmp_path):
    mapping_path = mapping_with_schema(database, tmp_path)
    fast_commits(database)                     # the test's own connections; the workers' are untouched
    h = Harness(emulator, database, mapping_path)
    crash = Crash(h, random.Random(20240611))
    h.sync()                                   # mirrored, first load done, in-process
    workers = Workers(worker_env(emulator, database, mapping_path), tmp_path, tmp_path / "worker.log")
    reached: Counter[str] = Counter()
    landed: Counter[str] = Counter()
    try:
        # the wiring works: a worker left alone finishes its cycle; how long one takes (with pending
        # work, on this machine) sets how late a kill may come, so kills spread over a whole cycle
        baseline = crash.prepare(TRIALS)
        emulator.latency = 0.01                # every API call takes a little: kills land mid-run
        started = time.monotonic()
        lines = workers.wait(workers.start(cycles=1))
        one_cycle = time.monotonic() - started
        assert '"status": "succeeded"' in lines[0], lines
        emulator.latency = 0.0
        crash.recover()
        crash.check(baseline, "never")
        crash.grow(baseline)
        cycle = max(MAX_KILL_DELAY, one_cycle)
        for n in range(TRIALS):
            trial = crash.prepare(n)
            emulator.latency = 0.01
            pid = workers.start()
            if n % 4 in (0, 2):
                # anywhere in the first cycle, or in its last part, where the pushes are
                time.sleep(cycle * crash.rng.uniform(*((0, 1.2) if n % 4 == 0 else (0.6, 1.1))))
            else:
                # the worst instant: the org has just saved this trial's new opportunities (or
                # participants) and the worker has not yet recorded that it did
                name, uuid = (OPP, next(iter(trial.new_opps))) if n % 4 == 1 else (PART, next(iter(trial.new_parts)))
                deadline = time.monotonic() + 3 * cycle
                while not crash.in_org(name, uuid) and time.monotonic() < deadline:
                    time.sleep(0.0005)
                time.sleep(crash.rng.uniform(0, 0.003))
            how_far = workers.kill(pid)
            reached[how_far] += 1
            landed[crash.landing(trial)] += 1
            emulator.latency = 0.0
            crash.recover()
            crash.check(trial, how_far)
            crash.grow(trial)
    finally:
        emulator.latency = 0.0
        workers.close()
    print(f"one cycle: {one_cycle:.2f}s; kills after: {dict(reached)}; landed: {dict(landed)}")
    mid_run = sum(c for k, c in reached.items() if k != "done")
    assert mid_run >= TRIALS // 2, f"too few kills landed while the worker was syncing: {dict(reached)}"
    assert landed["created in the org, not yet recorded locally"] >= 1, (
        f"no kill landed between a create in the org and its record in the portal: {dict(landed)}")


def test_a_refused_salesforce_move_is_undone_even_if_the_run_dies_before_the_write_back(emulator, database):
    """A Salesforce user makes a partner's move on a registration (Draft -> Submitted); the co-sell
    rules refuse it and put the org's record back to Draft. When the run dies between refusing it
    and writing Draft back to the org — killed, or the org unreachable for longer than the retries
    last — and another registration changed after it (so the read window has moved past it), a later
    run must still write the refusal back: both sides end on Draft, not Submitted in the org and
    Draft in the portal for good."""
    h = Harness(emulator, database)
    synced = synced_objects(h)
    reg = h.org.create("Deal_Registration__c", {"Status__c": "Draft"})
    other = h.org.create("Deal_Registration__c", {"Status__c": "Draft"})
    h.sync(*synced)
    h.org.update("Deal_Registration__c", reg, {"Status__c": "Submitted"})          # not the vendor's move
    h.tick()
    h.org.update("Deal_Registration__c", other, {"Registered_Amount__c": 5000})    # any later change
    h.org.faults.fail_next(10, path=r"/composite/sobjects$", method="PATCH")       # the write-back fails
    h.tick()
    assert h.engine.run(synced).status == "failed"
    h.org.faults.clear()
    h.sync(*synced)
    h.sync(*synced)
    table = h.tables["Deal_Registration__c"]
    portal = h.rows("Deal_Registration__c", table.c.sfid == reg)[0]["status__c"]
    assert portal == "Draft", "the refused move did not reach the portal"
    assert h.org.get("Deal_Registration__c", reg)["Status__c"] == "Draft", (
        "Salesforce keeps the refused status: the two sides disagree for good")


def test_a_create_retried_after_its_answer_was_lost_is_not_parked(emulator, database):
    """The portal adds a participant; the upsert reaches Salesforce, which saves it, but the answer is
    lost on the way back (a dropped connection — or the process killed at that instant), so the
    upsert is sent again. Salesforce now matches the record by Portal_Id__c and takes it as an
    update, where the create-only master-detail field Opportunity__c may not appear. The participant
    must end in Salesforce once, linked, and not parked for the admin."""
    h = Harness(emulator, database)
    synced = synced_objects(h)
    h.sync(*synced)
    part_t = h.tables[PART]
    opp = h.rows(OPP)[0]
    h.execute(insert(part_t).values(role__c="Reseller", attribution__c="Influenced", split_type__c="Influence",
                                    split_percent__c=Decimal("10"), notes__c="sent twice",
                                    _opportunity__c_uuid=opp["_uuid"]))
    original, lost = emulator.api.handle, []

    def answer_lost(req):
        response = original(req)
        if not lost and req.method == "PATCH" and req.path.startswith(f"/composite/sobjects/{PART}/"):
            lost.append(req.path)
            raise ConnectionResetError("the answer is lost on its way back")
        return response

    emulator.api.handle = answer_lost
    try:
        first = h.engine.run(synced)
    finally:
        emulator.api.handle = original
    assert lost, "the participant's upsert was sent"
    h.sync(*synced)
    # a long text area cannot be filtered in SOQL, as in an org: select, then compare
    sent = [r for r in h.org.records(f"SELECT Id, Notes__c FROM {PART}") if r.get("Notes__c") == "sent twice"]
    assert len(sent) == 1, "created once"
    row = h.rows(PART, part_t.c.notes__c == "sent twice")[0]
    assert row["sfid"] is not None, "linked to its Salesforce record"
    assert first.status == "succeeded" and row["_sync_error"] is None, (
        f"the retried create is parked: {first.status}, {row['_sync_error']}")
