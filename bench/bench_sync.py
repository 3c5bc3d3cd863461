"""The sync engine against the org emulator: initial load, one incremental cycle, a naive
per-record simple-salesforce baseline, and the connector's peak memory at several sizes.

    python bench/bench_sync.py [--records 100000] [--sizes 10000,100000] [--database-url URL]
    python bench/bench_sync.py --million        # a 1,000,000-opportunity load (long; prints progress)

The emulator runs as its own process (`cosell emulator serve`), as an org would, and so does
each connector run (this script started again in a worker mode), so the peak RSS printed is
the connector's alone. API calls are read from the org's /limits (DailyApiRequests Max -
Remaining), the org's own count, not the client's. Every figure is measured in this run:

1. Initial load: `SyncEngine.run()` on freshly mirrored, empty tables, for each size in
   --sizes (N opportunities with their accounts, participants, registrations and the
   read-only reference objects of the shipped mapping): records/s, API calls, wall time,
   peak RSS of the connector process.
2. Incremental: 1% of the opportunities changed in the org (sObject Collections PATCH) and
   another 1% changed locally (SQL UPDATE on `opportunity`), then one timed cycle.
3. Baseline: on a subset (--baseline-records), one query for the Ids then
   `sf.Opportunity.get(id)` and one INSERT per record; for the incremental part one query for
   the changed Ids, `get` and one UPDATE per org-changed record and `sf.Opportunity.update`
   per locally changed record. Per-record rates are extrapolated to the connector's record
   counts (labelled as such) and compared with the connector.
4. Memory flatness: the connector's peak RSS at each size.

SQLite (a temporary file) is the default database; --database-url takes a PostgreSQL URL
(each size gets a fresh schema, dropped afterwards)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:                      # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from simple_salesforce import Salesforce  # noqa: E402
from sqlalchemy import Column, MetaData, Table, Text, bindparam, text  # noqa: E402

from connector.salesforce.http import SalesforceSession  # noqa: E402

COSELL = ("Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c")
REMOTE_MARK = "bench: changed in the org"
LOCAL_MARK = "bench: changed in the portal"
PROGRESS_EVERY = 15.0   # seconds between progress lines of a long load


def _usage(sf: Salesforce) -> int:
    """The org's own count of API requests, this /limits call included (callers subtract it).

    Read from /limits rather than sf.api_usage: simple-salesforce's Bulk handler does not update it."""
    limits = sf.limits()["DailyApiRequests"]
    return limits["Max"] - limits["Remaining"]


def _mib(kib: int) -> float:
    return kib / 1024


