"""Participants of co-sell opportunities and the rules their splits follow, checked per opportunity.
Pure: percentages are Decimals (the org stores percent(5,2)), never floats; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from connector.cosell.roles import ATTRIBUTIONS, SPLIT_TYPES, Attribution, SplitType

__all__ = [
    "HUNDRED",
    "PERCENT_PLACES",
    "Participant",
    "SPLIT_PROBLEM_KINDS",
    "SplitError",
    "SplitProblem",
    "SplitProblemKind",
    "check_splits",
    "validate_splits",
]

HUNDRED = Decimal(100)
PERCENT_PLACES = 2  # Split_Percent__c is percent(5,2): Salesforce would round a third place away
_CENT = Decimal(1).scaleb(-PERCENT_PLACES)

SplitProblemKind = Literal[
    "revenue_total",          # revenue splits on the opportunity do not total exactly 100
    "percent_out_of_range",   # below 0 or above 100
    "percent_precision",      # more than two decimal places
    "percent_missing",        # a split type without a percentage
    "split_type_missing",     # a percentage without a split type: nobody knows whether it counts to 100
    "unknown_split_type",
    "unknown_attribution",
    "multiple_sourced",       # more than one participant claims to have sourced the deal
]
SPLIT_PROBLEM_KINDS: tuple[str, ...] = get_args(SplitProblemKind)


@dataclass(frozen=True)
class Participant:
    """One party on a co-sell opportunity (a Co_Sell_Participant__c record).

    `key` is the Salesforce Id, or the local UUID of a participant Salesforce has not seen yet. `role` is a
    string rather than a Role because orgs add their own roles (see RoleSet). Attribution and split type
    are the org's restricted picklist values; the portal can still write anything, so they are checked by
    validate_splits rather than refused here."""

    key: str
    opportunity_key: str
    partner_account: str | None
    role: str | None
    attribution: str | None = None
    split_type: str | None = None
    split_percent: Decimal | None = None

    def __post_init__(self) -> None:
        percent = self.split_percent
        if isinstance(percent, bool) or isinstance(percent, float):
            # a float cannot hold 33.33 exactly, and the total must be exactly 100
            raise TypeError(f"participant {self.key}: split_percent must be a Decimal or None, got {percent!r}")
        if isinstance(percent, int):
            object.__setattr__(self, "split_percent", Decimal(percent))
        elif percent is not None and not isinstance(percent, Decimal):
            raise TypeError(f"participant {self.key}: split_percent must be a Decimal or None, got {percent!r}")
        elif isinstance(percent, Decimal) and not percent.is_finite():
            raise ValueError(f"participant {self.key}: split_percent must be a finite number, got {percent}")

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, key_field: str = "Id") -> Participant:
        """A participant from a Co_Sell_Participant__c value dict keyed by field API name."""
        return cls(key=record[key_field], opportunity_key=record["Opportunity__c"],
                   partner_account=record.get("Partner_Account__c"), role=record.get("Role__c"),
                   attribution=record.get("Attribution__c"), split_type=record.get("Split_Type__c"),
                   split_percent=record.get("Split_Percent__c"))


@dataclass(frozen=True)
class SplitProblem:
    """One broken rule on one opportunity; `total` is set for revenue_total."""

    kind: SplitProblemKind
    opportunity_key: str
    participant_keys: tuple[str, ...]
    message: str
    total: Decimal | None = None


class SplitError(ValueError):
    """The splits of one or more opportunities break the rules. A record-level problem: the sync parks the
    offending participants with this message and goes on with the rest."""

    def __init__(self, problems: Iterable[SplitProblem]) -> None:
        self.problems: tuple[SplitProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("a SplitError needs at least one problem")
        super().__init__("; ".join(p.message for p in self.problems))

    @property
    def opportunity_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.opportunity_key for p in self.problems))


def validate_splits(participants: Iterable[Participant]) -> list[SplitProblem]:
    """Every problem with the splits, opportunity by opportunity in the order they first appear.

    Rules, per opportunity:
    - each percentage lies within 0..100 and has at most two decimal places;
    - a split type and a percentage come together (a type without a percentage, or the reverse, is a problem);
    - when any revenue split exists, the revenue percentages total exactly 100 (Decimal arithmetic, so
      33.33 + 33.33 + 33.34 passes and 3 x 33.33 does not); influence splits are not counted and may
      total anything, as with Salesforce's own overlay splits;
    - at most one participant is Sourced: sourcing means finding and registering the deal, which one party
      does (full credit), while any number may have influenced or delivered it. A Vendor participant that
      is Sourced counts too: a deal found by direct sales was not found by a partner.
    """
    by_opportunity: dict[str, list[Participant]] = {}
    for participant in participants:
        by_opportunity.setdefault(participant.opportunity_key, []).append(participant)
    problems: list[SplitProblem] = []
    for opportunity, members in by_opportunity.items():
        problems.extend(_opportunity_problems(opportunity, members))
    return problems


def check_splits(participants: Iterable[Participant]) -> None:
    """Raise SplitError with every problem found, or return None when the splits are valid."""
    problems = validate_splits(participants)
    if problems:
        raise SplitError(problems)


def _opportunity_problems(opportunity: str, members: list[Participant]) -> list[SplitProblem]:
    problems: list[SplitProblem] = []

    def problem(kind: SplitProblemKind, who: Iterable[Participant], message: str,
                total: Decimal | None = None) -> None:
        problems.append(SplitProblem(kind, opportunity, tuple(p.key for p in who),
                                     f"opportunity {opportunity}: {message}", total))

    for p in members:
        if p.split_type is not None and p.split_type not in SPLIT_TYPES:
            problem("unknown_split_type", [p], f"participant {p.key} has split type {p.split_type!r}; "
                                               f"choose one of: {', '.join(SPLIT_TYPES)}")
        if p.attribution is not None and p.attribution not in ATTRIBUTIONS:
            problem("unknown_attribution", [p], f"participant {p.key} has attribution {p.attribution!r}; "
                                                f"choose one of: {', '.join(ATTRIBUTIONS)}")
        percent = p.split_percent
        if percent is None:
            if p.split_type is not None:
                problem("percent_missing", [p], f"participant {p.key} has a {p.split_type} split "
                                                "but no split percentage")
            continue
        if p.split_type is None:
            problem("split_type_missing", [p], f"participant {p.key} has a split of {percent}% but no split "
                                               "type, so it is unknown whether it counts towards the revenue "
                                               "total of 100")
        if not 0 <= percent <= HUNDRED:
            problem("percent_out_of_range", [p], f"participant {p.key} has a split of {percent}%; "
                                                 "a split percentage lies between 0 and 100")
        elif percent != percent.quantize(_CENT):
            problem("percent_precision", [p], f"participant {p.key} has a split of {percent}%; the org keeps "
                                              f"{PERCENT_PLACES} decimal places and would round it")

    revenue = [p for p in members if p.split_type == SplitType.REVENUE]
    if revenue:
        total = sum((p.split_percent for p in revenue if p.split_percent is not None), Decimal(0))
        if total != HUNDRED:
            parts = ", ".join(f"{p.key} {_show(p.split_percent)}" for p in revenue)
            problem("revenue_total", revenue, f"revenue splits total {_show(total)}%, not 100% ({parts})", total)

    sourced = [p for p in members if p.attribution == Attribution.SOURCED]
    if len(sourced) > 1:
        problem("multiple_sourced", sourced, f"{len(sourced)} participants are Sourced "
                                             f"({', '.join(p.key for p in sourced)}); one party sources a deal, "
                                             "the others influenced or delivered it")
    return problems


def _show(percent: Decimal | None) -> str:
    if percent is None:
        return "none"
    # two places as the org shows them, but never round away a third place that makes the total wrong
    exponent = percent.as_tuple().exponent
    return f"{percent:.{PERCENT_PLACES}f}" if isinstance(exponent, int) and exponent >= -PERCENT_PLACES \
        else str(percent)
