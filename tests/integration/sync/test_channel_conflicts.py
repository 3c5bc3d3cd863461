"""Channel conflicts found where a claim is made or changes, kept, shown and settled (issue 14), and
registrations that expire on the org's clock, through real sync runs on both databases. Runs go through
SyncRunner, as `cosell sync`, `cosell serve` and the admin API run them, so the co-sell step runs too."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from connector.channel_conflicts import ChannelConflictError, list_channel_conflicts
from connector.config import Settings
from connector.portal import Portal
from connector.scheduler import SyncRunner
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture


@pytest.fixture
def run(h):
    connector = SimpleNamespace(sync=h.engine, engine=h.database.engine, mapping=h.engine.mapping,
                                settings=Settings(_env_file=None, config="none.yaml"))
    runner = SyncRunner(connector)

    def once(*objects):
        h.tick()
        report = runner.run(list(objects) or None, trigger="manual", wait=0)
        assert report.status in ("succeeded", "parked", "retrying"), report.error
        return report
    return once


def _accounts(h, customer_type="Customer - Channel"):
    a = h.org.create("Account", {"Name": "Alpha Partners", "Is_Partner__c": True})
    b = h.org.create("Account", {"Name": "Beta Resellers", "Is_Partner__c": True})
    c = h.org.create("Account", {"Name": "Contoso Ltd", "Type": customer_type})
    return a, b, c


def _opp(h, customer, name="Contoso expansion"):
    return h.org.create("Opportunity", {"Name": name, "StageName": "Qualification", "CloseDate": "2027-03-31",
                                        "Amount": 90000, "AccountId": customer})


def _conflicts(h, status="open"):
    """This test's conflicts: the generated org data has channel conflicts of its own, found by the first run."""
    return [s for s in list_channel_conflicts(h.database.engine, schema=h.database.schema, status=status)
            if any(x["end_customer_name"] == "Contoso Ltd" for x in s.claims)]


def test_a_new_deal_at_a_customer_another_partner_holds_an_approval_at_is_flagged_stored_and_sent(h, run):
    a, b, c = _accounts(h)
    held = h.org.create("Deal_Registration__c", {"Opportunity__c": _opp(h, c), "Status__c": "Approved",
                                                 "Partner_Account__c": a, "End_Customer_Account__c": c,
                                                 "Expiry_Date__c": "2027-06-30"})
    run()
    portal = Portal.for_sync(h.engine)
    deal = portal.register_deal(partner=b, end_customer=c, name="Contoso new workload",
                                close_date=dt.date(2027, 4, 30))
    assert [x.kind for x in deal.channel_conflicts] == ["customer_claimed"]
    [stored] = _conflicts(h)
    assert stored.kind == "customer_claimed" and stored.detected_by == "register"
    assert [(x["registration_id"], x["partner_name"], x["status"]) for x in stored.claims] == [
        (held, "Alpha Partners", "Approved"), (None, "Beta Resellers", "Draft")]
    assert "Alpha Partners" in stored.reason and "Contoso Ltd" in stored.reason
    run()
    new_opp = h.org.records("SELECT Id, Channel_Conflict__c, Channel_Conflict_Reason__c FROM Opportunity "
                            "WHERE Name = 'Contoso new workload'")[0]
    assert new_opp["Channel_Conflict__c"] is True and new_opp["Channel_Conflict_Reason__c"].startswith(
        "customer_claimed")
    portal.submit(deal.registration)
    run()
    assert len(_conflicts(h)) == 1, "found again on submit, kept once"


def test_two_partners_drafting_the_same_deal_are_flagged_when_the_second_submits(h, run):
    a, b, c = _accounts(h)
    opp = _opp(h, c)
    run()
    portal = Portal.for_sync(h.engine)
    first = portal.register_deal(partner=a, end_customer=c, opportunity=opp)
    second = portal.register_deal(partner=b, end_customer=c, opportunity=opp, attribution="Influenced")
    assert second.channel_conflicts == () or all(x.kind != "competing_registrations"
                                                  for x in second.channel_conflicts), "a draft is no claim yet"
    assert portal.submit(first.registration) == []
    found = portal.submit(second.registration)
    assert [x.kind for x in found] == ["competing_registrations"]
    [stored] = _conflicts(h)
    assert stored.detected_by == "submit"
    assert {x["partner_name"] for x in stored.claims} == {"Alpha Partners", "Beta Resellers"}


def test_an_account_direct_sales_owns_is_read_from_the_org(h, run):
    a, _, direct = _accounts(h, "Customer - Direct")
    run()
    deal = Portal.for_sync(h.engine).register_deal(partner=a, end_customer=direct, name="Direct turf",
                                                   close_date=dt.date(2027, 1, 31))
    assert [x.kind for x in deal.channel_conflicts] == ["direct_owned_account"], "no list passed by the caller"


