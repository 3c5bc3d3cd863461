"""The composition root: settings → Salesforce client, database engine, mapping,
schema mirror. The CLI, the admin API and the scheduler all build their objects
here, so they run the same code with the same wiring."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from connector.config import Settings
from connector.mapping import Mapping, load_mapping
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.sync import cosell_rules
from connector.sync.engine import SyncEngine


@dataclass
class Connector:
    settings: Settings

    @cached_property
    def mapping(self) -> Mapping:
        return load_mapping(self.settings.mapping)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def client(self) -> SalesforceClient:
        return SalesforceClient(self.settings)

    @cached_property
    def mirror(self) -> SchemaMirror:
        return SchemaMirror(self.client, self.engine, self.mapping)

    @cached_property
    def sync(self) -> SyncEngine:
        engine = SyncEngine(self.client, self.engine, self.mapping, self.mirror)
        engine.install(cosell_rules.CosellRules(self.mapping.cosell))
        return engine


def make_engine(url: str) -> Engine:
    """An engine for the local database; SQLite waits for locks instead of failing at once."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def build(settings: Settings | None = None) -> Connector:
    return Connector(settings or Settings())
