"""Channel conflicts: live registrations from different partners for one customer and opportunity, claims on
accounts direct sales owns, and more than one approval per opportunity and partner role."""

from __future__ import annotations

from connector.cosell import CHANNEL_CONFLICT_KINDS, ChannelConflict, Registration, detect_channel_conflicts

CUSTOMER, OTHER_CUSTOMER = "001Customer", "001Other"
OPP, OPP2 = "006Opp", "006Opp2"
SI, RESELLER, RESELLER2 = "001SI", "001Reseller", "001Reseller2"
ROLES = {SI: "System Integrator", RESELLER: "Reseller", RESELLER2: "Reseller"}


def reg(key: str, status: str, partner: str | None, *, customer: str | None = CUSTOMER,
        opp: str | None = OPP) -> Registration:
    return Registration(key=key, status=status, partner_account=partner,  # type: ignore[arg-type]
                        end_customer_account=customer, opportunity_key=opp)


def found(regs, **kwargs) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.kind, c.registration_keys) for c in detect_channel_conflicts(regs, **kwargs)]


def test_the_kinds():
    assert CHANNEL_CONFLICT_KINDS == ("competing_registrations", "customer_claimed", "direct_owned_account",
                                      "duplicate_approval")


def test_no_conflict_for_one_partner_or_different_deals():
    assert found([reg("r1", "Submitted", SI)]) == []
    assert found([reg("r1", "Submitted", SI), reg("r2", "Submitted", RESELLER, opp=OPP2)]) == []
    assert found([reg("r1", "Submitted", SI), reg("r2", "Submitted", RESELLER, customer=OTHER_CUSTOMER)]) == []
    assert found([]) == []


def test_live_registrations_from_different_partners_for_one_customer_and_opportunity_compete():
    [conflict] = detect_channel_conflicts([reg("r1", "Approved", SI), reg("r2", "Under Review", RESELLER)])
    assert conflict == ChannelConflict("competing_registrations", ("r1", "r2"), conflict.reason)
    assert conflict.reason == (
        f"2 live registrations for end customer {CUSTOMER} on opportunity {OPP} come from 2 different partners "
        f"({SI}, {RESELLER}): r1 by {SI} is Approved, r2 by {RESELLER} is Under Review; at most one partner's "
        "claim can be honoured")


def test_registrations_that_are_not_live_do_not_compete():
    for status in ("Draft", "Rejected", "Expired", "Withdrawn"):
        assert found([reg("r1", "Submitted", SI), reg("r2", status, RESELLER)]) == [], status


def test_the_same_partner_registering_twice_is_not_a_channel_conflict():
    assert found([reg("r1", "Submitted", SI), reg("r2", "Under Review", SI)]) == []


def test_all_competing_registrations_are_named_together():
    regs = [reg("r1", "Submitted", SI), reg("r2", "Submitted", SI), reg("r3", "Submitted", RESELLER),
            reg("x", "Submitted", RESELLER2, opp=OPP2)]
    assert found(regs) == [("competing_registrations", ("r1", "r2", "r3"))]


def test_registrations_not_yet_linked_to_an_opportunity_compete_among_themselves():
    regs = [reg("r1", "Submitted", SI, opp=None), reg("r2", "Submitted", RESELLER, opp=None),
            reg("r3", "Submitted", RESELLER2)]
    [conflict] = detect_channel_conflicts(regs)
    assert conflict.registration_keys == ("r1", "r2") and "no opportunity yet" in conflict.reason
    # without an end customer there is nothing to compare
    assert found([reg("r1", "Submitted", SI, customer=None), reg("r2", "Submitted", RESELLER, customer=None)]) == []


def test_a_live_registration_on_an_account_direct_sales_owns_is_flagged():
    regs = [reg("r1", "Submitted", SI), reg("r2", "Draft", RESELLER), reg("r3", "Approved", RESELLER2, opp=OPP2),
            reg("r4", "Submitted", RESELLER2, customer=OTHER_CUSTOMER, opp=OPP2)]
    conflicts = [c for c in detect_channel_conflicts(regs, direct_owned_accounts={CUSTOMER})
                 if c.kind == "direct_owned_account"]
    assert [c.registration_keys for c in conflicts] == [("r1",), ("r3",)]  # the draft is not a claim yet
    assert conflicts[0].reason == (f"registration r1 (Submitted) by partner {SI} claims end customer {CUSTOMER}, "
                                   "which direct sales already owns")


