"""GET /parked, POST /parked/retry and POST /parked/dismiss."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from connector.admin.models import DismissParked, Parked, Retried, RetryParked
from connector.admin.routers import MAX_ID, AdminContext, context, not_found

router = APIRouter(tags=["parked"])


@router.get("/parked", response_model=list[Parked])
def list_parked(admin: Annotated[AdminContext, Depends(context)], object: str | None = None,  # noqa: A002
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[Parked]:
    return admin.queries.parked(object, limit, offset)


@router.post("/parked/retry", response_model=Retried)
def retry_parked(admin: Annotated[AdminContext, Depends(context)], body: RetryParked | None = None) -> Retried:
    """Queue parked records to be sent again on the next run (after the cause was fixed)."""
    return Retried(queued=admin.actions.retry(body.object if body else None))


@router.post("/parked/dismiss", status_code=204, response_class=Response, responses=not_found)
def dismiss_parked(admin: Annotated[AdminContext, Depends(context)], body: DismissParked) -> Response:
    """Drop a parked record that needs no retry (its fix was to undo the edit, or it was fixed in
    Salesforce): the entry and the row's error go, the row's data stays and nothing is sent."""
    admin.actions.dismiss(body.object, body.record_uuid)
    return Response(status_code=204)
