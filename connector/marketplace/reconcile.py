"""Matching payout lines to deals and judging each deal's money: plain Python, no I/O.
Given the deals, every imported line, the agreement → offer pairs and the org's rates, it
returns one outcome per deal (or per payout no deal claims). It never guesses: a line two
deals could own is reported as ambiguous and credited to neither."""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

from connector.marketplace.feeds import PayoutLine, Source, iter_kinds

Status = Literal["matched", "partly_paid", "amount_mismatch", "missing_payout", "awaiting_payout", "payout_without_deal",
                 "ambiguous"]
STATUSES: tuple[str, ...] = get_args(Status)
EXCEPTIONS: tuple[Status, ...] = ("amount_mismatch", "missing_payout", "payout_without_deal", "ambiguous")
"""The statuses finance has to look at; `cosell report reconciliation` lists these by default."""

PICKLIST: dict[Status, str] = {"matched": "Matched", "partly_paid": "Partly Paid", "amount_mismatch": "Amount Mismatch",
                               "missing_payout": "Missing Payout"}
"""Reconciliation_Status__c values written on the opportunity; other statuses write nothing."""

MatchedBy = Literal["agreement", "offer", "account+product"]

MARKETPLACES: dict[Source, str] = {"aws": "AWS Marketplace", "azure": "Azure Marketplace"}
"""Cloud_Marketplace__c of the deals each source pays; only these deals can miss a payout."""

Rate = Callable[[str | None, dt.date | None], Decimal]
"""Units of a currency per corporate unit on a day (CurrencyTable.rate)."""

_WORKING = decimal.Context(prec=50)


@dataclass(frozen=True)
class Deal:
    uuid: str
    sfid: str | None
    name: str | None
    amount: Decimal | None
    currency: str | None
    close_date: dt.date | None
    is_won: bool
    is_closed: bool
    marketplace: str | None
    offer_id: str | None = None
    agreement_id: str | None = None
    customer_account: str | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class Tolerance:
    """A difference within `absolute` (in the deal's currency) is a match; when a payout line had to be
    converted to the deal's currency, `fx_percent` of the expected amount is allowed on top, because the
    marketplace converts at its own daily rate and the org's dated rates are set per period."""

    absolute: Decimal = Decimal("1.00")
    fx_percent: Decimal = Decimal("2.0")

    def allows(self, difference: Decimal, expected: Decimal, converted: bool) -> bool:
        allowed = self.absolute + (abs(expected) * self.fx_percent / 100 if converted else 0)
        return abs(difference) <= allowed


@dataclass
class Outcome:
    """One deal's reconciliation, or one payout no deal claims (`deal` is None)."""

    subject: str                      # the deal's _uuid, or "<source>:<what the payout names>"
    status: Status
    deal: Deal | None = None
    source: str | None = None         # aws, azure, or "aws,azure"
    matched_by: str | None = None
    currency: str | None = None       # the deal's currency; a payout's own for unclaimed payouts
    expected: Decimal | None = None
    gross: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    refunds: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)
    adjustments: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    received: Decimal = Decimal(0)    # what reached the seller's bank: the disbursed lines, failures undone
    difference: Decimal | None = None
    payout_currencies: str | None = None
    lines: int = 0
    detail: str = ""
    line_keys: list[str] = field(default_factory=list, repr=False)

    @property
    def outstanding(self) -> Decimal:
        """Invoiced (net of fees, refunds and credits) but not disbursed yet."""
        return self.net - self.received

    @property
    def billed(self) -> Decimal:
        """The seller's revenue after refunds and credits: what is compared with the deal's amount."""
        return self.gross + self.refunds + self.credits


@dataclass(frozen=True)
class Rules:
    today: dt.date
    missing_payout_days: int = 45
    tolerance: Tolerance = field(default_factory=Tolerance)


def _places(currency: str | None, places: Mapping[str, int]) -> Decimal:
    return Decimal(1).scaleb(-places.get(currency or "", 2))


