"""What an admin can do, for the JSON API and the console alike: resolve a conflict, retry or dismiss
parked records, start a resync. Each checks its input and raises `AdminError` (an HTTP status and a
one-line reason) before it writes anything; the writes go through the sync's public methods and
ledger, never around them."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from connector.salesforce.ids import is_valid, to18
from connector.admin.models import Accepted, ConflictOut, Mode, Take, decode
from connector.admin.queries import AdminQueries
from connector.scheduler import LockBusy
from connector.sync.ledger import encode

__all__ = ["AdminActions", "AdminError", "API_RESOLVER"]

log = logging.getLogger("connector.admin")
UTC = dt.timezone.utc
# `resolved_by` of a conflict resolved through the JSON API (one shared bearer token: no person's name).
API_RESOLVER = "admin API"


class AdminError(Exception):
    """An admin request refused, with the HTTP status that says why (404, 409, 422); nothing written."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


@dataclass
class AdminActions:
    queries: AdminQueries

    @property
    def connector(self):
        return self.queries.connector

    @property
    def sync(self):
        return self.connector.sync

    def mapped(self, name: str | None) -> str | None:
        """The mapped object's name as the mapping spells it; AdminError naming the valid ones."""
        if name is None:
            return None
        found = {n.lower(): n for n in self.connector.mapping.objects}.get(name.lower())
        if found is None:
            raise AdminError(422, f"{name} is not mapped; mapped objects: {', '.join(self.connector.mapping.objects)}")
        return found

    # -- conflicts ------------------------------------------------------------------------------
    def resolve(self, conflict_id: int, take: Take, value: Any = None, *, has_value: bool = False,
                by: str = API_RESOLVER, comment: str | None = None) -> ConflictOut:
        """Keep one value: it is written to the local row, so the next sync carries it to Salesforce;
        the conflict records who chose it and why."""
        c = self.sync.state.conflicts
        with self.connector.engine.connect() as conn:
            row = conn.execute(select(c).where(c.c.id == conflict_id)).first()
        if row is None:
            raise AdminError(404, f"no conflict {conflict_id}")
        if row.resolved_at is not None:
            raise AdminError(409, f"conflict {conflict_id} was resolved already ({row.resolution})")
        if row.field_name is None:
            raise AdminError(409, "a record-level conflict (edit against delete) has no value to choose")
        schemas = self.connector.mirror.schemas()
        obj = schemas.get(row.object_name)
        f = obj.field(row.field_name) if obj is not None else None
        if f is None:
            raise AdminError(409, f"{row.object_name}.{row.field_name} is no longer mirrored")
        if take == "value" and not has_value:
            raise AdminError(422, "take value needs a value")
        raw = {"local": decode(row.local_value), "salesforce": decode(row.remote_value)}.get(take, value)
        try:
            kept = f.to_python(raw)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise AdminError(422, f"not a valid {f.sf_type} for {row.field_name}: {exc}") from None
        table = self.sync.tables({obj.name: obj})[obj.name]
        comment = (comment or "").strip() or None
        with self.connector.engine.begin() as conn:
            # A plain update (no _sync_version bump): the capture trigger logs it as a local change.
            changed = conn.execute(update(table).where(table.c._uuid == row.record_uuid)
                                   .values(**{f.column: kept})).rowcount
            if not changed:
                raise AdminError(409, "the record no longer exists locally")
            conn.execute(update(c).where(c.c.id == conflict_id).values(
                resolved_at=dt.datetime.now(UTC), resolved_by=by[:200], resolution_comment=comment,
                resolution=json.dumps({"take": take, "value": encode(kept)})))
        log.info("conflict %s resolved by %s: take %s", conflict_id, by, take)
        return self.queries.conflict(conflict_id)

    # -- parked records -------------------------------------------------------------------------
    def retry(self, object_name: str | None = None) -> int:
        """Queue parked records (of one object, or all) to be tried again on the next run."""
        return self.sync.retry_parked(self.mapped(object_name))

    def dismiss(self, object_name: str, record_uuid: str, *, by: str = API_RESOLVER) -> None:
        """Drop one parked record whose fix needs no retry (the edit was undone, or fixed in Salesforce)."""
        name = self.mapped(object_name)
        schemas = self.connector.mirror.schemas()
        table = self.sync.tables(schemas).get(name) if name in schemas else None
        with self.connector.engine.begin() as conn:
            entry = self.sync.ledger.dismiss(conn, name, record_uuid, table)
        if entry is None:
            raise AdminError(404, f"no parked {name} record {record_uuid}")
        log.info("parked %s %s (%s: %s) dismissed by %s", name, entry["sfid"] or record_uuid, entry["error_code"],
                 entry["message"], by)

    # -- resync ---------------------------------------------------------------------------------
    def resync(self, objects: list[str] | None = None, records: list[str] | None = None,
               mode: Mode = "incremental") -> Accepted:
        """Start a run now, in the background, under the lock: every object, some, or the objects of
        some records (sent again from the local side)."""
        connector = self.connector
        mapped = {n.lower(): n for n in connector.mapping.objects}
        chosen: list[str] | None = None
        before = None
        if objects is not None:
            unknown = [o for o in objects if o.lower() not in mapped]
            if unknown or not objects:
                raise AdminError(422, f"not mapped: {', '.join(unknown) or '(none given)'}; "
                                      f"mapped objects: {', '.join(mapped.values())}")
            chosen = sorted({mapped[o.lower()] for o in objects})
        elif records is not None:
            located = self.locate(records)
            missing = [r for r in records if _id18(r) not in located]
            if missing or not records:
                raise AdminError(422, f"not found locally: {', '.join(missing) or '(none given)'}")
            chosen = sorted({name for name, _ in located.values()})

            def before(engine) -> None:   # queue the records as local changes, under the lock
                with connector.engine.begin() as conn:
                    for name, row_uuid in located.values():
                        engine.queue_for_push(conn, name, row_uuid)
        try:
            ticket = self.queries.runner.start(chosen, full=mode == "full", before=before)
        except LockBusy as exc:
            raise AdminError(409, str(exc)) from None
        return Accepted(run_id=ticket.run_id, trigger=ticket.trigger, error=ticket.error)

    def locate(self, record_ids: list[str]) -> dict[str, tuple[str, str]]:
        """Salesforce Id (18 characters; a 15-character one is read as its 18-character form, as
        Salesforce does) -> (object, local row UUID), through the mirrored tables."""
        schemas = self.connector.mirror.schemas()
        tables = self.sync.tables(schemas)
        found: dict[str, tuple[str, str]] = {}
        by_prefix: dict[str, list[str]] = {}
        for r in record_ids:
            if is_valid(r):
                by_prefix.setdefault(r[:3], []).append(to18(r))
        with self.connector.engine.connect() as conn:
            for name, obj in schemas.items():
                ids = by_prefix.get(obj.key_prefix or "", [])
                if not ids or not obj.synced:
                    continue
                t = tables[name]
                for sfid, row_uuid in conn.execute(select(t.c.sfid, t.c._uuid).where(t.c.sfid.in_(ids))):
                    found[sfid] = (name, row_uuid)
        return found


def _id18(value: object) -> object:
    return to18(value) if is_valid(value) else value
