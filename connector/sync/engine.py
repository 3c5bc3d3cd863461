"""The sync engine: the orchestrator of a cycle, one object after another, parents first.

A run pulls every object (connector.sync.pull: each page read from a change source,
merged by connector.sync.apply into a plan, written with its watermark in one
transaction), then pushes each synced object's local changes (connector.sync.push: the
base advances to exactly what was sent and confirmed). The ledger (conflicts, parked
records, retries) and the state (watermarks, runs, locks) live in their own modules;
`apply_change_batch` lets a streaming source apply its batches the same way.

The engine itself never merges, never builds a payload and never reads a page: it
sequences the modules that do, and ends the run row whatever happens."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from sqlalchemy import MetaData, Table, update
from sqlalchemy.engine import Connection, Engine

from connector.errors import AuthenticationFailed, ConfigurationError, ConnectorError, QuotaExhausted
from connector.mapping import Mapping
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.model import ObjectSchema
from connector.schema_mirror.tables import object_table
from connector.sync import capture
from connector.sync.apply import RemoteGuard
from connector.sync.ledger import RETRY_ATTEMPTS, Ledger, encode  # noqa: F401 - RETRY_ATTEMPTS, encode: re-exported
from connector.sync.pull import Puller
from connector.sync.push import PushDecision, Pusher, PushGuard  # noqa: F401 - PushDecision: re-exported
from connector.sync.report import ObjectCounts, RunReport
from connector.sync.policies import get_policy
from connector.sync.sources import RemoteBatch
from connector.sync.state import SyncTables, add_missing_columns, end_dead_runs, new_owner, sync_tables
from connector.sync.values import (SYSTEM_FIELDS, UTC, NotSendable, decode_base, encode_base,  # noqa: F401
                                   fields_by_name, wire)

log = logging.getLogger("connector.sync")





class SyncEngine:
    """Keeps the mapped objects equal on both sides; build it through `connector.bootstrap`."""

    def __init__(self, client: SalesforceClient, engine: Engine, mapping: Mapping, mirror: SchemaMirror, *,
                 read_lag: dt.timedelta = dt.timedelta(0), bulk_threshold: int = 10_000,
                 progress: Callable[[str, str, int], None] | None = None) -> None:
        self.client, self.engine, self.mapping, self.mirror = client, engine, mapping, mirror
        self.schema, self.prefix = mirror.schema, mirror.prefix
        self.read_lag = read_lag
        self.bulk_threshold = bulk_threshold
        self.progress = progress
        self.meta = MetaData(schema=self.schema)
        self.state: SyncTables = sync_tables(self.meta, self.prefix)
        self.ledger = Ledger(self.state)
        self.capture_fingerprints = capture.capture_table(self.meta, self.prefix)
        self._table_cache: tuple[dict[str, ObjectSchema], dict[str, Table]] | None = None
        # Domain rules consulted before a record is sent (co-sell: split totals, edit locks).
        self.guards: dict[str, list[PushGuard]] = {}
        # Rules on what arrives from Salesforce: fields whose new value is refused (with a reason);
        # the org's record is put back to the base value both sides last agreed on.
        self.remote_guards: dict[str, list[RemoteGuard]] = {}
        self._held: set[str] = set()
        # Observation points of a cycle (`HOOK_POINTS`), called with the point's name and what it is
        # about; the interleaving tests write to either side there. A hook must not raise.
        # pulled: a page read from Salesforce, not applied yet; applying: its transaction is about to
        # commit; answered: Salesforce answered a push; recording: the base is about to commit.
        self.hook: Callable[[str, dict[str, Any]], None] | None = None

    # -- plug-ins ---------------------------------------------------------------------------
    def install(self, rules: Any) -> None:
        """Plug in domain rules (a `connector.sync.rules.SyncRules`): they add their guards here."""
        rules.install(self)

    def add_push_guard(self, object_name: str, guard: PushGuard) -> None:
        """Consult `guard` before each record of `object_name` is sent to Salesforce."""
        self.guards.setdefault(object_name, []).append(guard)

    def add_remote_guard(self, object_name: str, guard: RemoteGuard) -> None:
        """Consult `guard` on each record of `object_name` arriving from Salesforce."""
        self.remote_guards.setdefault(object_name, []).append(guard)

    def _hook(self, point: str, **context: Any) -> None:
        if self.hook is not None:
            self.hook(point, context)

    # -- set-up -----------------------------------------------------------------------------
    def prepare(self) -> dict[str, ObjectSchema]:
        """Check the sync tables and change capture, creating them where missing and reinstalling
        capture where its definition changed; on an up-to-date database this only reads (no DDL, so no
        exclusive lock waits for a portal transaction). The mirrored schemas are read once per process
        and again only when the mirror changed."""
        schemas = self.mirror.schemas()
        if not schemas:
            raise ConnectorError("nothing is mirrored yet: run `cosell mirror` before `cosell sync`")
        for name, om in self.mapping.objects.items():
            for policy in {om.conflict_policy, *om.field_policies.values()}:
                try:
                    get_policy(policy)
                except KeyError as exc:
                    # A name a plug-in registered without an implementation would fail only at the
                    # first conflict; fail at start instead.
                    raise ConfigurationError(f"mapping object {name}: {exc.args[0]}") from None
        with self.engine.begin() as conn:
            self.meta.create_all(conn, tables=[*self.state.all(), self.capture_fingerprints], checkfirst=True)
            capture.ensure(conn, list(schemas.values()), self.state.changes.name, self.capture_fingerprints,
                           schema=self.schema)
        return schemas

    def tables(self, schemas: dict[str, ObjectSchema] | None = None) -> dict[str, Table]:
        """The mirrored tables of `schemas` (default: every mirrored object), as SQLAlchemy tables.
        Built again only when the schemas are new objects (the mirror changed): a one-object run of
        `cosell serve` must not rebuild every mapped table."""
        if schemas is None:
            schemas = self.mirror.schemas()
        cached = self._table_cache
        if cached and cached[0].keys() == schemas.keys() and all(cached[0][n] is o for n, o in schemas.items()):
            return dict(cached[1])
        md = MetaData(schema=self.schema)
        tables = {name: object_table(obj, md, self.engine.dialect) for name, obj in schemas.items()}
        self._table_cache = (dict(schemas), tables)
        return dict(tables)

    def order(self, schemas: dict[str, ObjectSchema]) -> list[str]:
        """Objects with parents first, so a child can be linked to a parent created in the same run."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in visiting:
                return
            visiting.add(name)
            for f in schemas[name].references:
                for parent in f.reference_to:
                    if parent in schemas and parent != name:
                        visit(parent)
            visiting.discard(name)
            done.append(name)

        for name in schemas:
            visit(name)
        return done

    # -- a run ------------------------------------------------------------------------------
    def run(self, objects: Iterable[str] | None = None, *, full: bool = False, trigger: str = "manual",
            owner: str | None = None) -> RunReport:
        """One cycle. `owner`: the lock holder this run runs for, who keeps its heartbeat (the
        runner); without one the run is judged alive by its process only. Whatever happens, the
        run row ends: an unexpected error leaves it `failed` with the error, then is raised."""
        schemas = self.prepare()
        wanted = {o.lower() for o in objects} if objects is not None else None
        unknown = sorted(o for o in (objects or []) if o.lower() not in {n.lower() for n in schemas})
        if unknown:
            raise ConnectorError(f"not mirrored: {', '.join(unknown)}; mirrored objects: {', '.join(schemas)}")
        tables = self.tables(schemas)
        started = dt.datetime.now(UTC)
        calls_before = self.client.calls
        with self.engine.begin() as conn:
            add_missing_columns(conn, self.state.runs)
            run_id = conn.execute(self.state.runs.insert().values(
                started_at=started, status="running", trigger=trigger, owner=owner or new_owner(),
                heartbeat_at=started if owner else None)).inserted_primary_key[0]
        with self.engine.begin() as conn:
            for dead in end_dead_runs(conn, self.state.runs, run_id, now=started):
                log.warning("run %s was left running by a process that stopped; run %s ended it", dead, run_id)
        report = RunReport(run_id, "running", started)
        unexpected: BaseException | None = None
        self.client.forget_usage()
        order = [n for n in self.order(schemas) if wanted is None or n.lower() in wanted]
        ends: dict[str, dt.datetime] = {}
        try:
            with self.engine.connect() as conn:
                puller = Puller(self, self.ledger.objects_parked_on_the_way_in(conn))
            first_pages = puller.poll(schemas, order, full)
            for name in order:
                prefetched = first_pages.get(name)
                if isinstance(prefetched, Exception):
                    report.objects[name] = ObjectCounts(error=str(prefetched))
                    if isinstance(prefetched, (QuotaExhausted, AuthenticationFailed)):
                        raise prefetched
                    continue
                report.objects[name], ends[name] = puller.pull(schemas[name], tables, full, run_id, prefetched)
                if puller.pull_parked.get(name) == "retry":
                    puller.reread_parked(schemas[name], tables, report.objects[name], run_id)
            pusher = Pusher(self, schemas, puller.window_starts)
            for name in order:
                counts = report.objects[name]
                if schemas[name].synced and counts.error is None and name in ends:
                    if ends[name] is not None and puller.has_pending_deletes(name):
                        puller.catch_up(schemas[name], tables, ends[name], counts, run_id)
                    pusher.push(schemas[name], tables, counts, run_id)
            failed = [f"{n}: {c.error}" for n, c in report.objects.items() if c.error]
            if failed:
                report.status, report.error = "failed", "; ".join(failed)
            else:
                report.status = ("parked" if report.parked else "retrying" if report.retrying else "succeeded")
        except QuotaExhausted as exc:
            report.status, report.error = "stopped", str(exc)
        except AuthenticationFailed as exc:
            report.status, report.error = "failed", str(exc)
        except ConnectorError as exc:
            report.status, report.error = "failed", str(exc)
            log.error("sync run %s failed: %s", run_id, exc)
        except BaseException as exc:   # a bug or a database error: the row says so, the caller sees it
            report.status, report.error, unexpected = "failed", f"{type(exc).__name__}: {exc}"[:4000], exc
        report.ended_at = dt.datetime.now(UTC)
        report.api_calls = self.client.calls - calls_before
        with self.engine.begin() as conn:
            conn.execute(update(self.state.runs).where(self.state.runs.c.id == run_id).values(
                ended_at=report.ended_at, status=report.status, api_calls=report.api_calls, error=report.error,
                counts=json.dumps({n: asdict(c) for n, c in report.objects.items()})))
        if unexpected is not None:
            raise unexpected
        return report

    def apply_change_batch(self, object_name: str, batch: RemoteBatch, run_id: int,
                           commit_position: Callable[[Connection, Any], None]) -> ObjectCounts:
        """Apply one batch of any change source (the streaming one) exactly as a pull page is applied,
        and commit `commit_position(conn, batch.position)` in the same transaction as the rows it covers.
        The caller has run `prepare()` (the streaming service does, once per round of batches): it is not
        run again for every batch."""
        schemas = self.mirror.schemas()
        counts = ObjectCounts()
        Puller(self).apply_page(schemas[object_name], self.tables(schemas), batch.records, counts, run_id,
                                lambda conn: commit_position(conn, batch.position))
        counts.pulled = len(batch.records)
        return counts

    def queue_for_push(self, conn: Connection, name: str, row_uuid: str, sfid: str | None = None) -> None:
        """Queue a row to be sent at the next run, in the caller's transaction; `sfid` lets a row deleted
        locally still send its delete."""
        conn.execute(self.state.changes.insert().values(object_name=name, row_uuid=row_uuid, sfid=sfid, op="U",
                                                        changed_at=dt.datetime.now(UTC)))

    def retry_parked(self, object_name: str | None = None) -> int:
        """Queue parked records to be tried again at the next run (after an admin fixed the cause, or
        `cosell mirror` changed the object): local changes are sent again, records refused on the way in
        are read again from Salesforce. Returns how many were queued."""
        with self.engine.begin() as conn:
            to_push = self.ledger.requeue(conn, object_name)
            for name, row_uuid, sfid in to_push:
                self.queue_for_push(conn, name, row_uuid, sfid)
            return len(to_push) + len(self.ledger.queued_rereads(conn, object_name)) if object_name else \
                len(to_push) + sum(len(self.ledger.queued_rereads(conn, n)) for n in self.mapping.objects)
