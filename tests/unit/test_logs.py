"""No access token, session id or secret reaches a log line, whatever logs it."""

from __future__ import annotations

import json
import logging

from connector import logs


def test_tokens_and_secrets_are_redacted_in_text_and_json(capsys):
    logs.configure("json", "INFO")
    log = logging.getLogger("test.redaction")
    log.info("GET /limits with Authorization: Bearer 00DDm0000000001!AQabcdefghijklmnop")
    log.info("token response access_token=00DDm0000000001!AQzzz refresh_token=5Aepsecret&x=1")
    log.warning("form: {'client_secret': 'hunter2', 'password': 'pw123'}")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, "one event per line"
    events = [json.loads(line) for line in lines]
    text = " ".join(e["message"] for e in events)
    for secret in ("AQabcdefghijklmnop", "AQzzz", "5Aepsecret", "hunter2", "pw123"):
        assert secret not in text
    assert events[0]["level"] == "info" and "[redacted]" in events[0]["message"]
    logs.configure("text", "INFO")