def test_an_end_customer_changing_to_direct_in_salesforce_is_found_by_the_next_sync(h, run):
    a, _, c = _accounts(h)
    h.org.create("Deal_Registration__c", {"Opportunity__c": _opp(h, c), "Status__c": "Submitted",
                                          "Partner_Account__c": a, "End_Customer_Account__c": c})
    run()
    assert _conflicts(h) == []
    h.org.update("Account", c, {"Type": "Customer - Direct"})
    run()
    [stored] = _conflicts(h)
    assert stored.kind == "direct_owned_account" and stored.detected_by == "sync"


def test_an_approval_in_salesforce_is_checked_by_the_next_sync(h, run):
    a, b, c = _accounts(h)
    first = h.org.create("Deal_Registration__c", {"Opportunity__c": _opp(h, c), "Status__c": "Submitted",
                                                  "Partner_Account__c": a, "End_Customer_Account__c": c})
    h.org.create("Deal_Registration__c", {"Opportunity__c": _opp(h, c, "Contoso data platform"),
                                          "Status__c": "Submitted", "Partner_Account__c": b,
                                          "End_Customer_Account__c": c})
    run()
    assert _conflicts(h) == [], "two submissions on two deals are not yet a conflict"
    h.org.update("Deal_Registration__c", first, {"Status__c": "Approved", "Expiry_Date__c": "2027-05-31",
                                                 "Decided_At__c": "2026-12-01T10:00:00Z"})
    run()
    [stored] = _conflicts(h)
    assert stored.kind == "customer_claimed" and stored.claims[0]["registration_id"] == first


def test_an_admin_resolves_a_conflict_with_a_recorded_decision_and_the_flag_clears(h, run):
    a, b, c = _accounts(h)
    opp = _opp(h, c)
    run()
    portal = Portal.for_sync(h.engine)
    first = portal.register_deal(partner=a, end_customer=c, opportunity=opp)
    second = portal.register_deal(partner=b, end_customer=c, opportunity=opp, attribution="Influenced")
    portal.submit(first.registration)
    portal.submit(second.registration)
    run()
    assert h.org.get("Opportunity", opp)["Channel_Conflict__c"] is True
    [stored] = _conflicts(h)
    register = portal.conflicts
    with pytest.raises(ChannelConflictError, match="choose one of: honour, dismiss"):
        register.resolve(stored.id, decision="ignore", by="ops@vendor")
    with pytest.raises(ChannelConflictError, match="honour needs the winning registration"):
        register.resolve(stored.id, decision="honour", winner="a0B000000000000AAA", by="ops@vendor")
    with pytest.raises(ChannelConflictError, match="needs a note"):
        register.resolve(stored.id, decision="dismiss", by="ops@vendor")
    winner = h.rows("Deal_Registration__c", h.tables["Deal_Registration__c"].c._uuid == first.registration)[0]
    done = register.resolve(stored.id, decision="honour", winner=winner["sfid"], by="ops@vendor",
                            note="Alpha registered first and ran the workshop")
    assert (done.status, done.decision, done.winner, done.resolved_by) == (
        "resolved", "honour", first.registration, "ops@vendor")
    with pytest.raises(ChannelConflictError, match="already resolved"):
        register.resolve(stored.id, decision="dismiss", by="ops@vendor", note="x")
    assert _conflicts(h) == [] and [x.id for x in _conflicts(h, "resolved")] == [stored.id]
    run()
    assert h.org.get("Opportunity", opp)["Channel_Conflict__c"] is False
    run()
    assert _conflicts(h) == [], "a resolved conflict is not raised again"


def test_an_approved_registration_expires_on_the_org_clock_on_both_sides_once(h, run, caplog):
    a, _, c = _accounts(h)
    org_today = h.engine.client.org_now().date() if h.engine.client.calls else dt.date.today()
    reg = h.org.create("Deal_Registration__c", {"Opportunity__c": _opp(h, c), "Status__c": "Approved",
                                                "Partner_Account__c": a, "End_Customer_Account__c": c,
                                                "Expiry_Date__c": (org_today + dt.timedelta(days=3)).isoformat()})
    run()
    assert h.org.get("Deal_Registration__c", reg)["Status__c"] == "Approved", "not due yet"
    h.org.advance_clock(days=8)      # the org's clock, five days past the expiry date; this machine's is not
    caplog.set_level("INFO", logger="connector.registrations")
    run()
    assert h.org.get("Deal_Registration__c", reg)["Status__c"] == "Expired"
    local = h.rows("Deal_Registration__c", h.tables["Deal_Registration__c"].c.sfid == reg)[0]
    assert local["status__c"] == "Expired"
    run()
    logged = [r for r in caplog.records if r.name == "connector.registrations" and reg in r.getMessage()]
    assert len(logged) == 1, "logged once"
    assert not [c for c in h.conflicts() if c["field_name"] == "Status__c"], "the clock's move is not refused"
