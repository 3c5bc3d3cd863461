"""Channel conflicts in the portal database: found against the mirrored registrations and accounts, kept with
both claims in `_cosell_channel_conflicts`, listed for admins, resolved with a recorded decision, and flagged on
the opportunity (Channel_Conflict__c) so the next sync carries the flag to Salesforce.

The rules are connector.cosell.channel's; this module reads rows and writes the register and the flag, never
Salesforce itself. Direct ownership comes from the end customer's own Account row (DirectOwnership), not from
a list the caller must pass."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from connector.cosell.channel import (
    ChannelConflict,
    DirectOwnership,
    detect_channel_conflicts,
)
from connector.cosell.registration import (
    LIVE_STATUSES,
    Registration,
    RegistrationStatus,
)
from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime

__all__ = ["CONFLICT_STATUSES", "DECISIONS", "ChannelConflictError", "ChannelConflictRegister", "Decision",
           "StoredConflict", "conflicts_table", "list_channel_conflicts"]

ConflictStatus = Literal["open", "resolved"]
CONFLICT_STATUSES: tuple[str, ...] = get_args(ConflictStatus)
Decision = Literal["honour", "dismiss"]
"""honour: one claim stands (the winner), the others do not; dismiss: not a conflict after all (say why)."""
DECISIONS: tuple[str, ...] = get_args(Decision)
Trigger = Literal["register", "submit", "sync"]

FLAG_COLUMN, REASON_COLUMN = "channel_conflict__c", "channel_conflict_reason__c"
REASON_LENGTH = 255   # Channel_Conflict_Reason__c
_CHUNK = 500          # keys per IN (...) lookup


class ChannelConflictError(ValueError):
    """A resolution the register refuses (unknown conflict, already resolved, a winner not in it); nothing
    was written."""


def conflicts_table(schema: str | None = None, prefix: str = "") -> Table:
    return Table(
        meta_table_name("channel_conflicts", prefix), MetaData(schema=schema),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("fingerprint", String(400), nullable=False, unique=True),   # kind + registrations, any order
        Column("kind", String(40), nullable=False),
        Column("claims", Text, nullable=False),            # JSON: each registration as found
        Column("reason", Text, nullable=False),
        Column("detected_by", String(20), nullable=False),  # register, submit, sync
        Column("detected_at", UtcDateTime, nullable=False),
        Column("status", String(10), nullable=False),
        Column("decision", String(10)),
        Column("winner", String(36)),                      # the honoured registration's _uuid
        Column("note", Text),
        Column("resolved_by", String(255)),
        Column("resolved_at", UtcDateTime),
    )


@dataclass(frozen=True)
class StoredConflict:
    id: int
    kind: str
    status: str
    reason: str
    claims: tuple[dict[str, Any], ...]
    detected_by: str
    detected_at: dt.datetime
    decision: str | None = None
    winner: str | None = None
    note: str | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None

    @property
    def registration_keys(self) -> tuple[str, ...]:
        return tuple(c["registration"] for c in self.claims)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "reason": self.reason,
                "claims": list(self.claims), "detected_by": self.detected_by,
                "detected_at": self.detected_at.isoformat(), "decision": self.decision, "winner": self.winner,
                "note": self.note, "resolved_by": self.resolved_by,
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None}

    @classmethod
    def from_row(cls, row: Any) -> StoredConflict:
        return cls(row.id, row.kind, row.status, row.reason, tuple(json.loads(row.claims)), row.detected_by,
                   row.detected_at, row.decision, row.winner, row.note, row.resolved_by, row.resolved_at)


class ChannelConflictRegister:
    """Finds, keeps and settles channel conflicts over the mirrored tables the sync uses (`tables`)."""

    def __init__(self, engine: Engine, tables: dict[str, Table], *, schema: str | None = None, prefix: str = "",
                 ownership: DirectOwnership | None = None, flag: bool = True) -> None:
        self.engine, self.tables = engine, tables
        self.ownership = ownership or DirectOwnership()
        self.flag = flag
        self._prefix = prefix
        self.table = conflicts_table(schema if engine.dialect.name == "postgresql" else None, prefix)
        self._ready = False

    def _ensure(self, conn: Connection) -> None:
        # made in the caller's transaction: a second connection would wait on SQLite's write lock held by it
        if not self._ready:
            self.table.create(conn, checkfirst=True)
            self._ready = True

    @classmethod
    def for_sync(cls, sync: Any, *, ownership: DirectOwnership | None = None, flag: bool = True
                 ) -> ChannelConflictRegister:
        return cls(sync.engine, sync.tables(), schema=sync.schema, prefix=sync.prefix, ownership=ownership,
                   flag=flag)

    # -- finding ----------------------------------------------------------------------------------------
    def check(self, conn: Connection, *, trigger: Trigger, claim: str | None = None,
              at: dt.datetime | None = None) -> list[tuple[ChannelConflict, StoredConflict]]:
        """Every channel conflict among the live registrations (and `claim`, a registration's _uuid, counted as
        a claim even while Draft: the partner is told on registering), stored when new. With `claim`, only the
        conflicts it takes part in. A conflict an admin resolved is not raised again. Flags the opportunities
        of open conflicts when `flag` is on. Runs in the caller's transaction."""
        at = at or dt.datetime.now(dt.timezone.utc)
        self._ensure(conn)
        regs = self._registrations(conn, claim)
        if not regs:
            return []
        accounts = self._lookup(conn, "Account", {k for r in regs for k in (r["partner"], r["customer"]) if k})
        opportunities = self._lookup(conn, "Opportunity", {r["opportunity"] for r in regs if r["opportunity"]})
        acct_uuid = {k: row["_uuid"] for row in accounts.values() for k in (row.get("sfid"), row["_uuid"]) if k}
        opp_uuid = {k: row["_uuid"] for row in opportunities.values() for k in (row.get("sfid"), row["_uuid"]) if k}
        by_uuid: dict[str, dict[str, Any]] = {}
        domain = []
        for r in regs:
            status = r["status"]
            if r["_uuid"] == claim and status == RegistrationStatus.DRAFT:
                status = RegistrationStatus.SUBMITTED     # the claim it is about to make
            partner, customer = acct_uuid.get(r["partner"] or ""), acct_uuid.get(r["customer"] or "")
            domain.append(Registration(key=r["_uuid"], status=status, partner_account=partner,
                                       end_customer_account=customer,
                                       opportunity_key=opp_uuid.get(r["opportunity"] or ""),
                                       expiry_date=r["expiry"]))
            by_uuid[r["_uuid"]] = r
        owned = {row["_uuid"] for row in accounts.values()
                 if self.ownership.owns(row.get("type"), row.get("ownerid"))}
        found = detect_channel_conflicts(domain, direct_owned_accounts=owned)
        if claim is not None:
            found = [c for c in found if claim in c.registration_keys]
        labels = _labels(accounts.values(), opportunities.values(), by_uuid.values())
        results = []
        for conflict in found:
            stored = conn.execute(select(self.table).where(self.table.c.fingerprint == conflict.fingerprint)).first()
            if stored is None:
                claims = [self._claim(by_uuid[k], accounts, opportunities, acct_uuid, opp_uuid)
                          for k in conflict.registration_keys]
                values = dict(fingerprint=conflict.fingerprint, kind=conflict.kind, claims=json.dumps(claims),
                              reason=_readable(conflict.reason, labels), detected_by=trigger, detected_at=at,
                              status="open")
                new_id = conn.execute(insert(self.table).values(**values)).inserted_primary_key[0]
                stored = conn.execute(select(self.table).where(self.table.c.id == new_id)).first()
            results.append((conflict, StoredConflict.from_row(stored)))
        if self.flag:
            self._flag(conn, [s for _, s in results if s.status == "open"])
        return results

    def _registrations(self, conn: Connection, claim: str | None) -> list[dict[str, Any]]:
        t = self.tables["Deal_Registration__c"]
        live = t.c.status__c.in_([str(s) for s in LIVE_STATUSES])
        rows = conn.execute(select(t).where(or_(live, t.c._uuid == claim) if claim else live)).mappings().all()
        return [{"_uuid": r["_uuid"], "sfid": r["sfid"], "status": RegistrationStatus(r["status__c"] or "Draft"),
                 "partner": r["partner_account__c"] or r.get("_partner_account__c_uuid"),
                 "customer": r["end_customer_account__c"] or r.get("_end_customer_account__c_uuid"),
                 "opportunity": r["opportunity__c"] or r.get("_opportunity__c_uuid"),
                 "expiry": r.get("expiry_date__c")} for r in rows]

    def _lookup(self, conn: Connection, name: str, keys: set[str]) -> dict[str, dict[str, Any]]:
        """Rows of `name` by _uuid, found by Salesforce Id or UUID."""
        t = self.tables[name]
        out: dict[str, dict[str, Any]] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start:start + _CHUNK]
            for row in conn.execute(select(t).where(or_(t.c.sfid.in_(chunk), t.c._uuid.in_(chunk)))).mappings():
                out[row["_uuid"]] = dict(row)
        return out

    @staticmethod
    def _claim(r: dict[str, Any], accounts: dict[str, dict[str, Any]], opportunities: dict[str, dict[str, Any]],
               acct_uuid: dict[str, str], opp_uuid: dict[str, str]) -> dict[str, Any]:
        partner = accounts.get(acct_uuid.get(r["partner"] or "", ""), {})
        customer = accounts.get(acct_uuid.get(r["customer"] or "", ""), {})
        opp = opportunities.get(opp_uuid.get(r["opportunity"] or "", ""), {})
        return {"registration": r["_uuid"], "registration_id": r["sfid"], "status": str(r["status"]),
                "partner": partner.get("sfid") or partner.get("_uuid"), "partner_name": partner.get("name"),
                "end_customer": customer.get("sfid") or customer.get("_uuid"),
                "end_customer_name": customer.get("name"),
                "opportunity": opp.get("sfid") or opp.get("_uuid"), "opportunity_name": opp.get("name"),
                "opportunity_uuid": opp.get("_uuid"),
                "expiry_date": r["expiry"].isoformat() if r["expiry"] else None}

    # -- the flag in Salesforce ---------------------------------------------------------------------------
    def _flag(self, conn: Connection, open_conflicts: list[StoredConflict]) -> None:
        t = self.tables["Opportunity"]
        if FLAG_COLUMN not in t.c:
            return
        reasons: dict[str, str] = {}
        for s in open_conflicts:
            for c in s.claims:
                if c.get("opportunity_uuid"):
                    reasons.setdefault(c["opportunity_uuid"], f"{s.kind}: {s.reason}"[:REASON_LENGTH])
        for opp, reason in reasons.items():
            values = {FLAG_COLUMN: True, **({REASON_COLUMN: reason} if REASON_COLUMN in t.c else {})}
            # only a change is written: an unchanged flag must not become a change for the sync to send
            conn.execute(update(t).where(t.c._uuid == opp, or_(t.c[FLAG_COLUMN].is_(None),
                                                               t.c[FLAG_COLUMN].is_(False))).values(**values))

    def _unflag(self, conn: Connection, opportunity_uuids: set[str]) -> None:
        t = self.tables.get("Opportunity")
        if t is None or FLAG_COLUMN not in t.c or not opportunity_uuids:
            return
        still = {c.get("opportunity_uuid") for s in self.list(conn=conn, status="open") for c in s.claims}
        clear = opportunity_uuids - still
        if clear:
            values = {FLAG_COLUMN: False, **({REASON_COLUMN: None} if REASON_COLUMN in t.c else {})}
            conn.execute(update(t).where(t.c._uuid.in_(sorted(clear)), t.c[FLAG_COLUMN].is_(True)).values(**values))

    # -- the admin's view and decision --------------------------------------------------------------------
    def list(self, *, status: str | None = "open", conn: Connection | None = None) -> list[StoredConflict]:
        if conn is None:
            return list_channel_conflicts(self.engine, schema=self.table.schema, prefix=self._prefix, status=status)
        return _list(self.engine, self.table, status, conn)

    def resolve(self, conflict_id: int, *, decision: str, by: str, winner: str | None = None,
                note: str | None = None, at: dt.datetime | None = None) -> StoredConflict:
        """Record an admin's decision on an open conflict and clear the opportunity's flag when no other open
        conflict remains there. `winner` (honour): one of the conflict's registrations, by Id or UUID."""
        if decision not in DECISIONS:
            raise ChannelConflictError(f"decision {decision!r} is not valid; choose one of: {', '.join(DECISIONS)}")
        if not (by or "").strip():
            raise ChannelConflictError("a resolution needs the name of the admin who decided (by)")
        at = at or dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            self._ensure(conn)
            row = conn.execute(select(self.table).where(self.table.c.id == conflict_id)).first()
            if row is None:
                raise ChannelConflictError(f"no channel conflict {conflict_id}")
            current = StoredConflict.from_row(row)
            if current.status != "open":
                raise ChannelConflictError(f"channel conflict {conflict_id} is already {current.status} "
                                           f"({current.decision} by {current.resolved_by})")
            winner_uuid = None
            if decision == "honour":
                t = self.tables.get("Deal_Registration__c")
                # the claims were stored as found: a registration made in the portal got its Id since
                by_id = conn.execute(select(t.c._uuid).where(t.c.sfid == winner)).scalar() \
                    if winner and t is not None else None
                named = {winner, by_id} - {None}
                winner_uuid = next((c["registration"] for c in current.claims
                                    if named & {c["registration"], c["registration_id"]}), None)
                if winner_uuid is None:
                    keys = ", ".join(c["registration_id"] or c["registration"] for c in current.claims)
                    raise ChannelConflictError(f"honour needs the winning registration, one of: {keys}")
            elif winner is not None:
                raise ChannelConflictError("dismiss takes no winner: no claim is preferred when it is not a conflict")
            elif not (note or "").strip():
                raise ChannelConflictError("dismissing a conflict needs a note saying why it is not one")
            conn.execute(update(self.table).where(self.table.c.id == conflict_id).values(
                status="resolved", decision=decision, winner=winner_uuid, note=note, resolved_by=by.strip(),
                resolved_at=at))
            self._unflag(conn, {c["opportunity_uuid"] for c in current.claims if c.get("opportunity_uuid")})
            return StoredConflict.from_row(conn.execute(select(self.table).where(
                self.table.c.id == conflict_id)).first())