class _Index:
    """The deals by each key a payout line can name."""

    def __init__(self, deals: Iterable[Deal], offers: Mapping[str, str]):
        self.offers = offers
        self.by_agreement: dict[str, list[Deal]] = defaultdict(list)
        self.by_offer: dict[str, list[Deal]] = defaultdict(list)
        self.by_account: dict[tuple[str, str, str], list[Deal]] = defaultdict(list)
        for deal in deals:
            if deal.agreement_id:
                self.by_agreement[deal.agreement_id].append(deal)
            if deal.offer_id:
                self.by_offer[deal.offer_id].append(deal)
            lost = deal.is_closed and not deal.is_won
            if deal.customer_account and deal.product_id and deal.marketplace and not lost:
                self.by_account[(deal.marketplace, deal.customer_account, deal.product_id)].append(deal)

    def candidates(self, line: PayoutLine) -> tuple[MatchedBy | None, list[Deal]]:
        """Agreement first, then the agreement's offer, then customer account plus product (a lost
        deal is never a fallback candidate: it cannot have been paid)."""
        if line.agreement_id:
            if self.by_agreement.get(line.agreement_id):
                return "agreement", self.by_agreement[line.agreement_id]
            offer = self.offers.get(line.agreement_id)
            if offer and self.by_offer.get(offer):
                return "offer", self.by_offer[offer]
        if line.customer_account and line.product_id:
            found = self.by_account.get((MARKETPLACES[line.source], line.customer_account, line.product_id))
            if found:
                return "account+product", found
        return None, []


def _unclaimed_key(line: PayoutLine) -> str:
    if line.agreement_id:
        return f"{line.source}:agreement:{line.agreement_id}"
    if line.customer_account or line.product_id:
        return f"{line.source}:account:{line.customer_account or '-'}:product:{line.product_id or '-'}"
    return f"{line.source}:line:{line.key}"


def _add(outcome: Outcome, line: PayoutLine, convert: Callable[[Decimal, PayoutLine], Decimal]) -> None:
    for kind, amount in iter_kinds(line):
        value = convert(amount, line)
        if kind == "gross":
            outcome.gross += value
        elif kind == "fee":
            outcome.fee += value
        elif kind == "refund":
            outcome.refunds += value
        elif kind == "credit":
            outcome.credits += value
        elif kind == "adjustment":
            outcome.adjustments += value
    outcome.lines += 1
    outcome.line_keys.append(line.key)


def _finish(outcome: Outcome, quantum: Decimal) -> None:
    for name in ("gross", "fee", "refunds", "credits", "adjustments"):
        setattr(outcome, name, getattr(outcome, name).quantize(quantum, ROUND_HALF_UP))
    outcome.net = outcome.gross + outcome.refunds + outcome.credits + outcome.fee + outcome.adjustments


def reconcile(deals: Iterable[Deal], lines: Iterable[PayoutLine], offers: Mapping[str, str], rate: Rate, *,
              places: Mapping[str, int], corporate: str | None, rules: Rules,
              margins: Mapping[str, Decimal] | None = None) -> list[Outcome]:
    """Every deal with a payout or overdue for one, and every payout no single deal claims.

    Amounts are compared in the deal's currency. A payout line in another currency is converted
    with the org's rates on the line's date (invoice or earning date): amount × rate(deal) / rate(payout),
    both rates in units per corporate unit, so the cross rate is the one the org held that day. Sums
    keep full precision and are rounded once, half-up, to the deal currency's decimal places."""
    deals = list(deals)
    index = _Index(deals, offers)
    per_deal: dict[str, list[tuple[PayoutLine, MatchedBy]]] = defaultdict(list)
    unclaimed: dict[str, list[PayoutLine]] = defaultdict(list)
    ambiguous: dict[str, list[Deal]] = {}
    lines = list(lines)
    failed = {ln.parent_key for ln in lines if ln.disbursement_failure and ln.parent_key}
    invoiced = {ln.key: ln for ln in lines if ln.counts_as_revenue}
    paid: list[PayoutLine] = []
    for line in lines:
        if line.disbursed:
            paid.append(line)
        if not line.counts_as_revenue:
            continue
        how, found = index.candidates(line)
        unique = {d.uuid: d for d in found}
        if how is not None and len(unique) == 1:
            per_deal[next(iter(unique))].append((line, how))
            continue
        key = _unclaimed_key(line)
        unclaimed[key].append(line)
        if len(unique) > 1:
            ambiguous[key] = sorted(unique.values(), key=lambda d: d.sfid or d.uuid)

    owner = {ln.key: uuid for uuid, group in per_deal.items() for ln, _ in group}
    disbursed: dict[str, list[PayoutLine]] = defaultdict(list)
    for line in paid:
        parent = invoiced.get(line.parent_key or "")
        deal_uuid = owner.get(parent.key) if parent is not None else None
        if deal_uuid is None:
            how, found = index.candidates(line)
            unique = {d.uuid for d in found}
            deal_uuid = next(iter(unique)) if how is not None and len(unique) == 1 else None
        if deal_uuid is not None:
            disbursed[deal_uuid].append(line)

    outcomes: list[Outcome] = []
    for deal in deals:
        matched = per_deal.get(deal.uuid)
        if matched:
            margin = next((margins[ln.agreement_id] for ln, _ in matched
                           if margins and ln.agreement_id in margins), None)
            outcomes.append(_judge(deal, matched, rate, places, corporate, rules,
                                   paid=disbursed.get(deal.uuid, []), invoiced=invoiced, failed=failed,
                                   margin=margin))
        elif deal.is_won and deal.marketplace in MARKETPLACES.values():
            outcomes.append(_unpaid(deal, rules))
    for key, group in unclaimed.items():
        outcomes.append(_unclaimed(key, group, ambiguous.get(key), rate, places, corporate))
    return outcomes


