"""The Salesforce REST and Bulk 2.0 surface of the emulated org, as plain functions
from a request to a response (status, headers, body).

Transport, authentication, API counting and fault injection live in the server;
this module decides what a real org would answer and with which status code,
header and body shape (`SALESFORCE_API.md` is the reference)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import simplejson

from connector.emulator import ids
from connector.emulator.orgdef import OrgDef
from connector.emulator.soql import CompiledQuery, SoqlError, compile_query
from connector.emulator.store import RecordError, SaveError, Store
from connector.emulator.values import (bulk_datetime, http_date, parse_http_date, parse_wire_datetime,
                                       wire_datetime)

SUPPORTED_VERSIONS = [f"{v}.0" for v in range(31, 63)]
VERSION_LABELS = {"59.0": "Winter '24", "60.0": "Spring '24", "61.0": "Summer '24", "62.0": "Winter '25"}
DEFAULT_QUERY_BATCH = 2000
MAX_COLLECTION_RECORDS = 200
MAX_COMPOSITE_SUBREQUESTS = 25
MAX_COMPOSITE_QUERIES = 5
QUERY_LOCATOR_IDLE = dt.timedelta(minutes=15)


@dataclass
class Response:
    status: int
    body: Any = None                      # JSON-able, bytes, or None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return _dumps(self.body)


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return Response(status, [item])


def record_error(exc: RecordError) -> Response:
    return Response(exc.status, [e.as_rest() for e in exc.errors])


@dataclass
class Request:
    method: str
    path: str                              # path after /services/data/vXX.X, starting with "/"
    version: str
    query: dict[str, list[str]]
    headers: dict[str, str]                # lower-cased names
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body, parse_float=Decimal)
        except ValueError as exc:
            raise ApiError(error(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")) from exc


class ApiError(Exception):
    """Abort a request with this response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    query: CompiledQuery
    include_deleted: bool
    last_used: float


@dataclass
class BulkJob:
    id: str
    operation: str
    query: CompiledQuery
    soql: str
    delimiter: str
    line_ending: str
    created: str
    version: str
    records: list[dict[str, Any]]
    polls_before_complete: int
    state: str = "UploadComplete"
    deleted: bool = False

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "operation": self.operation, "object": self.query.object_name,
                "createdById": None, "createdDate": self.created, "systemModstamp": self.created,
                "state": self.state, "concurrencyMode": "Parallel", "contentType": "CSV",
                "apiVersion": float(self.version), "jobType": "V2Query", "lineEnding": self.line_ending,
                "columnDelimiter": self.delimiter,
                "numberRecordsProcessed": len(self.records) if self.state == "JobComplete" else 0,
                "retries": 0, "totalProcessingTime": 0}


_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}


