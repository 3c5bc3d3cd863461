"""The admin HTTP API: status, runs, conflicts, parked records, on-demand resync and metrics.
Every route but /health needs the bearer token (compared in constant time; a token in the query
string is refused, since URLs end up in logs). No secret or access token is ever returned."""

from __future__ import annotations

import datetime as dt
import hmac
from decimal import Decimal
import json
import logging
from collections import Counter
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi import Path as FPath
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import and_, func, select, update

from connector.errors import ConnectorError
from connector.marketplace import EXCEPTIONS, PayoutLedger
from connector.overlaps import OverlapBook, PipelineRow, pipeline_report
from connector.portal import PortalError
from connector.scheduler import LockBusy, SyncRunner
from connector.sync.engine import ObjectCounts, encode

__all__ = ["create_app", "QUERY_TOKEN_NAMES"]

log = logging.getLogger("connector.admin")
UTC = dt.timezone.utc

# Query parameters that look like credentials: refused outright, whatever their value.
QUERY_TOKEN_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "key", "auth", "authorization",
                               "bearer", "admin_token", "session_id", "sid"})

Take = Literal["local", "salesforce", "value"]
TAKES: tuple[str, ...] = get_args(Take)
Mode = Literal["incremental", "full"]


# -- response and request models -----------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReconciliationOut(BaseModel):
    subject: str = Field(description="The deal's portal UUID, or what an unmatched payout names.")
    status: str = Field(description="matched, amount_mismatch, missing_payout, awaiting_payout, "
                                    "payout_without_deal or ambiguous.")
    deal_uuid: str | None
    sfid: str | None = Field(description="The opportunity's Salesforce Id, once synced.")
    deal_name: str | None
    source: str | None = Field(description="aws or azure.")
    matched_by: str | None = Field(description="agreement, offer or account+product.")
    currency: str | None = Field(description="The deal's currency; every amount here is in it.")
    expected: Decimal | None
    gross: Decimal | None
    fee: Decimal | None
    refunds: Decimal | None
    credits: Decimal | None = None
    adjustments: Decimal | None = None
    net: Decimal | None
    received: Decimal | None = Field(None, description="What reached the seller's bank (disbursed lines).")
    outstanding: Decimal | None = Field(None, description="Invoiced, net of fees, and not disbursed yet.")
    difference: Decimal | None
    payout_currencies: str | None
    lines: int
    detail: str | None
    reconciled_at: dt.datetime


# Ids are SQL integers; a larger one is a client error (422), not a database overflow.
MAX_ID = 2**63 - 1


class ApiUsageOut(BaseModel):
    used: int = Field(description="API calls used in the org's rolling 24 hours, as last reported by Salesforce "
                                  "(Sforce-Limit-Info); 0 before the first call.")
    limit: int = Field(description="The org's daily API limit; 0 when not yet known.")
    share: float = Field(description="used / limit.")
    stop_at_share: float = Field(description="Share of the limit at which the connector stops a run cleanly.")


class ObjectStatus(BaseModel):
    name: str
    direction: str
    poll_interval: int = Field(description="Seconds between scheduled polls.")
    watermark: dt.datetime | None = Field(description="Salesforce changes are read from here (inclusive).")
    last_run_id: int | None
    last_run_status: str | None
    last_run_at: dt.datetime | None
    pending_local_changes: int = Field(description="Rows in _cosell_changes waiting to be sent.")
    parked_records: int = Field(description="Rows in _cosell_dead_letters: records Salesforce refused.")
    next_run_at: dt.datetime | None = Field(None, description="Next scheduled poll, when the scheduler runs.")


class Status(BaseModel):
    objects: list[ObjectStatus]
    api_usage: ApiUsageOut
    open_conflicts: int
    running: str | None = Field(description="Trigger of the run in progress in this process, if any.")


# The engine's own per-object counts are the response model (pydantic reads the dataclass).
ObjectCountsOut = ObjectCounts


class Run(BaseModel):
    id: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str = Field(description="running, succeeded, parked, failed or stopped.")
    trigger: str
    api_calls: int | None
    error: str | None
    objects: dict[str, ObjectCountsOut]


