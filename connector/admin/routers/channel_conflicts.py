"""GET /channel-conflicts and POST /channel-conflicts/{id}/resolve: partners' competing claims on one
end customer or deal (and claims on accounts the direct team owns), found on register, submit and
after each sync (`connector.channel_conflicts`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as FPath

from connector.admin.models import ChannelConflictOut, ResolveChannelConflict
from connector.admin.routers import MAX_ID, AdminContext, conflict_responses, context, not_found

router = APIRouter(tags=["channel conflicts"])


def _register(connector):
    from connector.channel_conflicts import ChannelConflictRegister

    settings = getattr(connector, "settings", None)
    return ChannelConflictRegister.for_sync(
        connector.sync, ownership=settings.direct_ownership() if settings is not None else None,
        flag=settings.channel_conflict_flag if settings is not None else True)


@router.get("/channel-conflicts", response_model=list[ChannelConflictOut])
def channel_conflicts(admin: Annotated[AdminContext, Depends(context)],
                      state: Literal["open", "resolved", "all"] = "open") -> list[ChannelConflictOut]:
    """Channel conflicts between partners' claims (and direct sales), oldest first, with both claims."""
    from connector.channel_conflicts import list_channel_conflicts

    sync = admin.connector.sync
    found = list_channel_conflicts(admin.connector.engine, schema=sync.schema, prefix=sync.prefix,
                                   status=None if state == "all" else state)
    return [ChannelConflictOut(**c.as_dict()) for c in found]


@router.post("/channel-conflicts/{conflict_id}/resolve", response_model=ChannelConflictOut,
             responses={**not_found, **conflict_responses})
def resolve_channel_conflict(admin: Annotated[AdminContext, Depends(context)],
                             conflict_id: Annotated[int, FPath(ge=1, le=MAX_ID)],
                             body: ResolveChannelConflict) -> ChannelConflictOut:
    """Record the decision; the opportunity's Channel_Conflict__c clears at the next sync when no other
    open conflict remains on it."""
    from connector.channel_conflicts import ChannelConflictError

    try:
        done = _register(admin.connector).resolve(conflict_id, decision=body.decision, by=body.by,
                                                  winner=body.winner, note=body.note)
    except ChannelConflictError as exc:
        raise HTTPException(404 if str(exc).startswith("no channel conflict") else 409, str(exc)) from None
    return ChannelConflictOut(**done.as_dict())
