"""The partner workspace over HTTP: JSON under /partner/api/ and server-rendered pages under /partner/.

Sessions are signed cookies of our own name (`cosell_partner`, itsdangerous, Path=/partner, HttpOnly,
SameSite=Lax), naming the user and the version of their sessions, so signing out or being disabled ends
every session. Every form and every JSON write carries the session's CSRF token (a form field, or the
X-CSRF-Token header), compared in constant time. Every read and write goes through the user's
PartnerScope: nothing here queries a table. Another partner's id and a missing one answer the same 404.

No `from __future__ import annotations` here: FastAPI reads the route signatures, whose dependency
types are local to `partner_router`."""

import dataclasses
import datetime as dt
import hmac
import logging
import secrets
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, Field

from connector.partners.scope import DONE, NotFound, PartnerScope, ScopeError
from connector.partners.service import PartnerWorkspace
from connector.partners.users import MAX_PASSWORD, PartnerUser, PartnerUserError

__all__ = ["COOKIE", "CSRF_HEADER", "PartnerWeb", "mount", "partner_router"]

log = logging.getLogger("connector.partners")
COOKIE = "cosell_partner"
CSRF_HEADER = "X-CSRF-Token"
ACTIONS = ("submit", "resubmit", "withdraw")
_templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class SignIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD)


class RegisterBody(BaseModel):
    name: str | None = Field(None, max_length=120)
    close_date: dt.date | None = None
    amount: Decimal | None = Field(None, ge=0, lt=Decimal("1e16"))
    currency: str | None = Field(None, min_length=3, max_length=3)


class EditBody(BaseModel):
    changes: dict[str, Any] = Field(description="Form names: next_step, close_date, amount (the deal); "
                                                "registered_amount, program (with `registration`).")
    registration: str | None = Field(None, max_length=64)


class _Session:
    def __init__(self, csrf: str, user: PartnerUser | None = None) -> None:
        self.csrf, self.user = csrf, user


class PartnerWeb:
    """Sessions and CSRF for the partner routes, over one PartnerWorkspace built on first use."""

    def __init__(self, workspace: Callable[[], PartnerWorkspace], *, secret: str | None, session_hours: int,
                 cookie_secure: bool, base_url: str) -> None:
        if secret is None:
            log.warning("COSELL_PARTNER_SESSION_SECRET is not set: partner sessions use a random key and end "
                        "when this process stops")
        self._workspace_factory, self._workspace = workspace, None
        self.signer = URLSafeTimedSerializer(secret or secrets.token_urlsafe(48), salt="cosell-partner-session")
        self.max_age, self.secure, self.base_url = session_hours * 3600, cookie_secure, base_url.rstrip("/")

    @property
    def workspace(self) -> PartnerWorkspace:
        if self._workspace is None:
            self._workspace = self._workspace_factory()
        return self._workspace

    # -- the cookie ------------------------------------------------------------------------------------
    def session(self, request: Request) -> _Session:
        """The request's session: signed-in, or anonymous (a CSRF token only). A bad or old cookie is anonymous."""
        raw = request.cookies.get(COOKIE)
        data: dict[str, Any] = {}
        if raw:
            try:
                data = self.signer.loads(raw, max_age=self.max_age)
            except BadSignature:   # includes an expired signature
                data = {}
        csrf = data.get("c") if isinstance(data, dict) and isinstance(data.get("c"), str) else None
        if csrf is None:
            return _Session(secrets.token_urlsafe(24))
        user = None
        if isinstance(data.get("u"), int) and isinstance(data.get("v"), int):
            user = self.workspace.users.session_user(data["u"], data["v"])
        return _Session(csrf, user)

    def set_cookie(self, response: Response, session: _Session) -> None:
        payload: dict[str, Any] = {"c": session.csrf}
        if session.user is not None:
            payload.update(u=session.user.id, v=session.user.session_version)
        response.set_cookie(COOKIE, self.signer.dumps(payload), max_age=self.max_age, path="/partner",
                            secure=self.secure, httponly=True, samesite="lax")

    @staticmethod
    def check_csrf(session: _Session, given: str | None) -> None:
        if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")

    def scope(self, session: _Session) -> PartnerScope:
        assert session.user is not None
        return self.workspace.scope(session.user)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _not_found(what: str = "deal") -> HTTPException:
    return HTTPException(404, f"no such {what}")


