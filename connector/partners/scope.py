"""The partner scope: the one door through which the partner workspace reads and writes.

Given a partner Account, it sees only opportunities on which that Account is a participant
(Co_Sell_Participant__c), only its own participant rows and registrations, and only the fields
listed in PARTNER_FIELDS (never another partner's split or compensation, never the vendor's
description or notes). Everything outside answers `NotFound` with one message, whether it does
not exist or belongs to someone else, and by the same query, so neither the answer nor its
cost says which. It must never hand out a row it did not select through `_mine`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, Table, or_, select, update
from sqlalchemy.engine import Connection

from connector.cosell.attribution import AttributionRow, Period, attribute
from connector.cosell.registration import (FINAL_STATUSES, IN_REVIEW_STATUSES, LOCKED_FIELDS, TRANSITIONS,
                                           RegistrationStatus)
from connector.overlaps.book import OverlapBook, OverlapError
from connector.portal import Portal, PortalError
from connector.reports import credit_of, deal_of
from connector.schema_mirror.currency import CurrencyTable

UTC = dt.timezone.utc

# What a partner may see, per object: an allow-list, so a field the org adds later stays hidden.
PARTNER_FIELDS: dict[str, tuple[str, ...]] = {
    "Opportunity": ("_uuid", "name", "stagename", "amount", "currencyisocode", "closedate", "nextstep",
                    "isclosed", "iswon", "accountid", "_accountid_uuid"),
    "Co_Sell_Participant__c": ("_uuid", "role__c", "attribution__c", "split_type__c", "split_percent__c",
                               "partner_rep_name__c", "partner_rep_email__c"),
    "Deal_Registration__c": ("_uuid", "status__c", "submitted_at__c", "decided_at__c", "expiry_date__c",
                             "rejection_reason__c", "registered_amount__c", "program__c", "currencyisocode"),
}
# What a partner may change, per object, by the form's name -> (column, Salesforce field, type).
EDITABLE: dict[str, dict[str, tuple[str, str, type]]] = {
    "Deal_Registration__c": {"registered_amount": ("registered_amount__c", "Registered_Amount__c", Decimal),
                             "program": ("program__c", "Program__c", str)},
    "Opportunity": {"next_step": ("nextstep", "NextStep", str), "close_date": ("closedate", "CloseDate", dt.date),
                    "amount": ("amount", "Amount", Decimal)},
}
# The partner's own moves, by the target the state machine names.
_PARTNER_ACTIONS = {(t.source.value, t.action): t.target.value for t in TRANSITIONS if t.actor == "partner"}
DONE = {"submit": "submitted", "resubmit": "resubmitted", "withdraw": "withdrawn"}


class NotFound(LookupError):
    """Not this partner's (or not there at all): the two are never told apart."""

    def __init__(self, what: str = "deal") -> None:
        super().__init__(f"no such {what}")


class ScopeError(ValueError):
    """A partner request the co-sell rules refuse; nothing was written. The message is for the partner."""


@dataclass(frozen=True)
class PartnerAccount:
    uuid: str
    sfid: str | None
    name: str
    currency: str | None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.sfid, self.uuid) if k)


@dataclass
class Money:
    deal: Decimal | None          # in the deal's currency
    corporate: Decimal | None     # the vendor's corporate currency
    mine: Decimal | None          # the partner's own currency


@dataclass
class Participation:
    id: str
    role: str | None
    attribution: str | None
    split_type: str | None
    split_percent: Decimal | None
    compensation: Money           # this share of the deal: split percent of the amount, if open or won


@dataclass
class HistoryEntry:
    at: dt.datetime | dt.date
    what: str


@dataclass
class RegistrationView:
    id: str
    status: str
    program: str | None
    registered_amount: Decimal | None
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    review_deadline: dt.datetime | None
    expiry_date: dt.date | None
    rejection_reason: str | None
    actions: list[str]            # submit, withdraw, resubmit: what the state machine lets the partner do
    editable: list[str]           # form names the partner may change now
    history: list[HistoryEntry] = field(default_factory=list)


@dataclass
class DealView:
    id: str
    name: str | None
    stage: str | None
    amount: Decimal | None
    currency: str | None
    close_date: dt.date | None
    next_step: str | None
    end_customer: str | None
    is_closed: bool
    is_won: bool
    participations: list[Participation]
    compensation: Money
    registrations: list[RegistrationView]
    editable: list[str]


