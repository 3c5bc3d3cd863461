"""POST /resync: a run now, in the background, under the lock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from connector.admin.models import Accepted, Problem, Resync
from connector.admin.routers import AdminContext, context

router = APIRouter(tags=["runs"])


@router.post("/resync", response_model=Accepted, status_code=202,
             responses={409: {"model": Problem, "description": "A run holds a needed object."},
                        422: {"model": Problem}})
def resync(admin: Annotated[AdminContext, Depends(context)], body: Resync, response: Response) -> Accepted:
    """Start a run now, in the background, under the lock; follow it with GET /runs/{run_id}."""
    accepted = admin.actions.resync(body.objects, body.records, body.mode)
    response.headers["Location"] = f"/runs/{accepted.run_id}" if accepted.run_id is not None else "/runs"
    return accepted
