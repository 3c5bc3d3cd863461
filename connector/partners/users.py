"""Partner users: people of a partner Account who sign in to the partner workspace.

An admin invites a user (a one-time token, shown once, of which only a SHA-256 digest is kept);
accepting it sets the password (argon2id). Passwords and tokens are never stored, logged or
returned. A failed sign-in says nothing about whether the e-mail exists, and costs the same
argon2 verification either way."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, or_, select, update
from sqlalchemy.engine import Engine

from connector.errors import ConnectorError
from connector.schema_mirror.naming import meta_table_name
from connector.schema_mirror.types import UtcDateTime

UTC = dt.timezone.utc
MIN_PASSWORD = 12
MAX_PASSWORD = 1024          # argon2 takes any length; a megabyte "password" is a denial of service
# After this many wrong passwords in a row a user's sign-in is refused for LOCK_MINUTES, with the same
# answer as a wrong password (so the lock tells a guesser nothing either); a right one resets the count.
MAX_FAILED_SIGN_INS = 10
LOCK_MINUTES = 15
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class PartnerUserError(ConnectorError):
    """A partner-user request refused (unknown account, bad e-mail, expired invite...); nothing written."""


def partner_user_tables(metadata: MetaData, prefix: str = "") -> tuple[Table, Table]:
    users = Table(
        meta_table_name("partner_users", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("email", String(254), nullable=False, unique=True),      # lower-cased
        Column("account_uuid", String(36), nullable=False),              # the partner Account's row
        Column("account_sfid", String(18)),
        Column("account_name", String(255), nullable=False),
        Column("status", String(12), nullable=False),                    # invited | active | disabled
        Column("password_hash", String(255)),
        Column("invite_digest", String(64), unique=True),                # sha256 of the one-time token
        Column("invite_expires_at", UtcDateTime),
        # Bumped on disable and on sign-out: every session cookie carries it, so old cookies die.
        Column("session_version", Integer, nullable=False, default=1),
        Column("created_at", UtcDateTime, nullable=False),
        Column("last_sign_in_at", UtcDateTime),
        Column("failed_sign_ins", Integer, nullable=False, default=0),
        Column("locked_until", UtcDateTime),
    )
    activity = Table(
        meta_table_name("partner_activity", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("account_uuid", String(36), nullable=False, index=True),
        Column("user_email", String(254), nullable=False),
        Column("opportunity_uuid", String(36), index=True),
        Column("registration_uuid", String(36)),
        Column("action", String(40), nullable=False),                    # registered, submitted, withdrawn, edited
        Column("detail", String(400)),
        Column("at", UtcDateTime, nullable=False),
    )
    return users, activity


@dataclass(frozen=True)
class PartnerUser:
    id: int
    email: str
    account_uuid: str
    account_sfid: str | None
    account_name: str
    status: str
    session_version: int
    last_sign_in_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Any) -> PartnerUser:
        return cls(row["id"], row["email"], row["account_uuid"], row["account_sfid"], row["account_name"],
                   row["status"], row["session_version"], row["last_sign_in_at"])


@dataclass(frozen=True)
class Invite:
    user: PartnerUser
    token: str                   # shown once to the admin; only its digest is stored
    expires_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _email(value: str) -> str:
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 254 or any(c.isspace() for c in email):
        raise PartnerUserError(f"{value!r} is not an e-mail address (name@company.example)")
    return email


class PartnerUsers:
    """The partner-user tables beside the mirror, and the actions on them."""

    def __init__(self, engine: Engine, accounts: Table, *, schema: str | None = None, prefix: str = "",
                 invite_days: int = 7) -> None:
        self.engine, self.accounts, self.invite_days = engine, accounts, invite_days
        self.meta = MetaData(schema=schema)
        self.users, self.activity = partner_user_tables(self.meta, prefix)
        self._ready = False

    def ensure_tables(self) -> None:
        if not self._ready:
            with self.engine.begin() as conn:
                self.meta.create_all(conn, checkfirst=True)
            self._ready = True

    def partner_account(self, conn, key: str) -> dict[str, Any]:
        """A partner Account by Salesforce Id, portal UUID or exact name (case-insensitive)."""
        c = self.accounts.c
        rows = conn.execute(select(self.accounts).where(or_(c.sfid == key, c._uuid == key))).mappings().all() or \
            [r for r in conn.execute(select(self.accounts)).mappings() if (r["name"] or "").casefold() == key.casefold()]
        partners = [r for r in rows if "is_partner__c" not in c or r["is_partner__c"]]
        if not rows:
            raise PartnerUserError(f"no Account {key!r} in the portal database (give its Salesforce Id or exact name)")
        if not partners:
            raise PartnerUserError(f"Account {key!r} is not a partner account (Is Partner is not set in Salesforce)")
        if len(partners) > 1:
            raise PartnerUserError(f"{len(partners)} partner accounts are named {key!r}; give the Salesforce Id: "
                                   + ", ".join(r["sfid"] or r["_uuid"] for r in partners))
        return dict(partners[0])

    def invite(self, account: str, email: str, *, at: dt.datetime | None = None) -> Invite:
        """A new user of a partner account, or a fresh invite for one not yet active (the old token dies)."""
        self.ensure_tables()
        at = at or dt.datetime.now(UTC)
        address = _email(email)
        token = secrets.token_urlsafe(32)
        expires = at + dt.timedelta(days=self.invite_days)
        u = self.users
        with self.engine.begin() as conn:
            partner = self.partner_account(conn, account)
            existing = conn.execute(select(u).where(u.c.email == address)).mappings().first()
            if existing is not None:
                if existing["account_uuid"] != partner["_uuid"]:
                    raise PartnerUserError(f"{address} is already a user of another partner account")
                if existing["status"] != "invited":
                    raise PartnerUserError(f"{address} is already {existing['status']}; "
                                           "a disabled user stays disabled")
                conn.execute(update(u).where(u.c.id == existing["id"]).values(
                    invite_digest=_digest(token), invite_expires_at=expires))
                user_id = existing["id"]
            else:
                user_id = conn.execute(insert(u).values(
                    email=address, account_uuid=partner["_uuid"], account_sfid=partner["sfid"],
                    account_name=partner["name"] or partner["_uuid"], status="invited", invite_digest=_digest(token),
                    invite_expires_at=expires, session_version=1, failed_sign_ins=0, created_at=at)
                    .returning(u.c.id)).scalar_one()
            row = conn.execute(select(u).where(u.c.id == user_id)).mappings().one()
        return Invite(PartnerUser.of(row), token, expires)

    def accept(self, token: str, password: str, *, at: dt.datetime | None = None) -> PartnerUser:
        """Set the password of the invited user the token names; the token works once."""
        self.ensure_tables()
        at = at or dt.datetime.now(UTC)
        check_password(password)
        u = self.users
        with self.engine.begin() as conn:
            row = conn.execute(select(u).where(u.c.invite_digest == _digest(token.strip()))).mappings().first()
            if row is None or row["status"] != "invited" or row["invite_expires_at"] < at:
                raise PartnerUserError("this invite link is unknown, used or expired; ask your channel manager "
                                       "for a new one")
            conn.execute(update(u).where(u.c.id == row["id"], u.c.invite_digest == row["invite_digest"]).values(
                status="active", password_hash=_hasher.hash(password), invite_digest=None, invite_expires_at=None))
            return PartnerUser.of(conn.execute(select(u).where(u.c.id == row["id"])).mappings().one())

    def authenticate(self, email: str, password: str, *, at: dt.datetime | None = None) -> PartnerUser | None:
        """The active user with this e-mail and password, else None (and no hint why: unknown, wrong,
        disabled and locked all look alike)."""
        self.ensure_tables()
        at = at or dt.datetime.now(UTC)
        u = self.users
        address = email.strip().lower()[:254]
        with self.engine.connect() as conn:
            row = conn.execute(select(u).where(u.c.email == address)).mappings().first()
        stored = row["password_hash"] if row is not None and row["password_hash"] else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password[:MAX_PASSWORD]) and stored is not _DUMMY_HASH
        except (VerificationError, InvalidHashError):
            ok = False
        if row is None or row["status"] != "active":
            return None
        locked = row["locked_until"] is not None and row["locked_until"] > at
        with self.engine.begin() as conn:
            if not ok or locked:
                if not locked:
                    failed = row["failed_sign_ins"] + 1
                    conn.execute(update(u).where(u.c.id == row["id"]).values(
                        failed_sign_ins=0 if failed >= MAX_FAILED_SIGN_INS else u.c.failed_sign_ins + 1,
                        locked_until=at + dt.timedelta(minutes=LOCK_MINUTES) if failed >= MAX_FAILED_SIGN_INS
                        else None))
                return None
            values: dict[str, Any] = {"last_sign_in_at": at, "failed_sign_ins": 0, "locked_until": None}
            if _hasher.check_needs_rehash(stored):
                values["password_hash"] = _hasher.hash(password)
            conn.execute(update(u).where(u.c.id == row["id"]).values(**values))
        return PartnerUser.of(row)

    def session_user(self, user_id: int, session_version: int) -> PartnerUser | None:
        """The user a session cookie names, while active and the cookie is of the current version."""
        self.ensure_tables()
        with self.engine.connect() as conn:
            row = conn.execute(select(self.users).where(self.users.c.id == user_id)).mappings().first()
        if row is None or row["status"] != "active" or not hmac.compare_digest(
                str(row["session_version"]), str(session_version)):
            return None
        return PartnerUser.of(row)

    def end_sessions(self, user_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(self.users).where(self.users.c.id == user_id).values(
                session_version=self.users.c.session_version + 1))

    def list(self, account: str | None = None) -> list[PartnerUser]:
        self.ensure_tables()
        u = self.users
        query = select(u).order_by(u.c.account_name, u.c.email)
        if account:
            query = query.where(or_(u.c.account_sfid == account, u.c.account_uuid == account,
                                    u.c.account_name == account))
        with self.engine.connect() as conn:
            return [PartnerUser.of(r) for r in conn.execute(query).mappings()]

    def disable(self, email: str) -> PartnerUser:
        """Disable a user: sign-in refused, every open session ends, an open invite dies."""
        self.ensure_tables()
        u = self.users
        address = _email(email)
        with self.engine.begin() as conn:
            changed = conn.execute(update(u).where(u.c.email == address).values(
                status="disabled", invite_digest=None, invite_expires_at=None,
                session_version=u.c.session_version + 1)).rowcount
            if not changed:
                raise PartnerUserError(f"no partner user {address}; `cosell partners list` shows them")
            return PartnerUser.of(conn.execute(select(u).where(u.c.email == address)).mappings().one())


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PartnerUserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PartnerUserError(f"a password has at most {MAX_PASSWORD} characters")


__all__ = ["Invite", "PartnerUser", "PartnerUserError", "PartnerUsers", "check_password", "partner_user_tables"]
