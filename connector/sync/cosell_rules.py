"""The co-sell rules the sync enforces before sending anything to Salesforce: revenue
splits on an opportunity must total 100 (a participant change that breaks it is parked
with the reason, and sent once the splits add up again), and while a registration is
under review the partner's edits to its locked fields wait, on the registration and on
its opportunity, and go out when the review ends — never lost, never sent early.

The rules themselves live in the pure `connector.cosell` package; this module reads the
sibling rows they need and answers the engine's guards. `CosellRules` plugs them in (a
`connector.sync.rules.SyncRules`) for the objects the mapping's `cosell:` section names."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Table, or_, select
from sqlalchemy.engine import Connection

from connector.cosell.registration import IN_REVIEW_STATUSES, LOCKED_FIELDS, IllegalTransition, transition
from connector.cosell.splits import Participant, validate_splits
from connector.mapping import CosellObjects
from connector.schema_mirror.model import ObjectSchema
from connector.sync.engine import PushDecision, SyncEngine

DEFAULT = CosellObjects()
# The rules' own field lists (LOCKED_FIELDS) are keyed by the roles' default object names.
PARTICIPANT, REGISTRATION, OPPORTUNITY = DEFAULT.participant, DEFAULT.registration, DEFAULT.opportunity


def split_guard(conn: Connection, obj: ObjectSchema, tables: dict[str, Table], row: dict[str, Any],
                base: dict[str, Any] | None, *, objects: CosellObjects = DEFAULT) -> PushDecision:
    """A participant of an opportunity whose registration is under review: its compensation fields (split,
    attribution) wait like the registration's own locked fields. Otherwise its splits must follow the rules;
    a row is parked only for a rule its own change broke, so a second Sourced participant added in the
    portal parks the newcomer, never the participant that was Sourced before."""
    table = tables[objects.participant]
    opportunity, opportunity_uuid = row.get("opportunity__c"), row.get("_opportunity__c_uuid")
    if opportunity is None and opportunity_uuid is None:
        return PushDecision()
    if _registration_in_review(conn, tables, opportunity, opportunity_uuid, agreed=True, objects=objects):
        return PushDecision(hold=LOCKED_FIELDS[PARTICIPANT])
    same = []
    if opportunity is not None:
        same.append(table.c.opportunity__c == opportunity)
    if opportunity_uuid is not None and "_opportunity__c_uuid" in table.c:
        same.append(table.c._opportunity__c_uuid == opportunity_uuid)
    siblings = conn.execute(select(table).where(or_(*same))).mappings().all()
    key = opportunity or opportunity_uuid
    participants = [Participant(key=r["_uuid"], opportunity_key=key, partner_account=r.get("partner_account__c"),
                                role=r.get("role__c"), attribution=r.get("attribution__c"),
                                split_type=r.get("split_type__c"), split_percent=r.get("split_percent__c"))
                    for r in siblings]
    newly_sourced = row.get("attribution__c") == "Sourced" and (base or {}).get("Attribution__c") != "Sourced"
    problems = [p for p in validate_splits(participants)
                if p.kind == "revenue_total"
                or (row["_uuid"] in p.participant_keys and (p.kind != "multiple_sourced" or newly_sourced))]
    if not problems:
        return PushDecision()
    return PushDecision(park="; ".join(p.message for p in problems), code="SPLIT_RULE_BROKEN", retry=True)


def _registration_in_review(conn: Connection, tables: dict[str, Table], opportunity: str | None,
                            opportunity_uuid: str | None, *, agreed: bool = False,
                            objects: CosellObjects = DEFAULT) -> bool:
    """Whether a registration of the opportunity is Submitted or Under Review: by its local status, or with
    `agreed` by the status Salesforce last agreed on (its base), the review the vendor is actually running.
    A split set in the portal before the partner submitted is part of what was submitted, not an edit made
    during the review: participants are pushed before registrations (both are children of the opportunity,
    in mapping order), so they go out before the submission makes the base Submitted."""
    registrations = tables.get(objects.registration)
    if registrations is None:
        return False
    same = []
    if opportunity is not None:
        same.append(registrations.c.opportunity__c == opportunity)
    if opportunity_uuid is not None and "_opportunity__c_uuid" in registrations.c:
        same.append(registrations.c._opportunity__c_uuid == opportunity_uuid)
    reviewing = [str(s) for s in IN_REVIEW_STATUSES]
    if not agreed:
        return conn.execute(select(registrations.c._uuid).where(
            or_(*same), registrations.c.status__c.in_(reviewing)).limit(1)).first() is not None
    bases = conn.execute(select(registrations.c._base).where(or_(*same), registrations.c._base.is_not(None))).scalars()
    return any(json.loads(raw).get("Status__c") in reviewing for raw in bases)


def registration_guard(conn: Connection, obj: ObjectSchema, tables: dict[str, Table], row: dict[str, Any],
                       base: dict[str, Any] | None, *, today: dt.date | None = None) -> PushDecision:
    """A portal move of the status must be one the partner may make, or the clock's expiry once the expiry
    date has come on the org's clock (`today`); else it is refused and the status put back. While the
    registration is under review its locked fields wait."""
    old = (base or {}).get("Status__c") if base is not None else None
    new = row.get("status__c")
    if base is not None and new != old and old is not None and new is not None:
        try:
            if new == "Expired" and old == "Approved" and today is not None:
                transition(old, new, "clock", expiry_date=row.get("expiry_date__c"), today=today)
            else:
                transition(old, new, "partner", reason=row.get("rejection_reason__c"),
                           expiry_date=row.get("expiry_date__c"))
        except IllegalTransition as exc:
            return PushDecision(revert=frozenset({"Status__c"}), policy="registration_status",
                                reason=f"refused: {exc}")
    if old in IN_REVIEW_STATUSES:
        return PushDecision(hold=LOCKED_FIELDS[REGISTRATION])
    return PushDecision()


def registration_status_from_salesforce(obj: ObjectSchema, base: dict[str, Any] | None,
                                        remote: dict[str, Any]) -> dict[str, str]:
    """A status move made in Salesforce must be one the vendor (or the clock) may make; else it is
    refused and Salesforce's record is put back to the last agreed status."""
    old, new = (base or {}).get("Status__c"), remote.get("Status__c")
    if base is None or old is None or new is None or new == old:
        return {}
    for actor in ("vendor", "clock"):
        try:
            # Only the clock's move depends on today; a vendor decision is judged by who made which
            # move, not by the dates it carries (the org's own validation rules own those).
            transition(old, new, actor, reason=remote.get("Rejection_Reason__c"),
                       expiry_date=remote.get("Expiry_Date__c"),
                       at=remote.get("SystemModstamp") if actor == "clock" else None)
            return {}
        except IllegalTransition as exc:
            reason = str(exc)
    return {"Status__c": f"refused a move made in Salesforce: {reason}"}


