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


def settings_for(org: Emulator, **overrides):
    """Connector settings for an emulator, as its `serve` JSON line maps onto COSELL_* variables."""
    from connector.config import Settings

    info = org.connection_info()
    values = dict(login_url=info["login_url"], instance_url=info["instance_url"], auth="jwt",
                  username=info["username"], consumer_key=info["consumer_key"], private_key=info["private_key"],
                  ca_cert=info["ca_cert"], access_token=info["access_token"], refresh_token=info["refresh_token"],
                  consumer_secret=info["consumer_secret"], password=info["password"],
                  retry_initial_wait=0.01, retry_max_wait=0.05, config="/nonexistent/cosell.config.yaml")
    values.update(overrides)
    return Settings(**values)
