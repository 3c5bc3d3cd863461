"""Two partners on one synced org, for the partner workspace tests: Alpha and Beta share a deal
(60/40 revenue split, each with notes of its own), and each has a deal and a Draft registration
the other must never see; each has a matched overlap to register from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connector.partners import PartnerWorkspace
from tests.integration.sync.test_sync import Harness

CLOSE = dt.date(2026, 12, 15)
PASSWORD = {"alpha": "alpha-correct-horse-1", "beta": "beta-battery-staple-2"}


class World:
    def __init__(self, h: Harness):
        self.h = h
        create = h.org.create
        self.alpha = create("Account", {"Name": "Alpha Partners", "Is_Partner__c": True, "Partner_Type__c": "Reseller",
                                        "CurrencyIsoCode": "GBP"})
        self.beta = create("Account", {"Name": "Beta Integrators", "Is_Partner__c": True,
                                       "Partner_Type__c": "System Integrator", "CurrencyIsoCode": "EUR"})
        self.shared_customer = create("Account", {"Name": "Shared Customer Ltd", "Website": "shared-cust.example"})
        self.alpha_customer = create("Account", {"Name": "Alpha Only Corp", "Website": "alpha-only.example"})
        self.beta_customer = create("Account", {"Name": "Beta Secret GmbH", "Website": "beta-secret.example"})
        self.overlap_customer = create("Account", {"Name": "Overlap Target Inc", "Website": "overlap-target.example",
                                                   "BillingCountry": "United States"})
        self.beta_overlap_customer = create("Account", {"Name": "Beta Overlap AG", "Website": "beta-overlap.example"})
        self.shared = create("Opportunity", {"Name": "Shared Cloud Migration", "AccountId": self.shared_customer,
                                             "StageName": "Qualification", "CloseDate": CLOSE.isoformat(),
                                             "Amount": 100000, "CurrencyIsoCode": "EUR",
                                             "Description": "VENDOR-INTERNAL pricing floor 80k"})
        create("Co_Sell_Participant__c", {"Opportunity__c": self.shared, "Partner_Account__c": self.alpha,
                                          "Role__c": "Reseller", "Attribution__c": "Sourced",
                                          "Split_Type__c": "Revenue", "Split_Percent__c": 60,
                                          "Notes__c": "ALPHA-NOTE"})
        create("Co_Sell_Participant__c", {"Opportunity__c": self.shared, "Partner_Account__c": self.beta,
                                          "Role__c": "System Integrator", "Attribution__c": "Delivered",
                                          "Split_Type__c": "Revenue", "Split_Percent__c": 40,
                                          "Notes__c": "BETA-SECRET-NOTE"})
        self.alpha_only = create("Opportunity", {"Name": "Alpha Renewal", "AccountId": self.alpha_customer,
                                                 "StageName": "Prospecting", "CloseDate": CLOSE.isoformat(),
                                                 "Amount": 20000, "CurrencyIsoCode": "USD"})
        create("Co_Sell_Participant__c", {"Opportunity__c": self.alpha_only, "Partner_Account__c": self.alpha,
                                          "Role__c": "Reseller", "Attribution__c": "Sourced",
                                          "Split_Type__c": "Revenue", "Split_Percent__c": 100})
        self.alpha_reg = create("Deal_Registration__c", {"Opportunity__c": self.alpha_only,
                                                         "Partner_Account__c": self.alpha,
                                                         "End_Customer_Account__c": self.alpha_customer,
                                                         "Status__c": "Draft", "Registered_Amount__c": 20000})
        self.beta_only = create("Opportunity", {"Name": "Beta Secret Deal", "AccountId": self.beta_customer,
                                                "StageName": "Prospecting", "CloseDate": CLOSE.isoformat(),
                                                "Amount": 777777, "CurrencyIsoCode": "EUR"})
        create("Co_Sell_Participant__c", {"Opportunity__c": self.beta_only, "Partner_Account__c": self.beta,
                                          "Role__c": "System Integrator", "Attribution__c": "Sourced",
                                          "Split_Type__c": "Revenue", "Split_Percent__c": 100})
        self.beta_reg = create("Deal_Registration__c", {"Opportunity__c": self.beta_only,
                                                        "Partner_Account__c": self.beta,
                                                        "End_Customer_Account__c": self.beta_customer,
                                                        "Status__c": "Draft", "Registered_Amount__c": 777777})
        h.sync()
        self.workspace = PartnerWorkspace(h.engine)
        self.book = self.workspace.book

    def uuid(self, name: str, sfid: str) -> str:
        return self.h.rows(name, self.h.tables[name].c.sfid == sfid)[0]["_uuid"]

    def import_overlaps(self, tmp_path) -> dict[str, int]:
        path = tmp_path / "overlaps.csv"
        path.write_text("Partner,Partner Account Name,Domain,Partner Population,Partner Record ID,Country\n"
                        "Alpha Partners,Overlap Target Inc,overlap-target.example,Prospects,a-1,USA\n"
                        "Beta Integrators,Beta Overlap AG,beta-overlap.example,Customers,b-1,\n")
        self.book.import_file(path)
        return {r["partner_name"].split()[0].lower(): r["id"] for r in self.book.list()}

    def user(self, who: str):
        """An active user of partner `who` (alpha or beta), invited and accepted."""
        account = self.alpha if who == "alpha" else self.beta
        invite = self.workspace.users.invite(account, f"{who}@{who}.example")
        return self.workspace.users.accept(invite.token, PASSWORD[who])


@pytest.fixture
def world(emulator, database, tmp_path):
    w = World(Harness(emulator, database))
    w.overlaps = w.import_overlaps(tmp_path)
    return w


SECRET = "partner-session-secret-for-tests-0123456789"


class Partner:
    """A signed-in partner on the JSON API, as a PRM front end would drive it."""

    def __init__(self, app, who: str):
        from fastapi.testclient import TestClient

        self.http = TestClient(app, base_url="https://testserver")   # the cookie is Secure
        self.who = who
        response = self.http.post("/partner/api/session", json={"email": f"{who}@{who}.example",
                                                                "password": PASSWORD[who]})
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]

    def get(self, path: str, **kw):
        return self.http.get(path, **kw)

    def write(self, method: str, path: str, **kw):
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)

    def form_csrf(self, path: str = "/partner/") -> str:
        """The CSRF token a page's forms carry."""
        import re

        page = self.http.get(path)
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def app(world, emulator, database):
    """The admin app (`cosell serve`'s) on the world's database, with the partner workspace mounted."""
    from connector.admin.api import create_app
    from connector.bootstrap import build
    from tests.conftest import mapping_for, settings_for

    url = database.engine.url.render_as_string(hide_password=False)
    connector = build(settings_for(emulator, database_url=url, partner_session_secret=SECRET))
    connector.__dict__["engine"] = database.engine
    connector.__dict__["mapping"] = mapping_for(database)
    app = create_app(connector, "test-admin-token-0123456789abcdef")
    world.connector = connector
    return app


@pytest.fixture
def alpha(world, app):
    world.user("alpha")
    return Partner(app, "alpha")


@pytest.fixture
def beta(world, app):
    world.user("beta")
    return Partner(app, "beta")
