"""A Salesforce org emulator served over HTTPS on loopback, faithful enough that
the connector runs against it through `requests` and `simple-salesforce`
unchanged: the org for tests, benchmarks, the demo and offline mapping checks."""

from connector.emulator.emulator import Emulator
from connector.emulator.orgdef import OrgDef, OrgDefinitionError, load_org, shipped_orgs

__all__ = ["Emulator", "OrgDef", "OrgDefinitionError", "load_org", "shipped_orgs"]
