"""The portal side's Python API: register a deal for a partner, add participants and
set splits, submit and withdraw a registration — all as local writes the sync then
carries to Salesforce. Every rule is checked before anything is written.

It lives beside, not inside, the pure `connector.cosell` package: this is the edge where
the co-sell rules meet the mirrored tables; the rules stay in their own modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from connector.channel_conflicts import ChannelConflictRegister
from connector.cosell.channel import ChannelConflict, DirectOwnership
from connector.cosell.registration import IllegalTransition, transition
from connector.cosell.roles import ATTRIBUTIONS, SPLIT_TYPES, RoleSet, UnknownRole
from connector.cosell.splits import Participant, check_splits, validate_splits


class PortalError(ValueError):
    """A portal request the co-sell rules refuse; nothing was written."""


@dataclass(frozen=True)
class RegisteredDeal:
    registration: str          # the registration row's _uuid
    opportunity: str           # the opportunity row's _uuid
    participant: str           # the partner's participant row's _uuid
    channel_conflicts: tuple[ChannelConflict, ...]


class Portal:
    """Co-sell actions on the mirrored tables; `tables` are those the sync engine uses."""

    def __init__(self, engine: Engine, tables: dict[str, Table], roles: RoleSet | None = None, *,
                 schema: str | None = None, prefix: str = "", ownership: DirectOwnership | None = None,
                 flag_conflicts: bool = True) -> None:
        self.engine, self.tables = engine, tables
        for name in ("Account", "Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c"):
            if name not in tables:
                raise PortalError(f"{name} is not mirrored: map it read_write and run `cosell mirror`")
        self.roles = roles or RoleSet.builtin()
        self._register_options = dict(schema=schema, prefix=prefix, ownership=ownership, flag=flag_conflicts)
        self._register: ChannelConflictRegister | None = None

    @property
    def conflicts(self) -> ChannelConflictRegister:
        """The channel-conflict register, made (with its table) on first use, so read-only use writes nothing."""
        if self._register is None:
            self._register = ChannelConflictRegister(self.engine, self.tables, **self._register_options)
        return self._register

    @classmethod
    def for_sync(cls, sync: Any, *, install_capture: bool = True, ownership: DirectOwnership | None = None,
                 flag_conflicts: bool = True) -> Portal:
        """The portal API on the tables a sync engine keeps, with the org's own role picklist values.
        Makes sure change capture is installed first, so every write the API makes reaches Salesforce; on
        an up-to-date database that check only reads (`install_capture=False` for read-only use skips it,
        and never writes even on a database an older version mirrored)."""
        schemas = sync.prepare() if install_capture else sync.mirror.schemas()
        role_field = schemas["Co_Sell_Participant__c"].field("Role__c") if "Co_Sell_Participant__c" in schemas \
            else None
        roles = RoleSet.from_picklist([p.value for p in role_field.picklist]) if role_field else None
        return cls(sync.engine, sync.tables(schemas), roles, schema=sync.schema, prefix=sync.prefix,
                   ownership=ownership, flag_conflicts=flag_conflicts)

    def _require_role(self, role: str) -> None:
        try:
            self.roles.require(role)
        except UnknownRole as exc:
            raise PortalError(str(exc)) from None

    # -- lookups ----------------------------------------------------------------------------
    def _row(self, conn: Connection, name: str, key: str) -> dict[str, Any]:
        """A row by Salesforce Id or by the portal's UUID."""
        table = self.tables[name]
        row = conn.execute(select(table).where(or_(table.c.sfid == key, table.c._uuid == key))).mappings().first()
        if row is None:
            raise PortalError(f"no {name} {key!r} in the portal database")
        return dict(row)

    @staticmethod
    def _ref(row: dict[str, Any], column: str) -> dict[str, Any]:
        """Point at a row by its Id when Salesforce has it, else by its UUID (linked by the sync)."""
        return {column: row["sfid"]} if row.get("sfid") else {f"_{column}_uuid": row["_uuid"]}

    # -- registering a deal -----------------------------------------------------------------
    def register_deal(self, *, partner: str, end_customer: str, name: str | None = None,
                      amount: Decimal | None = None, currency: str | None = None,
                      close_date: dt.date | None = None, opportunity: str | None = None, role: str = "Reseller",
                      attribution: str = "Sourced", program: str | None = None,
                      direct_owned_accounts: frozenset[str] = frozenset(),
                      conn: Connection | None = None) -> RegisteredDeal:
        """A Draft registration of `partner` on `end_customer`'s deal, with the partner as a participant.
        Creates the opportunity when none is given. Raises PortalError before writing anything.
        With `conn`, the writes join the caller's transaction (to record a link in the same commit)."""
        self._require_role(role)
        if attribution not in ATTRIBUTIONS:
            raise PortalError(f"attribution {attribution!r} is not valid; choose one of: {', '.join(ATTRIBUTIONS)}")
        if amount is not None and amount < 0:
            raise PortalError("a registered amount cannot be negative")
        with self._transaction(conn) as conn:
            partner_row = self._row(conn, "Account", partner)
            customer_row = self._row(conn, "Account", end_customer)
            if partner_row["_uuid"] == customer_row["_uuid"]:
                raise PortalError("the partner and the end customer are the same account")
            if opportunity is None:
                if not (name and close_date):
                    raise PortalError("a new opportunity needs a name and a close date")
                opp_values = {"name": name, "stagename": "Prospecting", "closedate": close_date, "amount": amount,
                              **self._ref(customer_row, "accountid")}
                if currency is not None:
                    opp_values["currencyisocode"] = currency
                opp_uuid = self._insert(conn, "Opportunity", opp_values)
            else:
                opp_uuid = self._row(conn, "Opportunity", opportunity)["_uuid"]
            opp_row = self._row(conn, "Opportunity", opp_uuid)
            if opportunity is not None:
                self._check_newcomer(conn, opp_row, Participant(
                    "(new)", opp_uuid, partner_row["_uuid"], role, attribution))
            registration = self._insert(conn, "Deal_Registration__c", {
                "status__c": "Draft", "registered_amount__c": amount, "program__c": program,
                **self._ref(opp_row, "opportunity__c"), **self._ref(partner_row, "partner_account__c"),
                **self._ref(customer_row, "end_customer_account__c")})
            participant = self._insert(conn, "Co_Sell_Participant__c", {
                "role__c": role, "attribution__c": attribution, **self._ref(opp_row, "opportunity__c"),
                **self._ref(partner_row, "partner_account__c")})
            conflicts = self._channel_conflicts(conn, registration, customer_row, direct_owned_accounts, "register")
        return RegisteredDeal(registration, opp_uuid, participant, tuple(conflicts))

    @contextmanager
    def _transaction(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.begin() as new:
                yield new

    def _channel_conflicts(self, conn: Connection, registration: str, customer_row: dict[str, Any],
                           direct_owned: frozenset[str], trigger: str) -> list[ChannelConflict]:
        """The conflicts `registration` takes part in, stored in the register (and flagged on the opportunity)
        in the caller's transaction. Direct ownership comes from the account rows; `direct_owned` (account
        Ids or UUIDs a caller passes, the older way) still counts."""
        found = [c for c, _ in self.conflicts.check(conn, trigger=trigger, claim=registration)]  # type: ignore[arg-type]
        customer_keys = {k for k in (customer_row.get("sfid"), customer_row["_uuid"]) if k}
        if customer_keys & set(direct_owned) and not any(c.kind == "direct_owned_account" for c in found):
            found.append(ChannelConflict("direct_owned_account", (registration,),
                                         f"registration {registration} claims end customer "
                                         f"{customer_row.get('name')}, which direct sales already owns"))
        return found

    def _insert(self, conn: Connection, name: str, values: dict[str, Any]) -> str:
        table = self.tables[name]
        values = {k: v for k, v in values.items() if k in table.c}
        return conn.execute(insert(table).values(**values).returning(table.c._uuid)).scalar_one()

    # -- participants and splits ------------------------------------------------------------
    def add_participant(self, opportunity: str, partner: str, *, role: str, attribution: str,
                        split_type: str | None = None, split_percent: Decimal | None = None) -> str:
        self._require_role(role)
        if attribution not in ATTRIBUTIONS:
            raise PortalError(f"attribution {attribution!r} is not valid; choose one of: {', '.join(ATTRIBUTIONS)}")
        if split_type is not None and split_type not in SPLIT_TYPES:
            raise PortalError(f"split type {split_type!r} is not valid; choose one of: {', '.join(SPLIT_TYPES)}")
        with self.engine.begin() as conn:
            opp_row = self._row(conn, "Opportunity", opportunity)
            partner_row = self._row(conn, "Account", partner)
            self._check_newcomer(conn, opp_row, Participant(
                "(new)", opp_row["_uuid"], partner_row["_uuid"], role, attribution, split_type, split_percent))
            return self._insert(conn, "Co_Sell_Participant__c", {
                "role__c": role, "attribution__c": attribution, "split_type__c": split_type,
                "split_percent__c": split_percent, **self._ref(opp_row, "opportunity__c"),
                **self._ref(partner_row, "partner_account__c")})

    def _participants(self, conn: Connection, opp_row: dict[str, Any]) -> list[dict[str, Any]]:
        table = self.tables["Co_Sell_Participant__c"]
        keys = {k for k in (opp_row.get("sfid"), opp_row["_uuid"]) if k}
        return [dict(r) for r in conn.execute(select(table).where(or_(
            table.c.opportunity__c.in_(keys), table.c._opportunity__c_uuid.in_(keys)))).mappings().all()]

    def _check_newcomer(self, conn: Connection, opp_row: dict[str, Any], newcomer: Participant) -> None:
        """Refuse a participant the sync would have to park: a second Sourced party, or a revenue split that
        leaves the opportunity's revenue splits off 100 (set every split at once with set_splits instead).
        Checked before anything is written, so the participant already there is never parked for it."""
        rows = self._participants(conn, opp_row)
        present = [Participant(r["_uuid"], opp_row["_uuid"], r["partner_account__c"] or r["_partner_account__c_uuid"],
                               r["role__c"], r["attribution__c"], r["split_type__c"], r["split_percent__c"])
                   for r in rows]
        problems = [p for p in validate_splits([*present, newcomer]) if "(new)" in p.participant_keys]
        if not problems:
            return
        sourced = next((p for p in problems if p.kind == "multiple_sourced"), None)
        if sourced is not None:
            holder = next(r for r in rows if r["attribution__c"] == "Sourced")
            raise PortalError(
                f"opportunity {opp_row.get('sfid') or opp_row['_uuid']} is already Sourced by participant "
                f"{holder.get('sfid') or holder['_uuid']} (partner {holder['partner_account__c'] or holder['_partner_account__c_uuid']}); "
                "one party sources a deal: add this partner as Influenced or Delivered")
        raise PortalError("; ".join(p.message.replace("(new)", "the new participant") for p in problems)
                          + ("; to change several splits at once use set_splits"
                             if any(p.kind == "revenue_total" for p in problems) else ""))

    def set_splits(self, opportunity: str, splits: dict[str, tuple[str, Decimal]]) -> None:
        """Set (split type, percent) of the given participants at once; the opportunity's revenue
        splits must then total exactly 100, or nothing is written."""
        table = self.tables["Co_Sell_Participant__c"]
        with self.engine.begin() as conn:
            opp_row = self._row(conn, "Opportunity", opportunity)
            rows = self._participants(conn, opp_row)
            by_key = {r["_uuid"]: dict(r) for r in rows}
            by_key.update({r["sfid"]: by_key[r["_uuid"]] for r in rows if r["sfid"]})
            unknown = [k for k in splits if k not in by_key]
            if unknown:
                raise PortalError(f"not participants of this opportunity: {', '.join(unknown)}")
            participants = []
            for r in rows:
                split_type, percent = splits.get(r["_uuid"]) or splits.get(r["sfid"] or "") or (
                    r["split_type__c"], r["split_percent__c"])
                participants.append(Participant(r["_uuid"], opp_row["_uuid"], r["partner_account__c"], r["role__c"],
                                                r["attribution__c"], split_type, percent))
            try:
                check_splits(participants)
            except ValueError as exc:
                raise PortalError(str(exc)) from None
            for p in participants:
                conn.execute(update(table).where(table.c._uuid == p.key).values(
                    split_type__c=p.split_type, split_percent__c=p.split_percent))

    # -- registration moves -----------------------------------------------------------------
    def submit(self, registration: str, *, at: dt.datetime | None = None) -> list[ChannelConflict]:
        """Submit a Draft (or resubmit a Rejected) registration; the channel conflicts it takes part in are
        checked again now (two partners may each have drafted the same deal), stored and returned."""
        return self._move(registration, "Submitted", at=at)

    def withdraw(self, registration: str, *, at: dt.datetime | None = None) -> None:
        self._move(registration, "Withdrawn", at=at)

    def _move(self, registration: str, target: str, *, at: dt.datetime | None) -> list[ChannelConflict]:
        table = self.tables["Deal_Registration__c"]
        at = at or dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            row = self._row(conn, "Deal_Registration__c", registration)
            try:
                result = transition(row["status__c"] or "Draft", target, "partner", at=at)
            except IllegalTransition as exc:
                raise PortalError(str(exc)) from None
            values = {"status__c": str(result.status)}
            for field, value in result.changes.items():
                column = field.lower()
                if column in table.c:
                    values[column] = value
            conn.execute(update(table).where(table.c._uuid == row["_uuid"]).values(**values))
            if target != "Submitted":
                return []
            return [c for c, _ in self.conflicts.check(conn, trigger="submit", claim=row["_uuid"], at=at)]
