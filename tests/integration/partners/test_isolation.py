"""Partner A (Alpha) tries hard to read, list, guess or change partner B's (Beta's) things, on SQLite
and PostgreSQL. Every attempt is listed; each must fail without writing anything and without telling
"B's" from "nobody's".

JSON API
  1. list deals: B's own deal is absent; on the shared deal only A's participant, split and money show
  2. read B's deal by its portal UUID, and by its Salesforce Id: 404, the same answer as an unknown id
  3. change B's deal (PATCH): 404, nothing changes
  4. change A's own deal, naming B's registration: 404, nothing changes
  5. submit and withdraw B's registration: 404, it stays Draft
  6. register a deal from B's overlap; walk every overlap id: 404 for all of B's, as for unknown ones
  7. attribution and overlaps: A's rows only
  8. nothing of B (its name, notes, amounts, ids) anywhere in any response A gets
Pages and form posts
  9. open B's deal page: the same 404 page as an unknown deal
 10. form posts carrying B's ids (edit, submit, withdraw, register from B's overlap): 404, nothing written
Sessions
 11. a form post without the CSRF token, with B's token, or without a session: 403, nothing written
 12. a JSON write without the X-CSRF-Token header: 403
 13. a tampered cookie, a cookie signed with another key naming B's user, and B's cookie after B
     signed out or was disabled: no session (401 / the sign-in page)
Fuzzing
 14. every partner JSON operation fuzzed (schemathesis) with A's session: no 5xx, nothing of B
"""

from __future__ import annotations

import uuid

import pytest
from itsdangerous import URLSafeTimedSerializer

from connector.partners.web import COOKIE

pytestmark = pytest.mark.usefixtures("world")


def _reg_status(world, sfid):
    return world.h.rows("Deal_Registration__c", world.h.tables["Deal_Registration__c"].c.sfid == sfid)[0]["status__c"]


def _b_ids(world):
    return {"deal": world.uuid("Opportunity", world.beta_only), "deal_sfid": world.beta_only,
            "registration": world.uuid("Deal_Registration__c", world.beta_reg),
            "registration_sfid": world.beta_reg, "overlap": world.overlaps["beta"]}


def _snapshot(world):
    """Every row of the co-sell tables, to show an attempt wrote nothing."""
    return {n: sorted(map(repr, world.h.rows(n))) for n in ("Opportunity", "Co_Sell_Participant__c",
                                                            "Deal_Registration__c")}


# B's names, notes and amount, and the vendor's internal notes (participant notes, the deal's description).
B_SECRETS = ("Beta Secret", "BETA-SECRET-NOTE", "777777", "Beta Integrators", "ALPHA-NOTE", "VENDOR-INTERNAL")


def _assert_nothing_of_b(world, text: str):
    b = _b_ids(world)
    ids = (world.beta, world.uuid("Account", world.beta), b["deal"], b["deal_sfid"], b["registration"],
           b["registration_sfid"])
    for secret in (*B_SECRETS, *ids):
        assert secret not in text, f"{secret!r} leaked"


def test_the_json_api_shows_a_only_its_own_deals_splits_and_money(world, alpha):
    # 1. list
    deals = alpha.get("/partner/api/deals").json()
    assert {d["name"] for d in deals} == {"Shared Cloud Migration", "Alpha Renewal"}
    shared = next(d for d in deals if d["name"] == "Shared Cloud Migration")
    assert [(p["role"], p["split_percent"]) for p in shared["participations"]] == [("Reseller", "60.00")]
    # 60% of EUR 100,000: in EUR, in USD (corporate, EUR 0.872 from 2026-07-01), in GBP (Alpha's, 0.752)
    assert shared["compensation"] == {"deal": "60000.00", "corporate": "68807.34", "mine": "51743.12"}
    # 7. attribution and overlaps
    attribution = alpha.get("/partner/api/attribution").json()
    assert {r["partner"] for r in attribution} == {"Alpha Partners"}
    assert [o["account_name"] for o in alpha.get("/partner/api/overlaps").json()] == ["Overlap Target Inc"]
    # 8. nothing of B in any of it
    for path in ("/partner/api/deals", "/partner/api/attribution", "/partner/api/overlaps", "/partner/api/me",
                 f"/partner/api/deals/{shared['id']}"):
        _assert_nothing_of_b(world, alpha.get(path).text)