def partner_router(web: PartnerWeb) -> APIRouter:
    router = APIRouter(prefix="/partner", tags=["partner"])

    def session(request: Request) -> _Session:
        return web.session(request)

    # -- JSON API ----------------------------------------------------------------------------------------
    def api_user(s: Annotated[_Session, Depends(session)]) -> _Session:
        if s.user is None:
            raise HTTPException(401, "sign in first: POST /partner/api/session")
        return s

    def api_writer(request: Request, s: Annotated[_Session, Depends(api_user)]) -> _Session:
        web.check_csrf(s, request.headers.get(CSRF_HEADER))
        return s

    Reader = Annotated[_Session, Depends(api_user)]
    Writer = Annotated[_Session, Depends(api_writer)]

    @router.post("/api/session")
    def api_sign_in(body: SignIn, request: Request) -> JSONResponse:
        """Sign in; answers the CSRF token to send as X-CSRF-Token with every write."""
        user = web.workspace.users.authenticate(body.email, body.password)
        if user is None:
            raise HTTPException(401, "wrong e-mail or password")
        s = _Session(secrets.token_urlsafe(24), user)
        response = JSONResponse({"email": user.email, "account": user.account_name, "csrf_token": s.csrf})
        web.set_cookie(response, s)
        return response

    @router.delete("/api/session", status_code=204)
    def api_sign_out(s: Writer) -> Response:
        web.workspace.users.end_sessions(s.user.id)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/partner")
        return response

    @router.get("/api/me")
    def api_me(s: Reader) -> dict[str, Any]:
        return {"email": s.user.email, "account": s.user.account_name, "csrf_token": s.csrf}

    @router.get("/api/deals")
    def api_deals(s: Reader) -> list[dict[str, Any]]:
        return _jsonable(web.scope(s).deals())

    @router.get("/api/deals/{deal_id}")
    def api_deal(deal_id: str, s: Reader) -> dict[str, Any]:
        try:
            return _jsonable(web.scope(s).deal(deal_id))
        except NotFound:
            raise _not_found() from None

    @router.patch("/api/deals/{deal_id}")
    def api_edit(deal_id: str, body: EditBody, s: Writer) -> dict[str, Any]:
        try:
            return _jsonable(web.scope(s).edit(deal_id, body.changes, body.registration))
        except NotFound as exc:
            raise _not_found(str(exc).removeprefix("no such ")) from None
        except ScopeError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/api/attribution")
    def api_attribution(s: Reader) -> list[dict[str, Any]]:
        return [r.as_dict() for r in web.scope(s).attribution()]

    @router.get("/api/overlaps")
    def api_overlaps(s: Reader) -> list[dict[str, Any]]:
        return _jsonable(web.scope(s).overlaps())

    @router.post("/api/overlaps/{overlap_id}/register", status_code=201)
    def api_register(overlap_id: str, body: RegisterBody, s: Writer) -> dict[str, Any]:
        try:
            return _jsonable(web.scope(s).register(_int_id(overlap_id), **body.model_dump()))
        except NotFound:
            raise _not_found("overlap") from None
        except ScopeError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.post("/api/registrations/{registration_id}/{action}")
    def api_move(registration_id: str, action: str, s: Writer) -> dict[str, Any]:
        if action not in ACTIONS:
            raise _not_found("action")
        try:
            return _jsonable(web.scope(s).move(registration_id, action))
        except NotFound:
            raise _not_found("registration") from None
        except ScopeError as exc:
            raise HTTPException(422, str(exc)) from None

    # -- pages -------------------------------------------------------------------------------------------
    def page(request: Request, s: _Session, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        response = _templates.TemplateResponse(request, name, {"user": s.user, "csrf": s.csrf, **context},
                                               status_code=status_code)
        web.set_cookie(response, s)
        return response

    def to_login() -> RedirectResponse:
        return RedirectResponse("/partner/login", status_code=303)

    def flash_to(path: str, message: str | None = None, error: str | None = None) -> RedirectResponse:
        query = "?msg=" + quote(message) if message else "?err=" + quote(error) if error else ""
        return RedirectResponse(path + query, status_code=303)

    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, s: Annotated[_Session, Depends(session)]) -> Response:
        if s.user is not None:
            return RedirectResponse("/partner/", status_code=303)
        return page(request, s, "login.html")

    @router.post("/login", include_in_schema=False)
    def login(request: Request, s: Annotated[_Session, Depends(session)], email: Annotated[str, Form(max_length=254)],
              password: Annotated[str, Form(max_length=MAX_PASSWORD)],
              csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        web.check_csrf(s, csrf)
        user = web.workspace.users.authenticate(email, password)
        if user is None:
            return page(request, s, "login.html", 401, error="Wrong e-mail or password.", email=email)
        response = RedirectResponse("/partner/", status_code=303)
        web.set_cookie(response, _Session(secrets.token_urlsafe(24), user))   # a new token after sign-in
        return response

    @router.post("/logout", include_in_schema=False)
    def logout(s: Annotated[_Session, Depends(session)], csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        web.check_csrf(s, csrf)
        if s.user is not None:
            web.workspace.users.end_sessions(s.user.id)
        response = to_login()
        response.delete_cookie(COOKIE, path="/partner")
        return response

    @router.get("/accept", response_class=HTMLResponse, include_in_schema=False)
    def accept_page(request: Request, s: Annotated[_Session, Depends(session)]) -> Response:
        return page(request, s, "accept.html")

    @router.post("/accept", include_in_schema=False)
    def accept(request: Request, s: Annotated[_Session, Depends(session)],
               token: Annotated[str, Form(max_length=200)], password: Annotated[str, Form(max_length=MAX_PASSWORD)],
               csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        web.check_csrf(s, csrf)
        try:
            user = web.workspace.users.accept(token, password)
        except PartnerUserError as exc:
            return page(request, s, "accept.html", 422, error=str(exc))
        response = RedirectResponse("/partner/", status_code=303)
        web.set_cookie(response, _Session(secrets.token_urlsafe(24), user))
        return response

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, s: Annotated[_Session, Depends(session)], msg: str | None = None,
             err: str | None = None) -> Response:
        if s.user is None:
            return to_login()
        scope = web.scope(s)
        return page(request, s, "deals.html", deals=scope.deals(), attribution=scope.attribution(),
                    overlaps=scope.overlaps(), account=scope.account, corporate=scope.corporate_currency(),
                    msg=msg, err=err)

    @router.get("/deals/{deal_id}", response_class=HTMLResponse, include_in_schema=False)
    def deal_page(request: Request, deal_id: str, s: Annotated[_Session, Depends(session)], msg: str | None = None,
                  err: str | None = None) -> Response:
        if s.user is None:
            return to_login()
        scope = web.scope(s)
        try:
            deal = scope.deal(deal_id)
        except NotFound:
            return page(request, s, "not_found.html", 404)
        return page(request, s, "deal.html", deal=deal, account=scope.account,
                    corporate=scope.corporate_currency(), msg=msg, err=err)

    async def form_post(request: Request, s: _Session) -> dict[str, str]:
        """The posted form, after the CSRF check: a post without a session or the token changes nothing."""
        form = await request.form(max_files=0, max_fields=20)
        web.check_csrf(s, str(form.get("csrf") or ""))
        return {k: str(v) for k, v in form.items() if k != "csrf"}

    @router.post("/deals/{deal_id}/edit", include_in_schema=False)
    async def edit_form(request: Request, deal_id: str, s: Annotated[_Session, Depends(session)]) -> Response:
        form = await form_post(request, s)
        if s.user is None:
            return to_login()
        registration = form.pop("registration", "") or None
        try:
            web.scope(s).edit(deal_id, {k: v for k, v in form.items()}, registration)
        except NotFound:
            return page(request, s, "not_found.html", 404)
        except ScopeError as exc:
            return flash_to(f"/partner/deals/{quote(deal_id)}", error=str(exc))
        return flash_to(f"/partner/deals/{quote(deal_id)}", "Saved; the next sync takes it to the vendor.")

    @router.post("/registrations/{registration_id}/{action}", include_in_schema=False)
    async def move_form(request: Request, registration_id: str, action: str,
                        s: Annotated[_Session, Depends(session)]) -> Response:
        await form_post(request, s)
        if s.user is None:
            return to_login()
        if action not in ACTIONS:
            return page(request, s, "not_found.html", 404)
        scope = web.scope(s)
        try:
            deal = scope.move(registration_id, action)
        except NotFound:
            return page(request, s, "not_found.html", 404)
        except ScopeError as exc:
            return flash_to("/partner/", error=str(exc))
        return flash_to(f"/partner/deals/{deal.id}", f"Registration {DONE[action]}.")

    @router.post("/overlaps/{overlap_id}/register", include_in_schema=False)
    async def register_form(request: Request, overlap_id: str, s: Annotated[_Session, Depends(session)]) -> Response:
        form = await form_post(request, s)
        if s.user is None:
            return to_login()
        try:
            body = RegisterBody(name=form.get("name") or None, close_date=form.get("close_date") or None,
                                amount=form.get("amount") or None, currency=form.get("currency") or None)
        except ValueError as exc:
            return flash_to("/partner/", error=_first_error(exc))
        try:
            deal = web.scope(s).register(_int_id(overlap_id), **body.model_dump())
        except NotFound:
            return page(request, s, "not_found.html", 404)
        except ScopeError as exc:
            return flash_to("/partner/", error=str(exc))
        return flash_to(f"/partner/deals/{deal.id}", "Registered as a draft; submit it when it is ready.")

    return router


def _int_id(raw: str) -> int:
    """An overlap id from the path; anything but a small positive integer is simply not found."""
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("overlap")
    return int(raw)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    return str(exc)


def mount(app: Any, connector: Any) -> None:
    """Add the partner workspace to the admin app (`cosell serve`), on the connector's settings."""
    settings = connector.settings
    secret = settings.partner_session_secret.get_secret_value() if settings.partner_session_secret else None
    web = PartnerWeb(lambda: PartnerWorkspace(connector.sync, invite_days=settings.partner_invite_days,
                                              review_days=settings.partner_review_days),
                     secret=secret, session_hours=settings.partner_session_hours,
                     cookie_secure=settings.partner_cookie_secure, base_url=settings.partner_base_url)
    app.include_router(partner_router(web))