class OrgApi:
    """Answers REST requests against one store."""

    def __init__(self, store: Store, *, login_url: Callable[[], str]):
        self.store = store
        self.org: OrgDef = store.org
        self._login_url = login_url
        # Per-record errors the next collection items answer with, not applying them (see
        # Emulator.fail_next_records): a busy org refuses single records inside a 200-record call.
        self.record_faults: list[tuple[str, str]] = []
        self._cursors: dict[str, _Cursor] = {}
        self._cursor_ids = itertools.count(1)
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()
        self.bulk_polls_before_complete = 0
        self.daily_limit = 15000
        self.api_used = 0
        self.user_id: Callable[[], str | None] = lambda: store.current_user_id

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            return self._route(req)
        except ApiError as exc:
            return exc.response
        except RecordError as exc:
            return record_error(exc)
        except SoqlError as exc:
            return error(400, exc.error_code, exc.message)

    def kind(self, req: Request) -> str:
        """The call's kind, for the emulator's counters."""
        parts = [p for p in req.path.split("/") if p]
        if not parts:
            return "resources"
        head = parts[0]
        if head in ("query", "queryAll"):
            return "query_more" if len(parts) > 1 else head.lower() if head == "query" else "query_all"
        if head == "sobjects":
            if len(parts) == 1:
                return "describe_global"
            if len(parts) >= 3 and parts[2] in ("describe", "updated", "deleted"):
                return {"describe": "describe", "updated": "get_updated", "deleted": "get_deleted"}[parts[2]]
            if len(parts) == 2:
                return "sobject_create" if req.method == "POST" else "sobject_info"
            if len(parts) == 4 or (len(parts) == 3 and parts[2] == "Id"):
                return "upsert" if req.method in ("PATCH", "POST") else "sobject_by_external_id"
            return {"GET": "sobject_get", "PATCH": "sobject_update", "DELETE": "sobject_delete"}.get(
                req.method, "sobject")
        if head == "composite":
            if len(parts) == 1:
                return "composite"
            if parts[1] == "batch":
                return "composite_batch"
            if parts[1] == "sobjects":
                if req.method == "GET" or (req.method == "POST" and len(parts) == 3):
                    return "collections_retrieve"
                return {"POST": "collections_create", "DELETE": "collections_delete"}.get(
                    req.method, "collections_upsert" if len(parts) == 4 else "collections_update")
        if head == "jobs":
            if len(parts) == 2:
                return "bulk2_create" if req.method == "POST" else "bulk2_list"
            if len(parts) == 4 and parts[3] == "results":
                return "bulk2_results"
            return "bulk2_job"
        return head

    def _route(self, req: Request) -> Response:
        parts = [unquote(p) for p in req.path.split("/") if p]
        if not parts:
            return self.resources(req)
        head, rest = parts[0], parts[1:]
        if head == "limits" and not rest:
            return self.limits()
        if head in ("query", "queryAll"):
            self._only(req, "GET")
            if rest:
                return self.query_more(req, rest[0], include_deleted=head == "queryAll")
            return self.query(req, include_deleted=head == "queryAll")
        if head == "sobjects":
            return self._sobjects(req, rest)
        if head == "composite":
            if not rest:
                self._only(req, "POST")
                return self.composite(req)
            if rest == ["batch"]:
                self._only(req, "POST")
                return self.composite_batch(req)
            if rest[0] == "sobjects":
                return self._collections(req, rest[1:])
        if head == "jobs" and rest and rest[0] == "query":
            return self._bulk(req, rest[1:])
        raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))

    @staticmethod
    def _only(req: Request, *methods: str) -> None:
        if req.method not in methods:
            raise ApiError(error(405, "METHOD_NOT_ALLOWED",
                                 f"HTTP Method '{req.method}' not allowed. Allowed are {','.join(methods)}"))

    # -- discovery --------------------------------------------------------------------------
    def resources(self, req: Request) -> Response:
        base = f"/services/data/v{req.version}"
        return Response(200, {
            "tooling": f"{base}/tooling", "metadata": f"{base}/metadata", "query": f"{base}/query",
            "queryAll": f"{base}/queryAll", "sobjects": f"{base}/sobjects", "limits": f"{base}/limits",
            "composite": f"{base}/composite", "jobs": {"ingest": f"{base}/jobs/ingest",
                                                       "query": f"{base}/jobs/query"},
            "identity": f"{self._login_url()}/id/{self.org.organization_id}/{self.user_id()}",
            "search": f"{base}/search", "recent": f"{base}/recent"})

    def limits(self) -> Response:
        remaining = max(0, self.daily_limit - self.api_used)
        return Response(200, {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(self._jobs)},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024}})

    # -- sObject resources ------------------------------------------------------------------
    def _sobjects(self, req: Request, rest: list[str]) -> Response:
        if not rest:
            self._only(req, "GET")
            return self._conditional(req, self.store.global_modified, self.org.describe_global)
        obj = self.org.get_object(rest[0])
        if obj is None:
            raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
        if len(rest) == 1:
            if req.method == "POST":
                return self.create_one(obj.name, req.json())
            self._only(req, "GET", "POST")
            return Response(200, {"objectDescribe": self.org._object_flags(obj), "recentItems": []})
        second = rest[1]
        if second == "describe" and len(rest) == 2:
            self._only(req, "GET")
            return self._conditional(req, self.store.metadata_modified.get(obj.name, self.store.created_at),
                                     lambda: self.org.describe_sobject(obj.name))
        if second == "describe" and len(rest) in (3, 4) and rest[2] == "layouts":
            self._only(req, "GET")
            if len(rest) == 3:
                return Response(200, self.org.describe_layouts(obj.name))
            layout = self.org.describe_layout(obj.name, rest[3])
            if layout is None:
                raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
            return Response(200, layout)
        if second in ("updated", "deleted") and len(rest) == 2:
            self._only(req, "GET")
            return self.replication(req, obj.name, second)
        if len(rest) == 2:
            if second == "Id" and req.method == "POST":
                return self.create_one(obj.name, req.json())
            return self._row(req, obj.name, second)
        if len(rest) == 3:
            return self._by_external_id(req, obj.name, second, rest[2])
        raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))

    def _conditional(self, req: Request, modified: dt.datetime, render: Callable[[], Any]) -> Response:
        headers = {"Last-Modified": http_date(modified)}
        since = req.headers.get("if-modified-since")
        if since is not None:
            when = parse_http_date(since)
            if when is None:
                raise ApiError(error(400, "INVALID_HEADER_TYPE",
                                     f"Invalid value for If-Modified-Since header: {since}"))
            if modified <= when:
                return Response(304, None, headers)
        return Response(200, render(), headers)

    def create_one(self, object_name: str, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object"))
        new_id = self.store.create(object_name, body)
        return Response(201, {"id": new_id, "success": True, "errors": []})

    def _row(self, req: Request, object_name: str, record_id: str) -> Response:
        if req.method == "GET":
            record = self._record_or_error(object_name, record_id)
            modified = record.get("LastModifiedDate") or record.get("SystemModstamp")
            since = req.headers.get("if-modified-since")
            if since and modified:
                when = parse_http_date(since)
                if when and parse_wire_datetime(modified) <= when:
                    return Response(304, None, {"Last-Modified": http_date(parse_wire_datetime(modified))})
            fields = req.param("fields")
            return Response(200, self.render_record(object_name, record, fields.split(",") if fields else None))
        if req.method == "PATCH":
            body = req.json()
            if not isinstance(body, dict):
                raise ApiError(error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object"))
            with self.store.lock:  # the check and the write are one step, as a conditional write must be
                self._check_unmodified_since(req, object_name, record_id)
                self.store.update(object_name, record_id, body)
            return Response(204)
        if req.method == "DELETE":
            self.store.delete(object_name, record_id)
            return Response(204)
        self._only(req, "GET", "PATCH", "DELETE")
        raise AssertionError("unreachable")

    def _check_unmodified_since(self, req: Request, object_name: str, record_id: str) -> None:
        """REST API "Conditional requests": a PATCH with If-Unmodified-Since on a record modified after
        that date is refused with 412 Precondition Failed, and the record is left as it was."""
        since = req.headers.get("if-unmodified-since")
        if since is None:
            return
        when = parse_http_date(since)
        if when is None:
            raise ApiError(error(400, "INVALID_HEADER_TYPE", f"Invalid value for If-Unmodified-Since header: {since}"))
        record = self._record_or_error(object_name, record_id)
        modified = record.get("LastModifiedDate") or record.get("SystemModstamp")
        if modified and parse_wire_datetime(modified) > when:
            raise ApiError(error(412, "PRECONDITION_FAILED",
                                 f"The requested resource has been modified since {since}"))

    def _record_or_error(self, object_name: str, record_id: str) -> dict[str, Any]:
        if not ids.is_valid(record_id):
            raise ApiError(error(400, "MALFORMED_ID", f"malformed id {record_id}"))
        with self.store.lock:
            record = self.store.get(object_name, record_id)
        if record is None:
            raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
        if record.get("IsDeleted"):
            raise ApiError(error(404, "ENTITY_IS_DELETED", "entity is deleted", []))
        return record

    def _by_external_id(self, req: Request, object_name: str, field_name: str, value: str) -> Response:
        obj = self.org.get_object(object_name)
        fdef = obj.field(field_name)
        if fdef is None or not (fdef.external_id or fdef.id_lookup):
            raise ApiError(error(404, "NOT_FOUND", f"Provided external ID field does not exist or is not "
                                                    f"accessible: {field_name}"))
        if req.method == "GET":
            matches = self.store.find_by_external_id(obj.name, fdef.name, value)
            if not matches:
                raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
            return Response(200, self.render_record(obj.name, matches[0], None))
        if req.method in ("PATCH", "POST"):
            body = req.json() or {}
            if not isinstance(body, dict):
                raise ApiError(error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object"))
            record_id, created = self.store.upsert(obj.name, fdef.name, value, body)
            if created:
                return Response(201, {"id": record_id, "success": True, "errors": [], "created": True})
            if float(req.version) < 46.0:
                return Response(204)
            return Response(200, {"id": record_id, "success": True, "errors": [], "created": False})
        if req.method == "DELETE":
            matches = self.store.find_by_external_id(obj.name, fdef.name, value)
            if not matches:
                raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
            self.store.delete(obj.name, matches[0]["Id"])
            return Response(204)
        self._only(req, "GET", "PATCH", "POST", "DELETE")
        raise AssertionError("unreachable")

    def render_record(self, object_name: str, record: dict[str, Any], fields: list[str] | None) -> dict:
        obj = self.org.get_object(object_name)
        names = fields or [f.name for f in obj.fields]
        soql = f"SELECT {', '.join(names)} FROM {obj.name}"
        compiled = compile_query(soql, self.org, self.store.now())
        with self.store.lock:
            return compiled.project(record, self.store.fetch, self.org.api_version)

    # -- replication ------------------------------------------------------------------------
    def replication(self, req: Request, object_name: str, which: str) -> Response:
        obj = self.org.get_object(object_name)
        if not obj.replicateable:
            raise ApiError(error(400, "INVALID_TYPE", f"sObject type '{obj.name}' is not replicateable"))
        start_raw, end_raw = req.param("start"), req.param("end")
        if not start_raw or not end_raw:
            raise ApiError(error(400, "MALFORMED_QUERY", "Both start and end dates are required"))
        try:
            start = parse_wire_datetime(start_raw).replace(second=0)
            end = parse_wire_datetime(end_raw).replace(second=0)
        except ValueError:
            raise ApiError(error(400, "INVALID_REPLICATION_DATE",
                                 f"Invalid date format: start={start_raw} end={end_raw}")) from None
        now = self.store.now()
        if end <= start:
            raise ApiError(error(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"))
        if start < now - dt.timedelta(days=30):
            raise ApiError(error(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago"))
        covered = min(end, now.replace(second=0))
        lo, hi = wire_datetime(start), wire_datetime(covered)
        if which == "updated":
            return Response(200, {"ids": self.store.updated_ids(obj.name, lo, hi),
                                  "latestDateCovered": hi})
        entries = self.store.deleted_entries(obj.name, lo, hi)
        return Response(200, {"deletedRecords": [{"id": e.id, "deletedDate": e.deleted_date} for e in entries],
                              "earliestDateAvailable": self.store.earliest_delete_available(obj.name),
                              "latestDateCovered": hi})

    # -- SOQL -------------------------------------------------------------------------------
    def _run(self, soql: str, include_deleted: bool, *, bulk: bool = False) -> tuple[CompiledQuery, list[dict]]:
        compiled = compile_query(soql, self.org, self.store.now(), bulk=bulk)
        store = self.store
        obj = self.org.get_object(compiled.object_name)
        deleted_ok = include_deleted or not obj.has_is_deleted
        with store.lock:
            if compiled.id_filter is not None:
                candidates = (store.fetch(compiled.object_name, i) for i in compiled.id_filter)
                source = [r for r in candidates if r is not None]
            else:
                source = store.scan(compiled.object_name, include_deleted=True)
            fetch = store.fetch
            matches = compiled.matches
            hits = [r for r in source if (deleted_ok or not r.get("IsDeleted")) and matches(r, fetch)]
            return compiled, compiled.order(hits, fetch)

    def query(self, req: Request, *, include_deleted: bool) -> Response:
        soql = req.param("q")
        if not soql:
            raise ApiError(error(400, "MALFORMED_QUERY", "A query string has to be specified"))
        compiled, records = self._run(soql, include_deleted)
        if compiled.is_count:
            return Response(200, {"totalSize": len(records), "done": True, "records": []})
        batch = self._batch_size(req)
        cursor_id = None
        if len(records) > batch:
            cursor_id = f"01g{ids.POD}{next(self._cursor_ids):010d}"
            with self._lock:
                self._expire_cursors()
                self._cursors[cursor_id] = _Cursor(records, compiled, include_deleted, time.monotonic())
        return self._page(req, compiled, records, 0, batch, cursor_id, include_deleted)

    def _batch_size(self, req: Request) -> int:
        options = req.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize\s*=\s*(\d+)", options)
        if not m:
            return DEFAULT_QUERY_BATCH
        return max(200, min(DEFAULT_QUERY_BATCH, int(m.group(1))))

    def _page(self, req: Request, compiled: CompiledQuery, records: list[dict], start: int, batch: int,
              cursor_id: str | None, include_deleted: bool) -> Response:
        chunk = records[start:start + batch]
        with self.store.lock:
            rendered = [compiled.project(r, self.store.fetch, req.version) for r in chunk]
        body: dict[str, Any] = {"totalSize": len(records), "done": start + batch >= len(records)}
        if not body["done"]:
            resource = "queryAll" if include_deleted else "query"
            body["nextRecordsUrl"] = f"/services/data/v{req.version}/{resource}/{cursor_id}-{start + batch}"
        body["records"] = rendered
        return Response(200, body)

    def query_more(self, req: Request, locator: str, *, include_deleted: bool) -> Response:
        m = re.fullmatch(r"(01g\w+)-(\d+)", locator)
        with self._lock:
            self._expire_cursors()
            cursor = self._cursors.get(m.group(1)) if m else None
            if cursor is not None:
                cursor.last_used = time.monotonic()
        if cursor is None:
            raise ApiError(error(400, "INVALID_QUERY_LOCATOR", "invalid query locator"))
        start = int(m.group(2))
        batch = self._batch_size(req)
        return self._page(req, cursor.query, cursor.records, start, batch, m.group(1), cursor.include_deleted)

    def _expire_cursors(self) -> None:
        horizon = time.monotonic() - QUERY_LOCATOR_IDLE.total_seconds()
        for key in [k for k, c in self._cursors.items() if c.last_used < horizon]:
            del self._cursors[key]

    # -- sObject Collections ----------------------------------------------------------------
    def _collections(self, req: Request, rest: list[str]) -> Response:
        if not rest:
            if req.method == "POST":
                return self._collection_write(req, "create", None, None)
            if req.method == "PATCH":
                return self._collection_write(req, "update", None, None)
            if req.method == "DELETE":
                return self.collection_delete(req)
            self._only(req, "POST", "PATCH", "DELETE")
        obj = self.org.get_object(rest[0])
        if obj is None:
            raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
        if len(rest) == 1 and req.method in ("GET", "POST"):
            return self.collection_retrieve(req, obj.name)
        if len(rest) == 2 and req.method == "PATCH":
            return self._collection_write(req, "upsert", obj.name, rest[1])
        raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))

    def _collection_write(self, req: Request, op: str, object_name: str | None, ext_field: str | None) -> Response:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(error(400, "JSON_PARSER_ERROR", "Expected a body with a 'records' list"))
        records = body["records"]
        if len(records) > MAX_COLLECTION_RECORDS:
            raise ApiError(error(400, "EXCEEDED_ID_LIMIT",
                                 "record limit reached. cannot submit more than 200 records into this call"))
        all_or_none = bool(body.get("allOrNone", False))
        if ext_field is not None:
            fdef = self.org.get_object(object_name).field(ext_field)
            if fdef is None or not (fdef.external_id or fdef.id_lookup):
                raise ApiError(error(400, "INVALID_FIELD",
                                     f"Provided external ID field does not exist or is not accessible: {ext_field}"))
        results: list[dict[str, Any]] = []
        with self.store.atomic() as tx:
            for item in records:
                results.append(self._collection_item(op, item, object_name, ext_field))
            if all_or_none and any(not r["success"] for r in results):
                tx.rollback()
                results = [r if not r["success"] else
                           {"id": None, "success": False, "errors": [SaveError(
                               "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                               "Record rolled back because not all records were valid and the request was "
                               "using AllOrNone header").as_collection_item()]}
                           for r in results]
        return Response(200, results)

    def _collection_item(self, op: str, item: Any, object_name: str | None, ext_field: str | None) -> dict:
        def failed(err: SaveError, rid: str | None = None) -> dict:
            out = {"success": False, "errors": [err.as_collection_item()]}
            if rid is not None or op != "create":
                out = {"id": rid, **out}
            return out

        if not isinstance(item, dict):
            return failed(SaveError("JSON_PARSER_ERROR", "Each record must be a JSON object"))
        values = {k: v for k, v in item.items() if k != "attributes"}
        type_name = object_name or (item.get("attributes") or {}).get("type")
        if not type_name or self.org.get_object(type_name) is None:
            return failed(SaveError("INVALID_TYPE", f"sObject type '{type_name}' is not supported"))
        if self.record_faults:
            code, message = self.record_faults.pop(0)
            return failed(SaveError(code, message), values.get("Id"))
        try:
            with self.store.atomic():
                if op == "create":
                    if values.get("Id"):
                        return failed(SaveError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]))
                    values.pop("Id", None)
                    return {"id": self.store.create(type_name, values), "success": True, "errors": []}
                if op == "update":
                    rid = values.pop("Id", None)
                    if not rid:
                        return failed(SaveError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]))
                    self.store.update(type_name, rid, values)
                    return {"id": ids.to18(rid), "success": True, "errors": []}
                key = values.get(ext_field) if ext_field != "Id" else values.get("Id")
                rid, created = self.store.upsert(type_name, ext_field, key, values)
                return {"id": rid, "success": True, "errors": [], "created": created}
        except RecordError as exc:
            rid = values.get("Id") if op == "update" else None
            return {"id": rid, "success": False, "errors": [e.as_collection_item() for e in exc.errors]} \
                if op != "create" else {"success": False, "errors": [e.as_collection_item() for e in exc.errors]}

    def collection_delete(self, req: Request) -> Response:
        raw = req.param("ids") or ""
        id_list = [i for i in raw.split(",") if i]
        if not id_list:
            raise ApiError(error(400, "MISSING_ARGUMENT", "ids parameter is required"))
        if len(id_list) > MAX_COLLECTION_RECORDS:
            raise ApiError(error(400, "EXCEEDED_ID_LIMIT",
                                 "record limit reached. cannot submit more than 200 records into this call"))
        all_or_none = (req.param("allOrNone") or "false").lower() == "true"
        results = []
        with self.store.atomic() as tx:
            for rid in id_list:
                obj = self.store.object_of_id(rid) if ids.is_valid(rid) else None
                if obj is None:
                    results.append({"id": rid, "success": False, "errors": [SaveError(
                        "MALFORMED_ID", f"malformed id {rid}", ["Id"]).as_collection_item()]})
                    continue
                try:
                    with self.store.atomic():
                        self.store.delete(obj.name, rid)
                    results.append({"id": ids.to18(rid), "success": True, "errors": []})
                except RecordError as exc:
                    results.append({"id": rid, "success": False,
                                    "errors": [e.as_collection_item() for e in exc.errors]})
            if all_or_none and any(not r["success"] for r in results):
                tx.rollback()
                results = [r if not r["success"] else {"id": r["id"], "success": False, "errors": [SaveError(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid "
                    "and the request was using AllOrNone header").as_collection_item()]} for r in results]
        return Response(200, results)

    def collection_retrieve(self, req: Request, object_name: str) -> Response:
        if req.method == "POST":
            body = req.json() or {}
            id_list, fields = body.get("ids") or [], body.get("fields") or []
        else:
            id_list = [i for i in (req.param("ids") or "").split(",") if i]
            fields = [f for f in (req.param("fields") or "").split(",") if f]
        if not fields:
            raise ApiError(error(400, "MISSING_ARGUMENT", "fields parameter is required"))
        if len(id_list) > 2000:
            raise ApiError(error(400, "EXCEEDED_ID_LIMIT", "more than 2000 ids"))
        compiled = compile_query(f"SELECT {', '.join(fields)} FROM {object_name}", self.org, self.store.now())
        out = []
        with self.store.lock:
            for rid in id_list:
                record = self.store.fetch(object_name, rid)
                out.append(None if record is None or record.get("IsDeleted")
                           else compiled.project(record, self.store.fetch, req.version))
        return Response(200, out)

    # -- composite --------------------------------------------------------------------------
    def composite(self, req: Request) -> Response:
        body = req.json()
        subrequests = (body or {}).get("compositeRequest")
        if not isinstance(subrequests, list) or not subrequests:
            raise ApiError(error(400, "JSON_PARSER_ERROR", "compositeRequest is required"))
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            raise ApiError(error(400, "LIMIT_EXCEEDED",
                                 f"Composite request can contain at most {MAX_COMPOSITE_SUBREQUESTS} subrequests"))
        queries = sum(1 for s in subrequests if re.search(r"/(query|queryAll)(/|\?|$)", str(s.get("url", ""))))
        if queries > MAX_COMPOSITE_QUERIES:
            raise ApiError(error(400, "LIMIT_EXCEEDED",
                                 f"Composite request can contain at most {MAX_COMPOSITE_QUERIES} query operations"))
        all_or_none = bool(body.get("allOrNone", False))
        results: dict[str, Any] = {}
        out = []
        with self.store.atomic() as tx:
            failed = False
            for sub in subrequests:
                ref = sub.get("referenceId")
                if failed and all_or_none:
                    out.append({"body": [{"errorCode": "PROCESSING_HALTED",
                                          "message": "The transaction was rolled back since another operation in "
                                                     "the same transaction failed."}],
                                "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref})
                    continue
                try:
                    url = _substitute(sub.get("url", ""), results)
                    payload = _substitute_json(sub.get("body"), results)
                except KeyError as exc:
                    resp = error(400, "INVALID_REFERENCE", f"Invalid reference specified: {exc.args[0]}")
                else:
                    resp = self._subrequest(sub.get("method", "GET"), url, payload, sub.get("httpHeaders") or {})
                if resp.status >= 400:
                    failed = True
                if ref:
                    results[ref] = resp.body
                out.append({"body": resp.body if not isinstance(resp.body, bytes) else resp.body.decode(),
                            "httpHeaders": {k: v for k, v in resp.headers.items()
                                            if k in ("Last-Modified", "ETag", "Location")},
                            "httpStatusCode": resp.status, "referenceId": ref})
            if failed and all_or_none:
                tx.rollback()
                for item in out:
                    if item["httpStatusCode"] < 400:
                        item.update({"httpStatusCode": 400, "body": [{
                            "errorCode": "PROCESSING_HALTED",
                            "message": "The transaction was rolled back since another operation in the same "
                                       "transaction failed."}]})
        return Response(200, {"compositeResponse": out})

    def composite_batch(self, req: Request) -> Response:
        body = req.json()
        subrequests = (body or {}).get("batchRequests")
        if not isinstance(subrequests, list) or not subrequests:
            raise ApiError(error(400, "JSON_PARSER_ERROR", "batchRequests is required"))
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            raise ApiError(error(400, "LIMIT_EXCEEDED",
                                 f"A batch can contain at most {MAX_COMPOSITE_SUBREQUESTS} subrequests"))
        halt = bool(body.get("haltOnError", False))
        results, has_errors, halted = [], False, False
        for sub in subrequests:
            if halted:
                results.append({"statusCode": 412, "result": [{
                    "errorCode": "BATCH_PROCESSING_HALTED",
                    "message": "Batch processing halted per request"}]})
                continue
            url = sub.get("url", "")
            if not url.startswith("/"):
                url = "/services/data/" + url
            resp = self._subrequest(sub.get("method", "GET"), url, sub.get("richInput"),
                                    sub.get("httpHeaders") or {})
            if resp.status >= 400:
                has_errors = True
                halted = halt
            results.append({"statusCode": resp.status,
                            "result": resp.body if not isinstance(resp.body, bytes) else resp.body.decode()})
        return Response(200, {"hasErrors": has_errors, "results": results})

    def _subrequest(self, method: str, url: str, payload: Any, headers: dict[str, str]) -> Response:
        parsed = urlsplit(url)
        m = re.match(r"^/services/data/v(\d+\.\d)(/.*)?$", parsed.path)
        if not m:
            return error(400, "INVALID_URL", f"Invalid subrequest URL: {url}")
        sub = Request(method=method.upper(), path=m.group(2) or "/", version=m.group(1),
                      query=parse_qs(parsed.query), headers={k.lower(): v for k, v in headers.items()},
                      body=_dumps(payload) if payload is not None else b"")
        if sub.path.startswith("/composite") and sub.path.rstrip("/") in ("/composite", "/composite/batch"):
            return error(400, "INVALID_URL", "Composite requests cannot be nested")
        return self.handle(sub)

    def subrequest_count(self, req: Request) -> int:
        """How many calls a composite batch costs against the daily limit (each subrequest counts)."""
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            return 1
        return max(1, len(body.get("batchRequests") or []))

    # -- Bulk 2.0 ---------------------------------------------------------------------------
    def _bulk(self, req: Request, rest: list[str]) -> Response:
        if not rest:
            if req.method == "POST":
                return self.bulk_create(req)
            self._only(req, "GET", "POST")
            return Response(200, {"done": True, "records": [j.info() for j in self._jobs.values() if not j.deleted],
                                  "nextRecordsUrl": None})
        job = self._jobs.get(rest[0])
        if job is None or job.deleted:
            raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))
        if len(rest) == 1:
            if req.method == "GET":
                if job.state in ("UploadComplete", "InProgress"):
                    if job.polls_before_complete > 0:
                        job.polls_before_complete -= 1
                        job.state = "InProgress"
                    else:
                        job.state = "JobComplete"
                return Response(200, job.info())
            if req.method == "PATCH":
                state = (req.json() or {}).get("state")
                if state != "Aborted":
                    raise ApiError(error(400, "INVALIDJOBSTATE", f"Invalid state: {state}"))
                job.state = "Aborted"
                return Response(200, job.info())
            if req.method == "DELETE":
                job.deleted = True
                job.records = []
                return Response(204)
        if len(rest) == 2 and rest[1] == "results":
            self._only(req, "GET")
            return self.bulk_results(req, job)
        raise ApiError(error(404, "NOT_FOUND", "The requested resource does not exist"))

    def bulk_create(self, req: Request) -> Response:
        body = req.json() or {}
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise ApiError(error(400, "INVALIDJOB", f"Invalid operation: {operation}"))
        delimiter = body.get("columnDelimiter") or "COMMA"
        line_ending = body.get("lineEnding") or "LF"
        if delimiter not in _DELIMITERS or line_ending not in ("LF", "CRLF"):
            raise ApiError(error(400, "INVALIDJOB", f"Invalid columnDelimiter/lineEnding: {delimiter}/{line_ending}"))
        soql = body.get("query")
        if not soql:
            raise ApiError(error(400, "INVALIDJOB", "A query is required for a query job"))
        compiled, records = self._run(soql, operation == "queryAll", bulk=True)
        if compiled.is_count:
            raise ApiError(error(400, "INVALIDJOB", "Aggregate queries are not supported by the Bulk API"))
        job = BulkJob(id=self.store.new_job_id(), operation=operation, query=compiled, soql=soql,
                      delimiter=delimiter, line_ending=line_ending, created=self.store.now_wire(),
                      version=req.version, records=records,
                      polls_before_complete=self.bulk_polls_before_complete)
        self._jobs[job.id] = job
        return Response(200, job.info())

    def bulk_results(self, req: Request, job: BulkJob) -> Response:
        if job.state != "JobComplete":
            return error(412, "JOB_NOT_COMPLETE",
                         "can only download query results of successfully completed bulk job with status: "
                         f"JOB_COMPLETE. Current status: {job.state.upper()}")
        if req.version != job.version:
            return error(409, "INVALIDJOB", f"This job was created with API version {job.version}")
        try:
            max_records = int(req.param("maxRecords") or 50000)
            locator = req.param("locator")
            start = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode()) if locator else 0
        except ValueError:
            return error(400, "INVALID_LOCATOR", "invalid locator")
        chunk = job.records[start:start + max_records]
        out = io.StringIO()
        writer = csv.writer(out, delimiter=_DELIMITERS[job.delimiter], quoting=csv.QUOTE_ALL,
                            lineterminator="\r\n" if job.line_ending == "CRLF" else "\n")
        writer.writerow(job.query.columns)
        with self.store.lock:
            for record in chunk:
                writer.writerow([_csv_value(v) for v in job.query.row(record, self.store.fetch)])
        text = out.getvalue()
        # Bulk writes nulls as empty fields, not as quoted empty strings.
        text = text.replace('"\x00"', "")
        end = start + len(chunk)
        next_locator = base64.b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.records) else "null"
        return Response(200, text.encode("utf-8"), {"Sforce-Locator": next_locator,
                                                     "Sforce-NumberOfRecords": str(len(chunk))},
                        content_type="text/csv")


def _dumps(body: Any) -> bytes:
    """JSON as the org writes it: a Decimal is the exact number literal it holds, never a float."""
    return simplejson.dumps(body, use_decimal=True, separators=(",", ":")).encode("utf-8")


def _csv_value(value: Any) -> Any:
    if value is None:
        return "\x00"
    if value.__class__ is Decimal:
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) == 28 and value.endswith("+0000") and value[10] == "T":
        return bulk_datetime(value)
    return value


_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


def _lookup(results: dict[str, Any], ref: str, path: str) -> Any:
    value = results[ref]
    for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = part
        value = value[int(index)] if index else value[key]
    return value


def _substitute(text: str, results: dict[str, Any]) -> str:
    return _REF.sub(lambda m: str(_lookup(results, m.group(1), m.group(2))), text)


def _substitute_json(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(results, whole.group(1), whole.group(2))
        return _substitute(value, results)
    if isinstance(value, dict):
        return {k: _substitute_json(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_json(v, results) for v in value]
    return value
