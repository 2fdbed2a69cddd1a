"""Wiring of the staff side: the middleware of `/admin` and `/api/v1`, and `add_staff_routes`.

To add an API resource or console pages, write a module with an `ApiRoutes` (`bot.staff.api`)
and/or a `Pages` (`bot.staff.console`) and list them below.

The middleware is the one place that decides who is asking (`Principal`, kept under
`context.PRINCIPAL`) and checks CSRF:

- `/api/v1/…` (except `openapi.json`): `Authorization: Bearer fk_…` (an API key), else the
  session cookie; neither → 401. With the cookie, changes need `X-CSRF-Token`. Errors are JSON.
- `/admin/…` (except `static/`): the session cookie, if any; every POST/PUT/PATCH/DELETE must
  carry the session's CSRF token (the login form: its own token). The page wrapper
  (`console.page_handler`) then sends visitors without a session to the login page.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pymongo.errors import PyMongoError

from bot.app import CLOCK, SETTINGS, STORAGE, Handler
from bot.staff import api, auth, console, csrf, dashboard, sessions
from bot.staff.api import ApiError, ApiRoutes, error_response
from bot.staff.apikeys import principal_for_key
from bot.staff.console import Pages, PublicHandler
from bot.staff.context import PRINCIPAL, STAFF_CONFIG, STREAMING, StaffConfig, secure_cookies
from bot.staff.resources import (
    activities,
    api_keys,
    audit,
    benefits,
    garbage,
    me,
    news,
    premium,
    programs,
    questions,
    registrants,
    staff,
    templates,
)
from bot.staff.tenancy import Principal

log = logging.getLogger(__name__)

API_ROUTES: list[ApiRoutes] = [
    me.routes,
    dashboard.routes,
    registrants.routes,
    questions.routes,
    benefits.routes,
    news.routes,
    programs.routes,
    activities.routes,
    garbage.routes,
    premium.routes,
    templates.routes,
    staff.routes,
    api_keys.routes,
    audit.routes,
]
PAGES: list[Pages] = [
    auth.pages,
    dashboard.pages,
    registrants.pages,
    questions.pages,
    benefits.pages,
    news.pages,
    programs.pages,
    activities.pages,
    garbage.pages,
    premium.pages,
    templates.pages,
    staff.pages,
    api_keys.pages,
    audit.pages,
]

UNAVAILABLE = "ただいまデータベースに接続できません。しばらくしてからもう一度お試しください。"
INTERNAL = "エラーが発生しました。お手数ですが、しばらくしてからもう一度お試しください。"

PUBLIC_PAGES = web.AppKey("staff_public_pages", set[PublicHandler])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HTTP_ERRORS = {
    404: ("not_found", "指定されたデータが見つかりません。"),
    405: ("method_not_allowed", "このメソッドは使えません。"),
    413: ("payload_too_large", "リクエストが大きすぎます。"),
}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def _session_principal(request: web.Request) -> Principal | None:
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return None
    return await sessions.principal_for_session(
        request.config_dict[STORAGE],
        request.config_dict[CLOCK].now(),
        token,
        request.config_dict[STAFF_CONFIG].sessions,
    )


async def _api_principal(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "unauthorized",
                "Authorization ヘッダーは「Bearer APIキー」の形で送ってください。",
            )
        principal = await principal_for_key(
            request.config_dict[STORAGE], request.config_dict[CLOCK].now(), key.strip()
        )
        if principal is None:
            raise ApiError(401, "invalid_api_key", "APIキーが正しくないか、無効になっています。")
        return principal
    principal = await _session_principal(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "ログインするか、APIキーを指定してください。")
    if request.method not in SAFE_METHODS and not csrf.matches(
        principal.csrf_token, request.headers.get(csrf.HEADER)
    ):
        raise ApiError(403, "csrf_failed", "X-CSRF-Token ヘッダーが正しくありません。")
    if principal.must_change_password:
        raise ApiError(
            403,
            "password_change_required",
            "管理画面で初期パスワードを変更してから使ってください。",
        )
    return principal


async def _api(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.path != api.OPENAPI_PATH:
            request[PRINCIPAL] = await _api_principal(request)
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_ERRORS.get(
            exc.status, ("http_error", "リクエストを処理できませんでした。")
        )
        return error_response(exc.status, code, message)
    except PyMongoError:
        if request.get(STREAMING):
            raise
        log.exception("staff API: database error")
        return error_response(503, "unavailable", UNAVAILABLE)
    except Exception:
        if request.get(STREAMING):
            raise
        log.exception("staff API: unexpected error")
        return error_response(500, "internal_error", INTERNAL)


async def _presented_csrf(request: web.Request) -> str | None:
    header = request.headers.get(csrf.HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(csrf.FIELD)
        return value if isinstance(value, str) else None
    return None


async def _console(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == console.PREFIX:
        raise web.HTTPPermanentRedirect(console.PREFIX + "/")
    if request.path.startswith(console.PREFIX + "/static/"):
        return await handler(request)
    principal = await _session_principal(request)
    if principal is not None:
        request[PRINCIPAL] = principal
    if request.method not in SAFE_METHODS:
        presented = await _presented_csrf(request)
        if request.match_info.handler in request.app[PUBLIC_PAGES]:
            cookie = request.cookies.get(csrf.LOGIN_COOKIE)
            secret = request.config_dict[SETTINGS].session_secret
            ok = csrf.login_token_ok(secret, cookie, presented)
        elif principal is None:
            raise web.HTTPSeeOther(f"{console.LOGIN_PATH}?notice=session_expired")
        else:
            ok = csrf.matches(principal.csrf_token, presented)
        if not ok:
            return console.forbidden_page(
                request,
                "フォームの有効期限が切れたか、正しくない送信です。"
                "ページを開き直してから、もう一度お試しください。",
            )
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        response = console.not_found_page(request)
    except web.HTTPMethodNotAllowed:
        response = console.error_page(
            request, 405, "この操作はできません", "このページではその操作はできません。"
        )
    except (web.HTTPException, PyMongoError):
        raise
    except Exception:
        if request.get(STREAMING):
            raise
        log.exception("staff console: unexpected error")
        response = console.error_page(request, 500, "エラーが発生しました", INTERNAL)
    if not response.prepared:
        for name, value in console.PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        if principal is None and request.cookies.get(sessions.COOKIE):
            settings = request.config_dict[SETTINGS]
            sessions.clear_cookie(response, secure=secure_cookies(settings))
    return response


@web.middleware
async def staff_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _under(request.path, api.PREFIX):
        return await _api(request, handler)
    if _under(request.path, console.PREFIX):
        try:
            return await _console(request, handler)
        except PyMongoError:
            if request.get(STREAMING):
                raise
            log.exception("staff console: database error")
            response = console.error_page(request, 503, "ただいま表示できません", UNAVAILABLE)
            response.headers.update(console.PAGE_HEADERS)
            return response
    return await handler(request)


def add_staff_routes(app: web.Application, config: StaffConfig | None = None) -> None:
    """Register `/admin/…` and `/api/v1/…` with their middleware (call from `create_app`)."""
    app[STAFF_CONFIG] = config or StaffConfig()
    app.middlewares.append(staff_middleware)
    api.add_api_routes(app, API_ROUTES)
    app[PUBLIC_PAGES] = console.add_pages(app, PAGES)