def test_b_s_ids_answer_404_exactly_as_unknown_ids_do(world, alpha):
    b = _b_ids(world)
    unknown = alpha.get(f"/partner/api/deals/{uuid.uuid4()}")
    assert unknown.status_code == 404
    # 2. read by UUID and by Salesforce Id
    for key in (b["deal"], b["deal_sfid"]):
        response = alpha.get(f"/partner/api/deals/{key}")
        assert (response.status_code, response.json()) == (404, unknown.json())
    before = _snapshot(world)
    # 3. change B's deal
    response = alpha.write("PATCH", f"/partner/api/deals/{b['deal']}", json={"changes": {"next_step": "hijacked"}})
    assert (response.status_code, response.json()) == (404, unknown.json())
    # 4. A's own deal, B's registration
    own = world.uuid("Opportunity", world.alpha_only)
    response = alpha.write("PATCH", f"/partner/api/deals/{own}",
                           json={"changes": {"registered_amount": "1"}, "registration": b["registration"]})
    assert response.status_code == 404
    # 5. move B's registration, by UUID and Salesforce Id
    unknown_reg = alpha.write("POST", f"/partner/api/registrations/{uuid.uuid4()}/submit")
    for key in (b["registration"], b["registration_sfid"]):
        for action in ("submit", "withdraw"):
            response = alpha.write("POST", f"/partner/api/registrations/{key}/{action}")
            assert (response.status_code, response.json()) == (404, unknown_reg.json()), action
    # 6. B's overlap, and a walk over every id
    unknown_overlap = alpha.write("POST", "/partner/api/overlaps/999999/register", json={})
    assert unknown_overlap.status_code == 404
    for overlap_id in range(1, 12):
        if overlap_id == world.overlaps["alpha"]:
            continue
        response = alpha.write("POST", f"/partner/api/overlaps/{overlap_id}/register", json={})
        assert (response.status_code, response.json()) == (404, unknown_overlap.json()), overlap_id
    assert _snapshot(world) == before
    assert _reg_status(world, world.beta_reg) == "Draft"


def test_pages_and_form_posts_carrying_b_s_ids_change_nothing(world, alpha):
    b = _b_ids(world)
    # 9. B's deal page is the page of a deal that does not exist
    unknown = alpha.get(f"/partner/deals/{uuid.uuid4()}")
    page = alpha.get(f"/partner/deals/{b['deal']}")
    assert page.status_code == unknown.status_code == 404
    assert page.text.replace(alpha.csrf, "") == unknown.text.replace(alpha.csrf, "")
    home = alpha.get("/partner/")
    assert "Shared Cloud Migration" in home.text and "Alpha Renewal" in home.text
    _assert_nothing_of_b(world, home.text)
    _assert_nothing_of_b(world, alpha.get(f"/partner/deals/{world.uuid('Opportunity', world.shared)}").text)
    # 10. forms with B's ids
    csrf = alpha.form_csrf()
    before = _snapshot(world)
    own = world.uuid("Opportunity", world.alpha_only)
    attempts = [
        (f"/partner/deals/{b['deal']}/edit", {"next_step": "hijacked"}),
        (f"/partner/deals/{own}/edit", {"registration": b["registration"], "registered_amount": "1"}),
        (f"/partner/registrations/{b['registration']}/submit", {}),
        (f"/partner/registrations/{b['registration']}/withdraw", {}),
        (f"/partner/overlaps/{b['overlap']}/register", {"name": "stolen"}),
    ]
    for path, form in attempts:
        response = alpha.http.post(path, data={"csrf": csrf, **form}, follow_redirects=False)
        assert response.status_code == 404, path
        _assert_nothing_of_b(world, response.text)
    assert _snapshot(world) == before


