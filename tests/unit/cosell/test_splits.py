"""Split rules per opportunity: revenue splits total exactly 100 in Decimal arithmetic, influence splits are not
counted, percentages lie in 0..100 with two places, one Sourced party at most, and the error names the
opportunity and the total."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.cosell import SPLIT_PROBLEM_KINDS, Participant, SplitError, check_splits, validate_splits

OPP, OPP2 = "006Dm0000000001AAA", "006Dm0000000002AAA"


def part(key: str, percent: str | None, split_type: str | None = "Revenue", *, opp: str = OPP,
         attribution: str | None = "Influenced", role: str = "Reseller") -> Participant:
    return Participant(key=key, opportunity_key=opp, partner_account=f"001{key}", role=role, attribution=attribution,
                       split_type=split_type, split_percent=None if percent is None else Decimal(percent))


def kinds(participants) -> list[str]:
    return [p.kind for p in validate_splits(participants)]


def test_revenue_splits_totalling_exactly_100_with_decimals_pass():
    assert validate_splits([part("a", "33.33"), part("b", "33.33"), part("c", "33.34")]) == []
    assert validate_splits([part("a", "100")]) == []
    assert validate_splits([part("a", "100.00")]) == []
    assert validate_splits([part("a", "0"), part("b", "100")]) == []


def test_a_revenue_total_short_by_a_cent_is_a_problem_naming_the_opportunity_and_total():
    [problem] = validate_splits([part("a", "33.33"), part("b", "33.33"), part("c", "33.33")])
    assert problem.kind == "revenue_total" and problem.opportunity_key == OPP
    assert problem.total == Decimal("99.99") and problem.participant_keys == ("a", "b", "c")
    assert f"opportunity {OPP}" in problem.message and "total 99.99%" in problem.message


def test_over_100_is_a_problem_too():
    [problem] = validate_splits([part("a", "60"), part("b", "50")])
    assert problem.kind == "revenue_total" and problem.total == Decimal("110")


def test_influence_splits_are_not_counted_and_need_not_total_100():
    assert validate_splits([part("a", "100"), part("b", "40", "Influence"), part("c", "80", "Influence")]) == []
    assert validate_splits([part("b", "40", "Influence")]) == []  # no revenue split: no total to reach


def test_no_splits_at_all_is_fine():
    assert validate_splits([part("a", None, None), part("b", None, None, attribution="Delivered")]) == []
    assert validate_splits([]) == []


def test_each_opportunity_is_checked_on_its_own():
    problems = validate_splits([part("a", "100"), part("b", "50", opp=OPP2), part("c", "100", opp=OPP),
                                part("d", "50", opp=OPP2)])
    assert [(p.kind, p.opportunity_key, p.total) for p in problems] == [("revenue_total", OPP, Decimal("200"))]


@pytest.mark.parametrize("percent", ["-0.01", "100.01", "250"])
def test_a_percent_outside_0_to_100_is_a_problem(percent):
    problems = validate_splits([part("a", percent, "Influence")])
    assert [p.kind for p in problems] == ["percent_out_of_range"]
    assert f"{percent}%" in problems[0].message


def test_a_third_decimal_place_is_a_problem_because_the_org_would_round_it():
    assert kinds([part("a", "33.335"), part("b", "66.665")]) == ["percent_precision", "percent_precision"]
    assert kinds([part("a", "50.000"), part("b", "50.00")]) == []  # trailing zeros round nothing away


def test_a_split_type_and_a_percent_come_together():
    assert kinds([part("a", None, "Revenue"), part("b", "100")]) == ["percent_missing"]
    assert kinds([part("a", None, "Influence")]) == ["percent_missing"]
    assert kinds([part("a", "20", None)]) == ["split_type_missing"]


def test_values_outside_the_orgs_restricted_picklists_are_problems():
    assert kinds([part("a", "100", "Overlay")]) == ["unknown_split_type"]
    assert kinds([part("a", "100", attribution="Co-Sourced")]) == ["unknown_attribution"]


def test_one_sourced_participant_at_most_per_opportunity():
    assert kinds([part("a", "60", attribution="Sourced"), part("b", "40", attribution="Influenced"),
                  part("c", None, None, attribution="Delivered")]) == []
    problems = validate_splits([part("a", "60", attribution="Sourced"), part("b", "40", attribution="Sourced")])
    assert [(p.kind, p.participant_keys) for p in problems] == [("multiple_sourced", ("a", "b"))]
    # the vendor's own direct sales count as the source too
    assert kinds([part("v", "50", role="Vendor", attribution="Sourced"),
                  part("b", "50", attribution="Sourced")]) == ["multiple_sourced"]
    # and sourcing on another opportunity does not count
    assert kinds([part("a", "100", attribution="Sourced"), part("b", "100", opp=OPP2, attribution="Sourced")]) == []


def test_every_problem_kind_is_declared():
    problems = validate_splits([part("a", "33.335", "Revenue", attribution="Sourced"),
                                part("b", "101", "Influence", attribution="Sourced"),
                                part("c", None, "Revenue"), part("d", "1", None), part("e", "1", "Overlay"),
                                part("f", None, None, attribution="Whatever")])
    assert {p.kind for p in problems} == set(SPLIT_PROBLEM_KINDS)


def test_check_splits_raises_a_split_error_with_every_problem():
    check_splits([part("a", "100")])
    with pytest.raises(SplitError) as caught:
        check_splits([part("a", "70"), part("b", "20"), part("c", "90", opp=OPP2)])
    error = caught.value
    assert isinstance(error, ValueError) and error.opportunity_keys == (OPP, OPP2)
    assert str(error) == (f"opportunity {OPP}: revenue splits total 90.00%, not 100% (a 70.00, b 20.00); "
                          f"opportunity {OPP2}: revenue splits total 90.00%, not 100% (c 90.00)")


def test_percentages_are_decimals_never_floats():
    with pytest.raises(TypeError, match="Decimal"):
        Participant("a", OPP, None, "Reseller", split_type="Revenue", split_percent=33.33)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        Participant("a", OPP, None, "Reseller", split_type="Revenue", split_percent=Decimal("NaN"))
    whole = Participant("a", OPP, None, "Reseller", split_percent=100)  # type: ignore[arg-type]
    assert whole.split_percent == Decimal(100)


def test_a_participant_from_a_co_sell_participant_record():
    record = {"Id": "a0ADm0000000001AAA", "Opportunity__c": OPP, "Partner_Account__c": "001Dm0000000009AAA",
              "Role__c": "Cloud Provider", "Attribution__c": "Influenced", "Split_Type__c": "Influence",
              "Split_Percent__c": Decimal("12.50"), "Portal_Id__c": "4f1c…"}
    p = Participant.from_record(record)
    assert (p.key, p.opportunity_key, p.role, p.split_type, p.split_percent) == (
        "a0ADm0000000001AAA", OPP, "Cloud Provider", "Influence", Decimal("12.50"))
    assert Participant.from_record(record, key_field="Portal_Id__c").key == "4f1c…"
