"""GET /reports/pipeline and /reports/reconciliation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from connector.admin.models import ReconciliationOut
from connector.admin.routers import AdminContext, context
from connector.errors import ConnectorError
from connector.marketplace import EXCEPTIONS, PayoutLedger
from connector.overlaps import OverlapBook, PipelineRow, pipeline_report
from connector.portal import PortalError

router = APIRouter(tags=["reports"])


@router.get("/reports/pipeline", response_model=list[PipelineRow],
            responses={409: {"description": "The co-sell objects are not mirrored yet."}})
def pipeline(admin: Annotated[AdminContext, Depends(context)]) -> list[PipelineRow]:
    """The leading indicator: days from overlap import to registration, submission and approval,
    per partner and overall (median and nearest-rank 90th percentile)."""
    try:
        return pipeline_report(OverlapBook.for_sync(admin.connector.sync))
    except (PortalError, ConnectorError) as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/reports/reconciliation", response_model=list[ReconciliationOut])
def reconciliation(admin: Annotated[AdminContext, Depends(context)],
                   all: bool = False) -> list[ReconciliationOut]:  # noqa: A002 - the query parameter's name
    """Marketplace payouts against deals, as last reconciled: the exceptions (amount mismatch,
    missing payout, payout without a deal, ambiguous), or every outcome with `all=true`."""
    try:
        rows = PayoutLedger(admin.connector.mirror).outcomes(None if all else EXCEPTIONS)
    except ConnectorError as exc:
        raise HTTPException(409, str(exc)) from None
    return [ReconciliationOut(**r) for r in rows]
