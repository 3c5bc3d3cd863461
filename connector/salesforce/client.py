"""The one typed client every module uses to reach Salesforce, over
simple-salesforce and a session the connector owns. It logs in by the configured
flow, renews an expired session once, retries transient failures with jittered
exponential backoff (tenacity), tracks API usage from `Sforce-Limit-Info` and
stops before the configured share of the daily limit. It knows nothing of the
local database."""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote_plus

import requests
import simplejson
from simple_salesforce import Salesforce
from simple_salesforce import exceptions as sfx
from tenacity import (RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential,
                      wait_random)

from connector.config import Settings
from connector.errors import (AuthenticationFailed, ConfigurationError, DailyLimitReached, PermanentApiError,
                              QuotaExhausted, SalesforceApiError, TransientApiError)
from connector.salesforce import auth
from connector.salesforce.http import SalesforceSession

log = logging.getLogger("connector.salesforce")
T = TypeVar("T")

TRANSIENT_ERROR_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE",
                                   "QUERY_TIMEOUT", "UNKNOWN_EXCEPTION"})
# A query naming a field or object the org no longer has fails every run until the mirror catches up.
SCHEMA_HINTS = {code: "; the org's schema changed (a mapped field or object was deleted, renamed or hidden from "
                      "the integration user): run `cosell mirror --plan` to see the drift, then `cosell mirror`"
                for code in ("INVALID_FIELD", "INVALID_TYPE")}
DESCRIBES_PER_COMPOSITE = 25
COMPOSITE_QUERIES = 5
COLLECTION_SIZE = 200
NOT_MODIFIED = object()  # a describe the org says has not changed since the given time


@dataclass
class ApiUsage:
    used: int = 0
    total: int = 0

    @property
    def share(self) -> float:
        return self.used / self.total if self.total else 0.0


def _error_code(content: Any) -> str | None:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode") or content[0].get("statusCode")
    if isinstance(content, dict):
        return content.get("errorCode")
    return None


def _error_message(content: Any) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message", content))
    return str(content)[:500]


def _login_transient(exc: BaseException) -> bool:
    """A token request worth repeating: the login service's passing faults, not an untrusted certificate."""
    return isinstance(exc, auth.LoginUnavailable) or (
        isinstance(exc, requests.RequestException) and not isinstance(exc, requests.exceptions.SSLError))


def _daily_limit(code: str | None, message: str) -> bool:
    """REQUEST_LIMIT_EXCEEDED means two things: the concurrent-request limit (retry soon) or the
    daily limit (TotalRequests: retrying only burns attempts until usage falls)."""
    return code == "REQUEST_LIMIT_EXCEEDED" and auth.DAILY_LIMIT_MARKER in message


def translate(exc: Exception) -> Exception:
    """A simple-salesforce or requests exception as the connector's error of the right group."""
    if isinstance(exc, sfx.SalesforceError):
        code = _error_code(exc.content)
        if _daily_limit(code, _error_message(exc.content)):
            return DailyLimitReached(f"{code}: {_error_message(exc.content)}")
        kind = TransientApiError if (exc.status >= 500 or code in TRANSIENT_ERROR_CODES) else PermanentApiError
        return kind(_error_message(exc.content) + SCHEMA_HINTS.get(code or "", ""), status=exc.status,
                    error_code=code, url=exc.url)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return TransientApiError(f"connection failed: {exc.__class__.__name__}: {exc}")
    return exc


