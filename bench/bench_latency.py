"""Latency from a commit on one side to the value visible on the other, streaming beside polling,
measured in the same run against the same org.

    python bench/bench_latency.py [--rate 10] [--duration 60] [--latency 0] [--poll-interval 10]
                                  [--database-url URL] [--modes stream,poll]

The org is `cosell emulator serve` in its own process. The connector runs in this process: mirrored
and synced once, then for each mode the same steady load for --duration seconds, --rate edits a
second in each direction, on distinct opportunities for each direction:

- org → portal: a simple-salesforce update of Description (t0: the call returned, so Salesforce has
  committed it); visible when a SELECT on the local `opportunity` table, repeated every 10 ms by a
  watcher thread, first shows the value.
- portal → org: an SQL UPDATE of `description` (t0: after COMMIT); visible at the commitTimestamp of
  the org's change event for that value, read by a plain Pub/Sub subscriber (the emulator's clock is
  this machine's, so both times are on one clock).

Streaming is `StreamingService` as `cosell serve` runs it; polling is a sync run of every mapped
object started every --poll-interval seconds (10 s is the shortest interval a mapping accepts).
Printed per mode and direction: p50 / p95 / p99 / max in milliseconds (nearest rank) and how many
edits never became visible before the run ended (after a grace period of two poll intervals), and
the connector's REST calls under load and during --idle seconds without edits (the org's own /limits
count, less this script's own calls)."""

from __future__ import annotations

import argparse
import io
import json
import math
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import fastavro  # noqa: E402
import grpc  # noqa: E402
import yaml  # noqa: E402
from simple_salesforce import Salesforce  # noqa: E402
from sqlalchemy import select, text, update  # noqa: E402

from connector.pubsub import pubsub_api_pb2 as pb  # noqa: E402
from connector.pubsub import pubsub_api_pb2_grpc as pb_grpc  # noqa: E402
from connector.salesforce.http import SalesforceSession  # noqa: E402

COSELL = [sys.executable, "-c", "import sys; from connector.cli import main; sys.argv[0] = 'cosell'; main()"]


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class OrgWatcher:
    """A raw Pub/Sub subscriber: the org's commit time of each Opportunity Description value."""

    def __init__(self, info: dict) -> None:
        creds = grpc.ssl_channel_credentials(Path(info["ca_cert"]).read_bytes())
        self.channel = grpc.secure_channel(info["pubsub_url"], creds)
        self.stub = pb_grpc.PubSubStub(self.channel)
        self.metadata = (("accesstoken", info["access_token"]), ("instanceurl", info["instance_url"]),
                         ("tenantid", info["organization_id"]))
        self.seen: dict[str, float] = {}
        self.asked: queue.Queue = queue.Queue()
        self.schemas: dict[str, object] = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _requests(self):
        yield pb.FetchRequest(topic_name="/data/OpportunityChangeEvent", num_requested=100)
        while True:
            item = self.asked.get()
            if item is None:
                return
            yield item

    def _run(self) -> None:
        try:
            for response in self.stub.Subscribe(self._requests(), metadata=self.metadata):
                for e in response.events:
                    sid = e.event.schema_id
                    if sid not in self.schemas:
                        info = self.stub.GetSchema(pb.SchemaRequest(schema_id=sid), metadata=self.metadata)
                        self.schemas[sid] = fastavro.parse_schema(json.loads(info.schema_json))
                    body = fastavro.schemaless_reader(io.BytesIO(e.event.payload), self.schemas[sid])
                    value = body.get("Description")
                    if value and value not in self.seen:
                        self.seen[value] = body["ChangeEventHeader"]["commitTimestamp"] / 1000
                if response.events:
                    self.asked.put(pb.FetchRequest(num_requested=len(response.events)))
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self.asked.put(None)
        self.channel.close()


class PortalWatcher:
    """The first time each description value shows in the local `opportunity` table."""

    def __init__(self, engine, table, prefix: str) -> None:
        self.engine, self.table, self.prefix = engine, table, prefix
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        query = select(self.table.c.description).where(self.table.c.description.like(self.prefix + "%"))
        while not self.stop.wait(0.01):
            with self.engine.connect() as conn:
                now = time.time()
                for (value,) in conn.execute(query):
                    self.seen.setdefault(value, now)


