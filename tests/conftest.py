"""Shared fixtures: an org emulator over HTTPS and a simple-salesforce client
connected to it exactly as the connector connects to a real org."""

from __future__ import annotations

import os

import pytest
from simple_salesforce import Salesforce

from connector.emulator import Emulator
from connector.salesforce.http import SalesforceSession


@pytest.fixture
def emulator():
    """A fresh demo org with a handful of generated records, served on 127.0.0.1."""
    with Emulator("cosell_demo", records=int(os.environ.get("COSELL_TEST_RECORDS", "20")), seed=7) as org:
        yield org


def connect(org: Emulator, **kwargs) -> Salesforce:
    """simple-salesforce on a session that trusts the emulator's certificate, never verify=False."""
    session = SalesforceSession(ca_cert=org.ca_cert)
    return Salesforce(session_id=org.new_access_token(), instance_url=org.instance_url, session=session,
                      version=org.org.api_version, **kwargs)


@pytest.fixture
def sf(emulator):
    return connect(emulator)