class ConflictOut(BaseModel):
    id: int
    run_id: int | None
    object_name: str
    record_uuid: str | None
    sfid: str | None
    field_name: str | None = Field(description="null for a record-level (edit against delete) conflict.")
    base_value: Any = None
    local_value: Any = None
    remote_value: Any = None
    local_changed_at: dt.datetime | None
    remote_changed_at: dt.datetime | None
    policy: str
    winner: str
    outcome_value: Any = None
    parked: bool = Field(description="Held for an admin (policy manual).")
    reason: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str | None


class ChannelConflictOut(BaseModel):
    id: int
    kind: str = Field(description="competing_registrations, customer_claimed, direct_owned_account or "
                                  "duplicate_approval.")
    status: str = Field(description="open or resolved.")
    reason: str
    claims: list[dict[str, Any]] = Field(description="Each registration as found: Id, status, partner, end "
                                                     "customer and opportunity with their names.")
    detected_by: str = Field(description="register, submit or sync.")
    detected_at: dt.datetime
    decision: str | None = None
    winner: str | None = None
    note: str | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None


class ResolveChannelConflict(BaseModel):
    decision: Literal["honour", "dismiss"]
    by: str = Field(min_length=1, max_length=255, description="Who decided (recorded).")
    winner: str | None = Field(None, max_length=36, description="honour: the registration that stands (Id or UUID).")
    note: str | None = Field(None, max_length=4000, description="Why; required to dismiss.")


class Resolve(BaseModel):
    take: Take = Field(description="local: the portal's value; salesforce: the org's value; value: `value`.")
    value: Any = Field(None, description="The value to keep when take is value (JSON, as the field's type).")


class Parked(BaseModel):
    object_name: str
    record_uuid: str
    sfid: str | None
    operation: str
    error_code: str | None
    message: str | None
    fields: list[str]
    attempts: int
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime


class RetryParked(BaseModel):
    object: str | None = Field(None, description="Only this object's parked records; all when omitted.")


class Retried(BaseModel):
    queued: int = Field(description="Parked records queued to be sent again on the next run.")


class Resync(BaseModel):
    objects: list[str] | None = Field(None, description="Objects to sync; all mapped objects when omitted.")
    records: list[str] | None = Field(None, description="Salesforce record Ids: their objects are synced and "
                                                        "these records are sent again from the local side.")
    mode: Mode = "incremental"

    @model_validator(mode="after")
    def _one_target(self) -> Resync:
        if self.objects is not None and self.records is not None:
            raise ValueError("give objects or records, not both")
        return self


class Accepted(BaseModel):
    run_id: int | None = Field(description="The run's id (see GET /runs/{id}); null if it failed to start.")
    trigger: str
    error: str | None = None


class Problem(BaseModel):
    detail: str


