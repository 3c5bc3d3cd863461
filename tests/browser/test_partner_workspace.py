"""A partner in a real Chromium: signs in, sees exactly their deals, their split and compensation,
registers a deal from an overlap and submits it. Saves the partner deal page to
docs/screenshots/partner-deal.png (the README shows it)."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from tests.integration.partners.conftest import PASSWORD, app, world  # noqa: F401 - fixtures

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "partner-deal.png"


@pytest.fixture
def server(app):  # noqa: F811
    """The admin app with the partner workspace, served by uvicorn on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://localhost:{port}"   # browsers treat localhost as secure: the Secure cookie is sent
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_partner_signs_in_sees_their_deals_registers_and_submits(world, server, page):  # noqa: F811
    world.user("alpha")
    world.user("beta")
    page.goto(f"{server}/partner/")
    assert page.url.endswith("/partner/login")
    page.fill("#email", "alpha@alpha.example")
    page.fill("#password", PASSWORD["alpha"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/partner/$"))

    # exactly my deals
    names = sorted(page.locator("#deals tbody tr td:first-child a").all_inner_texts())
    assert names == ["Alpha Renewal", "Shared Cloud Migration"]
    body = page.inner_text("body")
    assert "Beta" not in body and "777,777" not in body
    shared = page.locator("#deals tbody tr", has_text="Shared Cloud Migration")
    assert "60.00% Revenue" in shared.inner_text() and "51,743.12 GBP" in shared.inner_text()

    # my split and compensation on the deal page, in the deal's, the corporate and my currency
    shared.locator("a").click()
    page.wait_for_url(re.compile(r".*/partner/deals/.+"))
    share = page.inner_text("#my-share")
    assert "60.00% Revenue" in share
    assert "60,000.00 EUR" in share and "68,807.34 USD" in share and "51,743.12 GBP" in share
    assert "40.00" not in page.inner_text("body") and "VENDOR-INTERNAL" not in page.content()

    # register a deal from my overlap, and submit it
    page.click("text=← My deals")
    overlap = page.locator("#overlaps tbody tr", has_text="Overlap Target Inc")
    overlap.locator("input[name=name]").fill("Overlap Target platform deal")
    overlap.locator("input[name=amount]").fill("45000")
    overlap.locator("input[name=close_date]").fill("2027-03-31")
    overlap.locator("button", has_text="Register deal").click()
    page.wait_for_url(re.compile(r".*/partner/deals/.+"))
    assert "Registered as a draft" in page.inner_text(".msg")
    assert page.inner_text("h1") == "Overlap Target platform deal"
    assert page.locator(".registration .status").inner_text() == "Draft"
    page.click(".registration button:text('Submit')")
    page.wait_for_url(re.compile(r".*/partner/deals/.+"))
    assert "Registration submitted." in page.inner_text(".msg")
    registration = page.inner_text(".registration")
    assert "Submitted" in registration and "Review deadline" in registration
    assert re.search(r"Review deadline\s+\d{4}-\d{2}-\d{2}", registration)
    assert "submitted by alpha@alpha.example" in registration
    assert "not agreed yet" in page.inner_text("#my-share") and "0.00" not in page.inner_text("#my-share"), "no split: no money"
    # the registration is in the portal database, Submitted, for the sync to carry
    t = world.h.tables["Deal_Registration__c"]
    regs = world.h.rows("Deal_Registration__c", t.c.partner_account__c == world.alpha,
                        t.c.status__c == "Submitted")
    assert [r["registered_amount__c"] for r in regs] == [45000]

    # the screenshot: the shared deal, with my split and compensation
    page.click("text=← My deals")
    page.locator("#deals a", has_text="Shared Cloud Migration").click()
    page.wait_for_url(re.compile(r".*/partner/deals/.+"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
