"""`cosell serve`: the scheduler and the admin API in one process, on uvicorn. SIGTERM or Ctrl-C
stops taking requests, stops scheduling and lets a run in progress finish and commit before exit.

The admin token comes from the COSELL_ADMIN_TOKEN environment variable (at least 16 characters;
e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`); `serve` refuses to start
without it. It is never logged."""

from __future__ import annotations

import logging
import os

from connector.errors import ConfigurationError

__all__ = ["serve", "ADMIN_TOKEN_ENV", "admin_token"]

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


def serve(host: str, port: int) -> None:
    """Run the scheduler and the admin API until SIGTERM/SIGINT."""
    import uvicorn

    from connector.admin.api import create_app
    from connector.bootstrap import build
    from connector.scheduler import SyncRunner, SyncScheduler

    from connector import logs

    token = admin_token()
    connector = build()
    logs.configure(connector.settings.log_format, connector.settings.log_level)
    connector.sync.prepare()   # fails clearly when nothing is mirrored yet
    scheduler = SyncScheduler(SyncRunner(connector))
    streaming = None
    if connector.settings.stream:
        from connector.sync.streaming import StreamingService
        streaming = StreamingService(connector, scheduler.runner)
    app = create_app(connector, token, scheduler=scheduler, streaming=streaming)
    config = uvicorn.Config(app, host=host, port=port, proxy_headers=False, server_header=False)
    logging.getLogger("uvicorn.access").addFilter(_NoQueryStrings())
    log.info("admin API on http://%s:%s; %d object(s) scheduled", host, port, len(connector.mapping.objects))
    # uvicorn handles SIGTERM/SIGINT: it stops serving, then the app's lifespan stops the scheduler
    # and waits for the run in progress (scheduled or on demand) to commit.
    uvicorn.Server(config).run()
