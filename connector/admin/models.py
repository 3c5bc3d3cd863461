"""The admin API's request and response models, shared by the JSON routes and the console (which
renders the same objects the API returns, so the two cannot disagree)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, model_validator

from connector.sync.engine import ObjectCounts

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
    conflict_policy: str | None = Field(None, description="The object's conflict policy (read_write objects).")
    lag_seconds: float | None = Field(None, description="Seconds from the watermark to now: how far behind "
                                                        "Salesforce the local copy may be.")
    open_conflicts: int = Field(0, description="This object's conflicts held for an admin, not yet resolved.")
    records: int | None = Field(None, description="Rows in the local table (the console's view; null here).")
    last_counts: ObjectCounts | None = Field(None, description="What the last run that covered it did.")
    mode: str = Field("poll", description="stream (Change Data Capture, with a slow safety poll) or poll.")
    stream_lag_seconds: float | None = Field(None, description="Streamed objects: seconds from the last "
                                             "change event applied to now.")
    replay_id: str | None = Field(None, description="Streamed objects: where the stream resumes (base64).")


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
    resolved_by: str | None = Field(None, description="Who resolved it: the console's signed-in name, or "
                                                      "\"admin API\".")
    resolution_comment: str | None = None


class Resolve(BaseModel):
    take: Take = Field(description="local: the portal's value; salesforce: the org's value; value: `value`.")
    value: Any = Field(None, description="The value to keep when take is value (JSON, as the field's type).")
    comment: str | None = Field(None, max_length=2000, description="Why, kept with the resolution.")


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


class DismissParked(BaseModel):
    object: str = Field(description="The parked record's object.")
    record_uuid: str = Field(description="The parked record's local row UUID (see GET /parked).")


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


def decode(raw: str | None) -> Any:
    """A value as the conflict log keeps it (JSON text), back as JSON; text that is not JSON as is."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


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
