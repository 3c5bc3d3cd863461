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


class Database:
    """A local database for one test: its engine and the PostgreSQL schema it may use."""

    def __init__(self, engine, schema: str | None):
        self.engine, self.schema = engine, schema

    @property
    def name(self) -> str:
        return self.engine.dialect.name


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """Each test that takes this runs on SQLite and on PostgreSQL.

    PostgreSQL comes from COSELL_TEST_POSTGRES_URL (set by .ci/run). Outside CI a missing server
    skips; under CI=true it fails, so a silently skipped database can never pass CI."""
    import uuid

    from sqlalchemy import text

    from connector.bootstrap import make_engine

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'cosell.db'}")
        yield Database(engine, None)
        engine.dispose()
        return
    url = os.environ.get("COSELL_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("COSELL_TEST_POSTGRES_URL is not set under CI: the PostgreSQL tests must run")
        pytest.skip("PostgreSQL tests need COSELL_TEST_POSTGRES_URL (set by .ci/run)")
    engine = make_engine(url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Database(engine, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def mapping_for(database: Database, path=None):
    """The shipped mapping (or `path`) with the test's PostgreSQL schema."""
    from connector.mapping import load_mapping

    mapping = load_mapping(path)
    database_options = mapping.database.model_copy(update={"schema_name": database.schema})
    return mapping.model_copy(update={"database": database_options})
