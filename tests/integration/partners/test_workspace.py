"""The partner workspace as a partner drives it, on SQLite and PostgreSQL: sign-in (the form's CSRF
token, one answer for a wrong password and an unknown e-mail), a deal registered from an overlap,
submitted and carried to Salesforce by the sync, the vendor's decision coming back with its history,
edits the state machine allows and refuses, and bad input answered with one line naming the field."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from tests.integration.partners.conftest import PASSWORD


def _form_token(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_sign_in_by_the_form_and_sign_out(world, app):
    world.user("alpha")
    browser = TestClient(app, base_url="https://testserver")
    assert browser.get("/partner/", follow_redirects=False).headers["location"] == "/partner/login"
    login = browser.get("/partner/login")
    token = _form_token(login)
    assert browser.post("/partner/login", data={"email": "alpha@alpha.example", "password": PASSWORD["alpha"]},
                        follow_redirects=False).status_code == 403            # no CSRF token: refused
    wrong = browser.post("/partner/login", data={"email": "alpha@alpha.example", "password": "nope-nope-nope",
                                                 "csrf": token})
    unknown = browser.post("/partner/login", data={"email": "nobody@alpha.example", "password": "nope-nope-nope",
                                                   "csrf": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong e-mail or password." in wrong.text and "Wrong e-mail or password." in unknown.text
    ok = browser.post("/partner/login", data={"email": "Alpha@alpha.example ", "password": PASSWORD["alpha"],
                                              "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303
    home = browser.get("/partner/")
    assert "Alpha Renewal" in home.text
    assert _form_token(home) != token, "a new CSRF token after sign-in"
    assert browser.post("/partner/logout", data={"csrf": _form_token(home)}, follow_redirects=False).status_code == 303
    assert browser.get("/partner/", follow_redirects=False).status_code == 303


def test_register_from_an_overlap_submit_and_see_the_vendor_s_decision(world, alpha):
    h = world.h
    overlap = world.overlaps["alpha"]
    made = alpha.write("POST", f"/partner/api/overlaps/{overlap}/register",
                       json={"name": "Overlap Target expansion", "amount": "45000", "close_date": "2027-03-31"})
    assert made.status_code == 201, made.text
    deal = made.json()
    assert deal["name"] == "Overlap Target expansion" and deal["end_customer"] == "Overlap Target Inc"
    registration = deal["registrations"][0]
    assert (registration["status"], registration["actions"]) == ("Draft", ["submit", "withdraw"])
    again = alpha.write("POST", f"/partner/api/overlaps/{overlap}/register", json={})
    assert again.status_code == 422 and "already registered" in again.json()["detail"]

    submitted = alpha.write("POST", f"/partner/api/registrations/{registration['id']}/submit").json()
    reg = submitted["registrations"][0]
    assert reg["status"] == "Submitted" and reg["actions"] == ["withdraw"]
    submitted_at = dt.datetime.fromisoformat(reg["submitted_at"])
    assert dt.datetime.fromisoformat(reg["review_deadline"]) == submitted_at + dt.timedelta(days=10)
    # In review the registered terms are locked; the next step is not.
    locked = alpha.write("PATCH", f"/partner/api/deals/{deal['id']}",
                         json={"changes": {"amount": "1", "registered_amount": "1"},
                               "registration": reg["id"]})
    assert locked.status_code == 422
    assert "amount: locked now" in locked.json()["detail"] and "registered_amount: locked now" in \
        locked.json()["detail"]
    assert alpha.write("PATCH", f"/partner/api/deals/{deal['id']}",
                       json={"changes": {"next_step": "Joint workshop"}}).status_code == 200

    h.sync()
    sf = h.org.records("SELECT Id, NextStep, Amount FROM Opportunity WHERE Name = 'Overlap Target expansion'")
    assert len(sf) == 1 and sf[0]["NextStep"] == "Joint workshop" and sf[0]["Amount"] == 45000
    sf_reg = h.org.records(f"SELECT Id, Status__c, Partner_Account__c FROM Deal_Registration__c "
                           f"WHERE Opportunity__c = '{sf[0]['Id']}'")[0]
    assert (sf_reg["Status__c"], sf_reg["Partner_Account__c"]) == ("Submitted", world.alpha)

    # The vendor approves in Salesforce; the partner sees it, with the history.
    h.tick()
    h.org.update("Deal_Registration__c", sf_reg["Id"], {"Status__c": "Approved", "Expiry_Date__c": "2027-06-30",
                                                        "Decided_At__c": "2026-12-03T10:00:00.000+0000"})
    h.sync()
    approved = alpha.get(f"/partner/api/deals/{deal['id']}").json()["registrations"][0]
    assert approved["status"] == "Approved" and approved["expiry_date"] == "2027-06-30"
    history = [e["what"] for e in approved["history"]]
    assert history[0] == "registered by alpha@alpha.example: from overlap %d" % overlap
    assert "submitted by alpha@alpha.example" in history and "Approved by the vendor" in history
    assert history[-1] == "protection runs until 2027-06-30"
    assert approved["actions"] == []
    refused = alpha.write("POST", f"/partner/api/registrations/{reg['id']}/withdraw")
    assert refused.status_code == 422 and "Approved registration cannot be withdrawn" in refused.json()["detail"]


def test_bad_input_gets_one_line_naming_the_field_and_writes_nothing(world, alpha):
    own = world.uuid("Opportunity", world.alpha_only)
    reg = world.uuid("Deal_Registration__c", world.alpha_reg)
    before = world.h.rows("Opportunity", world.h.tables["Opportunity"].c._uuid == own)[0]
    for changes, says in (({"amount": "12,000 EUR"}, "amount: '12,000 EUR' is not an amount"),
                          ({"close_date": "31/12/2026"}, "close_date: '31/12/2026' is not a date (YYYY-MM-DD)"),
                          ({"amount": "-5"}, "amount: an amount is a positive number"),
                          ({"stagename": "Closed Won"}, "stagename: not a field you can change"),
                          ({"next_step": "ok", "description": "x"}, "description: not a field you can change"),
                          ({"registered_amount": "5"}, "registered_amount: belongs to a registration")):
        response = alpha.write("PATCH", f"/partner/api/deals/{own}", json={"changes": changes})
        assert response.status_code == 422 and says in response.json()["detail"], (changes, response.text)
        assert "\n" not in response.json()["detail"]
    assert world.h.rows("Opportunity", world.h.tables["Opportunity"].c._uuid == own)[0] == before
    # a good edit of the registration goes through, on the Draft
    ok = alpha.write("PATCH", f"/partner/api/deals/{own}", json={"changes": {"registered_amount": "21000.5"},
                                                                  "registration": reg})
    assert ok.status_code == 200 and ok.json()["registrations"][0]["registered_amount"] == "21000.50"
    # the form face says it on the page
    page = alpha.http.post(f"/partner/deals/{own}/edit", data={"csrf": alpha.form_csrf(), "close_date": "soon"})
    assert "close_date: &#39;soon&#39; is not a date (YYYY-MM-DD)" in page.text
