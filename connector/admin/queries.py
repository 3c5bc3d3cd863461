"""The admin query layer: every read the JSON API and the console show (status, runs, conflicts,
parked records, the mapping, channel conflicts), written once here and answered as the API's models.
It only reads the sync's own tables (through `connector.sync.state`) and the mirrored ones; it never
writes and never calls Salesforce (the API usage shown is what the client last heard)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, func, select

from connector.admin.models import ApiUsageOut, ConflictOut, ObjectCountsOut, ObjectStatus, Parked, Run, Status, decode
from connector.channel_conflicts import StoredConflict, list_channel_conflicts

__all__ = ["AdminQueries", "ConflictState", "REGISTRATION_OBJECT"]

UTC = dt.timezone.utc
ConflictState = Literal["open", "resolved", "all"]
REGISTRATION_OBJECT = "Deal_Registration__c"
# Status looks this far back for each object's last run: a run covers one or every object.
RECENT_RUNS = 500


@dataclass
class AdminQueries:
    connector: Any               # connector.bootstrap.Connector
    runner: Any = None           # connector.scheduler.SyncRunner: the run in progress here
    scheduler: Any = None        # connector.scheduler.SyncScheduler: next polls, when scheduled
    streaming: Any = None        # connector.sync.streaming.StreamingService, when objects are streamed

    @property
    def _st(self):
        return self.connector.sync.state

    def _open(self, c):
        return and_(c.c.parked.is_(True), c.c.resolved_at.is_(None))

    # -- status ---------------------------------------------------------------------------------
    def status(self, now: dt.datetime | None = None, *, records: bool = False) -> Status:
        """Per mapped object: direction, policy, watermark and lag, its last run and what it did,
        pending changes, parked records, open conflicts; and the API usage. `records` adds each local
        table's row count (a full count: the console asks for it, the polled JSON route does not)."""
        now = now or dt.datetime.now(UTC)
        st = self._st
        schemas = self.connector.mirror.schemas() if records else {}
        tables = self.connector.sync.tables(schemas) if schemas else {}
        with self.connector.engine.connect() as conn:
            marks = {r.object_name: r.watermark for r in conn.execute(select(st.state.c.object_name,
                                                                             st.state.c.watermark))}
            pending = self._by_object(conn, st.changes)
            parked = self._by_object(conn, st.dead_letters)
            conflicts = dict(conn.execute(select(st.conflicts.c.object_name, func.count())
                                          .where(self._open(st.conflicts))
                                          .group_by(st.conflicts.c.object_name)).all())
            recent = conn.execute(select(st.runs).order_by(st.runs.c.id.desc()).limit(RECENT_RUNS)).all()
            rows = {name: conn.execute(select(func.count()).select_from(tables[name])).scalar()
                    for name in self.connector.mapping.objects if name in tables}
        last: dict[str, Any] = {}
        for r in recent:
            for name in json.loads(r.counts) if r.counts else ():   # a run in progress has no counts yet
                last.setdefault(name, r)
        nexts = self.scheduler.next_runs() if self.scheduler is not None else {}
        streams = self.streaming.status() if self.streaming is not None else {}
        objects = []
        for name, om in self.connector.mapping.objects.items():
            run = last.get(name)
            mark = marks.get(name)
            counts = json.loads(run.counts).get(name) if run else None
            objects.append(ObjectStatus(
                name=name, direction=om.direction, poll_interval=om.poll_interval, watermark=mark,
                last_run_id=run.id if run else None, last_run_status=run.status if run else None,
                last_run_at=(run.ended_at or run.started_at) if run else None,
                pending_local_changes=pending.get(name, 0), parked_records=parked.get(name, 0),
                next_run_at=nexts.get(name), conflict_policy=om.conflict_policy,
                lag_seconds=max(0.0, (now - mark).total_seconds()) if mark else None,
                open_conflicts=conflicts.get(name, 0), records=rows.get(name),
                last_counts=ObjectCountsOut(**counts) if counts else None,
                mode=streams.get(name, {}).get("mode", "poll"),
                stream_lag_seconds=streams.get(name, {}).get("lag_seconds"),
                replay_id=streams.get(name, {}).get("replay_id")))
        return Status(objects=objects, open_conflicts=sum(conflicts.values()), api_usage=self.api_usage(),
                      running=self.runner.current if self.runner is not None else None)

    @staticmethod
    def _by_object(conn, table) -> dict[str, int]:
        return dict(conn.execute(select(table.c.object_name, func.count()).group_by(table.c.object_name)).all())

    def api_usage(self) -> ApiUsageOut:
        usage = self.connector.client.usage
        return ApiUsageOut(used=usage.used, limit=usage.total, share=usage.share,
                           stop_at_share=self.connector.settings.quota_share)

    # -- runs -----------------------------------------------------------------------------------
    def runs(self, limit: int = 50, offset: int = 0) -> list[Run]:
        runs = self._st.runs
        with self.connector.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id.desc())
                                .limit(max(1, min(limit, 500))).offset(max(0, offset))).all()
        return [self._run(r) for r in rows]

    def run(self, run_id: int) -> Run | None:
        runs = self._st.runs
        with self.connector.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        return self._run(row) if row is not None else None

    @staticmethod
    def _run(r) -> Run:
        counts = json.loads(r.counts) if r.counts else {}
        return Run(id=r.id, started_at=r.started_at, ended_at=r.ended_at, status=r.status, trigger=r.trigger,
                   api_calls=r.api_calls, error=r.error, objects={n: ObjectCountsOut(**c) for n, c in counts.items()})

    def conflicts_of_run(self, run_id: int) -> list[ConflictOut]:
        c = self._st.conflicts
        with self.connector.engine.connect() as conn:
            return [self._conflict(r) for r in conn.execute(select(c).where(c.c.run_id == run_id)
                                                            .order_by(c.c.id).limit(1000))]

    # -- conflicts ------------------------------------------------------------------------------
    def conflicts(self, state: ConflictState = "all", object_name: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[ConflictOut]:
        """Newest first. `open`: held for an admin (policy manual) and not yet resolved."""
        c = self._st.conflicts
        query = select(c).order_by(c.c.id.desc()).limit(max(1, min(limit, 1000))).offset(max(0, offset))
        if state == "open":
            query = query.where(self._open(c))
        elif state == "resolved":
            query = query.where(c.c.resolved_at.is_not(None))
        if object_name:
            query = query.where(c.c.object_name == object_name)
        with self.connector.engine.connect() as conn:
            return [self._conflict(r) for r in conn.execute(query)]

    def conflict(self, conflict_id: int) -> ConflictOut | None:
        c = self._st.conflicts
        with self.connector.engine.connect() as conn:
            row = conn.execute(select(c).where(c.c.id == conflict_id)).first()
        return self._conflict(row) if row is not None else None

    @staticmethod
    def _conflict(r) -> ConflictOut:
        values = dict(r._mapping)
        for k in ("base_value", "local_value", "remote_value", "outcome_value"):
            values[k] = decode(values[k])
        return ConflictOut(**values)

    # -- parked records -------------------------------------------------------------------------
    def parked(self, object_name: str | None = None, limit: int = 100, offset: int = 0) -> list[Parked]:
        dl = self._st.dead_letters
        query = select(dl).order_by(dl.c.last_failed_at.desc()).limit(max(1, min(limit, 1000))).offset(max(0, offset))
        if object_name:
            query = query.where(dl.c.object_name == object_name)
        with self.connector.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Parked(**{**dict(r._mapping), "fields": decode(r.fields) or []}) for r in rows]

    # -- the mapping and channel conflicts ------------------------------------------------------
    def mapping(self) -> dict[str, Any]:
        """The mapping as loaded (defaults filled in), as JSON."""
        return self.connector.mapping.model_dump(mode="json", exclude_none=True)

    def channel_conflicts(self) -> list[StoredConflict]:
        """The open channel conflicts, as stored when they were found (on register, submit and after each
        sync: `connector.channel_conflicts`); a resolved one is not shown again."""
        sync = self.connector.sync
        return list_channel_conflicts(self.connector.engine, schema=sync.schema, prefix=sync.prefix)
