"""A mapping that loads but does not fit the org, and a field deleted in the org after mirroring.

Tried with `cosell mapping check --org`: `external_id: Name` (a field, not an external ID);
a field policy on a field the org does not have; an object the org does not have; read_write on
an object the integration user cannot create. Each is a FAIL line naming the object and what to
choose, exit 1. And a query naming a field the org deleted: the error says to run `cosell mirror`."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from connector.cli import app
from connector.errors import PermanentApiError
from connector.mapping import DEFAULT_MAPPING_PATH
from connector.salesforce.client import SalesforceClient
from tests.conftest import settings_for
from tests.e2e.test_mirror_cli import _env

runner = CliRunner()


def test_mapping_check_against_the_org_names_every_misfit(emulator, clean_env):
    data = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())
    data["objects"]["Account"]["external_id"] = "Name"
    data["objects"]["Opportunity"]["field_policies"]["NoSuchField__c"] = "local_wins"
    data["objects"]["NoSuchObject__c"] = {"direction": "read_only"}
    data["objects"]["DatedConversionRate"] = {"direction": "read_write", "external_id": "IsoCode",
                                              "conflict_policy": "salesforce_wins"}
    path = clean_env / "mapping.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["mapping", "check", str(path), "--org"], env=_env(emulator, clean_env))
    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "FAIL object Account: external_id Name is not an external-ID field (choose one of: " in out
    assert "Portal_Id__c" in out
    assert "field_policies name fields the org does not have: NoSuchField__c" in out
    assert "FAIL object NoSuchObject__c: the org has no such object" in out
    assert "FAIL object DatedConversionRate:" in out and "the user cannot create records" in out


def test_the_shipped_mapping_checks_clean_against_the_org(emulator, clean_env):
    result = runner.invoke(app, ["mapping", "check", "--org"], env=_env(emulator, clean_env))
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output


def test_a_query_of_a_deleted_field_says_to_run_cosell_mirror(emulator):
    client = SalesforceClient(settings_for(emulator))
    with pytest.raises(PermanentApiError) as exc:
        client.count("SELECT COUNT() FROM Opportunity WHERE Deleted_In_The_Org__c = null")
    assert exc.value.error_code == "INVALID_FIELD"
    assert "run `cosell mirror --plan` to see the drift, then `cosell mirror`" in str(exc.value)


def test_mirror_refuses_a_mapping_naming_what_the_org_lacks_unless_told_to_skip(emulator, clean_env):
    data = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())
    data["objects"]["NoSuchObject__c"] = {"direction": "read_only"}
    path = clean_env / "mapping.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {**_env(emulator, clean_env), "COSELL_MAPPING": str(path)}
    refused = runner.invoke(app, ["mirror", "--no-load"], env=env)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "missing NoSuchObject__c" in refused.output and "nothing changed" in refused.output
    assert "Applied" not in refused.output
    skipped = runner.invoke(app, ["mirror", "--no-load", "--skip-missing"], env=env)
    assert skipped.exit_code == 0 and "skipped NoSuchObject__c" in skipped.output