def run_mode(mode: str, connector, info: dict, args, org_ids: list[str], portal_ids: list[str]) -> dict:
    from connector.scheduler import SyncRunner
    from connector.sync.streaming import StreamingService

    sync, engine = connector.sync, connector.engine
    table = sync.tables(sync.prepare())["Opportunity"]
    tag = f"{mode}-{uuid.uuid4().hex[:6]}"
    runner = SyncRunner(connector)
    stop = threading.Event()
    service = None
    if mode == "stream":
        service = StreamingService(connector, runner).start()
        deadline = time.monotonic() + 30
        while service.caught_up != set(service.streams) and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        def poll() -> None:
            while not stop.is_set():
                started = time.monotonic()
                runner.run(None, trigger="bench-poll")
                stop.wait(max(0.0, args.poll_interval - (time.monotonic() - started)))
        threading.Thread(target=poll, daemon=True).start()
    session = SalesforceSession(ca_cert=info["ca_cert"])
    sf = Salesforce(session_id=info["access_token"], instance_url=info["instance_url"], session=session,
                    version=info["api_version"])
    before = _used(sf)
    org_seen, portal_seen = OrgWatcher(info), PortalWatcher(engine, table, f"lat-o-{tag}")
    sent_org: dict[str, float] = {}
    sent_portal: dict[str, float] = {}
    total = int(args.rate * args.duration)
    start = time.monotonic()
    for i in range(total):
        value = f"lat-o-{tag}-{i}"
        sf.Opportunity.update(org_ids[i % len(org_ids)], {"Description": value})
        sent_org[value] = time.time()
        value = f"lat-p-{tag}-{i}"
        with engine.begin() as conn:
            conn.execute(update(table).where(table.c.sfid == portal_ids[i % len(portal_ids)])
                         .values(description=value))
        sent_portal[value] = time.time()
        time.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
    grace = time.monotonic() + (2 * args.poll_interval if mode == "poll" else 5.0)
    while time.monotonic() < grace:
        if set(sent_org) <= set(portal_seen.seen) and set(sent_portal) <= set(org_seen.seen):
            break
        time.sleep(0.1)
    calls = _used(sf) - before - 1 - total      # less this script's own updates and /limits read
    idle_from = _used(sf)
    time.sleep(args.idle)
    idle_calls = _used(sf) - idle_from - 1
    stop.set()
    portal_seen.stop.set()
    org_seen.close()
    if service is not None:
        service.stop()
    runner.join()
    out = {"api_calls": calls, "idle_calls": idle_calls}
    for direction, sent, seen in (("org -> portal", sent_org, portal_seen.seen),
                                  ("portal -> org", sent_portal, org_seen.seen)):
        lat = [(seen[v] - t) * 1000 for v, t in sent.items() if v in seen]
        out[direction] = {"n": len(sent), "missing": len(sent) - len(lat),
                          **({p: nearest_rank(lat, q) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}
                             | {"max": max(lat)} if lat else {})}
    return out


def _used(sf: Salesforce) -> int:
    limits = sf.limits()["DailyApiRequests"]
    return limits["Max"] - limits["Remaining"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="edits a second in each direction")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the emulator adds to each call")
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--modes", default="stream,poll")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of no edits after the load, whose "
                                                                     "REST calls are counted")
    args = parser.parse_args()

    import os

    from connector.bootstrap import build
    from connector.config import Settings

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    org = subprocess.Popen([*COSELL, "emulator", "serve", "--records", str(args.records), "--seed", "5",
                            "--latency", str(args.latency), "--daily-limit", "10000000"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    info = json.loads(org.stdout.readline())
    schema = None
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        mapping_path = ROOT / "connector/mappings/cosell.yaml"
        if args.database_url:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            mapping = yaml.safe_load(mapping_path.read_text())
            mapping["database"]["schema"] = schema
            mapping_path = Path(folder) / "mapping.yaml"
            mapping_path.write_text(yaml.safe_dump(mapping))
        settings = Settings(login_url=info["login_url"], auth="jwt", username=info["username"],
                            consumer_key=info["consumer_key"], private_key=info["private_key"],
                            ca_cert=info["ca_cert"], pubsub_url=info["pubsub_url"], mapping=mapping_path,
                            config=f"{folder}/none.yaml",
                            database_url=args.database_url or f"sqlite:///{folder}/portal.db")
        connector = build(settings)
        try:
            if schema:
                with connector.engine.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            connector.mirror.apply(connector.mirror.plan())
            connector.sync.run()
            table = connector.sync.tables(connector.sync.prepare())["Opportunity"]
            with connector.engine.connect() as conn:
                ids = [r for (r,) in conn.execute(select(table.c.sfid).where(table.c.sfid.isnot(None))
                                                  .order_by(table.c.sfid))]
            half = len(ids) // 2
            for mode in args.modes.split(","):
                results[mode] = run_mode(mode, connector, info, args, ids[:half], ids[half:])
        finally:
            org.terminate()
            org.wait(timeout=30)
            if schema:
                with connector.engine.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connector.engine.dispose()
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"commit -> visible on the other side; {database}; emulator latency {args.latency * 1000:.0f} ms; "
          f"{args.rate:g} edits/s each way for {args.duration:g} s; polling every {args.poll_interval:g} s")
    print(f"{'mode':<8}{'direction':<16}{'n':>6}{'missing':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for mode, out in results.items():
        for direction in ("org -> portal", "portal -> org"):
            d = out[direction]
            figures = "".join(f"{d[k]:>9.0f}" if k in d else f"{'-':>9}" for k in ("p50", "p95", "p99", "max"))
            print(f"{mode:<8}{direction:<16}{d['n']:>6}{d['missing']:>9}{figures}")
    print("the connector's REST calls (the org's /limits count, less this script's own calls):")
    for mode, out in results.items():
        print(f"  {mode:<8}under load: {out['api_calls']}; idle for {args.idle:g} s after it: {out['idle_calls']}")


if __name__ == "__main__":
    main()