def test_one_approved_registration_per_opportunity_and_partner_role():
    # a system integrator and a reseller may both hold an approval on one deal
    regs = [reg("si", "Approved", SI), reg("re", "Approved", RESELLER, customer=OTHER_CUSTOMER)]
    assert found(regs, partner_roles=ROLES) == []
    # two resellers may not
    regs.append(reg("re2", "Approved", RESELLER2, customer=OTHER_CUSTOMER + "2"))
    conflicts = detect_channel_conflicts(regs, partner_roles=ROLES)
    assert [(c.kind, c.registration_keys) for c in conflicts] == [("duplicate_approval", ("re", "re2"))]
    assert "2 approved registrations on opportunity 006Opp for partners with the role Reseller" in conflicts[0].reason


def test_an_approval_by_a_partner_of_unknown_role_is_checked_against_every_other():
    regs = [reg("si", "Approved", SI, customer="a"), reg("re", "Approved", RESELLER, customer="b"),
            reg("who", "Approved", "001Unknown", customer="c")]
    assert found(regs, partner_roles=ROLES) == [("duplicate_approval", ("si", "who")),
                                                ("duplicate_approval", ("re", "who"))]
    assert found(regs[:1] + regs[2:]) == [("duplicate_approval", ("si", "who"))]  # no roles at all: one group
    # approvals on different opportunities, or not approved, never collide
    assert found([reg("a", "Approved", RESELLER, customer="a"), reg("b", "Approved", RESELLER2, customer="b", opp=OPP2),
                  reg("c", "Under Review", RESELLER2, customer="c")], partner_roles=ROLES) == []


def test_all_kinds_at_once_come_in_kind_order():
    regs = [reg("r1", "Approved", RESELLER), reg("r2", "Approved", RESELLER2)]
    assert found(regs, direct_owned_accounts=frozenset({CUSTOMER}), partner_roles=ROLES) == [
        ("competing_registrations", ("r1", "r2")),
        ("direct_owned_account", ("r1",)),
        ("direct_owned_account", ("r2",)),
        ("duplicate_approval", ("r1", "r2")),
    ]


# -- across opportunities of one end customer (issue 14) ------------------------------------------------------

def test_a_new_deal_at_a_customer_another_partner_holds_an_approval_at_is_flagged():
    held = reg("r1", "Approved", SI)
    for status in ("Submitted", "Under Review", "Approved"):
        newcomer = reg("r2", status, RESELLER, opp=OPP2)
        assert ("customer_claimed", ("r1", "r2")) in found([held, newcomer]), status
    assert found([held, reg("r2", "Submitted", RESELLER, opp=None)]) == [("customer_claimed", ("r1", "r2"))]


def test_what_is_not_a_customer_claim():
    held = reg("r1", "Approved", SI)
    # attempts that must not be flagged: the same partner again, another customer, a draft (not a claim yet),
    # an expired or rejected holder, and two submissions without any approval
    assert found([held, reg("r2", "Submitted", SI, opp=OPP2)]) == []
    assert found([held, reg("r2", "Submitted", RESELLER, customer=OTHER_CUSTOMER, opp=OPP2)]) == []
    assert found([held, reg("r2", "Draft", RESELLER, opp=OPP2)]) == []
    assert found([reg("r1", "Expired", SI), reg("r2", "Submitted", RESELLER, opp=OPP2)]) == []
    assert found([reg("r1", "Rejected", SI), reg("r2", "Submitted", RESELLER, opp=OPP2)]) == []
    assert found([reg("r1", "Submitted", SI), reg("r2", "Submitted", RESELLER, opp=OPP2)]) == []


def test_two_approvals_at_one_customer_are_one_conflict_not_two():
    assert found([reg("r1", "Approved", SI), reg("r2", "Approved", RESELLER, opp=OPP2)]) == [
        ("customer_claimed", ("r1", "r2"))]


def test_the_fingerprint_ignores_order():
    a = ChannelConflict("customer_claimed", ("r1", "r2"), "x")
    b = ChannelConflict("customer_claimed", ("r2", "r1"), "y")
    assert a.fingerprint == b.fingerprint != ChannelConflict("competing_registrations", ("r1", "r2"), "x").fingerprint


def test_direct_ownership_from_the_account_type_or_owner():
    from connector.cosell import DirectOwnership
    rule = DirectOwnership()
    assert rule.owns("Customer - Direct", None) and not rule.owns("Customer - Channel", "005A")
    assert not rule.owns(None, None)
    assert DirectOwnership(types=frozenset(), owners=frozenset({"005A"})).owns("Customer - Direct", "005A")
    assert not DirectOwnership(types=frozenset(), owners=frozenset({"005A"})).owns("Customer - Direct", "005B")
