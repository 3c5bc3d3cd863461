"""Names of mirrored tables and columns, as Salesforce admins know them from
Heroku Connect: one table per object named by its lowercased API name, one column
per field by its lowercased API name, the record Id in `sfid`. The connector's own
bookkeeping columns and tables start with `_` so they never collide with a field."""

from __future__ import annotations

import hashlib

BOOKKEEPING_PREFIX = "_"
# PostgreSQL keeps the first 63 bytes of an identifier and silently drops the rest.
MAX_IDENTIFIER = 63
META_TABLE_PREFIX = "_cosell_"


def table_name(object_name: str, prefix: str = "") -> str:
    return fit_identifier(f"{prefix}{object_name.lower()}")


def column_name(field_name: str) -> str:
    return "sfid" if field_name == "Id" else field_name.lower()


def meta_table_name(name: str, prefix: str = "") -> str:
    """A table of the connector's own (schema metadata, picklists, runs), kept apart by its prefix."""
    return f"{prefix}{META_TABLE_PREFIX}{name}"


def fit_identifier(name: str) -> str:
    """`name` itself when PostgreSQL keeps it whole; else its first characters and a hash of all of
    it, so two long names that share a beginning stay distinct (and the same name maps the same way)."""
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    head = name.encode()[:MAX_IDENTIFIER - len(digest) - 1].decode(errors="ignore")
    return f"{head}_{digest}"
