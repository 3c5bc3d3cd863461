"""The installation checks `cosell init` and `cosell check` run: can we log in, who
are we, how much API quota is left, does the org have every mapped object and field,
may the integration user read, create and update what the mapping needs, is the
database reachable, and is there schema drift waiting. Each check says what to do."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from connector.bootstrap import Connector
from connector.errors import ConnectorError
from connector.salesforce.client import NOT_MODIFIED
from connector.sync.engine import SYSTEM_FIELDS as _SYSTEM_FIELDS


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(connector: Connector, *, database: bool = True, drift: bool = True) -> list[Check]:
    checks: list[Check] = []
    client = connector.client
    try:
        client.login()
    except ConnectorError as exc:
        return [Check("login", False, str(exc), "check COSELL_LOGIN_URL, the auth flow and its credentials; for "
                                                "JWT, the connected app must hold the certificate of the key")]
    checks.append(Check("login", True, f"{connector.settings.auth} flow to {connector.settings.login_url}"))
    try:
        identity = client.identity() if client.identity_url else None
        if identity:
            checks.append(Check("identity", True, f"user {identity.get('username')} in org "
                                                  f"{identity.get('organization_id')}"))
        limits = client.limits()["DailyApiRequests"]
        used = limits["Max"] - limits["Remaining"]
        share = used / limits["Max"] if limits["Max"] else 0
        ok = share < connector.settings.quota_share
        checks.append(Check("api usage", ok, f"{used}/{limits['Max']} daily API requests used ({share:.0%})",
                            "" if ok else "the connector stops runs at COSELL_QUOTA_SHARE; wait for the rolling "
                                          "24 hours or raise the org's limit"))
        checks.extend(mapping_checks(connector))
    except ConnectorError as exc:
        checks.append(Check("salesforce", False, str(exc), "see the error; transient errors are retried by sync"))
    if database:
        checks.append(_database_check(connector))
    if drift and checks[-1].ok:
        checks.append(_drift_check(connector))
    return checks


def mapping_checks(connector: Connector) -> list[Check]:
    """The mapping against the org alone: every object and field exists, external IDs are external-ID
    fields, field policies name real fields, read_write objects may be created and updated."""
    out: list[Check] = []
    describes = connector.client.describe(list(connector.mapping.objects))
    for name, mapping in connector.mapping.objects.items():
        body = describes.get(name)
        if body is None or body is NOT_MODIFIED:
            out.append(Check(f"object {name}", False, "the org has no such object, or the integration user "
                                                      "cannot see it",
                             "grant the user Read on it, or remove it from the mapping"))
            continue
        fields = {f["name"].lower(): f for f in body["fields"]}
        missing = [f for f in (mapping.fields.include or []) if f.lower() not in fields]
        problems = []
        if missing:
            problems.append(f"missing fields: {', '.join(missing)}")
        unknown_policies = [f for f in mapping.field_policies if f.lower() not in fields]
        if unknown_policies:
            problems.append(f"field_policies name fields the org does not have: {', '.join(unknown_policies)}")
        if not body.get("queryable", True):
            problems.append("not readable (queryable false)")
        if mapping.direction == "read_write":
            if mapping.create and not body.get("createable"):
                problems.append("the user cannot create records (createable false)")
            if not body.get("updateable"):
                problems.append("the user cannot update records (updateable false)")
            if mapping.external_id:
                ext = fields.get(mapping.external_id.lower())
                if ext is None:
                    problems.append(f"external_id {mapping.external_id} is not a field of {name}")
                elif not ext.get("externalId"):
                    choices = sorted(f["name"] for f in body["fields"] if f.get("externalId"))
                    problems.append(f"external_id {mapping.external_id} is not an external-ID field (choose one "
                                    f"of: {', '.join(choices) or 'none yet: create a text field marked External ID'})")
        detail = f"{mapping.direction}, {len(body['fields'])} fields visible"
        if mapping.direction == "read_write":
            # Said up front: a portal edit to one of these is parked at sync (FIELD_NOT_UPDATEABLE).
            locked = sorted(f["name"] for f in body["fields"] if not f.get("updateable") and not f.get("calculated")
                            and not f.get("autoNumber") and f["name"] not in _SYSTEM_FIELDS
                            and (not mapping.fields.include or f["name"].lower() in
                                 {i.lower() for i in mapping.fields.include})
                            and f["name"].lower() not in {e.lower() for e in mapping.fields.exclude or []})
            if locked:
                detail += (f"; the user cannot update {', '.join(locked)}: portal edits to them are parked, "
                           "not sent")
        out.append(Check(f"object {name}", not problems, "; ".join(problems) or detail,
                         "fix the permission set of the integration user, or the mapping" if problems else ""))
    return out


def _database_check(connector: Connector) -> Check:
    url = connector.engine.url.render_as_string(hide_password=True)
    try:
        with connector.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the same thing to the admin
        return Check("database", False, f"{url}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
                     "check COSELL_DATABASE_URL and that the server is running")
    return Check("database", True, url)


def _drift_check(connector: Connector) -> Check:
    try:
        plan = connector.mirror.plan()
    except ConnectorError as exc:
        return Check("schema", False, str(exc), "run `cosell mirror --plan` for details")
    pending = plan.pending
    if not pending:
        return Check("schema", True, "the database matches the org and the mapping")
    return Check("schema", False, f"{len(pending)} change(s) pending: " + "; ".join(str(c).split()[0] + " " +
                                                                               str(c).split()[1] for c in pending[:5]),
                 "run `cosell mirror` to apply them")
