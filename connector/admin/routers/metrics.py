"""GET /metrics in the Prometheus text exposition format. (Its body moves to prometheus-client in
`connector.admin.metrics`; this router keeps the route.)"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from connector.admin.routers import AdminContext, context

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format 0.0.4."}})
def metrics(admin: Annotated[AdminContext, Depends(context)]) -> PlainTextResponse:
    connector, runner = admin.connector, admin.runner
    st = connector.sync.state
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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
