"""GET /status: per-object health and the API usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from connector.admin.models import Status
from connector.admin.routers import AdminContext, context

router = APIRouter(tags=["status"])


@router.get("/status", response_model=Status)
def get_status(admin: Annotated[AdminContext, Depends(context)]) -> Status:
    return admin.queries.status()
