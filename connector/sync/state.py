"""The sync engine's own tables: per-object watermarks, the local change log that
capture triggers fill, run records, the conflict log and the dead-letter table of
records Salesforce rejected. They live beside the mirrored tables, prefixed
`_cosell_`, so one transaction can cover data, base and watermark together.
Also who runs a run (an owner: host, pid) and when it is dead. Nothing here may end a
run, or take a lock, of a process that may still be alive."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text, and_, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime

UTC = dt.timezone.utc
# A holder renews its heartbeat every third of this; one missed renewal is no death, three are.
# Short enough that a host that vanished frees its objects within two minutes, long enough that a
# database stall of a minute does not make two runs of one object.
HEARTBEAT_TTL = 120.0


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
        # Who runs it (`new_owner()`) and its last sign of life: a run whose process is gone, or
        # whose heartbeat stopped, is ended as failed by the next run. Added to older databases
        # by `add_missing_columns`, hence nullable.
        Column("owner", String(200)),
        Column("heartbeat_at", UtcDateTime),
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
        # Who resolved it (the name an admin signed in with, or "admin API") and why; added to older
        # databases by `add_missing_columns`, hence nullable.
        Column("resolved_by", String(200)),
        Column("resolution_comment", Text),
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


def new_owner() -> str:
    """A name for one run or lock holder: host, process and a random part (unique per acquisition)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_process(owner: str | None) -> tuple[str, int] | None:
    """(host, pid) of an owner made by `new_owner`; None for any other name."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    return (host, int(pid)) if host and pid.isdigit() and int(pid) > 0 else None


def process_gone(owner: str | None) -> bool:
    """True only when the owner ran on this host and its process no longer exists. An owner of
    another host, or a name that is not an owner's, is never known to be gone."""
    process = owner_process(owner)
    if process is None or process[0] != socket.gethostname():
        return False
    try:
        os.kill(process[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:   # alive, run by another user
        return False
    return False


def add_missing_columns(conn: Connection, table: Table) -> list[str]:
    """Add the (nullable) columns a table created by an older version lacks; no DDL when none is
    missing. Returns the names added."""
    present = {c["name"] for c in inspect(conn).get_columns(table.name, schema=table.schema)}
    missing = [c for c in table.columns if c.name not in present]
    if missing:
        name = conn.dialect.identifier_preparer.format_table(table)
        for column in missing:
            conn.execute(text(f"ALTER TABLE {name} ADD COLUMN {CreateColumn(column).compile(dialect=conn.dialect)}"))
    return [c.name for c in missing]


def beat(conn: Connection, runs: Table, owner: str, now: dt.datetime | None = None) -> None:
    """The heartbeat of the run `owner` is running."""
    conn.execute(update(runs).where(and_(runs.c.owner == owner, runs.c.status == "running"))
                 .values(heartbeat_at=now or dt.datetime.now(UTC)))


def end_dead_runs(conn: Connection, runs: Table, by_run: int, ttl: float = HEARTBEAT_TTL,
                  now: dt.datetime | None = None) -> list[int]:
    """End as failed every other run still `running` whose process is gone from this host, or whose
    heartbeat is older than `ttl` seconds. A run without a heartbeat (started outside a runner) or
    without an owner (an older version's) is judged by its process only. Returns the ids ended."""
    now = now or dt.datetime.now(UTC)
    expired = now - dt.timedelta(seconds=ttl)
    rows = conn.execute(select(runs.c.id, runs.c.owner, runs.c.heartbeat_at).where(
        and_(runs.c.status == "running", runs.c.id != by_run))).all()
    ended: list[int] = []
    for row in rows:
        if not (process_gone(row.owner) or (row.heartbeat_at is not None and row.heartbeat_at < expired)):
            continue
        host, pid = owner_process(row.owner) or ("unknown", "unknown")
        silent = "" if process_gone(row.owner) else f", no heartbeat since {row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        done = conn.execute(update(runs).where(and_(runs.c.id == row.id, runs.c.status == "running")).values(
            status="failed", ended_at=now,
            error=f"the process running it stopped (host {host}, pid {pid}{silent}) without ending it; "
                  f"ended by run {by_run}"))
        if done.rowcount:
            ended.append(row.id)
    return ended
