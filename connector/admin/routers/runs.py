"""GET /runs and /runs/{id}: the run history, newest first, and one run's counts per object."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as FPath

from connector.admin.models import Run
from connector.admin.routers import MAX_ID, AdminContext, context, not_found

router = APIRouter(tags=["runs"])


@router.get("/runs", response_model=list[Run])
def list_runs(admin: Annotated[AdminContext, Depends(context)], limit: Annotated[int, Query(ge=1, le=1000)] = 50,
              offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[Run]:
    return admin.queries.runs(limit, offset)


@router.get("/runs/{run_id}", response_model=Run, responses=not_found)
def get_run(admin: Annotated[AdminContext, Depends(context)], run_id: Annotated[int, FPath(ge=1, le=MAX_ID)]) -> Run:
    run = admin.queries.run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id}")
    return run