@dataclass
class OverlapView:
    id: int
    account_name: str
    domain: str | None
    country: str | None
    population: str
    status: str
    deal_id: str | None           # the opportunity once registered


class PartnerScope:
    """Reads and writes of one partner Account, and nothing else."""

    def __init__(self, portal: Portal, book: OverlapBook, account: PartnerAccount, *, user: str,
                 activity: Table, review_days: int, schema: str | None = None, prefix: str = "") -> None:
        self.portal, self.book, self.account, self.user = portal, book, account, user
        self.activity, self.review_days = activity, review_days
        self.schema, self.prefix = schema, prefix
        t = portal.tables
        self.opp, self.part, self.reg, self.accounts = (t["Opportunity"], t["Co_Sell_Participant__c"],
                                                        t["Deal_Registration__c"], t["Account"])

    # -- the scope itself ----------------------------------------------------------------------------
    def _mine(self, column_sfid, column_uuid):
        keys = list(self.account.keys)
        return or_(column_sfid.in_(keys), column_uuid.in_(keys))

    def participants_query(self) -> Select:
        """My participant rows (with what they point at), partner-visible columns only."""
        p = self.part.c
        return select(p.opportunity__c, p._opportunity__c_uuid, *(p[c] for c in PARTNER_FIELDS["Co_Sell_Participant__c"])
                      ).where(self._mine(p.partner_account__c, p._partner_account__c_uuid)).order_by(p._id)

    def opportunities_query(self) -> Select:
        """The opportunities I take part in, partner-visible columns only."""
        o, p = self.opp.c, self.part.c
        mine = self._mine(p.partner_account__c, p._partner_account__c_uuid)
        return select(o.sfid, *(o[c] for c in PARTNER_FIELDS["Opportunity"])).where(
            or_(o.sfid.in_(select(p.opportunity__c).where(mine)),
                o._uuid.in_(select(p._opportunity__c_uuid).where(mine)))).order_by(o.closedate, o.name, o._id)

    def registrations_query(self) -> Select:
        """My registrations, partner-visible columns only."""
        r = self.reg.c
        return select(r.opportunity__c, r._opportunity__c_uuid,
                      *(r[c] for c in PARTNER_FIELDS["Deal_Registration__c"] if c in r)).where(
            self._mine(r.partner_account__c, r._partner_account__c_uuid)).order_by(r._id)

    def overlaps_query(self) -> Select:
        """My overlaps, without the org's candidate accounts and match reasons."""
        o = self.book.overlaps.c
        return select(o.id, o.account_name, o.domain, o.country, o.population, o.status, o.registration_uuid,
                      o.opportunity_uuid).where(o.partner_uuid == self.account.uuid).order_by(o.account_name, o.id)

    def _my_participants(self, conn: Connection, opportunity: dict[str, Any] | None = None) -> list[Any]:
        query = self.participants_query()
        if opportunity is not None:
            query = query.where(self._on(self.part.c, opportunity))
        return list(conn.execute(query))

    @staticmethod
    def _on(c, opportunity: dict[str, Any]):
        """Rows pointing at `opportunity`, by its Id or (before the sync linked them) its UUID."""
        keys = [k for k in (opportunity.get("sfid"), opportunity["_uuid"]) if k]
        return or_(c.opportunity__c.in_(keys), c._opportunity__c_uuid.in_(keys))

    def _opportunities(self, conn: Connection, deal_id: str | None = None) -> list[dict[str, Any]]:
        """My opportunities (or the one with UUID `deal_id`, if mine): one query either way."""
        query = self.opportunities_query()
        if deal_id is not None:
            query = query.where(self.opp.c._uuid == str(deal_id))
        return [dict(r) for r in conn.execute(query).mappings()]

    def _opportunity(self, conn: Connection, deal_id: str) -> dict[str, Any]:
        rows = self._opportunities(conn, deal_id)
        if not rows:
            raise NotFound("deal")
        return rows[0]

    def _registrations(self, conn: Connection, opportunity: dict[str, Any] | None = None,
                       registration_id: str | None = None) -> list[dict[str, Any]]:
        query = self.registrations_query()
        if opportunity is not None:
            query = query.where(self._on(self.reg.c, opportunity))
        if registration_id is not None:
            query = query.where(self.reg.c._uuid == str(registration_id))
        return [dict(x) for x in conn.execute(query).mappings()]

    # -- reading -------------------------------------------------------------------------------------
    def deals(self) -> list[DealView]:
        with self.portal.engine.connect() as conn:
            rates = self._rates(conn)
            opportunities = self._opportunities(conn)
            return [self._view(conn, o, rates) for o in opportunities]

    def deal(self, deal_id: str) -> DealView:
        with self.portal.engine.connect() as conn:
            return self._view(conn, self._opportunity(conn, deal_id), self._rates(conn))

    def attribution(self, *, period: Period = "quarter") -> list[AttributionRow]:
        """My attribution per period and kind, in the corporate currency: the report's own arithmetic,
        on my credits only."""
        with self.portal.engine.connect() as conn:
            rates = self._rates(conn)
            opportunities = self._opportunities(conn)
            deals = [deal_of(_Row(o), o["_uuid"]) for o in opportunities]
            by_key = {k: o["_uuid"] for o in opportunities for k in (o["sfid"], o["_uuid"]) if k}
            names = {k: self.account.name for k in self.account.keys}
            credits = [credit_of(_Row({**p._mapping, "partner_account__c": self.account.sfid or self.account.uuid}),
                                 names, by_key.get(p.opportunity__c or p._opportunity__c_uuid))
                       for p in self._my_participants(conn)]
        return attribute(deals, credits, rates.convert, period=period)

    def overlaps(self) -> list[OverlapView]:
        """My overlaps (my own export's rows), without the org's candidate accounts or match reasons."""
        self.book.ensure_tables()
        with self.portal.engine.connect() as conn:
            return [self._overlap_view(dict(o)) for o in conn.execute(self.overlaps_query()).mappings()]

    def corporate_currency(self) -> str | None:
        """The vendor's corporate currency (None in a single-currency org)."""
        with self.portal.engine.connect() as conn:
            corporate = self._rates(conn).corporate
        return corporate.iso_code if corporate else None

    def _rates(self, conn: Connection) -> CurrencyTable:
        return CurrencyTable.load(conn, self.schema, self.prefix)

    def _view(self, conn: Connection, o: dict[str, Any], rates: CurrencyTable) -> DealView:
        deal = deal_of(_Row(o), o["_uuid"])
        participations, credits = [], []
        for p in self._my_participants(conn, o):
            credit = credit_of(_Row({**p._mapping, "partner_account__c": self.account.uuid}), {}, o["_uuid"])
            credits.append(credit)
            # no split agreed yet: no compensation to show (not a zero the partner would read as final)
            money = self._money(deal, [credit], rates) if p.split_percent__c is not None else Money(None, None, None)
            participations.append(Participation(p._uuid, p.role__c, p.attribution__c, p.split_type__c,
                                                p.split_percent__c, money))
        customer = None
        if o["accountid"] or o["_accountid_uuid"]:
            a = self.accounts.c
            customer = conn.execute(select(a.name).where(or_(a.sfid == o["accountid"],
                                                             a._uuid == o["_accountid_uuid"]))).scalar()
        registrations = [self._registration_view(conn, r) for r in self._registrations(conn, o)]
        locked = any(RegistrationStatus(r.status) in IN_REVIEW_STATUSES for r in registrations)
        editable = [] if o["isclosed"] else [name for name, (_, sf_field, _t) in EDITABLE["Opportunity"].items()
                                             if not (locked and sf_field in LOCKED_FIELDS["Opportunity"])]
        return DealView(o["_uuid"], o["name"], o["stagename"], o["amount"], o.get("currencyisocode"), o["closedate"],
                        o["nextstep"], customer, bool(o["isclosed"]), bool(o["iswon"]), participations,
                        self._money(deal, credits, rates) if any(p.split_percent is not None for p in participations)
                        else Money(None, None, None), registrations, editable)

    def _money(self, deal, credits, rates: CurrencyTable) -> Money:
        """The split amounts of `credits` on `deal`, by the attribution arithmetic, in three currencies."""
        def split(convert) -> Decimal | None:
            rows = attribute([deal], credits, convert)
            if not rows:
                return None   # a lost deal, or one with no amount or close date, earns nothing
            return sum((r.split_pipeline + r.split_closed_won for r in rows), Decimal("0.00"))

        mine = self.account.currency
        return Money(split(lambda amount, currency, day: amount), split(rates.convert),
                     split(lambda amount, currency, day: rates.convert_to(amount, currency, mine, day)))

    def _registration_view(self, conn: Connection, r: dict[str, Any]) -> RegistrationView:
        status = r["status__c"] or "Draft"
        actions = [action for (source, action) in _PARTNER_ACTIONS if source == status]
        deadline = None
        if RegistrationStatus(status) in IN_REVIEW_STATUSES and r["submitted_at__c"] is not None:
            deadline = r["submitted_at__c"] + dt.timedelta(days=self.review_days)
        editable = [] if RegistrationStatus(status) in FINAL_STATUSES else [
            name for name, (_, sf_field, _t) in EDITABLE["Deal_Registration__c"].items()
            if not (RegistrationStatus(status) in IN_REVIEW_STATUSES
                    and sf_field in LOCKED_FIELDS["Deal_Registration__c"])]
        return RegistrationView(r["_uuid"], status, r["program__c"], r["registered_amount__c"], r["submitted_at__c"],
                                r["decided_at__c"], deadline, r["expiry_date__c"], r["rejection_reason__c"], actions,
                                editable, self._history(conn, r, status))

    def _history(self, conn: Connection, r: dict[str, Any], status: str) -> list[HistoryEntry]:
        """What the partner's users did (the activity log) and what the vendor decided (the record's stamps)."""
        a = self.activity.c
        entries = [HistoryEntry(x.at, f"{x.action} by {x.user_email}" + (f": {x.detail}" if x.detail else ""))
                   for x in conn.execute(select(a.at, a.action, a.user_email, a.detail).where(
                       a.registration_uuid == r["_uuid"], a.account_uuid == self.account.uuid))]
        submitted = r["submitted_at__c"]
        logged = [x.at for x in entries if x.what.startswith(("submitted by", "resubmitted by"))]
        if submitted is not None and not any(abs(_sort_key(t) - _sort_key(submitted)) < dt.timedelta(seconds=2)
                                             for t in logged):   # a submission made elsewhere
            entries.append(HistoryEntry(submitted, "submitted for review (latest submission)"))
        if r["decided_at__c"] is not None and status in ("Approved", "Rejected", "Expired"):
            decision = "Approved" if status == "Expired" else status
            reason = f": {r['rejection_reason__c']}" if status == "Rejected" and r["rejection_reason__c"] else ""
            entries.append(HistoryEntry(r["decided_at__c"], f"{decision} by the vendor{reason}"))
        if r["expiry_date__c"] is not None:
            entries.append(HistoryEntry(r["expiry_date__c"], f"protection {'ended' if status == 'Expired' else 'runs'}"
                                                            f" until {r['expiry_date__c']:%Y-%m-%d}"))
        # Salesforce keeps whole seconds: within one second the partner's own log (in its order) comes first.
        return sorted(entries, key=lambda e: _sort_key(e.at).replace(microsecond=0))

    @staticmethod
    def _overlap_view(o: dict[str, Any]) -> OverlapView:
        return OverlapView(o["id"], o["account_name"], o["domain"], o["country"], o["population"], o["status"],
                           o["opportunity_uuid"] if o["registration_uuid"] else None)

    # -- writing -------------------------------------------------------------------------------------
    def register(self, overlap_id: int, *, name: str | None = None, close_date: dt.date | None = None,
                 amount: Decimal | None = None, currency: str | None = None) -> DealView:
        """A Draft registration from one of my matched overlaps (the overlap book applies every co-sell rule)."""
        if overlap_id not in {o.id for o in self.overlaps()}:
            raise NotFound("overlap")
        try:
            result = self.book.register(overlap_id, name=name, close_date=close_date, amount=amount,
                                        currency=currency)
        except (OverlapError, PortalError) as exc:
            raise ScopeError(str(exc).replace(f"overlap {overlap_id}: ", "")) from None
        self._log("registered", result["opportunity_uuid"], result["registration_uuid"], f"from overlap {overlap_id}")
        return self.deal(result["opportunity_uuid"])

    def move(self, registration_id: str, action: str) -> DealView:
        """submit, resubmit or withdraw one of my registrations, as the state machine allows."""
        with self.portal.engine.connect() as conn:
            found = self._registrations(conn, registration_id=registration_id)
        if not found:
            raise NotFound("registration")
        r = found[0]
        status = r["status__c"] or "Draft"
        target = _PARTNER_ACTIONS.get((status, action))
        if target is None:
            allowed = [a for (s, a) in _PARTNER_ACTIONS if s == status]
            raise ScopeError(f"a {status} registration cannot be {DONE.get(action, 'moved')}; "
                             + (f"you may: {', '.join(allowed)}" if allowed else "it takes no partner action now"))
        try:
            self.portal.submit(r["_uuid"]) if target == "Submitted" else self.portal.withdraw(r["_uuid"])
        except PortalError as exc:
            raise ScopeError(str(exc)) from None
        deal = self._deal_of_registration(r)
        self._log(DONE[action], deal, r["_uuid"], None)
        return self.deal(deal)

    def edit(self, deal_id: str, changes: dict[str, Any], registration_id: str | None = None) -> DealView:
        """Change fields of my deal (and one of its registrations) that the partner may change now.
        Refused as a whole, naming the field, when any change is not allowed; nothing written then."""
        view = self.deal(deal_id)
        registration = None
        if registration_id is not None:
            registration = next((r for r in view.registrations if r.id == registration_id), None)
            if registration is None:
                raise NotFound("registration")
        opp_values, reg_values, problems = {}, {}, []
        for name, raw in changes.items():
            target = "Opportunity" if name in EDITABLE["Opportunity"] else \
                "Deal_Registration__c" if name in EDITABLE["Deal_Registration__c"] else None
            if target is None:
                problems.append(f"{name}: not a field you can change (you can change: "
                                f"{', '.join([*EDITABLE['Opportunity'], *EDITABLE['Deal_Registration__c']])})")
                continue
            allowed = view.editable if target == "Opportunity" else (registration.editable if registration else None)
            if allowed is None:
                problems.append(f"{name}: belongs to a registration; choose which one")
                continue
            if name not in allowed:
                problems.append(f"{name}: locked now (a registration under review or closed; it opens again "
                                "when the review ends)")
                continue
            column, _, kind = EDITABLE[target][name]
            try:
                value = _parse(raw, kind)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            (opp_values if target == "Opportunity" else reg_values)[column] = value
        if problems:
            raise ScopeError("; ".join(problems))
        with self.portal.engine.begin() as conn:
            if opp_values:
                conn.execute(update(self.opp).where(self.opp.c._uuid == view.id).values(**opp_values))
            if reg_values and registration is not None:
                conn.execute(update(self.reg).where(self.reg.c._uuid == registration.id).values(**reg_values))
        if opp_values or reg_values:
            self._log("edited", view.id, registration_id, ", ".join(sorted(changes))[:400])
        return self.deal(view.id)

    def _deal_of_registration(self, r: dict[str, Any]) -> str:
        o = self.opp.c
        with self.portal.engine.connect() as conn:
            return conn.execute(select(o._uuid).where(or_(o.sfid == r["opportunity__c"],
                                                          o._uuid == r["_opportunity__c_uuid"]))).scalar_one()

    def _log(self, action: str, deal: str | None, registration: str | None, detail: str | None) -> None:
        with self.portal.engine.begin() as conn:
            conn.execute(self.activity.insert().values(account_uuid=self.account.uuid, user_email=self.user,
                                                       opportunity_uuid=deal, registration_uuid=registration,
                                                       action=action, detail=detail, at=dt.datetime.now(UTC)))


class _Row:
    """Attribute access over a mapping, as the report's row builders read a result row."""

    def __init__(self, values: Any) -> None:
        self.__dict__.update(dict(values))

    def __getattr__(self, name: str) -> Any:
        return None


def _sort_key(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return dt.datetime.combine(value, dt.time(), UTC)


def _parse(raw: Any, kind: type) -> Any:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    if kind is Decimal:
        try:
            value = Decimal(text)
        except ArithmeticError:
            raise ValueError(f"{text[:40]!r} is not an amount (e.g. 125000.00)") from None
        if not value.is_finite() or value < 0 or value >= Decimal("1e16"):
            raise ValueError("an amount is a positive number below 10^16")
        return value.quantize(Decimal("0.01"))
    if kind is dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD)") from None
    if len(text) > 255:
        raise ValueError("at most 255 characters")
    return text


__all__ = ["DONE", "EDITABLE", "PARTNER_FIELDS", "DealView", "Money", "NotFound", "OverlapView", "PartnerAccount",
           "PartnerScope", "Participation", "RegistrationView", "ScopeError"]
