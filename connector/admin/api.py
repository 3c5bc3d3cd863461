"""The admin app: the JSON API (status, runs, conflicts, parked records, reports, on-demand resync,
metrics; one router per resource in `connector.admin.routers`), the server-rendered console
(`connector.admin.console`), `/docs` with its assets served from the package, and the alert watcher.
Every API route but /health needs the bearer token (compared in constant time; a token in the query
string is refused, since URLs end up in logs). No secret or access token is ever returned."""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from connector import partners
from connector.errors import ConnectorError
from connector.admin import console
from connector.admin.actions import AdminActions, AdminError
from connector.admin.alerts import AlertService
from connector.admin.auth import QUERY_TOKEN_NAMES, bearer_dependency
from connector.admin.models import Health, Problem
from connector.admin.queries import AdminQueries
from connector.admin.routers import (AdminContext, channel_conflicts, conflicts, metrics, parked, reports, resync,
                                     runs, status)
from connector.scheduler import SyncRunner
from connector.sync.state import add_missing_columns

__all__ = ["create_app", "QUERY_TOKEN_NAMES"]

log = logging.getLogger("connector.admin")
UTC = dt.timezone.utc
ROUTERS = (status.router, runs.router, conflicts.router, channel_conflicts.router, parked.router, reports.router, resync.router,
           metrics.router)


def _swagger_assets() -> str:
    """Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes) as the swagger-ui-py package ships it;
    found without importing the package, whose own handlers are for other frameworks."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing: pip install swagger-ui-py")
    return str(Path(next(iter(spec.submodule_search_locations))) / "static")


def create_app(connector, token: str, *, runner: SyncRunner | None = None, scheduler=None,
               alerts: AlertService | None = None, streaming=None) -> FastAPI:
    """The admin app over a `connector.bootstrap.Connector`. `scheduler` (a SyncScheduler), when
    given, is started with the app and stopped with it (waiting for a run in progress); so are the
    alert watcher (`alerts`, or one built from the settings when webhooks are configured) and
    `streaming` (a StreamingService), started first so the objects it streams are not also polled."""
    if not token or len(token) < 16:
        raise ValueError("the admin token must be at least 16 characters")
    expected = token.encode()
    runner = runner or (scheduler.runner if scheduler is not None else SyncRunner(connector))
    sync = connector.sync
    queries = AdminQueries(connector, runner, scheduler, streaming)
    if alerts is None and connector.settings.webhooks:
        alerts = AlertService.from_settings(connector, queries)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sync.prepare()
        with connector.engine.begin() as conn:
            add_missing_columns(conn, sync.state.conflicts)   # resolved_by, resolution_comment
        if alerts is not None:
            alerts.start()
        if streaming is not None:
            try:
                streaming.start()
            except ConnectorError as exc:
                log.warning("streaming is off, every object polls: %s", exc)
            else:
                if scheduler is not None:
                    scheduler.streamed = set(streaming.streams)
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if streaming is not None:
                streaming.stop()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            runner.join()
            if alerts is not None:
                alerts.stop()

    app = FastAPI(title="cosell-connector admin API", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Status, runs, conflicts, parked records, on-demand resync and metrics of the "
                              "co-sell connector. Send `Authorization: Bearer <COSELL_ADMIN_TOKEN>`. "
                              "The admin console is at `/console`.")
    app.state.admin = AdminContext(connector, runner, scheduler, queries, AdminActions(queries))
    app.state.runner = runner
    app.state.alerts = alerts
    partners.mount(app, connector)   # /partner/...: its own sign-in, cookie and scope

    @app.middleware("http")
    async def refuse_query_tokens(request: Request, call_next):
        if any(k.lower() in QUERY_TOKEN_NAMES for k in request.query_params.keys()):
            return JSONResponse({"detail": "credentials are not accepted in the query string; "
                                           "send an Authorization: Bearer header"}, status_code=400)
        return await call_next(request)

    @app.exception_handler(AdminError)
    async def admin_error(request: Request, exc: AdminError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        return Health()

    unauthorized = {401: {"model": Problem, "description": "Missing or wrong bearer token."},
                    400: {"model": Problem, "description": "A credential in the query string."}}
    auth = [Depends(bearer_dependency(expected))]
    for router in ROUTERS:
        app.include_router(router, dependencies=auth, responses=unauthorized)

    app.mount("/static/swagger-ui", StaticFiles(directory=_swagger_assets()), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from an installed copy (swagger-ui-py): it renders offline, no CDN."""
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - docs",
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon-32x32.png")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    console.install(app, expected, max_age=int(connector.settings.admin_session_hours * 3600))
    return app
