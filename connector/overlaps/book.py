"""The overlap book: imported account overlaps matched to the org's accounts, kept in the
connector's own tables beside the mirror, and turned into deal registrations.

- `import_file` matches every row (connector.overlaps.matching), compares it with what the
  book holds and writes only the differences, in one transaction: re-importing the same
  export changes nothing, a refused file changes nothing, and an updated export reports what
  went stale since the last one (the account changed owner, became a customer, was deleted
  in Salesforce, the partner's population moved, the row left the partner's export).
- `register` turns a matched overlap into a Draft registration with its opportunity and the
  partner as participant (through the portal API, so every co-sell rule applies) and links the
  two in the same commit; the sync carries the new records to Salesforce.
- `resolve` settles an overlap listed for review on the account an admin chose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint, false,
                        insert, select, update)
from sqlalchemy.engine import Connection

from connector.errors import ConnectorError
from connector.overlaps.matching import AccountIndex, AccountRef, Match, normalise_name
from connector.overlaps.source import OverlapFileError, OverlapRow, read_overlaps
from connector.portal import Portal, PortalError
from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime

UTC = dt.timezone.utc

# Attribution of a registration made from an overlap, by the partner's population: a partner
# already working an open opportunity at the account brings the deal (sourced); a partner whose
# customer or prospect it is helps a deal we work (influenced). Override per registration.
POPULATION_ATTRIBUTION = {"Open Opportunities": "Sourced", "Customers": "Influenced", "Prospects": "Influenced"}
DEFAULT_ATTRIBUTION = "Influenced"
# The participant role, by the partner account's Partner_Type__c where that is itself a role.
DEFAULT_ROLE = "Referral Partner"
DEFAULT_PROGRAM = "Standard Deal Registration"
DEFAULT_CLOSE_IN_DAYS = 90

class OverlapError(ConnectorError):
    """An overlap request refused (unknown overlap, not matched, already registered); nothing written."""


def overlap_tables(metadata: MetaData, prefix: str = "") -> tuple[Table, Table]:
    name = meta_table_name("overlaps", prefix)
    overlaps = Table(
        name, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("partner_key", String(255), nullable=False),       # the partner's Account row UUID
        Column("partner_record_id", String(255), nullable=False),
        Column("partner_name", String(255), nullable=False),      # as the export spells it
        Column("partner_uuid", String(36), nullable=False),       # the partner's Account row
        Column("account_name", String(255), nullable=False),
        Column("domain", String(255)),                            # normalised
        Column("raw_domain", String(255)),
        Column("country", String(80)),
        Column("population", String(120), nullable=False),
        Column("source_line", Integer),
        # matched | review | unmatched | removed (left the partner's export)
        Column("status", String(20), nullable=False),
        Column("match_method", String(40)),                       # domain, name+country, manual, ...
        Column("match_reason", Text),
        Column("account_uuid", String(36)),
        Column("account_sfid", String(18)),
        Column("account_label", String(400)),
        Column("candidates", Text),                               # review: the accounts it could be
        # The matched account as it was at the last import: compared at the next one.
        Column("account_owner", String(18)),
        Column("account_type", String(80)),
        Column("our_population", String(40)),
        Column("stale", Text),                                    # what went stale at the last import
        Column("first_imported_at", UtcDateTime, nullable=False),
        Column("last_changed_at", UtcDateTime, nullable=False),
        Column("import_id", Integer),
        Column("registration_uuid", String(36)),
        Column("opportunity_uuid", String(36)),
        Column("registered_at", UtcDateTime),
        UniqueConstraint("partner_key", "partner_record_id", name=f"uq_{name}_partner_record"),
        Index(f"ix_{name}_registration", "registration_uuid"),
    )
    imports = Table(
        meta_table_name("overlap_imports", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("source", Text, nullable=False),
        Column("imported_at", UtcDateTime, nullable=False),
        Column("rows", Integer, nullable=False),
        Column("new", Integer, nullable=False),
        Column("updated", Integer, nullable=False),
        Column("removed", Integer, nullable=False),
        Column("stale", Integer, nullable=False),
    )
    return overlaps, imports


@dataclass
class RowOutcome:
    line: int
    overlap_id: int | None
    partner: str
    account_name: str
    status: str
    change: str                          # new | updated | unchanged
    account: str | None = None
    reason: str = ""


@dataclass
class Stale:
    overlap_id: int
    partner: str
    account_name: str
    what: str


@dataclass
class ImportResult:
    source: str
    dry_run: bool
    rows: list[RowOutcome] = field(default_factory=list)
    stale: list[Stale] = field(default_factory=list)
    removed: int = 0
    import_id: int | None = None

    def count(self, **where: str) -> int:
        return sum(all(getattr(r, k) == v for k, v in where.items()) for r in self.rows)

    @property
    def changed(self) -> int:
        return sum(r.change != "unchanged" for r in self.rows) + self.removed


@dataclass(frozen=True)
class _AccountState:
    ref: AccountRef
    owner: str | None
    type: str | None
    population: str
    is_partner: bool
    partner_type: str | None


def _is_customer(account_type: str | None) -> bool:
    return bool(account_type) and account_type.casefold().startswith("customer")


class OverlapBook:
    def __init__(self, portal: Portal, *, schema: str | None = None, prefix: str = "") -> None:
        self.portal, self.engine = portal, portal.engine
        self.meta = MetaData(schema=schema)
        self.overlaps, self.imports = overlap_tables(self.meta, prefix)
        self._ready = False

    @classmethod
    def for_sync(cls, sync: Any, *, writes: bool = False) -> OverlapBook:
        """The book on a sync engine's tables. `writes`: the caller will register deals, so change capture
        is made sure of first; reading, importing and reporting leave the triggers alone."""
        return cls(Portal.for_sync(sync, install_capture=writes), schema=sync.schema, prefix=sync.prefix)

    def ensure_tables(self) -> None:
        if not self._ready:
            with self.engine.begin() as conn:
                self.meta.create_all(conn, checkfirst=True)
            self._ready = True

    # -- the org's accounts, as the mirror holds them -------------------------------------------
    def _accounts(self, conn: Connection, keys: Iterable[str] | None = None) -> dict[str, _AccountState]:
        """The mirrored accounts by row UUID; with `keys` (UUIDs or Salesforce Ids), only those."""
        account, opp = self.portal.tables["Account"], self.portal.tables["Opportunity"]
        c = account.c
        wanted_keys = None if keys is None else [k for k in keys if k]
        open_opps = select(opp.c.accountid, opp.c._accountid_uuid).where(
            opp.c.isclosed.is_(None) | (opp.c.isclosed == false()))
        if wanted_keys is not None:
            open_opps = open_opps.where(opp.c.accountid.in_(wanted_keys) | opp.c._accountid_uuid.in_(wanted_keys))
        open_keys: set[str] = set()
        for r in conn.execute(open_opps):
            open_keys.update(k for k in r if k)

        def col(name: str) -> Any:
            return c[name] if name in c else None

        wanted = [c._uuid, c.sfid, c.name, *(x for x in (col("website"), col("billingcountry"), col("ownerid"),
                                                         col("type"), col("is_partner__c"), col("partner_type__c"),
                                                         col("phone"), col("dunsnumber"))
                                              if x is not None)]
        query = select(*wanted)
        if wanted_keys is not None:
            query = query.where(c._uuid.in_(wanted_keys) | c.sfid.in_(wanted_keys))
        out = {}
        for r in conn.execute(query).mappings():
            account_type = r.get("type")
            population = ("Customers" if _is_customer(account_type) else
                          "Open Opportunities" if {r["sfid"], r["_uuid"]} & open_keys else "Prospects")
            out[r["_uuid"]] = _AccountState(AccountRef(r["_uuid"], r["sfid"], r["name"] or "", r.get("website"),
                                                       r.get("billingcountry"), r.get("phone"), r.get("dunsnumber")),
                                            r.get("ownerid"), account_type, population, bool(r.get("is_partner__c")),
                                            r.get("partner_type__c"))
        return out

    @staticmethod
    def _partners(rows: list[OverlapRow], accounts: dict[str, _AccountState], source: str) -> dict[str, _AccountState]:
        """Each partner named in the file -> its partner account (Is_Partner__c), by Id or name."""
        by_key: dict[str, list[_AccountState]] = {}
        for a in accounts.values():
            if a.is_partner:
                for k in (a.ref.sfid, a.ref.uuid, normalise_name(a.ref.name) or a.ref.name.casefold()):
                    if k:
                        by_key.setdefault(k, []).append(a)
        found, problems = {}, []
        for row in rows:
            key = row.key[0]
            if key in found:
                continue
            hits = by_key.get(row.partner.strip()) or by_key.get(key) or []
            if len(hits) == 1:
                found[key] = hits[0]
            elif not problems or f"partner {row.partner!r}" not in problems[-1]:
                known = sorted({a.ref.name for a in accounts.values() if a.is_partner})
                problems.append(f"line {row.line}: partner {row.partner!r} "
                                + ("matches several partner accounts" if hits else "is no partner account")
                                + " in the org (partner accounts have Is Partner set; known: "
                                + (", ".join(known[:20]) or "none") + ")")
        if problems:
            raise OverlapFileError(source, problems)
        return found

    # -- import ------------------------------------------------------------------------------------
    def import_file(self, path: Path | str, *, at: dt.datetime | None = None, dry_run: bool = False) -> ImportResult:
        return self.import_rows(read_overlaps(path), source=str(path), at=at, dry_run=dry_run)

    def import_rows(self, rows: list[OverlapRow], *, source: str, at: dt.datetime | None = None,
                    dry_run: bool = False) -> ImportResult:
        self.ensure_tables()
        at = at or dt.datetime.now(UTC)
        result = ImportResult(source, dry_run)
        o = self.overlaps
        with self.engine.connect() as conn, conn.begin() as transaction:
            accounts = self._accounts(conn)
            partners = self._partners(rows, accounts, source)
            index = AccountIndex(a.ref for a in accounts.values())
            # An overlap is the partner's account plus its record id: renaming the partner, or naming it by
            # Id in the next export, finds the same overlaps.
            keys = {row.line: (partners[row.key[0]].ref.uuid, row.partner_record_id) for row in rows}
            self._refuse_same_key(rows, keys, source)
            existing = {(r["partner_key"], r["partner_record_id"]): dict(r) for r in conn.execute(
                select(o).where(o.c.partner_key.in_(sorted({p.ref.uuid for p in partners.values()})))).mappings()}
            import_id = None
            for row in rows:
                partner = partners[row.key[0]]
                prev = existing.get(keys[row.line])
                match = index.match(row.account_name, row.domain, row.country, exclude=frozenset({partner.ref.uuid}),
                                    phone=row.phone, duns=row.duns)
                values = self._values(row, partner, match, accounts, prev)
                if prev is None:
                    if import_id is None:
                        import_id = self._begin_import(conn, source, at)
                    new_id = conn.execute(insert(o).values(
                        **values, partner_key=keys[row.line][0], partner_record_id=row.partner_record_id,
                        first_imported_at=at, last_changed_at=at, import_id=import_id, stale=None)
                        .returning(o.c.id)).scalar_one()
                    result.rows.append(self._outcome(row, new_id, values, "new"))
                    continue
                stale = self._stale(prev, values, accounts)
                changed = any(prev[k] != values[k] for k in values)
                if not changed:
                    result.rows.append(self._outcome(row, prev["id"], values, "unchanged"))
                    continue
                if import_id is None:
                    import_id = self._begin_import(conn, source, at)
                conn.execute(update(o).where(o.c.id == prev["id"]).values(
                    **values, last_changed_at=at, import_id=import_id, stale=stale or None))
                result.rows.append(self._outcome(row, prev["id"], values, "updated"))
                if stale:
                    result.stale.append(Stale(prev["id"], row.partner, row.account_name, stale))
            seen = set(keys.values())
            for key, prev in existing.items():
                if key in seen or prev["status"] == "removed":
                    continue
                if import_id is None:
                    import_id = self._begin_import(conn, source, at)
                what = "no longer in the partner's export"
                conn.execute(update(o).where(o.c.id == prev["id"]).values(
                    status="removed", last_changed_at=at, import_id=import_id, stale=what))
                result.removed += 1
                result.stale.append(Stale(prev["id"], prev["partner_name"], prev["account_name"], what))
            if import_id is not None:
                conn.execute(update(self.imports).where(self.imports.c.id == import_id).values(
                    rows=len(rows), new=result.count(change="new"), updated=result.count(change="updated"),
                    removed=result.removed, stale=len(result.stale)))
                result.import_id = None if dry_run else import_id
            if dry_run:
                transaction.rollback()
        return result

    @staticmethod
    def _refuse_same_key(rows: list[OverlapRow], keys: dict[int, tuple[str, str]], source: str) -> None:
        """One partner spelled two ways in one file, with one record id twice."""
        first: dict[tuple[str, str], int] = {}
        problems = []
        for row in rows:
            key = keys[row.line]
            if key in first:
                problems.append(f"line {row.line}: duplicate of line {first[key]} (the same partner account, "
                                f"record id {row.partner_record_id!r})")
            first.setdefault(key, row.line)
        if problems:
            raise OverlapFileError(source, problems)

    def _begin_import(self, conn: Connection, source: str, at: dt.datetime) -> int:
        return conn.execute(insert(self.imports).values(source=source, imported_at=at, rows=0, new=0, updated=0,
                                                        removed=0, stale=0).returning(self.imports.c.id)).scalar_one()

    @staticmethod
    def _values(row: OverlapRow, partner: _AccountState, match: Match, accounts: dict[str, _AccountState],
                prev: dict[str, Any] | None) -> dict[str, Any]:
        source = {"partner_name": row.partner, "account_name": row.account_name, "domain": row.domain,
                  "raw_domain": row.raw_domain, "country": row.country, "population": row.population,
                  "source_line": row.line}
        # An admin's choice stands while the partner's row and the chosen account stay as they were.
        if (prev is not None and prev["match_method"] == "manual" and prev["account_uuid"] in accounts
                and all(prev[k] == v for k, v in source.items() if k != "source_line")):
            match = Match("matched", "manual", accounts[prev["account_uuid"]].ref, (), prev["match_reason"] or "")
        account = accounts[match.account.uuid] if match.account else None
        return {**source, "partner_uuid": partner.ref.uuid, "status": match.status,
                "match_method": match.method, "match_reason": match.reason or None,
                "account_uuid": account.ref.uuid if account else None,
                "account_sfid": account.ref.sfid if account else None,
                "account_label": account.ref.label()[:400] if account else None,
                "candidates": "; ".join(c.label() for c in match.candidates)[:4000] or None,
                "account_owner": account.owner if account else None,
                "account_type": account.type if account else None,
                "our_population": account.population if account else None}

    @staticmethod
    def _stale(prev: dict[str, Any], values: dict[str, Any], accounts: dict[str, _AccountState]) -> str:
        notes = []
        if prev["account_uuid"] and prev["account_uuid"] not in accounts:
            notes.append(f"account {prev['account_label'] or prev['account_uuid']} was deleted in Salesforce")
        elif prev["account_uuid"] and prev["account_uuid"] == values["account_uuid"]:
            if prev["account_owner"] != values["account_owner"]:
                notes.append(f"account changed owner ({prev['account_owner']} -> {values['account_owner']})")
            if _is_customer(values["account_type"]) and not _is_customer(prev["account_type"]):
                notes.append(f"account became a customer (Type {prev['account_type'] or 'empty'} -> "
                             f"{values['account_type']})")
        if prev["population"] != values["population"]:
            notes.append(f"partner population {prev['population']} -> {values['population']}")
        if prev["status"] == "removed":
            notes.append("back in the partner's export")
        return "; ".join(notes)

    @staticmethod
    def _outcome(row: OverlapRow, overlap_id: int, values: dict[str, Any], change: str) -> RowOutcome:
        return RowOutcome(row.line, overlap_id, row.partner, row.account_name, values["status"], change,
                          values["account_label"], values["match_reason"] or values["candidates"] or "")

    # -- reading -----------------------------------------------------------------------------------
    def list(self, *, status: Iterable[str] | None = None, partner: str | None = None) -> list[dict[str, Any]]:
        self.ensure_tables()
        o = self.overlaps
        query = select(o).order_by(o.c.partner_name, o.c.account_name, o.c.id)
        if status:
            query = query.where(o.c.status.in_(list(status)))
        if partner:
            query = query.where(o.c.partner_name == partner)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get(self, overlap_id: int, conn: Connection | None = None) -> dict[str, Any]:
        self.ensure_tables()
        query = select(self.overlaps).where(self.overlaps.c.id == overlap_id)
        if conn is None:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        else:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise OverlapError(f"no overlap {overlap_id}; `cosell overlaps list` shows them")
        return dict(row)

    # -- acting --------------------------------------------------------------------------------------
    def resolve(self, overlap_id: int, account: str, *, at: dt.datetime | None = None) -> dict[str, Any]:
        """Settle an overlap (listed for review, or unmatched) on the account an admin chose
        (its Salesforce Id or portal UUID)."""
        at = at or dt.datetime.now(UTC)
        with self.engine.begin() as conn:
            prev = self.get(overlap_id, conn)
            if prev["registration_uuid"]:
                raise OverlapError(f"overlap {overlap_id} is already registered; its account stays")
            chosen = next(iter(self._accounts(conn, [account]).values()), None)
            if chosen is None:
                raise OverlapError(f"no Account {account!r} in the mirror")
            if chosen.ref.uuid == prev["partner_uuid"]:
                raise OverlapError("that is the partner's own account")
            conn.execute(update(self.overlaps).where(self.overlaps.c.id == overlap_id).values(
                status="matched", match_method="manual", match_reason=f"chosen by an admin at {at:%Y-%m-%d %H:%M}Z",
                account_uuid=chosen.ref.uuid, account_sfid=chosen.ref.sfid, account_label=chosen.ref.label()[:400],
                candidates=None, account_owner=chosen.owner, account_type=chosen.type,
                our_population=chosen.population, last_changed_at=at))
            return self.get(overlap_id, conn)

    def register(self, overlap_id: int, *, name: str | None = None, close_date: dt.date | None = None,
                 amount: Decimal | None = None, currency: str | None = None, role: str | None = None,
                 attribution: str | None = None, program: str | None = DEFAULT_PROGRAM,
                 at: dt.datetime | None = None) -> dict[str, Any]:
        """A Draft registration, its opportunity and the partner's participant row from a matched
        overlap, linked to it in the same commit. Returns the overlap row, with the partner's
        participant row (`participant_uuid`) and any channel conflicts the registration raises."""
        self.ensure_tables()
        at = at or dt.datetime.now(UTC)
        registrations = self.portal.tables["Deal_Registration__c"]
        with self.engine.begin() as conn:
            overlap = self.get(overlap_id, conn)
            if overlap["registration_uuid"] and conn.execute(select(registrations.c._uuid).where(
                    registrations.c._uuid == overlap["registration_uuid"])).first():
                raise OverlapError(f"overlap {overlap_id} is already registered (registration "
                                   f"{overlap['registration_uuid']})")
            if overlap["status"] != "matched":
                hint = {"review": f"; choose its account first: `cosell overlaps resolve {overlap_id} --account ID`",
                        "unmatched": "; the account is not in the org", "removed": ""}.get(overlap["status"], "")
                raise OverlapError(f"overlap {overlap_id} is {overlap['status']}, not matched{hint}")
            accounts = self._accounts(conn, [overlap["account_uuid"], overlap["partner_uuid"]])
            customer, partner = accounts.get(overlap["account_uuid"]), accounts.get(overlap["partner_uuid"])
            if customer is None or partner is None:
                raise OverlapError(f"overlap {overlap_id}: its account or partner is no longer in the org")
            if role is None:
                role = partner.partner_type if partner.partner_type in self.portal.roles else DEFAULT_ROLE
            attribution = attribution or POPULATION_ATTRIBUTION.get(overlap["population"], DEFAULT_ATTRIBUTION)
            try:
                deal = self.portal.register_deal(
                    partner=partner.ref.uuid, end_customer=customer.ref.uuid,
                    name=(name or f"{customer.ref.name} - {partner.ref.name} co-sell")[:120],
                    close_date=close_date or (at + dt.timedelta(days=DEFAULT_CLOSE_IN_DAYS)).date(),
                    amount=amount, currency=currency, role=role, attribution=attribution, program=program, conn=conn)
            except PortalError as exc:
                raise OverlapError(f"overlap {overlap_id}: {exc}") from None
            # Only if no one linked it meanwhile: two registrations of one overlap at once leave one.
            linked = conn.execute(update(self.overlaps).where(
                self.overlaps.c.id == overlap_id,
                self.overlaps.c.registration_uuid.is_(None) if overlap["registration_uuid"] is None
                else self.overlaps.c.registration_uuid == overlap["registration_uuid"]).values(
                registration_uuid=deal.registration, opportunity_uuid=deal.opportunity, registered_at=at))
            if linked.rowcount != 1:
                raise OverlapError(f"overlap {overlap_id} was registered meanwhile; nothing written")
            return {**self.get(overlap_id, conn), "participant_uuid": deal.participant,
                    "channel_conflicts": [str(c) for c in deal.channel_conflicts]}


__all__ = ["DEFAULT_ATTRIBUTION", "DEFAULT_ROLE", "POPULATION_ATTRIBUTION", "ImportResult", "OverlapBook",
           "OverlapError", "RowOutcome", "Stale", "overlap_tables"]
