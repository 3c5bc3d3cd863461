"""`cosell serve`: the scheduler, the admin API, the admin console (at /) and, when webhooks are
configured, the alert watcher in one process, on uvicorn. SIGTERM or Ctrl-C
stops taking requests, stops scheduling and lets a run in progress finish and commit before exit.

The admin token comes from the COSELL_ADMIN_TOKEN environment variable (at least 16 characters;
e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`); `serve` refuses to start
without it. It is never logged. The token and the body size are checked in front of the app
(`guard.AdminGuard`). Off the loopback interface `serve` speaks HTTPS (COSELL_ADMIN_TLS_CERT / _KEY)
or refuses to start, unless plain HTTP is allowed explicitly for a TLS-terminating proxy."""

from __future__ import annotations

import ipaddress
import logging
import os

from connector.errors import ConfigurationError

__all__ = ["serve", "ADMIN_TOKEN_ENV", "admin_token", "guarded", "tls_files"]

ADMIN_TOKEN_ENV = "COSELL_ADMIN_TOKEN"
log = logging.getLogger("connector.admin")


def admin_token() -> str:
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    if len(token) < 16:
        raise ConfigurationError(f"{ADMIN_TOKEN_ENV} must be set to a secret of at least 16 characters to run "
                                 "`cosell serve` (e.g. python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
    return token


class _NoQueryStrings(logging.Filter):
    """Access log lines keep the path only: a query string may carry something secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?<redacted>", *args[3:])
        return True


def guarded(app, token: str, settings):
    """The app behind the wall every request meets first: token, then body size."""
    from connector.admin.guard import AdminGuard

    return AdminGuard(app, token, max_body_bytes=settings.admin_max_body_bytes)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_files(host: str, settings) -> tuple[str, str] | None:
    """(certificate, key) to serve HTTPS with, None for plain HTTP on loopback (or where allowed);
    ConfigurationError for half a TLS setting, a missing file, or plain HTTP on an open address."""
    cert, key = settings.admin_tls_cert, settings.admin_tls_key
    if (cert is None) != (key is None):
        raise ConfigurationError("set both COSELL_ADMIN_TLS_CERT and COSELL_ADMIN_TLS_KEY, or neither")
    if cert is not None:
        for name, path in (("COSELL_ADMIN_TLS_CERT", cert), ("COSELL_ADMIN_TLS_KEY", key)):
            if not path.is_file():
                raise ConfigurationError(f"{name}: no file at {path}")
        return str(cert), str(key)
    if not _loopback(host) and not settings.admin_allow_plain_http:
        raise ConfigurationError(f"refusing to serve the admin API in plain HTTP on {host}: the bearer token would "
                                 "cross the network in clear. Set COSELL_ADMIN_TLS_CERT and COSELL_ADMIN_TLS_KEY, "
                                 "listen on 127.0.0.1, or (behind a TLS-terminating proxy only) set "
                                 "COSELL_ADMIN_ALLOW_PLAIN_HTTP=true")
    return None


def serve(host: str, port: int) -> None:
    """Run the scheduler and the admin API until SIGTERM/SIGINT."""
    import uvicorn

    from connector.admin.api import create_app
    from connector.bootstrap import build
    from connector.scheduler import SyncRunner, SyncScheduler

    from connector import logs

    token = admin_token()
    connector = build()
    settings = connector.settings
    logs.configure(settings.log_format, settings.log_level)
    tls = tls_files(host, settings)
    if not connector.mirror.schemas():
        raise ConfigurationError("nothing is mirrored yet: run `cosell mirror` once on this database before "
                                 "`cosell serve` (in a container, the same image with the same volume and "
                                 "settings: `docker run --rm -v cosell-data:/data ... cosell-connector mirror`)")
    connector.sync.prepare()
    scheduler = SyncScheduler(SyncRunner(connector))
    streaming = None
    if settings.stream:
        from connector.sync.streaming import StreamingService
        streaming = StreamingService(connector, scheduler.runner)
    api = create_app(connector, token, scheduler=scheduler, streaming=streaming)
    app = guarded(api, token, settings)
    config = uvicorn.Config(app, host=host, port=port, proxy_headers=False, server_header=False,
                            log_config=None,   # uvicorn's loggers go through logs.configure's handler
                            **({"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}))
    logging.getLogger("uvicorn.access").addFilter(_NoQueryStrings())
    log.info("admin API and console on %s://%s:%s; %d object(s) scheduled; alerts %s", "https" if tls else "http",
             host, port, len(connector.mapping.objects), "on" if api.state.alerts is not None else "off")
    # uvicorn handles SIGTERM/SIGINT: it stops serving, then the app's lifespan stops the scheduler
    # and waits for the run in progress (scheduled or on demand) to commit.
    uvicorn.Server(config).run()