def _rss_now_mib() -> float:
    """The process's current resident set (Linux /proc), or its peak where /proc is absent."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _say(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- the connector side: this script in a worker mode, one process per run -----------------------
def _connector(job: dict[str, Any]):
    from connector.bootstrap import build
    from connector.config import Settings

    info = job["info"]
    settings = Settings(login_url=info["login_url"], auth="jwt", username=info["username"],
                        consumer_key=info["consumer_key"], private_key=info["private_key"],
                        ca_cert=info["ca_cert"], database_url=job["database_url"], mapping=None,
                        api_version=info["api_version"], config="/nonexistent/cosell.config.yaml")
    connector = build(settings)
    if job.get("schema"):
        mapping = connector.mapping
        connector.mapping = mapping.model_copy(update={"database": mapping.database.model_copy(
            update={"schema_name": job["schema"]})})
    return connector


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """mode "load": mirror the schema, then the timed initial load; mode "cycle": one timed run."""
    connector = _connector(job)
    sf = connector.client.sf                       # log in before the clock starts
    out: dict[str, Any] = {}
    if job["mode"] == "load":
        before, t0 = _usage(sf), time.perf_counter()
        connector.mirror.apply(connector.mirror.plan())
        out["mirror_seconds"], out["mirror_calls"] = time.perf_counter() - t0, _usage(sf) - before - 1
    label = f"{job['mode']} {job['size']:,}"
    state = {"last": time.perf_counter(), "start": time.perf_counter(), "done": 0, "objects": {}}

    def progress(name: str, _what: str, count: int) -> None:
        state["objects"][name] = count
        now = time.perf_counter()
        if now - state["last"] >= PROGRESS_EVERY:
            state["last"] = now
            total = sum(state["objects"].values())
            elapsed = now - state["start"]
            _say(f"[{label}] {name}: {count:,} pulled; {total:,} records in {elapsed:,.0f} s "
                 f"({total / elapsed:,.0f}/s), RSS now {_rss_now_mib():,.0f} MiB")

    connector.sync.progress = progress
    out["rss_before_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = _usage(sf)
    t0 = time.perf_counter()
    state["start"] = t0
    report = connector.sync.run()
    out["seconds"] = time.perf_counter() - t0
    out["calls"] = _usage(sf) - before - 1
    out["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.update(status=report.status, error=report.error, engine_calls=report.api_calls,
               objects={name: vars(c) for name, c in report.objects.items()})
    return out


def run_worker(job: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                          stdout=subprocess.PIPE, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"connector worker ({job['mode']} {job['size']:,}) failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["status"] not in ("succeeded", "parked"):
        raise SystemExit(f"sync run {result['status']}: {result['error']}")
    return result


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


# -- the org and the database -------------------------------------------------------------------
class Org:
    """`cosell emulator serve` in its own process."""

    def __init__(self, size: int, seed: int, latency: float) -> None:
        started = time.perf_counter()
        _say(f"generating an org of {size:,} opportunities ...")
        self.proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "emulator", "serve", "--records",
                                      str(size), "--seed", str(seed), "--daily-limit", "100000000",
                                      "--latency", str(latency)],
                                     stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the emulator exited with code {self.proc.wait()}")
        self.info = json.loads(line)
        self.sf = Salesforce(session_id=self.info["access_token"], instance_url=self.info["instance_url"],
                             session=SalesforceSession(ca_cert=self.info["ca_cert"]),
                             version=self.info["api_version"])
        _say(f"emulator ready with {size:,} opportunities in {time.perf_counter() - started:,.0f} s")

    def round_trip(self, calls: int = 21) -> float:
        """Median seconds of one small API call (/limits): the per-call cost a per-record loop pays."""
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            self.sf.limits()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


class Database:
    """A fresh database per size: a temporary SQLite file, or a new schema in the given PostgreSQL."""

    def __init__(self, url: str | None, folder: str, size: int) -> None:
        from connector.bootstrap import make_engine

        self.schema = None
        if url:
            self.url = url
            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            self.engine = make_engine(url)
            with self.engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        else:
            self.url = f"sqlite:///{folder}/cosell-{size}.db"
            self.engine = make_engine(self.url)

    def qualified(self, table: str) -> str:
        return f'"{self.schema}"."{table}"' if self.schema else f'"{table}"'

    def close(self) -> None:
        if self.schema:
            with self.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.engine.dispose()


# -- the figures --------------------------------------------------------------------------------
def initial_load(org: Org, db: Database, size: int) -> dict[str, Any]:
    result = run_worker({"mode": "load", "size": size, "info": org.info, "database_url": db.url,
                         "schema": db.schema})
    objects = result["objects"]
    result["records"] = sum(c["pulled"] for c in objects.values())
    result["cosell"] = {n: objects.get(n, {}).get("pulled", 0) for n in COSELL}
    return result


def load_line(size: int, r: dict[str, Any]) -> str:
    c = r["cosell"]
    others = r["records"] - sum(c.values())
    calls = f"{r['calls']:,} API calls" + (f" (engine counted {r['engine_calls']:,})"
                                           if r["engine_calls"] != r["calls"] else "")
    return (f"initial load, {size:,} opportunities: {r['records']:,} records "
            f"({c['Opportunity']:,} opportunities, {c['Co_Sell_Participant__c']:,} participants, "
            f"{c['Deal_Registration__c']:,} registrations, {others:,} accounts and reference records) in "
            f"{r['seconds']:,.1f} s = {r['records'] / r['seconds']:,.0f} records/s, {calls}, "
            f"connector peak RSS {_mib(r['peak_rss_kib']):,.0f} MiB "
            f"({_mib(r['rss_before_kib']):,.0f} MiB before the load; schema mirror beforehand: "
            f"{r['mirror_calls']} calls, {r['mirror_seconds']:.1f} s)")


def _opportunity_rows(db: Database) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            f"SELECT _uuid, sfid FROM {db.qualified('opportunity')} WHERE sfid IS NOT NULL ORDER BY sfid"))]


def incremental(org: Org, db: Database, size: int) -> dict[str, Any]:
    """1% changed in the org, another 1% changed locally, then one timed cycle."""
    rows = _opportunity_rows(db)
    share = max(1, len(rows) // 100)
    step = max(1, len(rows) // share)
    remote = [sfid for _, sfid in rows[0::step][:share]]
    local = [(u, sfid) for u, sfid in rows[step // 2::step][:share]]
    for start in range(0, len(remote), 200):
        body = {"allOrNone": False, "records": [
            {"attributes": {"type": "Opportunity"}, "Id": sfid, "NextStep": REMOTE_MARK}
            for sfid in remote[start:start + 200]]}
        failed = [r for r in org.sf.restful("composite/sobjects", method="PATCH", json=body) if not r["success"]]
        if failed:
            raise SystemExit(f"changing opportunities in the org failed: {failed[:3]}")
    with db.engine.begin() as conn:
        conn.execute(text(f"UPDATE {db.qualified('opportunity')} SET nextstep = :v WHERE _uuid = :u"),
                     [{"v": LOCAL_MARK, "u": u} for u, _ in local])
    # The pull's window is open at the org's current second: let the org's clock pass the changes.
    time.sleep(1.2)
    _say(f"{len(remote):,} opportunities changed in the org and {len(local):,} locally; one sync cycle ...")
    result = run_worker({"mode": "cycle", "size": size, "info": org.info, "database_url": db.url,
                         "schema": db.schema})
    opp = result["objects"]["Opportunity"]
    result["remote_changed"], result["local_changed"] = len(remote), len(local)
    result["records"] = sum(c["pulled"] + c["created_remote"] + c["updated_remote"] + c["deleted_remote"]
                            for c in result["objects"].values())
    # Check both sides after the clock stopped (these calls are not counted).
    with db.engine.connect() as conn:
        arrived_here = conn.execute(text(f"SELECT COUNT(*) FROM {db.qualified('opportunity')} "
                                         f"WHERE nextstep = :v"), {"v": REMOTE_MARK}).scalar()
    arrived_there = org.sf.query(f"SELECT COUNT() FROM Opportunity WHERE NextStep = '{LOCAL_MARK}'")["totalSize"]
    result["problems"] = []
    if arrived_here != len(remote) or opp["updated_local"] != len(remote):
        result["problems"].append(f"{arrived_here:,} of {len(remote):,} org changes arrived locally "
                                  f"(engine: updated_local {opp['updated_local']:,})")
    if arrived_there != len(local) or opp["updated_remote"] != len(local):
        result["problems"].append(f"{arrived_there:,} of {len(local):,} local changes reached the org "
                                  f"(engine: updated_remote {opp['updated_remote']:,})")
    if opp["conflicts"] or opp["parked"]:
        result["problems"].append(f"{opp['conflicts']} conflicts, {opp['parked']} parked")
    result["remote_ids"], result["local_ids"] = remote, [sfid for _, sfid in local]
    return result


def _baseline_table(db: Database, columns: list[str]) -> Table:
    md = MetaData(schema=db.schema)
    table = Table("baseline_opportunity", md, Column("id", Text, primary_key=True),
                  *(Column(c.lower(), Text) for c in columns if c != "Id"))
    md.create_all(db.engine)
    return table


def _row(record: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): (v if v is None or isinstance(v, str) else json.dumps(v))
            for k, v in record.items() if k != "attributes"}


def baseline(org: Org, db: Database, subset: int, inc: dict[str, Any]) -> dict[str, Any]:
    """The naive loop: one query for the Ids, then one GET and one INSERT per record; for the
    incremental part one query for the changed Ids, one GET and one UPDATE per org-changed
    record, one PATCH per locally changed record."""
    sf = Salesforce(session_id=org.info["access_token"], instance_url=org.info["instance_url"],
                    session=SalesforceSession(ca_cert=org.info["ca_cert"]), version=org.info["api_version"])
    out: dict[str, Any] = {}

    before, t0 = _usage(sf), time.perf_counter()
    ids = [r["Id"] for r in sf.query_all_iter(f"SELECT Id FROM Opportunity ORDER BY Id LIMIT {subset}")]
    table = None
    with db.engine.begin() as conn:
        for sfid in ids:
            record = sf.Opportunity.get(sfid)
            if table is None:
                table = _baseline_table(db, [k for k in record if k != "attributes"])
                statement = table.insert()
            conn.execute(statement, _row(record))
    out["load_seconds"], out["load_calls"], out["load_records"] = (time.perf_counter() - t0,
                                                                  _usage(sf) - before - 1, len(ids))

    remote = set(inc["remote_ids"][:subset])
    local = inc["local_ids"][:subset]
    before, t0 = _usage(sf), time.perf_counter()
    changed = [r["Id"] for r in sf.query_all_iter(f"SELECT Id FROM Opportunity WHERE NextStep = '{REMOTE_MARK}'")]
    changed = [i for i in changed if i in remote]
    update = table.update().where(table.c.id == bindparam("b_id")).values(nextstep=bindparam("b_next"))
    with db.engine.begin() as conn:
        for sfid in changed:
            record = sf.Opportunity.get(sfid)
            conn.execute(update, {"b_id": sfid, "b_next": record["NextStep"]})
        for sfid in local:
            sf.Opportunity.update(sfid, {"NextStep": LOCAL_MARK})
    out["inc_seconds"], out["inc_calls"] = time.perf_counter() - t0, _usage(sf) - before - 1
    out["inc_records"] = len(changed) + len(local)
    with db.engine.begin() as conn:
        table.drop(conn)
    return out


# -- the run ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="N, opportunities of the main run")
    parser.add_argument("--sizes", help="comma-separated sizes of the initial loads (default N/10,N); "
                                        "the incremental cycle and the baseline run at the largest")
    parser.add_argument("--million", action="store_true", help="N = 1,000,000 (sizes 100,000 and 1,000,000)")
    parser.add_argument("--baseline-records", type=int, default=2_000, help="subset the naive loop runs on")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the emulator adds to every call")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    n = 1_000_000 if args.million else args.records
    sizes = sorted({int(s) for s in args.sizes.split(",")}) if args.sizes else sorted({max(1, n // 10), n})
    main_size = sizes[-1]
    started = time.perf_counter()
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"sync benchmark: sizes {', '.join(f'{s:,}' for s in sizes)} opportunities, {database}, "
          f"emulator latency {args.latency * 1000:.0f} ms per call", flush=True)
    loads: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cosell-bench-") as folder:
        for size in sizes:
            org = Org(size, args.seed, args.latency)
            db = Database(args.database_url, folder, size)
            try:
                loads[size] = initial_load(org, db, size)
                print(load_line(size, loads[size]), flush=True)
                if size != main_size:
                    continue
                round_trip = org.round_trip()
                inc = incremental(org, db, size)
                _say(f"naive per-record baseline on {min(args.baseline_records, size):,} records ...")
                base = baseline(org, db, min(args.baseline_records, size), inc)
            finally:
                db.close()
                org.stop()

    load = loads[main_size]
    print(f"org round trip, {main_size:,} opportunities: {round_trip * 1000:,.1f} ms per API call "
          f"(median of 21 /limits calls; a per-record loop pays it once per record)")
    print(f"incremental cycle, {main_size:,} opportunities ({inc['remote_changed']:,} changed in the org, "
          f"{inc['local_changed']:,} locally): {inc['records']:,} records moved in {inc['seconds']:,.2f} s = "
          f"{inc['records'] / inc['seconds']:,.0f} records/s, {inc['calls']:,} API calls"
          + (f" (engine counted {inc['engine_calls']:,})" if inc["engine_calls"] != inc["calls"] else ""))
    for problem in inc["problems"]:
        print(f"WARNING incremental cycle: {problem}")

    # Baseline: per-record rates measured on the subset, extrapolated to the connector's counts.
    per_rec_s = base["load_seconds"] / base["load_records"]
    per_rec_calls = base["load_calls"] / base["load_records"]
    records = load["records"]
    ext_s, ext_calls = per_rec_s * records, per_rec_calls * records
    print(f"baseline initial load (get + INSERT per record), measured on {base['load_records']:,} records: "
          f"{base['load_records'] / base['load_seconds']:,.0f} records/s, {per_rec_calls:.4f} API calls/record "
          f"({base['load_calls']:,} calls); EXTRAPOLATED to the connector's {records:,} records: "
          f"{ext_calls:,.0f} calls, {ext_s:,.0f} s")
    inc_per_s = base["inc_seconds"] / base["inc_records"]
    inc_per_calls = base["inc_calls"] / base["inc_records"]
    inc_records = inc["remote_changed"] + inc["local_changed"]
    extrapolated = base["inc_records"] != inc_records
    inc_s, inc_calls = inc_per_s * inc_records, inc_per_calls * inc_records
    print(f"baseline incremental (get + UPDATE per org change, update() per local change), measured on "
          f"{base['inc_records']:,} records: {base['inc_records'] / base['inc_seconds']:,.0f} records/s, "
          f"{inc_per_calls:.4f} API calls/record ({base['inc_calls']:,} calls)"
          + (f"; EXTRAPOLATED to {inc_records:,} changes: {inc_calls:,.0f} calls, {inc_s:,.1f} s"
             if extrapolated else ""))
    print(f"connector/baseline, initial load of {main_size:,} (baseline extrapolated): "
          f"calls {load['calls'] / ext_calls:.5f} ({ext_calls / load['calls']:,.0f}x fewer), "
          f"time {load['seconds'] / ext_s:.2f} ({_times(ext_s, load['seconds'])})")
    print(f"connector/baseline, incremental cycle{' (baseline extrapolated)' if extrapolated else ''}: "
          f"calls {inc['calls'] / inc_calls:.4f} ({inc_calls / inc['calls']:,.0f}x fewer), "
          f"time {inc['seconds'] / inc_s:.2f} ({_times(inc_s, inc['seconds'])})")

    peaks = [(s, _mib(loads[s]["peak_rss_kib"])) for s in sizes]
    line = ", ".join(f"{p:,.0f} MiB at {s:,}" for s, p in peaks)
    if len(peaks) > 1:
        (s0, p0), (s1, p1) = peaks[0], peaks[-1]
        per_k = (p1 - p0) / ((s1 - s0) / 1000)
        flat = p1 - p0 <= max(16.0, 0.10 * p0)
        verdict = ("flat: it does not grow with N" if flat else
                   f"NOT FLAT: it grows with N, {per_k:,.2f} MiB per 1,000 more opportunities "
                   f"({p1 / p0:.1f}x from {s0:,} to {s1:,})")
        print(f"connector peak RSS of the initial load: {line} -- {verdict}")
    else:
        print(f"connector peak RSS of the initial load: {line} (one size: give --sizes to compare)")
    print(f"benchmark wall time: {time.perf_counter() - started:,.0f} s")
    return 0


def _times(baseline_s: float, connector_s: float) -> str:
    if connector_s <= baseline_s:
        return f"{baseline_s / connector_s:,.1f}x faster"
    return f"{connector_s / baseline_s:,.1f}x SLOWER than the naive loop"


if __name__ == "__main__":
    raise SystemExit(main())
