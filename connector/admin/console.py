"""The admin console: server-rendered pages (Jinja2) over the same query layer and actions as the JSON
API. An admin signs in with the admin token and a name; the token is exchanged for a signed session
cookie (HttpOnly, SameSite=Strict) and never kept in the page. Every form carries the session's CSRF
token; a post without it is refused before anything is read from it. No script, no CDN: the pages
work offline and with JavaScript off."""

# No `from __future__ import annotations`: the routes' dependencies are aliases local to `install`
# (bound to its sessions), which FastAPI can only see as evaluated annotations.
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from connector.admin.actions import AdminError
from connector.admin.auth import LOGIN_COOKIE, SESSION_COOKIE, AdminSession, Sessions, token_matches
from connector.admin.models import TAKES
from connector.admin.routers import MAX_ID, AdminContext, context

__all__ = ["install"]

HERE = Path(__file__).parent
PREFIX = "/console"
templates = Jinja2Templates(directory=str(HERE / "templates"))
# The pages load their stylesheet and nothing else; they may not be framed (clickjacking a resolve button).
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                    "Cache-Control": "no-store"}


def show(value: Any) -> str:
    """A field value as the inbox shows it: text as is, anything else as JSON, nothing as a dash."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds >= 172800:
        return f"{seconds // 86400} days"
    minutes = seconds % 3600 // 60
    return f"{seconds // 3600} h" + (f" {minutes} min" if minutes else "")


templates.env.filters["show"] = show
templates.env.filters["duration"] = duration
templates.env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else "—"


def _back(path: str, **params: str) -> RedirectResponse:
    """Post/redirect/get: a notice travels in the URL (escaped where shown), so a reload posts nothing."""
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{PREFIX}{path}{'?' + query if query else ''}", status_code=303)


def install(app: FastAPI, token: bytes, *, max_age: int) -> None:
    """Mount the console's pages and its stylesheet on `app` (outside the OpenAPI document)."""
    sessions = Sessions(token, max_age)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    class SignIn(Exception):
        pass

    class Refused(Exception):
        """A form post without its session's CSRF token: answered 403 with a page saying what to do."""

    def signed_in(request: Request) -> AdminSession:
        session = sessions.read(request)
        if session is None:
            raise SignIn()
        return session

    async def posted(request: Request, session: Annotated[AdminSession, Depends(signed_in)]) -> AdminSession:
        """A form post of this session: its CSRF token must match, or nothing of the form is used."""
        form = await request.form()
        if not sessions.csrf_ok(session, form.get("csrf") if isinstance(form.get("csrf"), str) else None):
            raise Refused()
        return session

    Admin = Annotated[AdminContext, Depends(context)]
    Session = Annotated[AdminSession, Depends(signed_in)]
    Posted = Annotated[AdminSession, Depends(posted)]

    def page(request: Request, name: str, session: AdminSession | None, status_code: int = 200,
             **values: Any) -> HTMLResponse:
        values.setdefault("notice", request.query_params.get("notice"))
        values.setdefault("problem", request.query_params.get("problem"))
        response = templates.TemplateResponse(request, name, {"session": session, "section": name.split(".")[0],
                                                              **values}, status_code=status_code)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(SignIn)
    async def to_sign_in(request: Request, exc: SignIn) -> Response:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return page(request, "refused.html", sessions.read(request), status_code=403)

    # -- sign-in ---------------------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, problem: str | None = None) -> HTMLResponse:
        cookie, nonce = sessions.login_nonce()
        response = page(request, "login.html", None, status_code=401 if problem else 200, nonce=nonce)
        response.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path=PREFIX)
        return response

    @router.post("/login")
    def login(request: Request, name: Annotated[str, Form(max_length=100)] = "",
              secret: Annotated[str, Form(max_length=1000)] = "",
              nonce: Annotated[str, Form(max_length=200)] = "") -> Response:
        if not sessions.login_nonce_ok(request, nonce):
            return _back("/login", problem="The sign-in form expired: sign in again.")
        if not token_matches(secret, token):
            return _back("/login", problem="Wrong admin token.")
        if not name.strip():
            return _back("/login", problem="Give your name: it is recorded on what you resolve.")
        cookie, _ = sessions.issue(name.strip())
        response = RedirectResponse(PREFIX, status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    def logout(session: Posted) -> Response:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages -----------------------------------------------------------------------------------
    @router.get("")
    def dashboard(request: Request, admin: Admin, session: Session) -> HTMLResponse:
        alerts = request.app.state.alerts
        return page(request, "dashboard.html", session, status=admin.queries.status(records=True),
                    runs=admin.queries.runs(8), channel=admin.queries.channel_conflicts(),
                    outbox=alerts.pending()[:10] if alerts is not None else None)

    @router.get("/runs")
    def runs_page(request: Request, admin: Admin, session: Session, offset: int = 0) -> HTMLResponse:
        offset = max(0, min(offset, MAX_ID))
        return page(request, "runs.html", session, runs=admin.queries.runs(50, offset), offset=offset)

    @router.get("/runs/{run_id}")
    def run_page(request: Request, admin: Admin, session: Session, run_id: int) -> HTMLResponse:
        run = admin.queries.run(run_id) if 1 <= run_id <= MAX_ID else None
        if run is None:
            return page(request, "missing.html", session, status_code=404, what=f"run {run_id}")
        return page(request, "run.html", session, run=run, conflicts=admin.queries.conflicts_of_run(run_id))

    @router.get("/conflicts")
    def conflicts_page(request: Request, admin: Admin, session: Session, state: str = "open") -> HTMLResponse:
        state = state if state in ("open", "resolved", "all") else "open"
        return page(request, "conflicts.html", session, state=state, takes=TAKES,
                    conflicts=admin.queries.conflicts(state, limit=200))  # type: ignore[arg-type]

    @router.post("/conflicts/{conflict_id}/resolve")
    def resolve(admin: Admin, session: Posted, conflict_id: int, take: Annotated[str, Form()] = "",
                value: Annotated[str | None, Form(max_length=100_000)] = None,
                comment: Annotated[str, Form(max_length=2000)] = "") -> Response:
        if take not in TAKES:
            return _back("/conflicts", problem=f"Choose which value to keep: {', '.join(TAKES)}.")
        try:
            admin.actions.resolve(conflict_id, take, value, has_value=value is not None and value != "",  # type: ignore[arg-type]
                                  by=session.name, comment=comment)
        except AdminError as exc:
            return _back("/conflicts", problem=f"Conflict {conflict_id}: {exc.detail}")
        return _back("/conflicts", notice=f"Conflict {conflict_id} resolved: the next sync carries the kept value "
                                          "to Salesforce.")

    @router.get("/parked")
    def parked_page(request: Request, admin: Admin, session: Session) -> HTMLResponse:
        return page(request, "parked.html", session, parked=admin.queries.parked(limit=500),
                    objects=list(admin.connector.mapping.objects))

    @router.post("/parked/retry")
    def retry(admin: Admin, session: Posted, object: Annotated[str, Form()] = "") -> Response:  # noqa: A002
        try:
            queued = admin.actions.retry(object or None)
        except AdminError as exc:
            return _back("/parked", problem=exc.detail)
        return _back("/parked", notice=f"{queued} parked record(s) queued: they are tried again on the next run.")

    @router.post("/parked/dismiss")
    def dismiss(admin: Admin, session: Posted, object: Annotated[str, Form()] = "",  # noqa: A002
                record_uuid: Annotated[str, Form(max_length=36)] = "") -> Response:
        try:
            admin.actions.dismiss(object, record_uuid, by=session.name)
        except AdminError as exc:
            return _back("/parked", problem=exc.detail)
        return _back("/parked", notice=f"Parked {object} record {record_uuid} dismissed.")

    @router.get("/resync")
    def resync_page(request: Request, admin: Admin, session: Session) -> HTMLResponse:
        return page(request, "resync.html", session, objects=list(admin.connector.mapping.objects),
                    running=admin.runner.current)

    @router.post("/resync")
    def resync(admin: Admin, session: Posted, scope: Annotated[str, Form()] = "all",
               objects: Annotated[list[str] | None, Form()] = None,
               records: Annotated[str, Form(max_length=100_000)] = "",
               mode: Annotated[str, Form()] = "incremental") -> Response:
        if mode not in ("incremental", "full"):
            return _back("/resync", problem="Mode is incremental or full.")
        ids = [r for r in records.replace(",", " ").split() if r]
        try:
            if scope == "objects":
                accepted = admin.actions.resync(objects=objects or [], mode=mode)  # type: ignore[arg-type]
            elif scope == "records":
                accepted = admin.actions.resync(records=ids, mode=mode)  # type: ignore[arg-type]
            else:
                accepted = admin.actions.resync(mode=mode)  # type: ignore[arg-type]
        except AdminError as exc:
            return _back("/resync", problem=exc.detail)
        if accepted.run_id is None:
            return _back("/resync", problem=f"The run did not start: {accepted.error}")
        return _back(f"/runs/{accepted.run_id}", notice=f"Run {accepted.run_id} started ({accepted.trigger}).")

    @router.get("/mapping")
    def mapping_page(request: Request, admin: Admin, session: Session) -> HTMLResponse:
        return page(request, "mapping.html", session, mapping=json.dumps(admin.queries.mapping(), indent=2))

    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