def opportunity_lock_guard(conn: Connection, obj: ObjectSchema, tables: dict[str, Table], row: dict[str, Any],
                           base: dict[str, Any] | None, *, objects: CosellObjects = DEFAULT) -> PushDecision:
    """An opportunity with a registration under review: its registered fields wait."""
    if base is None or row.get("sfid") is None:
        return PushDecision()
    if _registration_in_review(conn, tables, row["sfid"], row["_uuid"], objects=objects):
        return PushDecision(hold=LOCKED_FIELDS[OPPORTUNITY])
    return PushDecision()


class CosellRules:
    """The co-sell guards as a sync plug-in, for the objects the mapping names in its `cosell:` section;
    a role whose object the mapping does not sync both ways gets no guard."""

    def __init__(self, objects: CosellObjects = DEFAULT) -> None:
        self.objects = objects

    def install(self, engine: SyncEngine) -> None:
        o = self.objects

        def participant(conn, obj, tables, row, base):
            return split_guard(conn, obj, tables, row, base, objects=o)

        def registration(conn, obj, tables, row, base):
            return registration_guard(conn, obj, tables, row, base, today=engine.client.org_now().date())

        def opportunity(conn, obj, tables, row, base):
            return opportunity_lock_guard(conn, obj, tables, row, base, objects=o)

        synced = {name for name, om in engine.mapping.objects.items() if om.direction == "read_write"}
        for name, guard in ((o.participant, participant), (o.registration, registration),
                            (o.opportunity, opportunity)):
            if name in synced:
                engine.add_push_guard(name, guard)
        if o.registration in synced:
            engine.add_remote_guard(o.registration, registration_status_from_salesforce)


def install(engine: SyncEngine) -> None:
    """Add the co-sell guards for the co-sell objects the mapping names and syncs."""
    engine.install(CosellRules(engine.mapping.cosell))
