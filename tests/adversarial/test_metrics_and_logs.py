"""/metrics values exactly as stored, and JSON logs for every logger in the process.

Tried: a run that ended at a microsecond-precise time in 2027 (1.8e9 seconds: `{:g}` printed
1.79e+09, 1.4 hours off); 1,000,001 succeeded runs (a counter `{:g}` rounded to 1e+06); API usage
of 12,345,678 calls; uvicorn configured by its own dictConfig before ours (its lines stayed plain and
skipped redaction); a bearer token and a PEM private key in a uvicorn log message."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import logging.config

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, literal, select

from connector import logs
from connector.salesforce.client import ApiUsage
from tests.integration.admin.test_admin_api import AUTH, admin  # noqa: F401 - the fixture

ENDED = dt.datetime(2027, 1, 1, 12, 34, 56, 789012, tzinfo=dt.timezone.utc)
MANY = 1_000_001


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_timestamps_and_large_counters_round_trip_exactly(admin):  # noqa: F811
    runs = admin.sync.state.runs
    n = select(literal(1).label("i")).cte("n", recursive=True)
    n = n.union_all(select(n.c.i + 1).where(n.c.i < MANY))
    when = literal(ENDED, type_=runs.c.started_at.type)
    admin.execute(insert(runs).from_select(
        ["started_at", "ended_at", "status", "trigger"],
        select(when, when, literal("succeeded"), literal("adversarial")).select_from(n)))
    succeeded = admin.count(runs.select().where(runs.c.status == "succeeded").subquery())
    assert succeeded > 999_999
    admin.connector.client.usage = ApiUsage(12_345_678, 15_000_000)
    answer = admin.http.get("/metrics", headers=AUTH)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(answer.text)
    assert samples[("cosell_last_run_end_timestamp_seconds", ())] == ENDED.timestamp()
    assert samples[("cosell_runs_total", (("status", "succeeded"),))] == succeeded
    assert samples[("cosell_api_usage_calls", ())] == 12_345_678
    with admin.database.engine.connect() as conn:
        stored = conn.execute(select(func.max(runs.c.ended_at))).scalar()
    assert stored.timestamp() == ENDED.timestamp()


def test_json_logs_take_over_uvicorn_loggers_and_redact_them():
    import uvicorn.config

    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)    # what uvicorn does on its own
    logs.configure("json", "INFO")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    try:
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET",
                                                 "/status", "1.1", 200)
        logging.getLogger("uvicorn.error").warning("header was Bearer abcdefgh12345678 and "
                                                   "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----")
    finally:
        logs.configure("text", "INFO")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["logger"] for e in events] == ["uvicorn.error", "uvicorn.access", "uvicorn.error"]
    assert events[1]["message"] == '127.0.0.1:5 - "GET /status HTTP/1.1" 200'
    assert "abcdefgh12345678" not in events[2]["message"] and "MIIEvQ" not in events[2]["message"]