def _judge(deal: Deal, matched: list[tuple[PayoutLine, MatchedBy]], rate: Rate, places: Mapping[str, int],
           corporate: str | None, rules: Rules, *, paid: list[PayoutLine] = (),  # type: ignore[assignment]
           invoiced: Mapping[str, PayoutLine] | None = None, failed: set[str | None] = frozenset(),
           margin: Decimal | None = None) -> Outcome:
    """`margin`: a CPPO's reseller margin (percent); the feed bills the ISV the wholesale price, so that is
    what the seller revenue is compared with."""
    currencies = sorted({line.currency for line, _ in matched})
    currency = deal.currency or corporate or (currencies[0] if len(currencies) == 1 else None)
    converted = any(c != currency for c in currencies)

    def convert(amount: Decimal, line: PayoutLine) -> Decimal:
        if line.currency == currency:
            return amount
        on = line.event_date or deal.close_date
        return _WORKING.divide(_WORKING.multiply(amount, rate(currency, on)), rate(line.currency, on))

    outcome = Outcome(deal.uuid, "matched", deal=deal, currency=currency,
                      source=",".join(sorted({line.source for line, _ in matched})),
                      matched_by=",".join(sorted({how for _, how in matched})),
                      payout_currencies=",".join(currencies), expected=deal.amount)
    if margin is not None and deal.amount is not None:
        outcome.expected = (deal.amount * (100 - margin) / 100).quantize(_places(currency, places), ROUND_HALF_UP)
    for line, _ in sorted(matched, key=lambda m: (m[0].source, m[0].line_no, m[0].key)):
        _add(outcome, line, convert)
    _finish(outcome, _places(currency, places))
    failures = _receive(outcome, paid, invoiced or {}, failed, convert, _places(currency, places))
    if all(line.source != "aws" for line, _ in matched):
        outcome.received = outcome.net   # an earnings export is what the marketplace pays out; no disbursed lines
    expected = outcome.expected if outcome.expected is not None else Decimal(0)
    outcome.difference = outcome.billed - expected
    if deal.amount is None:
        outcome.status, outcome.detail = "amount_mismatch", "the deal has no amount to compare with"
    elif corporate is None and len(currencies) > 1:
        outcome.status = "amount_mismatch"
        outcome.detail = f"paid in {', '.join(currencies)}, and the org has no currency rates to add them up"
        return outcome
    elif not rules.tolerance.allows(outcome.difference, expected, converted):
        outcome.status = "amount_mismatch"
        outcome.detail = (f"received {outcome.billed}{' ' + currency if currency else ''} of seller revenue for "
                          f"an amount of {expected}; difference {outcome.difference:+}")
    if outcome.status == "matched" and outcome.received and outcome.outstanding > rules.tolerance.absolute:
        # instalments: every invoice is accounted for, part of the money has reached the bank so far
        outcome.status = "partly_paid"
    if outcome.received or outcome.outstanding:
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"received {outcome.received}, outstanding "
                                                                  f"{outcome.outstanding}"]))
    if failures:
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"disbursement {', '.join(failures)} failed: "
                                                                  "its money did not reach the bank"]))
    if margin is not None and deal.amount is not None:
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"CPPO: compared with the wholesale price "
                                                                  f"{outcome.expected} (amount {deal.amount} less the "
                                                                  f"reseller margin {margin}%)"]))
    if outcome.refunds:
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"refunds {outcome.refunds}"]))
    if converted:
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"paid in {', '.join(currencies)}, "
                                                                  f"converted at the org's dated rates"]))
    return outcome


