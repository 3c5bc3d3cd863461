"""Partner users on their own (a SQLite file, no org): wrong passwords lock sign-in for a while
without saying so."""

from __future__ import annotations

from connector.partners.users import PartnerUsers


def test_ten_wrong_passwords_lock_sign_in_for_a_while_and_say_nothing_more(tmp_path):
    import datetime as dt

    from connector.bootstrap import make_engine
    from connector.partners.users import LOCK_MINUTES, MAX_FAILED_SIGN_INS
    from sqlalchemy import Column, MetaData, String, Table, insert

    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    accounts = Table("account", MetaData(), Column("_uuid", String(36)), Column("sfid", String(18)),
                     Column("name", String(255)))
    accounts.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(accounts).values(_uuid="u-1", sfid="001000000000001AAA", name="Lock Partner"))
    users = PartnerUsers(engine, accounts)
    t0 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone.utc)
    users.accept(users.invite("Lock Partner", "lee@lock.example", at=t0).token, "the-right-password", at=t0)
    for _ in range(MAX_FAILED_SIGN_INS):
        assert users.authenticate("lee@lock.example", "a-wrong-guess!", at=t0) is None
    # locked: the right password is refused too, exactly like a wrong one
    assert users.authenticate("lee@lock.example", "the-right-password", at=t0) is None
    later = t0 + dt.timedelta(minutes=LOCK_MINUTES, seconds=1)
    assert users.authenticate("lee@lock.example", "the-right-password", at=later) is not None
    # nine wrong, one right: the count starts again
    for _ in range(MAX_FAILED_SIGN_INS - 1):
        users.authenticate("lee@lock.example", "a-wrong-guess!", at=later)
    assert users.authenticate("lee@lock.example", "the-right-password", at=later) is not None
    assert users.authenticate("lee@lock.example", "a-wrong-guess!", at=later) is None
    assert users.authenticate("lee@lock.example", "the-right-password", at=later) is not None
