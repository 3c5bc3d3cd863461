"""Wiring of the partner side on a sync engine's tables: the partner users and, for a signed-in
user, the scope of their partner Account. The CLI and the web workspace both start here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector.overlaps.book import OverlapBook
from connector.partners.scope import NotFound, PartnerAccount, PartnerScope
from connector.partners.users import PartnerUser, PartnerUsers
from connector.portal import Portal


class PartnerWorkspace:
    """The partner side of one connector: users, and a scope per partner Account."""

    def __init__(self, sync: Any, *, invite_days: int = 7, review_days: int = 10, writes: bool = True) -> None:
        self.portal = Portal.for_sync(sync, install_capture=writes)
        self.book = OverlapBook(self.portal, schema=sync.schema, prefix=sync.prefix)
        self.schema, self.prefix, self.review_days = sync.schema, sync.prefix, review_days
        self.users = PartnerUsers(self.portal.engine, self.portal.tables["Account"], schema=sync.schema,
                                  prefix=sync.prefix, invite_days=invite_days)
        self.users.ensure_tables()
        self.book.ensure_tables()

    def account(self, account_uuid: str) -> PartnerAccount:
        a = self.portal.tables["Account"]
        currency = a.c.currencyisocode if "currencyisocode" in a.c else None
        with self.portal.engine.connect() as conn:
            row = conn.execute(select(a.c._uuid, a.c.sfid, a.c.name, *([currency] if currency is not None else []))
                               .where(a.c._uuid == account_uuid)).mappings().first()
        if row is None:
            raise NotFound("partner account")
        return PartnerAccount(row["_uuid"], row["sfid"], row["name"] or "", row.get("currencyisocode"))

    def scope(self, user: PartnerUser) -> PartnerScope:
        return PartnerScope(self.portal, self.book, self.account(user.account_uuid), user=user.email,
                            activity=self.users.activity, review_days=self.review_days, schema=self.schema,
                            prefix=self.prefix)


__all__ = ["PartnerWorkspace"]
