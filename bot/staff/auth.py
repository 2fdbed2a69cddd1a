"""Console login, logout and password change.

Login: the form carries a token bound to a short-lived cookie (login CSRF); failures are
counted per account and per address (`accounts.authenticate`); success always starts a new
session (an id planted before login is dropped, never adopted). Password change requires the
current password and ends the member's other sessions; the current one gets a new id too.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from bot.app import CLOCK, SETTINGS, STORAGE
from bot.staff import csrf, sessions
from bot.staff.accounts import StaffError, authenticate, change_password
from bot.staff.audit import Action
from bot.staff.console import (
    LOGIN_PATH,
    PREFIX,
    PageCall,
    Pages,
    page_context,
    render_html,
)
from bot.staff.context import STAFF_CONFIG, client_ip, principal_of, secure_cookies

pages = Pages()

LOGIN_COOKIE_MAX_AGE = 3600


def _safe_next(value: str | None) -> str:
    """Only paths of the console; anything else (other hosts, //evil) goes to the dashboard."""
    if (
        value
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return PREFIX + "/"


def _login_page(
    request: web.Request, *, status: int = 200, error: str = "", email: str = ""
) -> web.Response:
    settings = request.config_dict[SETTINGS]
    cookie = request.cookies.get(csrf.LOGIN_COOKIE) or secrets.token_urlsafe(24)
    context = page_context(request, None)
    context.update(
        title="ログイン",
        error=error,
        email=email,
        next=_safe_next(request.query.get("next")),
        login_token=csrf.login_token(settings.session_secret, cookie),
    )
    response = render_html("login.html", status=status, **context)
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        cookie,
        path=PREFIX,
        max_age=LOGIN_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(settings),
    )
    return response


@pages.public_page("GET", "/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    if principal_of(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _login_page(request)


@pages.public_page("POST", "/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    """The middleware has checked the login form's token already."""
    storage = request.config_dict[STORAGE]
    settings = request.config_dict[SETTINGS]
    config = request.config_dict[STAFF_CONFIG]
    now = request.config_dict[CLOCK].now()
    form = await request.post()
    email = str(form.get("email", ""))
    password = str(form.get("password", ""))
    ip = client_ip(request)
    result = await authenticate(storage, now, email, password, ip, config.login)
    if result.account is None:
        if result.locked_until is not None:
            minutes = max(1, round((result.locked_until - now).total_seconds() / 60))
            return _login_page(
                request,
                status=429,
                email=email,
                error=(
                    "ログインの失敗が続いたため、一時的にログインできなくしています。"
                    f"約{minutes}分後にもう一度お試しください。"
                ),
            )
        return _login_page(
            request,
            status=401,
            email=email,
            error="メールアドレスまたはパスワードが正しくありません。",
        )
    old = request.cookies.get(sessions.COOKIE)
    if old:
        await storage.staff_sessions.delete(sessions.session_id(old))
    token, _ = await sessions.start_session(
        storage, now, str(result.account["_id"]), ip, config.sessions
    )
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    sessions.set_cookie(response, token, secure=secure_cookies(settings))
    response.del_cookie(csrf.LOGIN_COOKIE, path=PREFIX)
    raise response


@pages.post("/logout", while_password_change_pending=True)
async def logout(call: PageCall) -> web.StreamResponse:
    if call.principal.session_id:
        await call.storage.staff_sessions.delete(call.principal.session_id)
    await call.audit(Action.LOGOUT, target=call.principal.label)
    response = web.HTTPSeeOther(f"{LOGIN_PATH}?notice=logged_out")
    sessions.clear_cookie(response, secure=secure_cookies(call.settings))
    raise response


@pages.get("/password", nav="パスワード変更", order=90, while_password_change_pending=True)
async def password_form(call: PageCall) -> web.StreamResponse:
    return call.render("password.html", title="パスワード変更", errors={})


@pages.post("/password", while_password_change_pending=True)
async def password_submit(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    try:
        await change_password(
            call.storage,
            call.now(),
            call.principal,
            current=form.get("current", ""),
            new=form.get("new", ""),
            confirm=form.get("confirm", ""),
            limits=call.config.login,
            ip=call.ip,
        )
    except StaffError as exc:
        return call.render(
            "password.html",
            status=422,
            title="パスワード変更",
            errors={exc.field or "new": exc.message},
        )
    # A new id for the current session as well.
    if call.principal.session_id:
        await call.storage.staff_sessions.delete(call.principal.session_id)
    token, _ = await sessions.start_session(
        call.storage, call.now(), call.principal.id, call.ip, call.config.sessions
    )
    response = call.redirect(f"{PREFIX}/", notice="password_changed")
    sessions.set_cookie(response, token, secure=secure_cookies(call.settings))
    raise response
