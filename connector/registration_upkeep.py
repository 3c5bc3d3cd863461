"""The co-sell step around a sync run: before it, approved registrations past their expiry date (by the org's
clock, not this machine's) move to Expired; after it, channel conflicts are looked for again, since approvals
and end customers changing owner or type arrive by pull. Both write the portal database as local changes, so
the sync carries them to Salesforce and the change reaches both sides. The scheduler, `cosell sync` and
`cosell registrations expire` all go through here (SyncRunner calls it), so the rules run the same way."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection

from connector.channel_conflicts import ChannelConflictRegister
from connector.cosell.registration import (
    IllegalTransition,
    Registration,
    RegistrationStatus,
    expire_due,
    transition,
)

__all__ = ["REGISTRATION", "Upkeep", "UpkeepReport", "expire_registrations", "org_today"]

log = logging.getLogger("connector.registrations")
REGISTRATION = "Deal_Registration__c"


@dataclass
class UpkeepReport:
    expired: list[str] = field(default_factory=list)          # registrations moved to Expired (Id or UUID)
    conflicts: list[int] = field(default_factory=list)        # ids of the open channel conflicts found


def org_today(client: Any) -> dt.date:
    """Today on the org's clock. A process that has not talked to the org yet asks it once (limits, the
    cheapest call), since the clock comes from the Date header of its answers."""
    if getattr(client, "calls", 1) == 0:
        client.limits()
    return client.org_now().date()


def expire_registrations(conn: Connection, table: Table, today: dt.date, *,
                         at: dt.datetime | None = None) -> list[str]:
    """Move every approved registration whose expiry date has come (`today` or earlier) to Expired, in the
    caller's transaction; each one is logged once, since it is Approved no more afterwards. Returns the
    registrations moved, by Salesforce Id (or UUID before Salesforce has it)."""
    rows = conn.execute(select(table.c._uuid, table.c.sfid, table.c.expiry_date__c).where(
        table.c.status__c == str(RegistrationStatus.APPROVED), table.c.expiry_date__c <= today)).all()
    due = expire_due([Registration(r._uuid, RegistrationStatus.APPROVED, expiry_date=r.expiry_date__c)
                      for r in rows], today)
    names = {r._uuid: r.sfid or r._uuid for r in rows}
    moved = []
    for reg in due:
        try:
            result = transition(reg.status, RegistrationStatus.EXPIRED, "clock", expiry_date=reg.expiry_date,
                                today=today, at=at)
        except IllegalTransition as exc:   # cannot happen for what expire_due picked; never stop the others
            log.warning("registration %s not expired: %s", names[reg.key], exc)
            continue
        done = conn.execute(update(table).where(table.c._uuid == reg.key,
                                                table.c.status__c == str(RegistrationStatus.APPROVED))
                            .values(status__c=str(result.status))).rowcount
        if done:
            log.info("registration %s expired: its expiry date %s has come (org date %s)", names[reg.key],
                     reg.expiry_date.isoformat() if reg.expiry_date else "?", today.isoformat())
            moved.append(names[reg.key])
    return moved


class Upkeep:
    """The co-sell step for one sync engine; `before` runs ahead of a run, `after` once it has ended."""

    def __init__(self, sync: Any, settings: Any | None = None) -> None:
        self.sync = sync
        self.settings = settings
        self._register: ChannelConflictRegister | None = None

    def applies(self, objects: list[str] | None) -> bool:
        om = self.sync.mapping.objects.get(REGISTRATION)
        if om is None or om.direction != "read_write":
            return False
        return objects is None or REGISTRATION.lower() in {o.lower() for o in objects}

    def register(self) -> ChannelConflictRegister:
        if self._register is None:
            s = self.settings
            self._register = ChannelConflictRegister.for_sync(
                self.sync, ownership=s.direct_ownership() if s is not None else None,
                flag=s.channel_conflict_flag if s is not None else True)
        return self._register

    def before(self, report: UpkeepReport | None = None) -> UpkeepReport:
        """Expire what is due by the org's clock as last seen, so the run about to start sends it."""
        report = report or UpkeepReport()
        report.expired = self._expire()
        return report

    def after(self, report: UpkeepReport | None = None) -> UpkeepReport:
        """The run has just read the org's clock afresh: expire what that makes due (and send it at once, with
        one more run of the registrations), then look for channel conflicts among what the run pulled."""
        report = report or UpkeepReport()
        if REGISTRATION not in self.sync.tables():
            return report
        late = self._expire()
        if late:
            self.sync.run([REGISTRATION], trigger="expiry")
            report.expired.extend(late)
        register = self.register()
        with self.sync.engine.begin() as conn:
            found = register.check(conn, trigger="sync")
        report.conflicts = [s.id for _, s in found if s.status == "open"]
        return report

    def _expire(self) -> list[str]:
        tables = self.sync.tables()
        if REGISTRATION not in tables:
            return []
        today = org_today(self.sync.client)
        with self.sync.engine.begin() as conn:
            return expire_registrations(conn, tables[REGISTRATION], today, at=self.sync.client.org_now())
