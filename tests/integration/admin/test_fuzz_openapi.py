"""Every admin API endpoint fuzzed from its own OpenAPI document (schemathesis): whatever
the generated request, the API answers without a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from connector.admin.api import create_app
from connector.bootstrap import build
from connector.emulator import Emulator
from tests.conftest import settings_for

TOKEN = "fuzz-admin-token-0123456789"


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    with Emulator("cosell_demo", records=10, seed=8) as org:
        connector = build(settings_for(org, database_url=f"sqlite:///{folder / 'portal.db'}"))
        connector.mirror.apply(connector.mirror.plan())
        org.advance_clock(seconds=1)
        connector.sync.run()
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(connector, TOKEN))


def test_no_server_error_for_any_request(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, "every route is in the OpenAPI document"
    calls: list[tuple[str, int]] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
            calls.append((case.method, response.status_code))
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
        check()
    assert len(calls) >= 3 * len(operations), "each operation was exercised several times"
    assert any(status < 300 for _, status in calls) and any(400 <= status < 500 for _, status in calls)