def _receive(outcome: Outcome, paid: list[PayoutLine], invoiced: Mapping[str, PayoutLine],
             failed: set[str | None], convert: Callable[[Decimal, PayoutLine], Decimal], quantum: Decimal) -> list[str]:
    """Add what reached the bank to `outcome.received`: each disbursed line, signed as the invoiced line it
    pays (a disbursed listing fee lowers it), except those of a disbursement that then failed. Returns the
    failed disbursements met."""
    received = Decimal(0)
    failures: list[str] = []
    for line in paid:
        if line.disbursement_key in failed:
            failures.append(line.disbursement_key or "?")
            continue
        parent = invoiced.get(line.parent_key or "")
        sign = (parent.amount < 0) if parent is not None else line.kind in ("fee", "refund", "credit")
        received += convert(-abs(line.amount) if sign else abs(line.amount), parent or line)
    outcome.received = received.quantize(quantum, ROUND_HALF_UP)
    return sorted(set(failures))


def _unpaid(deal: Deal, rules: Rules) -> Outcome:
    due = deal.close_date + dt.timedelta(days=rules.missing_payout_days) if deal.close_date else None
    overdue = due is not None and rules.today > due
    outcome = Outcome(deal.uuid, "missing_payout" if overdue else "awaiting_payout", deal=deal,
                      currency=deal.currency, expected=deal.amount,
                      difference=-deal.amount if deal.amount is not None else None,
                      source=next((s for s, m in MARKETPLACES.items() if m == deal.marketplace), None))
    outcome.detail = (f"closed won {deal.close_date}, no payout after {rules.missing_payout_days} days"
                      if overdue else f"no payout yet; missing after {due}")
    return outcome


def _unclaimed(key: str, group: list[PayoutLine], candidates: list[Deal] | None, rate: Rate,
               places: Mapping[str, int], corporate: str | None) -> Outcome:
    currencies = sorted({line.currency for line in group})
    currency = currencies[0] if len(currencies) == 1 else corporate

    def convert(amount: Decimal, line: PayoutLine) -> Decimal:
        if line.currency == currency:
            return amount
        return _WORKING.divide(_WORKING.multiply(amount, rate(currency, line.event_date)),
                               rate(line.currency, line.event_date))

    outcome = Outcome(key, "ambiguous" if candidates else "payout_without_deal", source=group[0].source,
                      currency=currency, payout_currencies=",".join(currencies))
    for line in sorted(group, key=lambda ln: (ln.line_no, ln.key)):
        _add(outcome, line, convert)
    _finish(outcome, _places(currency, places))
    if candidates:
        names = ", ".join(f"{d.name or '?'} ({d.sfid or d.uuid})" for d in candidates)
        outcome.detail = f"{len(candidates)} deals could own this payout, none was picked: {names}"
    else:
        first = group[0]
        named = (f"agreement {first.agreement_id}" if first.agreement_id else
                 f"customer {first.customer_account or '-'} and product {first.product_id or '-'}")
        outcome.detail = f"no deal has {named}"
    return outcome


def picklist_value(outcome: Outcome) -> str | None:
    return PICKLIST.get(outcome.status)


__all__ = ["EXCEPTIONS", "MARKETPLACES", "PICKLIST", "STATUSES", "Deal", "MatchedBy", "Outcome", "Rules",
           "Status", "Tolerance", "picklist_value", "reconcile"]
