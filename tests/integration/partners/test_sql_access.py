"""A PRM app connecting to PostgreSQL as Alpha's role reads Alpha's rows and nothing else.

Attempts, as Alpha's role:
  1. its own views: exactly Alpha's deals, participant rows, registrations and overlaps; no notes,
     no description, no other partner's split (the columns are not there)
  2. the mirrored tables (opportunity, participants, registrations, account), the connector's own
     (partner users, activity, overlaps, conflict log): permission denied
  3. Beta's views: permission denied
  4. a leaky function in WHERE (pg_temp, raising a notice per row it sees): it sees only rows the
     view lets through (security_barrier), never Beta's
  5. writing through its views: permission denied
  6. becoming the connector's role (SET ROLE): refused
On SQLite the same call says plainly that the scoped service is the only door."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from connector.partners.scope import PARTNER_FIELDS
from connector.partners.sql_access import grant_sql_access, revoke_sql_access
from connector.partners.users import PartnerUserError


PASSWORD = "p%ss:w'rd-$1 \\x"


def _scope(world, who):
    return world.workspace.scope(world.user(who))


def test_a_partner_s_sql_role_reads_only_that_partner_s_rows(world):
    if world.h.database.name == "sqlite":   # no roles: said plainly, nothing created
        with pytest.raises(PartnerUserError, match="scoped service\\) is the only door"):
            grant_sql_access(world.h.database.engine, _scope(world, "alpha"), "prm_alpha")
        return
    engine = world.h.database.engine
    schema = world.h.database.schema
    suffix = uuid.uuid4().hex[:8]
    alpha_role, beta_role = f"prm_alpha_{suffix}", f"prm_beta_{suffix}"
    views = grant_sql_access(engine, _scope(world, "alpha"), alpha_role, password=PASSWORD)
    grant_sql_access(engine, _scope(world, "beta"), beta_role)
    try:
        assert views == [f"{alpha_role}.{v}" for v in ("deals", "participations", "registrations", "overlaps")]
        # The PRM app logs in as Alpha's role itself (the password has the characters that break quoting).
        as_alpha = create_engine(engine.url.set(username=alpha_role, password=PASSWORD))
        with as_alpha.connect() as conn:
            assert conn.execute(text("SELECT session_user")).scalar() == alpha_role
            notices: list[str] = []
            conn.connection.driver_connection.add_notice_handler(lambda n: notices.append(n.message_primary))

            def rows(sql):
                return [dict(r._mapping) for r in conn.execute(text(sql))]

            def refused(sql):
                savepoint = conn.begin_nested()
                with pytest.raises(DBAPIError, match="permission denied"):
                    conn.execute(text(sql))
                savepoint.rollback()

            # 1. its own views
            deals = rows(f'SELECT * FROM "{alpha_role}".deals')
            assert sorted(d["name"] for d in deals) == ["Alpha Renewal", "Shared Cloud Migration"]
            assert "description" not in deals[0]
            parts = rows(f'SELECT * FROM "{alpha_role}".participations')
            assert sorted(p["split_percent__c"] for p in parts) == [60, 100]
            assert set(parts[0]) == {"opportunity__c", "_opportunity__c_uuid",
                                     *PARTNER_FIELDS["Co_Sell_Participant__c"]}
            regs = rows(f'SELECT * FROM "{alpha_role}".registrations')
            assert [r["registered_amount__c"] for r in regs] == [20000]
            assert [o["account_name"] for o in rows(f'SELECT * FROM "{alpha_role}".overlaps')] == \
                ["Overlap Target Inc"]
            # 2. the tables themselves
            for table in ("opportunity", "co_sell_participant__c", "deal_registration__c", "account",
                          "_cosell_partner_users", "_cosell_partner_activity", "_cosell_overlaps",
                          "_cosell_conflicts"):
                refused(f'SELECT * FROM "{schema}"."{table}"')
            # 3. Beta's views
            for view in ("deals", "participations", "registrations", "overlaps"):
                refused(f'SELECT * FROM "{beta_role}".{view}')
            # 4. a leaky function in WHERE
            conn.execute(text("CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql "
                              "COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'saw %', t; RETURN true; END $$"))
            rows(f'SELECT * FROM "{alpha_role}".deals WHERE pg_temp.leak(name)')
            rows(f'SELECT * FROM "{alpha_role}".participations WHERE pg_temp.leak(_uuid)')
            assert notices and all("Beta" not in n for n in notices)
            assert sorted(n for n in notices if n.startswith("saw ") and " " in n[4:]) == \
                ["saw Alpha Renewal", "saw Shared Cloud Migration"]
            # 5. writing through a view
            refused(f"""UPDATE "{alpha_role}".deals SET nextstep = 'x'""")
            refused(f"""DELETE FROM "{alpha_role}".registrations""")
            # 6. becoming someone else
            refused("SET ROLE postgres")
            conn.rollback()
        as_alpha.dispose()
    finally:
        revoke_sql_access(engine, alpha_role)
        revoke_sql_access(engine, beta_role)
