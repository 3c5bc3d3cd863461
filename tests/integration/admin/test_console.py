"""The console's guards, tried as an attacker would (HTTP only, no browser; the browser tests drive the
pages): every page wants a session; every form post wants the session's CSRF token; a session signed
with another key, or made for another admin token, is no session; values are escaped; pages are not
framable. Each attempt is listed below and changes nothing."""

from __future__ import annotations

import re

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import update

from connector.admin.api import create_app
from tests.integration.admin.test_admin_api import TOKEN

PAGES = ["/console", "/console/runs", "/console/runs/1", "/console/conflicts", "/console/parked",
         "/console/resync", "/console/mapping"]
POSTS = {"/console/conflicts/1/resolve": {"take": "local"}, "/console/parked/retry": {},
         "/console/parked/dismiss": {"object": "Opportunity", "record_uuid": "x"},
         "/console/resync": {"scope": "all", "mode": "full"}, "/console/logout": {}}


def signed_in(http, name="Eve Admin", token=TOKEN) -> str:
    """Sign in as the form does; returns the session's CSRF token (read from a page, as a browser would)."""
    page = http.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    answer = http.post("/console/login", data={"name": name, "secret": token, "nonce": nonce}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console", answer.text
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/console/resync").text).group(1)


def test_pages_and_posts_need_a_session(admin):
    http = admin.http
    for path in PAGES:
        answer = http.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login", path
    for path, form in POSTS.items():
        answer = http.post(path, data=form, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login", path
    # the bearer token opens the API, not the console
    assert http.get("/console", headers={"Authorization": f"Bearer {TOKEN}"}, follow_redirects=False).status_code == 303
    assert http.get("/", follow_redirects=False).headers["location"] == "/console"


def test_sign_in_refuses_a_wrong_token_a_missing_nonce_and_no_name(admin):
    http = admin.http
    page = http.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    attempts = [{"name": "Eve", "secret": TOKEN[:-1] + "x", "nonce": nonce},   # wrong token
                {"name": "Eve", "secret": "", "nonce": nonce},                  # no token
                {"name": "Eve", "secret": TOKEN, "nonce": "forged"},            # a nonce not this browser's
                {"name": "Eve", "secret": TOKEN},                               # no nonce (login CSRF)
                {"name": "  ", "secret": TOKEN, "nonce": nonce}]                # no name to record
    for form in attempts:
        answer = http.post("/console/login", data=form, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?problem="), form
        assert "cosell_admin" not in answer.cookies
    assert http.get("/console", follow_redirects=False).status_code == 303
    assert TOKEN not in page.text


def test_every_form_post_needs_the_csrf_token_of_its_session(admin):
    http = admin.http
    t = admin.tables["Opportunity"]
    bad = admin.rows("Opportunity")[0]
    admin.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    admin.run()
    runs_before = admin.count(admin.sync.state.runs)
    csrf = signed_in(http)
    forged = csrf[:-2] + ("AA" if not csrf.endswith("AA") else "BB")
    posts = {**POSTS, "/console/parked/dismiss": {"object": "Opportunity", "record_uuid": bad["_uuid"]}}
    for path, form in posts.items():
        for token in (None, "", forged):
            data = dict(form, **({"csrf": token} if token is not None else {}))
            answer = http.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, token, answer.text)
            assert "nothing was done" in answer.text
    assert [p["record_uuid"] for p in http.get("/parked", headers={"Authorization": f"Bearer {TOKEN}"}).json()] == [
        bad["_uuid"]], "nothing dismissed"
    admin.wait()
    assert admin.count(admin.sync.state.runs) == runs_before, "no resync started"
    assert http.get("/console", follow_redirects=False).status_code == 200, "still signed in: logout was refused too"
    # with its token the same post goes through
    answer = http.post("/console/parked/dismiss", data={"object": "Opportunity", "record_uuid": bad["_uuid"],
                                                       "csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and "dismissed" in answer.headers["location"]


def test_a_session_signed_with_another_key_or_for_another_token_is_no_session(admin):
    http = admin.http
    fake = URLSafeTimedSerializer("not-the-key", salt="session").dumps({"name": "Mallory", "csrf": "c"})
    http.cookies.set("cosell_admin", fake)
    assert http.get("/console", follow_redirects=False).status_code == 303
    http.cookies.clear()
    signed_in(http)
    cookie = http.cookies.get("cosell_admin")
    rotated = create_app(admin.connector, TOKEN + "-rotated")
    from fastapi.testclient import TestClient

    with TestClient(rotated) as again:
        again.cookies.set("cosell_admin", cookie)
        assert again.get("/console", follow_redirects=False).status_code == 303, "rotating the token signs out"


def test_values_are_escaped_and_pages_cannot_be_framed(admin):
    http = admin.http
    t = admin.tables["Opportunity"]
    row = admin.rows("Opportunity")[0]
    admin.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="<script>alert(1)</script>"))
    admin.org.advance_clock(seconds=5)
    admin.org.update("Opportunity", row["sfid"], {"NextStep": "org <b>says</b>"})
    admin.run()
    signed_in(http, name="<img src=x onerror=alert(1)>")
    page = http.get("/console/conflicts?state=all")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "org &lt;b&gt;says&lt;/b&gt;" in page.text
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"], "default-src 'none' forbids every script"
    notice = http.get("/console/parked?notice=<script>x</script>")
    assert "<script>x" not in notice.text and "&lt;script&gt;x" in notice.text