def test_posts_without_the_csrf_token_or_with_another_session_s_are_refused(world, alpha, beta):
    own_reg = world.uuid("Deal_Registration__c", world.alpha_reg)
    before = _snapshot(world)
    # 11. a form post with no token, with B's token, with no session at all
    for data in ({}, {"csrf": ""}, {"csrf": beta.form_csrf()}):
        response = alpha.http.post(f"/partner/registrations/{own_reg}/submit", data=data, follow_redirects=False)
        assert response.status_code == 403, data
    from fastapi.testclient import TestClient

    stranger = TestClient(alpha.http.app, base_url="https://testserver")
    assert stranger.post(f"/partner/registrations/{own_reg}/submit", data={"csrf": alpha.csrf},
                         follow_redirects=False).status_code == 403
    # 12. JSON writes without the header, or with B's
    assert alpha.http.post(f"/partner/api/registrations/{own_reg}/submit").status_code == 403
    assert alpha.http.post(f"/partner/api/registrations/{own_reg}/submit",
                           headers={"X-CSRF-Token": beta.csrf}).status_code == 403
    assert _snapshot(world) == before and _reg_status(world, world.alpha_reg) == "Draft"


def test_tampered_forged_and_ended_sessions_are_no_sessions(world, alpha, beta):
    from fastapi.testclient import TestClient

    app = alpha.http.app
    cookie = alpha.http.cookies.get(COOKIE)
    beta_user = next(u for u in world.workspace.users.list() if u.email == "beta@beta.example")
    # 13a. one character of A's cookie changed
    tampered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    # 13b. a cookie naming B's user, signed with another key
    forged = URLSafeTimedSerializer("not-the-secret-" * 3, salt="cosell-partner-session").dumps(
        {"u": beta_user.id, "v": beta_user.session_version, "c": "x"})
    for value in (tampered, forged, "", "garbage"):
        client = TestClient(app, base_url="https://testserver", cookies={COOKIE: value})
        assert client.get("/partner/api/deals").status_code == 401
        assert client.get("/partner/", follow_redirects=False).headers["location"] == "/partner/login"
    # 13c. B's cookie after B signs out, and after B is disabled
    stolen = beta.http.cookies.get(COOKIE)
    assert beta.write("DELETE", "/partner/api/session").status_code == 204
    replay = TestClient(app, base_url="https://testserver", cookies={COOKIE: stolen})
    assert replay.get("/partner/api/deals").status_code == 401
    again = type(beta)(app, "beta")
    world.workspace.users.disable("beta@beta.example")
    assert again.get("/partner/api/deals").status_code == 401
    assert TestClient(app, base_url="https://testserver").post(
        "/partner/api/session", json={"email": "beta@beta.example", "password": "beta-battery-staple-2"}
    ).status_code == 401


def test_fuzzed_json_requests_signed_in_as_a_never_reach_b_or_fail(world, alpha, app):
    """14. Every JSON API operation of the partner, fuzzed from the OpenAPI document (schemathesis) with
    A's session and CSRF token: no server error, nothing of B in any answer, B's rows unchanged."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/partner/api/")]
    assert len(operations) >= 8
    b_before = [world.h.rows(n, world.h.tables[n].c.sfid == sfid) for n, sfid in
                (("Opportunity", world.beta_only), ("Deal_Registration__c", world.beta_reg))]
    cookie = alpha.http.cookies.get(COOKIE)
    statuses: list[int] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            if case.path == "/partner/api/session" and case.method.upper() == "DELETE":
                return   # signing out would end the session the other cases use
            response = case.call(headers={"X-CSRF-Token": alpha.csrf, "Cookie": f"{COOKIE}={cookie}"},
                                 base_url="https://testserver")
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            _assert_nothing_of_b(world, response.text)
        check()
    assert statuses.count(200) >= 4 and 404 in statuses, "signed in: the reads answered, others' ids did not"
    assert [world.h.rows(n, world.h.tables[n].c.sfid == sfid) for n, sfid in
            (("Opportunity", world.beta_only), ("Deal_Registration__c", world.beta_reg))] == b_before