def list_channel_conflicts(engine: Engine, *, schema: str | None = None, prefix: str = "",
                           status: str | None = "open") -> list[StoredConflict]:
    """The channel conflicts an admin view shows, oldest first: `status` open (default), resolved, or None for
    all. Reads only; an empty list when none were ever found."""
    table = conflicts_table(schema if engine.dialect.name == "postgresql" else None, prefix)
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, table.name, schema=table.schema):
            return []
    return _list(engine, table, status, None)


def _list(engine: Engine, table: Table, status: str | None, conn: Connection | None) -> list[StoredConflict]:
    if status is not None and status not in CONFLICT_STATUSES:
        raise ChannelConflictError(f"status {status!r} is not valid; choose one of: {', '.join(CONFLICT_STATUSES)}")
    query = select(table).order_by(table.c.id)
    if status is not None:
        query = query.where(table.c.status == status)
    if conn is not None:
        return [StoredConflict.from_row(r) for r in conn.execute(query)]
    with engine.connect() as own:
        return [StoredConflict.from_row(r) for r in own.execute(query)]


def _labels(accounts: Iterable[dict[str, Any]], opportunities: Iterable[dict[str, Any]],
            registrations: Iterable[dict[str, Any]]) -> dict[str, str]:
    labels = {a["_uuid"]: f"{a.get('name')} ({a.get('sfid') or 'not in Salesforce yet'})" for a in accounts}
    labels.update({o["_uuid"]: f"{o.get('name')} ({o.get('sfid') or 'not in Salesforce yet'})" for o in opportunities})
    labels.update({r["_uuid"]: r["sfid"] or f"{r['_uuid']} (not in Salesforce yet)" for r in registrations})
    return labels


def _readable(reason: str, labels: dict[str, str]) -> str:
    """The pure rule names rows by UUID; an admin reads names and Salesforce Ids."""
    for key, label in labels.items():
        reason = reason.replace(key, label)
    return reason