class SalesforceClient:
    """Calls Salesforce on behalf of the connector; build it with `from_settings`."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.session = session or SalesforceSession(
            ca_cert=str(settings.ca_cert) if settings.ca_cert else None, timeout=(10.0, settings.request_timeout))
        self.usage = ApiUsage()
        self.calls = 0
        self.renewals = 0
        self._sf: Salesforce | None = None
        self._sleep = sleep
        self.identity_url: str | None = None
        self._tenant: str | None = None
        # The org's clock as seen in response Date headers; read windows are bounded by it.
        self.server_offset = dt.timedelta(0)
        self.session.hooks["response"].append(self._remember_server_time)
        # Change events of the connector's own writes carry this in changeOrigin (so they do not echo).
        self.session.headers["Sforce-Call-Options"] = f"client={settings.client_name}"

    def _remember_server_time(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        stamp = response.headers.get("Date")
        if stamp:
            try:
                served = email.utils.parsedate_to_datetime(stamp)
            except (TypeError, ValueError):
                return
            self.server_offset = served - dt.datetime.now(dt.timezone.utc)

    def org_now(self) -> dt.datetime:
        """The org's current time (whole seconds), from the last Date header it sent."""
        return (dt.datetime.now(dt.timezone.utc) + self.server_offset).replace(microsecond=0)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SalesforceClient:
        return cls(settings or Settings())

    # -- login ------------------------------------------------------------------------------
    def login(self) -> Salesforce:
        """Log in by the configured flow, retrying a passing fault of the login service (5xx, the
        concurrent-request limit, a dropped connection) like any call; raises AuthenticationFailed,
        DailyLimitReached or ConfigurationError, and PermanentApiError once the retries are spent
        (so a caller's own retries do not multiply them)."""
        s = self.settings
        try:
            if s.auth == "session":
                _require(s, "instance_url", "access_token")
                token, instance = s.access_token.get_secret_value(), s.instance_url
            else:
                result = self._retrying("login", _login_transient)(self._token)
                token, instance, self.identity_url = result.access_token, result.instance_url, result.identity_url
        except auth.AuthenticationError as exc:
            if _daily_limit(exc.error, exc.description):
                raise DailyLimitReached(f"login: {exc.error}: {exc.description}") from None
            raise AuthenticationFailed(f"login to {s.login_url} by the {s.auth} flow failed: {exc.error}: "
                                       f"{exc.description}") from None
        except auth.LoginUnavailable as exc:
            raise PermanentApiError(f"login to {s.login_url} failed {s.max_attempts} time(s): {exc.reason}; "
                                    "try again later", status=exc.status) from None
        except requests.exceptions.SSLError:
            raise ConfigurationError(f"the TLS certificate of {s.login_url} is not trusted: set COSELL_CA_CERT "
                                     "(`cosell init --ca-cert FILE`) to the CA certificate that signed it (the "
                                     "emulator prints its ca_cert); verification is never turned off") from None
        except requests.RequestException as exc:
            raise PermanentApiError(f"could not reach {s.login_url} in {s.max_attempts} attempt(s): "
                                    f"{exc.__class__.__name__}") from None
        self._sf = Salesforce(session_id=token, instance_url=instance, session=self.session,
                              version=s.api_version, parse_float=Decimal, object_pairs_hook=dict)
        return self._sf

    def _token(self) -> auth.Token:
        s = self.settings
        if s.auth == "jwt":
            _require(s, "username", "consumer_key", "private_key")
            return auth.jwt_bearer(self.session, login_url=s.login_url, consumer_key=s.consumer_key,
                                   username=s.username, private_key=s.private_key.get_secret_value())
        if s.auth == "refresh_token":
            _require(s, "consumer_key", "refresh_token")
            return auth.refresh_token(self.session, login_url=s.login_url, consumer_key=s.consumer_key,
                                      refresh=s.refresh_token.get_secret_value(),
                                      consumer_secret=_secret(s.consumer_secret))
        _require(s, "username", "password", "consumer_key", "consumer_secret")
        return auth.password(self.session, login_url=s.login_url, consumer_key=s.consumer_key,
                             consumer_secret=s.consumer_secret.get_secret_value(), username=s.username,
                             password=s.password.get_secret_value(),
                             security_token=_secret(s.security_token) or "")

    @property
    def sf(self) -> Salesforce:
        return self._sf or self.login()

    def pubsub_metadata(self) -> tuple[tuple[str, str], ...]:
        """The three metadata entries of a Pub/Sub API call for the current session (the org id is
        read from the identity service once per process)."""
        sf = self.sf
        if self._tenant is None:
            self._tenant = self.identity()["organization_id"]
        return (("accesstoken", sf.session_id), ("instanceurl", f"https://{sf.sf_instance}"),
                ("tenantid", self._tenant))

    # -- the call wrapper -------------------------------------------------------------------
    def call(self, operation: Callable[[Salesforce], T], *, what: str = "call") -> T:
        """Run one API operation with quota guard, session renewal and retries."""
        return self._retrying(what, lambda e: isinstance(e, TransientApiError))(self._attempt, operation)

    def _retrying(self, what: str, transient: Callable[[BaseException], bool]) -> Retrying:
        """The configured jittered exponential backoff, retrying what `transient` accepts."""
        s = self.settings
        return Retrying(
            stop=stop_after_attempt(s.max_attempts),
            wait=wait_exponential(multiplier=s.retry_initial_wait, max=s.retry_max_wait)
            + wait_random(0, s.retry_initial_wait),
            retry=retry_if_exception(transient),
            reraise=True, before_sleep=self._log_retry(what),
            **({"sleep": self._sleep} if self._sleep else {}))

    def _attempt(self, operation: Callable[[Salesforce], T]) -> T:
        self.check_quota()
        renewed = False
        while True:
            sf = self.sf
            self.calls += 1
            try:
                result = operation(sf)
            except sfx.SalesforceExpiredSession:
                if renewed or self.settings.auth == "session":
                    raise AuthenticationFailed("the session expired and could not be renewed"
                                               + (" (a given session cannot be renewed; configure jwt)"
                                                  if self.settings.auth == "session" else "")) from None
                log.info("session expired; logging in again")
                self.renewals += 1
                renewed = True
                self.login()
                continue
            except (sfx.SalesforceError, requests.RequestException) as exc:
                raise translate(exc) from exc
            finally:
                self._read_usage(sf)
            return result

    def _read_usage(self, sf: Salesforce) -> None:
        usage = (sf.api_usage or {}).get("api-usage")
        if usage is not None:
            self.usage = ApiUsage(usage.used, usage.total)

    def forget_usage(self) -> None:
        """Let the next call through to read usage again (the daily limit is a rolling 24 hours,
        so a run that stopped on quota must be able to find out that it has room again)."""
        self.usage = ApiUsage()

    def check_quota(self) -> None:
        if self.usage.total and self.usage.share >= self.settings.quota_share:
            raise QuotaExhausted(self.usage.used, self.usage.total, self.settings.quota_share)

    @staticmethod
    def _log_retry(what: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s failed (attempt %d): %s; retrying in %.2fs", what, state.attempt_number, exc,
                        state.next_action.sleep if state.next_action else 0)
        return before_sleep

    # -- discovery --------------------------------------------------------------------------
    def limits(self) -> dict[str, Any]:
        return self.call(lambda sf: sf.limits(), what="limits")

    def identity(self) -> dict[str, Any]:
        """Who we are logged in as (the OAuth identity URL)."""
        url = self.identity_url
        if not url:
            raise ConfigurationError("no identity URL: a given session does not carry one")
        return self.call(lambda sf: _get_json(self.session, url, sf.session_id), what="identity")

    def describe_global(self, since: dt.datetime | None = None) -> Any:
        """describeGlobal, or NOT_MODIFIED when nothing changed since `since`."""
        headers = {"If-Modified-Since": _http_date(since)} if since else {}

        def op(sf: Salesforce) -> Any:
            try:
                return sf.describe(headers=headers)
            except sfx.SalesforceGeneralError as exc:
                if exc.status == 304:
                    return NOT_MODIFIED
                raise
        return self.call(op, what="describeGlobal")

    def describe(self, names: Iterable[str], since: dt.datetime | None = None) -> dict[str, Any]:
        """sObject describes of many objects, 25 per composite call.

        Values are the describe body, NOT_MODIFIED (unchanged since `since`) or None when
        the org has no such object. /composite is used rather than /composite/batch: both
        take 25 subrequests, but composite honours per-subrequest If-Modified-Since headers
        and counts as one call against the daily limit, batch counts each subrequest."""
        names = list(dict.fromkeys(names))
        out: dict[str, Any] = {}
        version = self.settings.api_version
        for start in range(0, len(names), DESCRIBES_PER_COMPOSITE):
            chunk = names[start:start + DESCRIBES_PER_COMPOSITE]
            subrequests = []
            for i, name in enumerate(chunk):
                sub: dict[str, Any] = {"method": "GET", "referenceId": f"o{i}",
                                       "url": f"/services/data/v{version}/sobjects/{name}/describe"}
                if since:
                    sub["httpHeaders"] = {"If-Modified-Since": _http_date(since)}
                subrequests.append(sub)
            body = {"allOrNone": False, "compositeRequest": subrequests}
            response = self.call(lambda sf: sf.restful("composite", method="POST", **json_body(body)),
                                 what=f"describe {', '.join(chunk)}")
            for name, item in zip(chunk, response["compositeResponse"]):
                status = item["httpStatusCode"]
                if status == 200:
                    out[name] = item["body"]
                elif status == 304:
                    out[name] = NOT_MODIFIED
                elif status == 404:
                    out[name] = None
                else:
                    code = _error_code(item["body"])
                    kind = TransientApiError if status >= 500 or code in TRANSIENT_ERROR_CODES else PermanentApiError
                    raise kind(f"describe of {name} failed: {_error_message(item['body'])}", status=status,
                               error_code=code, object_name=name)
        return out

    # -- queries ----------------------------------------------------------------------------
    def query(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every record of a SOQL query, page by page (2,000 per call), each page retried on its own."""
        first = self.call(lambda sf: sf.query(soql, include_deleted=include_deleted), what="query")
        page = first
        while True:
            for record in page["records"]:
                record.pop("attributes", None)
                yield record
            if page.get("done", True):
                return
            next_url = page["nextRecordsUrl"]
            page = self.call(lambda sf: sf.query_more(next_url, identifier_is_url=True), what="query more")

    def query_pages(self, soql: str, *, include_deleted: bool = False,
                    first: dict[str, Any] | None = None) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(totalSize, records) page by page; each page is one call, retried on its own. `first` is a
        first page already fetched (by `composite_queries`), continued from its nextRecordsUrl."""
        page = first if first is not None else self.call(
            lambda sf: sf.query(soql, include_deleted=include_deleted), what="query")
        while True:
            records = page["records"]
            for record in records:
                record.pop("attributes", None)
            yield page["totalSize"], records
            if page.get("done", True):
                return
            next_url = page["nextRecordsUrl"]
            page = self.call(lambda sf: sf.query_more(next_url, identifier_is_url=True), what="query more")

    def bulk_query(self, object_name: str, soql: str, *, include_deleted: bool = False, page_size: int = 10_000,
                   batch_rows: int = 2_000, poll_wait: float = 0.5) -> Iterator[list[dict[str, str]]]:
        """Rows of a Bulk 2.0 query job in batches of up to `batch_rows`, parsed from one CSV result page
        (up to `page_size` rows, fetched and retried on its own) at a time. Values are CSV text; an
        empty field is null. Memory holds one page's text and one batch of rows, whatever the job's
        size: 1 call per 10,000 rows, without 10,000 parsed rows at once (a page of long text fields
        would otherwise set the peak)."""
        from simple_salesforce.bulk2 import JobState, Operation

        operation = Operation.query_all if include_deleted else Operation.query
        client = lambda sf: sf.bulk2.__getattr__(object_name)._client  # noqa: E731
        job = self.call(lambda sf: client(sf).create_job(operation, soql), what=f"bulk query {object_name}")
        delay = poll_wait
        while True:
            info = self.call(lambda sf: client(sf).get_job(job["id"], True), what="bulk job status")
            state = info["state"]
            if state == JobState.job_complete:
                break
            if state in (JobState.failed, JobState.aborted):
                raise PermanentApiError(f"Bulk 2.0 job {job['id']} {state}: {info.get('errorMessage')}",
                                        object_name=object_name)
            (self._sleep or __import__("time").sleep)(delay)
            delay = min(delay * 2, 10.0)
        locator = ""
        while True:
            result = self.call(lambda sf, loc=locator: client(sf).get_query_results(job["id"], loc, page_size),
                               what="bulk results")
            reader = csv.DictReader(_lines(result.pop("records")))
            while batch := list(itertools.islice(reader, batch_rows)):
                yield batch
            del reader
            locator = result["locator"]
            if not locator:
                return

    def composite_queries(self, queries: list[tuple[str, bool]]) -> list[dict[str, Any] | Exception]:
        """The first pages of several queries (soql, include_deleted), five per composite call, so an
        idle poll of M objects costs ceil(M/5) calls. A failed query comes back as its exception."""
        out: list[dict[str, Any] | Exception] = []
        version = self.settings.api_version
        for start in range(0, len(queries), COMPOSITE_QUERIES):
            chunk = queries[start:start + COMPOSITE_QUERIES]
            body = {"allOrNone": False, "compositeRequest": [
                {"method": "GET", "referenceId": f"q{i}",
                 "url": f"/services/data/v{version}/{'queryAll' if deleted else 'query'}?q={quote_plus(soql)}"}
                for i, (soql, deleted) in enumerate(chunk)]}
            response = self.call(lambda sf, b=body: sf.restful("composite", method="POST", **json_body(b)),
                                 what=f"{len(chunk)} queries")
            for item in response["compositeResponse"]:
                status = item["httpStatusCode"]
                if status == 200:
                    out.append(item["body"])
                    continue
                code = _error_code(item["body"])
                kind = TransientApiError if status >= 500 or code in TRANSIENT_ERROR_CODES else PermanentApiError
                out.append(kind(_error_message(item["body"]), status=status, error_code=code))
        return out

    def count(self, soql_count: str) -> int:
        return self.call(lambda sf: sf.query(soql_count), what="count")["totalSize"]

    # -- sObject Collections ----------------------------------------------------------------
    def save(self, operation: str, object_name: str, records: list[dict[str, Any]], *,
             external_id: str | None = None) -> list[dict[str, Any]]:
        """create / update / upsert records through sObject Collections, 200 per call, allOrNone
        false: one result per record, in order, each with success, id and errors."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = [{"attributes": {"type": object_name}, **r} for r in records[start:start + COLLECTION_SIZE]]
            body = json_body({"allOrNone": False, "records": chunk})
            if operation == "create":
                call = lambda sf, b=body: sf.restful("composite/sobjects", method="POST", **b)  # noqa: E731
            elif operation == "update":
                call = lambda sf, b=body: sf.restful("composite/sobjects", method="PATCH", **b)  # noqa: E731
            elif operation == "upsert":
                path = f"composite/sobjects/{object_name}/{external_id}"
                call = lambda sf, b=body, p=path: sf.restful(p, method="PATCH", **b)  # noqa: E731
            else:
                raise ValueError(f"unknown save operation {operation!r}; choose create, update or upsert")
            results.extend(self.call(call, what=f"{operation} {len(chunk)} {object_name}"))
        return results

    def update_reading_first(self, object_name: str, records: list[dict[str, Any]], fields: list[str]
                             ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Update records (each with its Id) through sObject Collections inside a composite call whose
        first subrequest reads `fields` of the same records: Salesforce runs the two one after the other,
        so the read shows each record exactly as the update found it. One call per 200 records, as a
        plain collections update. Returns the per-record results, in order, and the records read, by Id
        (a record deleted meanwhile is absent)."""
        results: list[dict[str, Any]] = []
        before: dict[str, dict[str, Any]] = {}
        version = self.settings.api_version
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = records[start:start + COLLECTION_SIZE]
            ids = ", ".join("'" + str(r["Id"]).replace("'", "") + "'" for r in chunk)
            soql = f"SELECT {', '.join(dict.fromkeys(['Id', *fields]))} FROM {object_name} WHERE Id IN ({ids})"
            body = {"allOrNone": False, "compositeRequest": [
                {"method": "GET", "referenceId": "before",
                 "url": f"/services/data/v{version}/query?q={quote_plus(soql)}"},
                {"method": "PATCH", "referenceId": "save", "url": f"/services/data/v{version}/composite/sobjects",
                 "body": {"allOrNone": False,
                          "records": [{"attributes": {"type": object_name}, **r} for r in chunk]}}]}
            response = self.call(lambda sf, b=body: sf.restful("composite", method="POST", **json_body(b)),
                                 what=f"read and update {len(chunk)} {object_name}")
            read, save = response["compositeResponse"]
            if save["httpStatusCode"] >= 400:
                code = _error_code(save["body"])
                kind = (TransientApiError if save["httpStatusCode"] >= 500 or code in TRANSIENT_ERROR_CODES
                        else PermanentApiError)
                raise kind(_error_message(save["body"]), status=save["httpStatusCode"], error_code=code)
            if read["httpStatusCode"] == 200:
                for record in read["body"]["records"]:
                    record.pop("attributes", None)
                    before[record["Id"]] = record
            else:   # the update went through; without the read, the next pull's merge is all there is
                log.warning("reading %s before its update failed: %s", object_name, _error_message(read["body"]))
            results.extend(save["body"])
        return results, before

    def delete(self, ids: list[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for start in range(0, len(ids), COLLECTION_SIZE):
            params = {"ids": ",".join(ids[start:start + COLLECTION_SIZE]), "allOrNone": "false"}
            results.extend(self.call(lambda sf, p=params: sf.restful("composite/sobjects", method="DELETE",
                                                                       params=p), what=f"delete {len(ids)}"))
        return results


def json_body(body: Any) -> dict[str, Any]:
    """Request keyword arguments that send `body` as JSON with every Decimal written as the exact
    number literal it holds. requests' own `json=` uses whichever json module it finds, and the
    standard one cannot write a Decimal at all; a float would turn 1234567890123456.78 into ...456.8."""
    return {"data": simplejson.dumps(body, use_decimal=True, separators=(",", ":")).encode("utf-8"),
            "headers": {"Content-Type": "application/json"}}


def _get_json(session: requests.Session, url: str, token: str) -> Any:
    response = session.get(url, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 300:
        raise SalesforceApiError(f"identity lookup failed: {response.text[:200]}", status=response.status_code,
                                 url=url)
    return response.json()


def _http_date(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _require(settings: Settings, *names: str) -> None:
    missing = [n for n in names if getattr(settings, n) in (None, "")]
    if missing:
        flags = ", ".join(f"COSELL_{n.upper()}" for n in missing)
        raise ConfigurationError(f"the {settings.auth} auth flow needs {flags}")


_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _lines(text: str) -> Iterator[str]:
    """The lines of a CSV text with their line ends, one at a time (csv joins a quoted value's lines).
    Unlike io.StringIO, no second copy of the page is made (StringIO keeps 4 bytes per character)."""
    return (m.group(0) for m in _LINE.finditer(text))
