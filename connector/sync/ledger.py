"""The sync's ledger: the conflict log, the parked records (the dead-letter table, with the error
Salesforce or the database gave) and the retries of records refused for a passing reason.

Every write goes in the caller's transaction, so a ledger entry commits with the data it is
about. It never decides anything (the merge, the policies and the engine do) and never calls
Salesforce."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.engine import Connection

from connector.sync.merge import Conflict
from connector.sync.state import SyncTables

__all__ = ["PULL_OPERATIONS", "RETRY_ATTEMPTS", "RETRY_FIRST_WAIT", "RETRY_MAX_WAIT", "TRANSIENT_RECORD_CODES",
           "Ledger", "encode", "gave_up", "transient"]

log = logging.getLogger("connector.sync")
UTC = dt.timezone.utc

# Per-record errors of a collections answer that pass by themselves: the record is sent again on a
# later run (30 s, 1, 2, 4 ... minutes later, at most 30 minutes apart), and parked after this many tries.
TRANSIENT_RECORD_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
RETRY_FIRST_WAIT = dt.timedelta(seconds=30)
RETRY_MAX_WAIT = dt.timedelta(minutes=30)
RETRY_ATTEMPTS = 8
# Parked on the way in (a Salesforce value the local database refused); "pull-retry": queued to be read
# again by Id at the next run.
PULL_OPERATIONS = ("pull", "pull-retry")


def encode(value: Any) -> Any:
    """A value as the base and the conflict log keep it (JSON)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return json.dumps({k: encode(v) for k, v in value.items()}, sort_keys=True)
    return json.dumps(encode(value))


def transient(result: dict[str, Any]) -> bool:
    """Whether a per-record save result failed only for reasons that pass by themselves."""
    codes = {e.get("statusCode") for e in result.get("errors") or []}
    return bool(codes) and codes <= TRANSIENT_RECORD_CODES


def gave_up(result: dict[str, Any]) -> dict[str, Any]:
    errors = [dict(e, message=f"{e.get('message')} (still failing after {RETRY_ATTEMPTS} tries; retry it once the "
                               "org is less busy)") for e in result.get("errors") or []]
    return {**result, "errors": errors}


