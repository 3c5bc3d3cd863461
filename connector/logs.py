"""Logging: one event per line, as text or JSON (COSELL_LOG_FORMAT), and a filter that
removes access tokens, session ids and bearer headers from every message, so no
secret reaches a log even when a library logs a URL or a response."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9!._~+/=-]{8,}"),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._~+/=-]+"),          # Salesforce session ids
    re.compile(r"(?i)((?:access_token|refresh_token|client_secret|password|assertion)[\"']?\s*[=:]\s*[\"']?)"
               r"[^\s&\"',}]+"),
]


SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            event["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(event, ensure_ascii=False)


def configure(fmt: str = "text", level: str = "INFO") -> None:
    """Route every logger through one handler that writes one redacted event per line to stderr."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Servers that set up their own handlers (uvicorn's default dictConfig) would bypass the format
    # and the redaction: their loggers hand every record to the one handler above instead.
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
