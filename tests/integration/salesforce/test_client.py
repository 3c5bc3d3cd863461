"""The connector's Salesforce client against the emulator over HTTPS: login by
each flow, describe economy, transparent session renewal, retries of transient
failures, the quota guard, and clear errors for what retrying cannot fix."""

from __future__ import annotations

import math

import pytest

from connector.errors import AuthenticationFailed, ConfigurationError, PermanentApiError, QuotaExhausted
from connector.salesforce.client import NOT_MODIFIED, SalesforceClient
from tests.conftest import settings_for


@pytest.mark.parametrize("flow", ["jwt", "refresh_token", "password", "session"])
def test_every_auth_flow_logs_in(emulator, flow):
    client = SalesforceClient(settings_for(emulator, auth=flow))
    assert client.count("SELECT COUNT() FROM User") >= 1


def test_describe_costs_one_call_per_25_objects_and_honours_if_modified_since(emulator):
    client = SalesforceClient(settings_for(emulator))
    client.login()
    names = [o.name for o in emulator.org.objects]
    emulator.calls.reset()
    started = emulator.clock.now()
    described = client.describe(names)
    assert set(described) == set(names) and all(isinstance(d, dict) for d in described.values())
    assert emulator.calls.total() == math.ceil(len(names) / 25)
    assert emulator.api_used <= math.ceil(len(names) / 25) + 1, "composite counts once against the limit"

    emulator.advance_clock(seconds=2)
    again = client.describe(names, since=started)
    assert all(v is NOT_MODIFIED for v in again.values()), "an unchanged org costs no describe bodies"

    emulator.advance_clock(seconds=2)
    emulator.add_field("Opportunity", "Region__c", "string", length=40)
    changed = client.describe(names, since=started + __import__("datetime").timedelta(seconds=3))
    assert isinstance(changed["Opportunity"], dict)
    assert [n for n, v in changed.items() if v is not NOT_MODIFIED] == ["Opportunity"]


def test_an_object_the_org_does_not_have_is_reported_not_raised(emulator):
    client = SalesforceClient(settings_for(emulator))
    assert client.describe(["Account", "NoSuchThing__c"])["NoSuchThing__c"] is None


def test_an_expired_session_is_renewed_once_transparently(emulator):
    client = SalesforceClient(settings_for(emulator))
    client.count("SELECT COUNT() FROM Account")
    emulator.expire_sessions()
    assert client.count("SELECT COUNT() FROM Account") >= 0
    assert client.renewals == 1


def test_a_given_session_that_expires_is_a_clear_fatal_error(emulator):
    client = SalesforceClient(settings_for(emulator, auth="session"))
    client.count("SELECT COUNT() FROM Account")
    emulator.expire_sessions()
    with pytest.raises(AuthenticationFailed, match="cannot be renewed"):
        client.count("SELECT COUNT() FROM Account")


@pytest.mark.parametrize("inject", [
    lambda org: org.faults.fail_next(2, status=503, error_code="SERVER_UNAVAILABLE"),
    lambda org: org.faults.fail_next(1, status=500, error_code="UNKNOWN_EXCEPTION"),
    lambda org: org.faults.fail_next(2, status=400, error_code="UNABLE_TO_LOCK_ROW",
                                     message="unable to obtain exclusive access to this record"),
    lambda org: org.faults.fail_next(1, status=403, error_code="REQUEST_LIMIT_EXCEEDED",
                                     message="ConcurrentRequests (Concurrent API Requests) Limit exceeded."),
    lambda org: org.faults.drop_next(2),
])
def test_transient_failures_are_retried(emulator, inject):
    client = SalesforceClient(settings_for(emulator))
    client.login()
    inject(emulator)
    assert client.count("SELECT COUNT() FROM Account") >= 0


def test_retries_stop_after_the_configured_attempts(emulator):
    client = SalesforceClient(settings_for(emulator, max_attempts=3))
    client.login()
    emulator.faults.fail_next(5, status=503)
    with pytest.raises(Exception) as exc:
        client.count("SELECT COUNT() FROM Account")
    assert getattr(exc.value, "status", None) == 503
    assert emulator.faults.injected["error"] == 3


def test_permanent_errors_are_not_retried_and_carry_the_error_code(emulator):
    client = SalesforceClient(settings_for(emulator))
    client.login()
    emulator.calls.reset()
    with pytest.raises(PermanentApiError) as exc:
        client.count("SELECT COUNT() FROM Nope__c")
    assert exc.value.error_code == "INVALID_TYPE" and exc.value.status == 400
    assert emulator.calls.total() == 1


def test_quota_guard_stops_before_the_configured_share(emulator):
    client = SalesforceClient(settings_for(emulator, quota_share=0.8))
    client.login()
    emulator.set_daily_limit(100, used=79)
    client.count("SELECT COUNT() FROM Account")  # usage becomes 80/100
    with pytest.raises(QuotaExhausted) as exc:
        client.count("SELECT COUNT() FROM Account")
    assert (exc.value.used, exc.value.total) == (80, 100)
    assert emulator.api_used == 80, "the refused call never reached the org"


def test_missing_settings_name_the_variables_to_set(emulator):
    client = SalesforceClient(settings_for(emulator, auth="jwt", private_key=None))
    with pytest.raises(ConfigurationError, match="COSELL_PRIVATE_KEY"):
        client.login()


def test_wrong_credentials_are_an_authentication_failure_with_the_oauth_error(emulator):
    client = SalesforceClient(settings_for(emulator, auth="password", password="wrong"))
    with pytest.raises(AuthenticationFailed, match="invalid_grant: authentication failure"):
        client.login()


def test_query_pages_and_retries_each_page(emulator):
    with emulator.store.lock:
        emulator.store.bulk_load("Account", ({"Id": emulator.store.new_id("Account"), "Name": f"Q{i}"}
                                             for i in range(4500)))
    client = SalesforceClient(settings_for(emulator))
    client.login()
    emulator.faults.fail_next(1, status=503, path="/query/01g")
    names = [r["Name"] for r in client.query("SELECT Name FROM Account")]
    assert len(names) == emulator.store.count("Account")


def test_describe_global_and_its_304(emulator):
    client = SalesforceClient(settings_for(emulator))
    described = client.describe_global()
    assert {"Account", "Opportunity"} <= {o["name"] for o in described["sobjects"]}
    emulator.advance_clock(seconds=2)
    assert client.describe_global(since=emulator.clock.now()) is NOT_MODIFIED
