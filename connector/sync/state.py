"""The sync engine's own tables: per-object watermarks, the local change log that
capture triggers fill, run records, the conflict log and the dead-letter table of
records Salesforce rejected. They live beside the mirrored tables, prefixed
`_cosell_`, so one transaction can cover data, base and watermark together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text

from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime


@dataclass(frozen=True)
class SyncTables:
    state: Table
    changes: Table
    runs: Table
    conflicts: Table
    dead_letters: Table
    retries: Table

    def all(self) -> list[Table]:
        return [self.state, self.changes, self.runs, self.conflicts, self.dead_letters, self.retries]


def sync_tables(metadata: MetaData, prefix: str = "") -> SyncTables:
    state = Table(
        meta_table_name("sync_state", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        # Reads start here (inclusive); never past the start of the run that read up to it.
        Column("watermark", UtcDateTime),
        Column("last_full_reconcile", UtcDateTime),
    )
    changes = Table(
        meta_table_name("changes", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("object_name", String(120), nullable=False),
        Column("row_uuid", String(36), nullable=False),
        Column("sfid", String(18)),
        Column("op", String(1), nullable=False),   # I, U or D
        Column("changed_at", UtcDateTime, nullable=False),
        # For a delete: the row's base, so an edit made meanwhile in Salesforce is still merged.
        Column("base", Text),
        Index(f"ix_{meta_table_name('changes', prefix)}_object", "object_name", "id"),
    )
    runs = Table(
        meta_table_name("runs", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("started_at", UtcDateTime, nullable=False),
        Column("ended_at", UtcDateTime),
        Column("status", String(20), nullable=False),   # running, succeeded, retrying, parked, failed, stopped
        Column("trigger", String(40), nullable=False),
        Column("counts", Text),                           # JSON: per object pulled, pushed, merged, ...
        Column("api_calls", Integer),
        Column("error", Text),
    )
    conflicts = Table(
        meta_table_name("conflicts", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", Integer),
        Column("object_name", String(120), nullable=False),
        Column("record_uuid", String(36)),
        Column("sfid", String(18)),
        Column("field_name", String(120)),                # null for a record-level (edit vs delete) conflict
        Column("base_value", Text),
        Column("local_value", Text),
        Column("remote_value", Text),
        Column("local_changed_at", UtcDateTime),
        Column("remote_changed_at", UtcDateTime),
        Column("policy", String(60), nullable=False),
        Column("winner", String(20), nullable=False),
        Column("outcome_value", Text),
        Column("parked", Boolean, nullable=False, default=False),
        Column("reason", Text),
        Column("created_at", UtcDateTime, nullable=False),
        Column("resolved_at", UtcDateTime),
        Column("resolution", Text),
    )
    dead_letters = Table(
        meta_table_name("dead_letters", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        Column("record_uuid", String(36), primary_key=True),
        Column("sfid", String(18)),
        Column("operation", String(20), nullable=False),
        Column("error_code", String(80)),
        Column("message", Text),
        Column("fields", Text),
        Column("attempts", Integer, nullable=False, default=1),
        Column("first_failed_at", UtcDateTime, nullable=False),
        Column("last_failed_at", UtcDateTime, nullable=False),
    )
    # Records Salesforce refused for a passing reason (UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE): sent
    # again from `next_attempt_at` (org time) on, with a growing wait, until they go through or the
    # attempts run out and they are parked.
    retries = Table(
        meta_table_name("retries", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        Column("record_uuid", String(36), primary_key=True),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UtcDateTime, nullable=False),
        Column("error_code", String(80)),
        Column("message", Text),
    )
    return SyncTables(state, changes, runs, conflicts, dead_letters, retries)
