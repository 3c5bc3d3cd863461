"""GET /conflicts and POST /conflicts/{id}/resolve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as FPath

from connector.admin.actions import API_RESOLVER
from connector.admin.models import ConflictOut, Resolve
from connector.admin.queries import ConflictState
from connector.admin.routers import MAX_ID, AdminContext, conflict_responses, context, not_found

router = APIRouter(tags=["conflicts"])


@router.get("/conflicts", response_model=list[ConflictOut])
def list_conflicts(admin: Annotated[AdminContext, Depends(context)], state: ConflictState = "all",
                   object: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,  # noqa: A002
                   offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[ConflictOut]:
    """Conflicts, newest first. `open`: held for an admin (policy manual) and not yet resolved."""
    return admin.queries.conflicts(state, object, limit, offset)


@router.post("/conflicts/{conflict_id}/resolve", response_model=ConflictOut,
             responses={**not_found, **conflict_responses})
def resolve_conflict(admin: Annotated[AdminContext, Depends(context)],
                     conflict_id: Annotated[int, FPath(ge=1, le=MAX_ID)], body: Resolve) -> ConflictOut:
    """Keep one value: it is written to the local row, so the next sync carries it to Salesforce."""
    return admin.actions.resolve(conflict_id, body.take, body.value, has_value="value" in body.model_fields_set,
                                 by=API_RESOLVER, comment=body.comment)
