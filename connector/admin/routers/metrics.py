"""GET /metrics in the Prometheus text exposition format, rendered by prometheus-client from the
database at scrape time (`connector.admin.metrics`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from connector.admin.routers import AdminContext, context

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format 0.0.4."}})
def metrics(admin: Annotated[AdminContext, Depends(context)]) -> PlainTextResponse:
    from connector.admin import metrics as exposition

    return PlainTextResponse(exposition.render(admin.connector, admin.runner), media_type=exposition.CONTENT_TYPE)
