"""Each schema-mirror integration test runs on SQLite (a temporary file) and on PostgreSQL (a
fresh schema, dropped afterwards). Without COSELL_TEST_POSTGRES_URL the PostgreSQL half is
skipped on a workstation but fails in CI (CI=true), where a missing database is a broken build."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

POSTGRES_URL_VARIABLE = "COSELL_TEST_POSTGRES_URL"


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    message = f"{POSTGRES_URL_VARIABLE} is not set, so the PostgreSQL half of this test cannot run"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (in CI PostgreSQL is required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Engine:
    if request.param == "sqlite":
        db = create_engine(f"sqlite:///{tmp_path / 'mirror.db'}")
    else:
        db = create_engine(_postgres_url())
    yield db
    db.dispose()


@pytest.fixture
def schema(engine: Engine) -> str | None:
    """None on SQLite; on PostgreSQL a schema of this test's own, so runs never see each other."""
    if engine.dialect.name == "sqlite":
        yield None
        return
    name = f"test_sm_{secrets.token_hex(5)}"
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
