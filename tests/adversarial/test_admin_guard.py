"""The admin API's wall. Tried: a 100 MB body without a token (401, and not one chunk of the body is
read); a wrong token, a token in another scheme, no header; a body over the limit declared by
Content-Length and one streamed in chunks without it (413 before the app runs); a small body with the
token (reaches the app whole); /health with no token. And `cosell serve` itself: plain HTTP on
0.0.0.0 refused; HTTPS with COSELL_ADMIN_TLS_CERT/KEY; every line JSON with COSELL_LOG_FORMAT=json,
uvicorn's own lines included, and no token in them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from typer.testing import CliRunner

from connector.admin.guard import AdminGuard
from connector.cli import app
from connector.emulator import Emulator, tls
from tests.e2e.test_mirror_cli import _env

TOKEN = "guard-admin-token-0123456789"
LIMIT = 64 * 1024


class Client:
    """Drives the guard as an ASGI server would and records what the inner app and the body saw."""

    def __init__(self):
        self.reached: list[bytes] = []

        async def inner(scope, receive, send):
            message = await receive()
            self.reached.append(message["body"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        self.guard = AdminGuard(inner, TOKEN, max_body_bytes=LIMIT)

    def request(self, path: str, chunks: list[bytes], headers: dict[str, str]):
        read: list[int] = []
        sent: list[dict] = []

        async def receive():
            i = len(read)
            read.append(i)
            return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

        async def send(message):
            sent.append(message)
        scope = {"type": "http", "method": "POST", "path": path,
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        asyncio.run(self.guard(scope, receive, send))
        return sent[0]["status"], json.loads(sent[1]["body"] or b"{}") if sent[0]["status"] != 200 else {}, len(read)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}])
def test_no_body_is_read_without_the_token(headers):
    client = Client()
    chunk = b"x" * (1024 * 1024)
    status, body, chunks_read = client.request("/resync", [chunk] * 100,
                                               {**headers, "Content-Length": str(100 * len(chunk))})
    assert (status, chunks_read, client.reached) == (401, 0, [])
    assert body == {"detail": "missing or wrong bearer token"}


def test_a_body_over_the_limit_is_refused_before_the_app_runs():
    client = Client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body, chunks_read = client.request("/resync", [b"{}"], {**auth, "Content-Length": str(LIMIT + 1)})
    assert (status, chunks_read, client.reached) == (413, 0, [])
    assert "COSELL_ADMIN_MAX_BODY_BYTES" in body["detail"]
    status, _, chunks_read = client.request("/resync", [b"x" * 4096] * 100, auth)   # chunked, no length
    assert status == 413 and chunks_read == LIMIT // 4096 + 1 and client.reached == []


def test_a_small_body_with_the_token_reaches_the_app_whole_and_health_is_open():
    client = Client()
    status, _, _ = client.request("/resync", [b'{"objects":', b' ["Account"]}'], {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and client.reached == [b'{"objects": ["Account"]}']
    assert client.request("/health", [b""], {})[0] == 200


def test_pages_with_their_own_sign_in_pass_without_the_token_but_not_past_the_body_limit():
    """The console and the partner pages sign in with their own session cookies (and CSRF on every
    form): the bearer token is not theirs to show, the body limit is; an API path next to them is not
    opened by the prefix."""
    client = Client()
    for path in ("/", "/console/login", "/partner/login", "/partner/api/deals", "/static/console.css"):
        assert client.request(path, [b"a=b"], {})[0] == 200, path
        assert client.request(path, [b"{}"], {"Content-Length": str(LIMIT + 1)})[0] == 413, path
    for path in ("/resync", "/conflicts/1/resolve", "/parked/dismiss", "/status/console"):
        assert client.request(path, [b"{}"], {})[0] == 401, path


def test_serve_refuses_plain_http_on_an_open_address(clean_env, monkeypatch):
    with Emulator("cosell_demo", records=2) as org:
        for key, value in _env(org, clean_env).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COSELL_ADMIN_TOKEN", TOKEN)
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "refusing to serve the admin API in plain HTTP on 0.0.0.0" in result.output
    assert "COSELL_ADMIN_TLS_CERT" in result.output and "Traceback" not in result.output


def test_dockerfile_serves_https_or_refuses_and_keeps_sqlite_on_a_volume():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "Dockerfile").read_text()
    assert "COSELL_ADMIN_TLS_CERT" in text and "COSELL_ADMIN_ALLOW_PLAIN_HTTP" not in text.split("CMD")[-1]
    assert "VOLUME" in text and "sqlite:////data/" in text


def test_serve_over_https_logs_every_line_as_json_without_the_token(tmp_path):
    certs = tls.server_certificate(tmp_path / "admin-tls")
    with Emulator("cosell_demo", records=3, seed=4) as org:
        env = {**os.environ, **_env(org, tmp_path), "COSELL_ADMIN_TOKEN": TOKEN, "COSELL_LOG_FORMAT": "json",
               "COSELL_ADMIN_TLS_CERT": str(certs.cert_path), "COSELL_ADMIN_TLS_KEY": str(certs.key_path)}
        assert CliRunner().invoke(app, ["mirror", "--no-load"], env=env).exit_code == 0
        port = 19000 + os.getpid() % 1000
        server = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base = f"https://127.0.0.1:{port}"
        try:
            up = False
            for _ in range(120):
                try:
                    up = requests.get(f"{base}/health", timeout=2, verify=str(certs.ca_cert_path)).ok
                    break
                except requests.RequestException:
                    time.sleep(0.5)
            assert up, "the admin API came up over HTTPS"
            with pytest.raises(requests.RequestException):
                requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert requests.get(f"{base}/status", headers=auth, timeout=10,
                                verify=str(certs.ca_cert_path)).status_code == 200
            assert requests.get(f"{base}/status?sid=abc123", timeout=10,
                                verify=str(certs.ca_cert_path)).status_code == 401
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            err = server.stderr.read()
    lines = [line for line in err.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]        # every line, uvicorn's too, is one JSON object
    loggers = {e["logger"] for e in events}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers
    assert any("Application startup complete" in e["message"] for e in events)
    assert any(e["logger"] == "uvicorn.access" and "/status?<redacted>" in e["message"] for e in events)
    assert TOKEN not in err and "abc123" not in err


def test_serve_on_an_empty_database_names_the_one_time_command(clean_env, monkeypatch):
    with Emulator("cosell_demo", records=2) as org:
        for key, value in _env(org, clean_env).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COSELL_ADMIN_TOKEN", TOKEN)
        result = CliRunner().invoke(app, ["serve"])
    out = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "run `cosell mirror` once on this database before `cosell serve`" in out
    assert "before `cosell sync`" not in out and "cosell-connector mirror" in out