def _decode(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# -- the app --------------------------------------------------------------------------------------
def create_app(connector, token: str, *, runner: SyncRunner | None = None, scheduler=None) -> FastAPI:
    """The admin API over a `connector.bootstrap.Connector`. `scheduler` (a SyncScheduler), when
    given, is started with the app and stopped with it (waiting for a run in progress)."""
    if not token or len(token) < 16:
        raise ValueError("the admin token must be at least 16 characters")
    expected = token.encode()
    runner = runner or (scheduler.runner if scheduler is not None else SyncRunner(connector))
    sync = connector.sync
    st = sync.state

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sync.prepare()
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            runner.join()

    app = FastAPI(title="cosell-connector admin API", version="1", lifespan=lifespan,
                  description="Status, runs, conflicts, parked records, on-demand resync and metrics of the "
                              "co-sell connector. Send `Authorization: Bearer <COSELL_ADMIN_TOKEN>`.")
    bearer = HTTPBearer(auto_error=False, description="The admin token (COSELL_ADMIN_TOKEN).")

    @app.middleware("http")
    async def refuse_query_tokens(request: Request, call_next):
        if any(k.lower() in QUERY_TOKEN_NAMES for k in request.query_params.keys()):
            return JSONResponse({"detail": "credentials are not accepted in the query string; "
                                           "send an Authorization: Bearer header"}, status_code=400)
        return await call_next(request)

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        # compare_digest even for a missing token, so timing says nothing
        if not hmac.compare_digest(given, expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(authorized)]
    unauthorized = {401: {"model": Problem, "description": "Missing or wrong bearer token."},
                    400: {"model": Problem, "description": "A credential in the query string."}}

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        return Health()

    @app.get("/status", response_model=Status, dependencies=auth, responses=unauthorized, tags=["status"])
    def get_status() -> Status:
        with connector.engine.connect() as conn:
            marks = {r.object_name: r.watermark for r in conn.execute(select(st.state.c.object_name,
                                                                             st.state.c.watermark))}
            pending = dict(conn.execute(select(st.changes.c.object_name, func.count())
                                        .group_by(st.changes.c.object_name)).all())
            parked = dict(conn.execute(select(st.dead_letters.c.object_name, func.count())
                                       .group_by(st.dead_letters.c.object_name)).all())
            open_conflicts = conn.execute(select(func.count()).select_from(st.conflicts).where(and_(
                st.conflicts.c.parked.is_(True), st.conflicts.c.resolved_at.is_(None)))).scalar()
            recent = conn.execute(select(st.runs).order_by(st.runs.c.id.desc()).limit(500)).all()
        last: dict[str, Any] = {}
        for r in recent:
            for name in json.loads(r.counts) if r.counts else ():   # a run in progress has no counts yet
                last.setdefault(name, r)
        nexts = scheduler.next_runs() if scheduler is not None else {}
        objects = []
        for name, om in connector.mapping.objects.items():
            run = last.get(name)
            objects.append(ObjectStatus(
                name=name, direction=om.direction, poll_interval=om.poll_interval, watermark=marks.get(name),
                last_run_id=run.id if run else None, last_run_status=run.status if run else None,
                last_run_at=(run.ended_at or run.started_at) if run else None,
                pending_local_changes=pending.get(name, 0), parked_records=parked.get(name, 0),
                next_run_at=nexts.get(name)))
        usage = connector.client.usage
        return Status(objects=objects, open_conflicts=open_conflicts or 0, running=runner.current,
                      api_usage=ApiUsageOut(used=usage.used, limit=usage.total, share=usage.share,
                                            stop_at_share=connector.settings.quota_share))

    def run_out(r) -> Run:
        counts = json.loads(r.counts) if r.counts else {}
        return Run(id=r.id, started_at=r.started_at, ended_at=r.ended_at, status=r.status, trigger=r.trigger,
                   api_calls=r.api_calls, error=r.error,
                   objects={n: ObjectCountsOut(**c) for n, c in counts.items()})

    @app.get("/runs", response_model=list[Run], dependencies=auth, responses=unauthorized, tags=["runs"])
    def list_runs(limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[Run]:
        limit, offset = max(1, min(limit, 500)), max(0, offset)
        with connector.engine.connect() as conn:
            rows = conn.execute(select(st.runs).order_by(st.runs.c.id.desc()).limit(limit).offset(offset)).all()
        return [run_out(r) for r in rows]

    @app.get("/runs/{run_id}", response_model=Run, dependencies=auth,
             responses={**unauthorized, 404: {"model": Problem}}, tags=["runs"])
    def get_run(run_id: Annotated[int, FPath(ge=1, le=MAX_ID)]) -> Run:
        with connector.engine.connect() as conn:
            row = conn.execute(select(st.runs).where(st.runs.c.id == run_id)).first()
        if row is None:
            raise HTTPException(404, f"no run {run_id}")
        return run_out(row)

    def conflict_out(r) -> ConflictOut:
        values = dict(r._mapping)
        for k in ("base_value", "local_value", "remote_value", "outcome_value"):
            values[k] = _decode(values[k])
        return ConflictOut(**values)

    @app.get("/conflicts", response_model=list[ConflictOut], dependencies=auth, responses=unauthorized,
             tags=["conflicts"])
    def list_conflicts(state: Literal["open", "resolved", "all"] = "all", object: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[ConflictOut]:
        """Conflicts, newest first. `open`: held for an admin (policy manual) and not yet resolved."""
        c = st.conflicts
        query = select(c).order_by(c.c.id.desc()).limit(max(1, min(limit, 1000))).offset(max(0, offset))
        if state == "open":
            query = query.where(and_(c.c.parked.is_(True), c.c.resolved_at.is_(None)))
        elif state == "resolved":
            query = query.where(c.c.resolved_at.is_not(None))
        if object:
            query = query.where(c.c.object_name == object)
        with connector.engine.connect() as conn:
            return [conflict_out(r) for r in conn.execute(query)]

    @app.post("/conflicts/{conflict_id}/resolve", response_model=ConflictOut, dependencies=auth,
              responses={**unauthorized, 404: {"model": Problem}, 409: {"model": Problem}}, tags=["conflicts"])
    def resolve_conflict(conflict_id: Annotated[int, FPath(ge=1, le=MAX_ID)], body: Resolve) -> ConflictOut:
        """Keep one value: it is written to the local row, so the next sync carries it to Salesforce."""
        c = st.conflicts
        with connector.engine.connect() as conn:
            row = conn.execute(select(c).where(c.c.id == conflict_id)).first()
        if row is None:
            raise HTTPException(404, f"no conflict {conflict_id}")
        if row.resolved_at is not None:
            raise HTTPException(409, f"conflict {conflict_id} was resolved already ({row.resolution})")
        if row.field_name is None:
            raise HTTPException(409, "a record-level conflict (edit against delete) has no value to choose")
        schemas = connector.mirror.schemas()
        obj = schemas.get(row.object_name)
        f = obj.field(row.field_name) if obj is not None else None
        if f is None:
            raise HTTPException(409, f"{row.object_name}.{row.field_name} is no longer mirrored")
        if body.take == "value" and "value" not in body.model_fields_set:
            raise HTTPException(422, "take value needs a value")
        raw = {"local": _decode(row.local_value), "salesforce": _decode(row.remote_value)}.get(body.take, body.value)
        try:
            value = f.to_python(raw)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise HTTPException(422, f"not a valid {f.sf_type} for {row.field_name}: {exc}") from None
        table = sync.tables({obj.name: obj})[obj.name]
        now = dt.datetime.now(UTC)
        with connector.engine.begin() as conn:
            # A plain update (no _sync_version bump): the capture trigger logs it as a local change.
            changed = conn.execute(update(table).where(table.c._uuid == row.record_uuid)
                                   .values(**{f.column: value})).rowcount
            if not changed:
                raise HTTPException(409, "the record no longer exists locally")
            conn.execute(update(c).where(c.c.id == conflict_id).values(
                resolved_at=now, resolution=json.dumps({"take": body.take, "value": _jsonable(value)})))
            resolved = conn.execute(select(c).where(c.c.id == conflict_id)).first()
        log.info("conflict %s resolved: take %s", conflict_id, body.take)
        return conflict_out(resolved)

    @app.get("/parked", response_model=list[Parked], dependencies=auth, responses=unauthorized, tags=["parked"])
    def list_parked(object: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[Parked]:
        dl = st.dead_letters
        query = select(dl).order_by(dl.c.last_failed_at.desc()).limit(max(1, min(limit, 1000))).offset(max(0, offset))
        if object:
            query = query.where(dl.c.object_name == object)
        with connector.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Parked(**{**dict(r._mapping), "fields": _decode(r.fields) or []}) for r in rows]

    @app.post("/parked/retry", response_model=Retried, dependencies=auth, responses=unauthorized, tags=["parked"])
    def retry_parked(body: RetryParked | None = None) -> Retried:
        """Queue parked records to be sent again on the next run (after the cause was fixed)."""
        name = body.object if body else None
        if name is not None and name not in connector.mapping.objects:
            raise HTTPException(422, f"{name} is not mapped; mapped objects: {', '.join(connector.mapping.objects)}")
        return Retried(queued=sync.retry_parked(name))

    @app.get("/reports/pipeline", response_model=list[PipelineRow], dependencies=auth,
             responses={**unauthorized, 409: {"description": "The co-sell objects are not mirrored yet."}},
             tags=["reports"])
    def pipeline() -> list[PipelineRow]:
        """The leading indicator: days from overlap import to registration, submission and approval,
        per partner and overall (median and nearest-rank 90th percentile)."""
        try:
            return pipeline_report(OverlapBook.for_sync(sync))
        except (PortalError, ConnectorError) as exc:
            raise HTTPException(409, str(exc)) from None

    def channel_register():
        from connector.channel_conflicts import ChannelConflictRegister

        settings = getattr(connector, "settings", None)
        return ChannelConflictRegister.for_sync(
            sync, ownership=settings.direct_ownership() if settings is not None else None,
            flag=settings.channel_conflict_flag if settings is not None else True)

    @app.get("/channel-conflicts", response_model=list[ChannelConflictOut], dependencies=auth,
             responses=unauthorized, tags=["channel conflicts"])
    def channel_conflicts(state: Literal["open", "resolved", "all"] = "open") -> list[ChannelConflictOut]:
        """Channel conflicts between partners' claims (and direct sales), oldest first, with both claims."""
        from connector.channel_conflicts import list_channel_conflicts

        found = list_channel_conflicts(connector.engine, schema=sync.schema, prefix=sync.prefix,
                                       status=None if state == "all" else state)
        return [ChannelConflictOut(**c.as_dict()) for c in found]

    @app.post("/channel-conflicts/{conflict_id}/resolve", response_model=ChannelConflictOut, dependencies=auth,
              responses={**unauthorized, 404: {"model": Problem}, 409: {"model": Problem}},
              tags=["channel conflicts"])
    def resolve_channel_conflict(conflict_id: Annotated[int, FPath(ge=1, le=MAX_ID)],
                                 body: ResolveChannelConflict) -> ChannelConflictOut:
        """Record the decision; the opportunity's Channel_Conflict__c clears at the next sync when no other
        open conflict remains on it."""
        from connector.channel_conflicts import ChannelConflictError

        try:
            done = channel_register().resolve(conflict_id, decision=body.decision, by=body.by, winner=body.winner,
                                              note=body.note)
        except ChannelConflictError as exc:
            raise HTTPException(404 if str(exc).startswith("no channel conflict") else 409, str(exc)) from None
        return ChannelConflictOut(**done.as_dict())

    @app.get("/reports/reconciliation", response_model=list[ReconciliationOut], dependencies=auth,
             responses=unauthorized, tags=["reports"])
    def reconciliation(all: bool = False) -> list[ReconciliationOut]:  # noqa: A002 - the query parameter's name
        """Marketplace payouts against deals, as last reconciled: the exceptions (amount mismatch,
        missing payout, payout without a deal, ambiguous), or every outcome with `all=true`."""
        try:
            rows = PayoutLedger(connector.mirror).outcomes(None if all else EXCEPTIONS)
        except ConnectorError as exc:
            raise HTTPException(409, str(exc)) from None
        return [ReconciliationOut(**r) for r in rows]

    @app.post("/resync", response_model=Accepted, status_code=202, dependencies=auth,
              responses={**unauthorized, 409: {"model": Problem, "description": "A run holds a needed object."},
                         422: {"model": Problem}}, tags=["runs"])
    def resync(body: Resync, response: Response) -> Accepted:
        """Start a run now, in the background, under the lock; follow it with GET /runs/{run_id}."""
        mapped = {n.lower(): n for n in connector.mapping.objects}
        objects: list[str] | None = None
        before = None
        if body.objects is not None:
            unknown = [o for o in body.objects if o.lower() not in mapped]
            if unknown or not body.objects:
                raise HTTPException(422, f"not mapped: {', '.join(unknown) or '(none given)'}; "
                                         f"mapped objects: {', '.join(mapped.values())}")
            objects = sorted({mapped[o.lower()] for o in body.objects})
        elif body.records is not None:
            located = _locate(connector, sync, body.records)
            missing = [r for r in body.records if r not in located]
            if missing or not body.records:
                raise HTTPException(422, f"not found locally: {', '.join(missing) or '(none given)'}")
            objects = sorted({name for name, _ in located.values()})

            def before(engine) -> None:   # queue the records as local changes, under the lock
                with connector.engine.begin() as conn:
                    for name, row_uuid in located.values():
                        engine.queue_for_push(conn, name, row_uuid)
        try:
            ticket = runner.start(objects, full=body.mode == "full", before=before)
        except LockBusy as exc:
            raise HTTPException(409, str(exc)) from None
        response.headers["Location"] = f"/runs/{ticket.run_id}" if ticket.run_id is not None else "/runs"
        return Accepted(run_id=ticket.run_id, trigger=ticket.trigger, error=ticket.error)

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=auth, tags=["metrics"],
             responses={**unauthorized, 200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                              "description": "Prometheus text exposition format 0.0.4."}})
    def metrics() -> PlainTextResponse:
        with connector.engine.connect() as conn:
            marks = dict(conn.execute(select(st.state.c.object_name, st.state.c.watermark)).all())
            pending = dict(conn.execute(select(st.changes.c.object_name, func.count())
                                        .group_by(st.changes.c.object_name)).all())
            parked = dict(conn.execute(select(st.dead_letters.c.object_name, func.count())
                                       .group_by(st.dead_letters.c.object_name)).all())
            runs = Counter(dict(conn.execute(select(st.runs.c.status, func.count())
                                             .group_by(st.runs.c.status)).all()))
            conflicts = dict(conn.execute(select(st.conflicts.c.resolved_at.is_(None), func.count())
                                          .where(st.conflicts.c.parked.is_(True))
                                          .group_by(st.conflicts.c.resolved_at.is_(None))).all())
            last_end = conn.execute(select(func.max(st.runs.c.ended_at))).scalar()
        usage = connector.client.usage
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                label = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                out.append(f"{name}{{{label}}} {value:g}" if label else f"{name} {value:g}")

        names = list(connector.mapping.objects)
        family("cosell_pending_local_changes", "gauge", "Local changes waiting to be sent to Salesforce.",
               [({"object": n}, pending.get(n, 0)) for n in names])
        family("cosell_parked_records", "gauge", "Records Salesforce refused, waiting for an admin.",
               [({"object": n}, parked.get(n, 0)) for n in names])
        family("cosell_watermark_timestamp_seconds", "gauge", "Where the next read of Salesforce changes starts.",
               [({"object": n}, marks[n].timestamp()) for n in names if marks.get(n)])
        family("cosell_runs_total", "counter", "Sync runs by final status.",
               [({"status": s}, runs.get(s, 0)) for s in ("running", "succeeded", "retrying", "parked", "failed", "stopped")])
        family("cosell_last_run_end_timestamp_seconds", "gauge", "End of the latest sync run.",
               [({}, last_end.timestamp())] if last_end else [])
        family("cosell_open_conflicts", "gauge", "Conflicts held for an admin and not yet resolved.",
               [({}, conflicts.get(True, 0))])
        family("cosell_api_usage_calls", "gauge", "API calls used in the org's rolling 24 hours.",
               [({}, usage.used)])
        family("cosell_api_limit_calls", "gauge", "The org's daily API limit (0 when unknown).", [({}, usage.total)])
        family("cosell_run_in_progress", "gauge", "1 while this process runs a sync.",
               [({}, 1 if runner.current else 0)])
        return PlainTextResponse("\n".join(out) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")

    app.state.runner = runner
    return app


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _jsonable(value: Any) -> Any:
    return encode(value)


def _locate(connector, sync, record_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Salesforce Id -> (object, local row UUID), through the mirrored tables."""
    schemas = connector.mirror.schemas()
    tables = sync.tables(schemas)
    found: dict[str, tuple[str, str]] = {}
    wanted = [r for r in record_ids if isinstance(r, str) and len(r) in (15, 18)]
    by_prefix: dict[str, list[str]] = {}
    for r in wanted:
        by_prefix.setdefault(r[:3], []).append(r)
    with connector.engine.connect() as conn:
        for name, obj in schemas.items():
            ids = by_prefix.get(obj.key_prefix or "", [])
            if not ids or not obj.synced:
                continue
            t = tables[name]
            for sfid, row_uuid in conn.execute(select(t.c.sfid, t.c._uuid).where(t.c.sfid.in_(ids))):
                found[sfid] = (name, row_uuid)
    return found