@dataclass
class Ledger:
    tables: SyncTables

    # -- the change log --------------------------------------------------------------------------
    def dirty_uuids(self, conn: Connection, object_name: str) -> dict[str, dt.datetime]:
        """The rows of an object with local changes not sent yet, with the time of their latest change."""
        ch = self.tables.changes
        rows = conn.execute(select(ch.c.row_uuid, func.max(ch.c.changed_at)).where(ch.c.object_name == object_name)
                            .group_by(ch.c.row_uuid)).all()
        return {r[0]: r[1] for r in rows}

    # -- conflicts ------------------------------------------------------------------------------
    def log_conflicts(self, conn: Connection, object_name: str, row_uuid: str | None, sfid: str | None,
                      conflicts: Iterable[Conflict], run_id: int) -> int:
        """Record each conflict with both values, both change times, the policy and the winner."""
        rows = [dict(run_id=run_id, object_name=object_name, record_uuid=row_uuid, sfid=sfid,
                     field_name=c.field, base_value=_json(c.base), local_value=_json(c.local),
                     remote_value=_json(c.remote), local_changed_at=c.local_changed_at,
                     remote_changed_at=c.remote_changed_at, policy=c.policy, winner=c.winner,
                     outcome_value=_json(c.value), parked=c.parked, reason=c.reason,
                     created_at=dt.datetime.now(UTC)) for c in conflicts]
        if rows:
            conn.execute(self.tables.conflicts.insert(), rows)
        return len(rows)

    # -- parked records -------------------------------------------------------------------------
    def park(self, conn: Connection, name: str, row_uuid: str, sfid: str | None, operation: str,
             result: dict[str, Any], now: dt.datetime, table: Table | None) -> None:
        """A record refused: the error on the row (`_sync_error`, when `table` is given) and in the
        dead-letter table. It is retried when the row changes again or when an admin asks."""
        errors = result.get("errors") or [{}]
        first = errors[0]
        message = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
        dl = self.tables.dead_letters
        key = and_(dl.c.object_name == name, dl.c.record_uuid == row_uuid)
        existing = conn.execute(select(dl.c.attempts).where(key)).scalar()
        values = dict(sfid=sfid, operation=operation, error_code=first.get("statusCode"),
                      message=first.get("message"), fields=json.dumps(first.get("fields") or []),
                      last_failed_at=now)
        if existing is None:
            conn.execute(dl.insert().values(object_name=name, record_uuid=row_uuid, attempts=1,
                                            first_failed_at=now, **values))
        else:
            conn.execute(update(dl).where(key).values(attempts=existing + 1, **values))
        if table is not None:
            conn.execute(update(table).where(table.c._uuid == row_uuid).values(
                _sync_error=message, _sync_version=table.c._sync_version + 1))
        log.warning("%s %s %s parked: %s", name, operation, sfid or row_uuid, message)

    def clear_parked(self, conn: Connection, name: str, row_uuids: list[str], *, keep_pulled: bool = False) -> None:
        """Parked entries of records that went through, or no longer exist on either side. A push that
        went through says nothing of a value refused on the way in: `keep_pulled` leaves those."""
        dl = self.tables.dead_letters
        for start in range(0, len(row_uuids), 500):
            where = and_(dl.c.object_name == name, dl.c.record_uuid.in_(row_uuids[start:start + 500]))
            if keep_pulled:
                where = and_(where, dl.c.operation.not_in(PULL_OPERATIONS))
            conn.execute(delete(dl).where(where))

    def dismiss(self, conn: Connection, name: str, row_uuid: str, table: Table | None) -> dict[str, Any] | None:
        """Drop a parked record an admin judged settled (its fix was to undo the edit, or it was fixed in
        Salesforce): its entry, its pending retry and the error on the row go; the row's data stays as it
        is and nothing is queued. Returns the entry dismissed (to be logged), None when there was none."""
        dl, rt = self.tables.dead_letters, self.tables.retries
        key = and_(dl.c.object_name == name, dl.c.record_uuid == row_uuid)
        entry = conn.execute(select(dl).where(key)).first()
        if entry is None:
            return None
        conn.execute(delete(dl).where(key))
        conn.execute(delete(rt).where(and_(rt.c.object_name == name, rt.c.record_uuid == row_uuid)))
        if table is not None:
            # A connector write (the version moves), so capture does not take it for a portal edit.
            conn.execute(update(table).where(table.c._uuid == row_uuid).values(
                _sync_error=None, _sync_version=table.c._sync_version + 1))
        return dict(entry._mapping)

    def parked_among(self, conn: Connection, name: str, row_uuids: list[str]) -> set[str]:
        """Rows holding a local change Salesforce refused (parked on the way out)."""
        if not row_uuids:
            return set()
        dl = self.tables.dead_letters
        return {r[0] for r in conn.execute(select(dl.c.record_uuid).where(and_(
            dl.c.object_name == name, dl.c.operation.not_in(PULL_OPERATIONS), dl.c.record_uuid.in_(row_uuids))))}

    def objects_parked_on_the_way_in(self, conn: Connection) -> dict[str, str]:
        """Objects with records parked on the way in: "retry" when some are queued to be read again."""
        dl = self.tables.dead_letters
        out: dict[str, str] = {}
        for name, operation in conn.execute(select(dl.c.object_name, dl.c.operation).where(
                dl.c.operation.in_(PULL_OPERATIONS)).distinct()):
            out[name] = "retry" if operation == "pull-retry" or out.get(name) == "retry" else "parked"
        return out

    def clear_pulled(self, conn: Connection, name: str, sfids: list[str]) -> None:
        """Records once parked on the way in that have now been applied."""
        dl = self.tables.dead_letters
        for start in range(0, len(sfids), 500):
            conn.execute(delete(dl).where(and_(dl.c.object_name == name, dl.c.operation.in_(PULL_OPERATIONS),
                                               dl.c.sfid.in_(sfids[start:start + 500]))))

    def queued_rereads(self, conn: Connection, name: str) -> list[str]:
        dl = self.tables.dead_letters
        return [r[0] for r in conn.execute(select(dl.c.sfid).where(and_(
            dl.c.object_name == name, dl.c.operation == "pull-retry")))]

    def rereads_done(self, conn: Connection, name: str) -> None:
        """What a re-read still could not apply was parked again: it waits for the next queueing."""
        dl = self.tables.dead_letters
        conn.execute(update(dl).where(and_(dl.c.object_name == name, dl.c.operation == "pull-retry"))
                     .values(operation="pull"))

    def requeue(self, conn: Connection, object_name: str | None) -> list[tuple[str, str, str | None]]:
        """Mark parked records to be tried again: those parked on the way in are queued to be read again;
        the others are returned as (object, row uuid, sfid) for the caller to queue for push."""
        dl = self.tables.dead_letters
        query = select(dl.c.object_name, dl.c.record_uuid, dl.c.sfid, dl.c.operation)
        if object_name:
            query = query.where(dl.c.object_name == object_name)
        out = []
        for r in conn.execute(query).all():
            if r.operation in PULL_OPERATIONS:
                conn.execute(update(dl).where(and_(dl.c.object_name == r.object_name,
                                                   dl.c.record_uuid == r.record_uuid)).values(operation="pull-retry"))
            else:
                out.append((r.object_name, r.record_uuid, r.sfid))
        return out

    # -- retries of passing errors ----------------------------------------------------------------
    def not_due(self, conn: Connection, name: str, row_uuids: Iterable[str], now: dt.datetime) -> set[str]:
        """Records still waiting out their retry after a passing error (their change stays queued)."""
        rt = self.tables.retries
        waiting = {r.record_uuid for r in conn.execute(select(rt.c.record_uuid, rt.c.next_attempt_at).where(
            rt.c.object_name == name)) if r.next_attempt_at > now}
        return waiting & set(row_uuids)

    def retry_later(self, conn: Connection, name: str, row_uuid: str, result: dict[str, Any],
                    now: dt.datetime) -> bool:
        """Queue a record refused for a passing reason for another try; False once its tries are spent
        (the caller parks it then)."""
        rt = self.tables.retries
        key = and_(rt.c.object_name == name, rt.c.record_uuid == row_uuid)
        errors = result.get("errors") or [{}]
        attempts = conn.execute(select(rt.c.attempts).where(key)).scalar() or 0
        if attempts + 1 >= RETRY_ATTEMPTS:
            conn.execute(delete(rt).where(key))
            return False
        wait = min(RETRY_FIRST_WAIT * (2 ** attempts), RETRY_MAX_WAIT)
        values = dict(attempts=attempts + 1, next_attempt_at=now + wait,
                      error_code=errors[0].get("statusCode"), message=errors[0].get("message"))
        if attempts:
            conn.execute(update(rt).where(key).values(**values))
        else:
            conn.execute(rt.insert().values(object_name=name, record_uuid=row_uuid, **values))
        log.info("%s %s: %s; sent again in %s", name, row_uuid, values["error_code"], wait)
        return True

    def clear_retries(self, conn: Connection, name: str, row_uuids: list[str]) -> None:
        rt = self.tables.retries
        for start in range(0, len(row_uuids), 500):
            conn.execute(delete(rt).where(and_(rt.c.object_name == name,
                                               rt.c.record_uuid.in_(row_uuids[start:start + 500]))))
