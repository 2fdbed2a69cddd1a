"""The console's page registry and rendering: server-rendered Jinja2 pages under `/admin`.

A page module declares its pages on a `Pages` and is listed in `bot/staff/web.py` (`PAGES`):

    pages = Pages()

    @pages.get("/benefits", nav="特典", order=35)
    async def benefits_page(call: PageCall) -> web.StreamResponse:
        items = await call.storage.benefits.list_for(call.tenant)
        return call.render("benefits.html", title="特典", items=items)

    @pages.post("/benefits/{benefit_id}/delete", role=Role.EDITOR)
    async def delete_benefit(call: PageCall) -> web.StreamResponse:
        ...
        return call.redirect("/admin/benefits", notice="benefit_deleted")

`nav=` puts the page in the navigation (sorted by `order`, shown to roles that may open it).
`Pages(municipal_only=True)`: pages of a municipality's own things, which the operator (platform
tenant) has none of; they answer it with the 404 page.
The middleware (`bot/staff/web.py`) has already resolved the principal and checked the CSRF token
of every POST; the page wrapper sends visitors without a session to the login page, refuses roles
below `role` with 403, sends staff who must change their password to that page first, and
answers the operator on municipal-only pages with 404.
Templates live in `bot/staff/templates/` and extend `base.html`; forms include
`{{ csrf_field() }}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from multidict import MultiDict
from pydantic import BaseModel, ValidationError

from bot.clock import JST
from bot.staff import csrf
from bot.staff.context import Call, principal_of
from bot.staff.tenancy import Principal, Role

PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"
PASSWORD_PATH = f"{PREFIX}/password"
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
# Files shared with the emulator's chat simulator (the LINE message preview), also under static/.
SHARED_STATIC = Path(__file__).resolve().parent.parent / "static"

M = TypeVar("M", bound=BaseModel)
PageHandler = Callable[["PageCall"], Awaitable[web.StreamResponse]]
PublicHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Messages shown after a redirect (`?notice=code`); page modules add their own.
NOTICES: dict[str, str] = {
    "logged_out": "ログアウトしました。",
    "session_expired": "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。",
    "password_changed": "パスワードを変更しました。ほかの端末のログインは終了しました。",
    "must_change_password": "はじめに、パスワードを変更してください。",
}

# The page itself: never cached, never framed, no scripts, forms only to ourselves.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    order: int
    role: Role
    municipal_only: bool = False  # not shown to the operator, who would get the 404 page


@dataclass(frozen=True)
class Page:
    method: Literal["GET", "POST"]
    path: str  # below /admin, e.g. "/staff"
    handler: PageHandler
    role: Role
    nav: NavItem | None = None
    while_password_change_pending: bool = False  # reachable before the first password change
    municipal_only: bool = False  # the operator (platform tenant) gets the 404 page


@dataclass
class Pages:
    """The console pages of one module; `municipal_only`: they serve a municipality's staff
    only (the operator gets the 404 page)."""

    municipal_only: bool = False
    pages: list[Page] = field(default_factory=list)
    public: list[tuple[Literal["GET", "POST"], str, PublicHandler]] = field(default_factory=list)

    def _add(
        self,
        method: Literal["GET", "POST"],
        path: str,
        role: Role,
        nav: str | None,
        order: int,
        pending: bool,
    ) -> Callable[[PageHandler], PageHandler]:
        def register(handler: PageHandler) -> PageHandler:
            item = NavItem(nav, PREFIX + path, order, role, self.municipal_only) if nav else None
            page = Page(method, path, handler, role, item, pending, self.municipal_only)
            self.pages.append(page)
            return handler

        return register

    def get(
        self,
        path: str,
        *,
        role: Role = Role.VIEWER,
        nav: str | None = None,
        order: int = 100,
        while_password_change_pending: bool = False,
    ) -> Callable[[PageHandler], PageHandler]:
        return self._add("GET", path, role, nav, order, while_password_change_pending)

    def post(
        self, path: str, *, role: Role = Role.VIEWER, while_password_change_pending: bool = False
    ) -> Callable[[PageHandler], PageHandler]:
        return self._add("POST", path, role, None, 0, while_password_change_pending)

    def public_page(
        self, method: Literal["GET", "POST"], path: str
    ) -> Callable[[PublicHandler], PublicHandler]:
        """A page without login (the login page). Its POSTs are checked against the login
        form's token by the middleware."""

        def register(handler: PublicHandler) -> PublicHandler:
            self.public.append((method, path, handler))
            return handler

        return register


# --- rendering ------------------------------------------------------------------------------------


def jst(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(JST).strftime(fmt)


def jst_date(value: datetime | None) -> str:
    return jst(value, "%Y-%m-%d")


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["jst"] = jst
    env.filters["jst_date"] = jst_date
    return env


def render_html(template: str, status: int = 200, **context: Any) -> web.Response:
    html = environment().get_template(template).render(**context)
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )


def nav_items(app: web.Application, principal: Principal) -> list[NavItem]:
    operator = principal.tenant.is_platform
    return [
        item
        for item in app[NAVIGATION]
        if principal.can(item.role) and not (item.municipal_only and operator)
    ]


NAVIGATION = web.AppKey("staff_navigation", list[NavItem])


def page_context(request: web.Request, principal: Principal | None) -> dict[str, Any]:
    """What base.html needs: who is signed in, navigation, the CSRF field, the notice."""
    token = principal.csrf_token if principal else None
    notice = NOTICES.get(request.query.get("notice", ""), "")
    return {
        "principal": principal,
        "nav": nav_items(request.app, principal) if principal else [],
        "current_path": request.path,
        "csrf_token": token or "",
        "csrf_field": lambda: Markup(
            f'<input type="hidden" name="{csrf.FIELD}" value="{Markup.escape(token or "")}">'
        ),
        "notice": notice,
        "title": "",
    }


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    context = page_context(request, principal_of(request))
    context.update(title=title, message=message)
    return render_html("error.html", status=status, **context)


def not_found_page(request: web.Request) -> web.Response:
    return error_page(
        request, 404, "ページが見つかりません", "お探しのページ・データは見つかりませんでした。"
    )


def forbidden_page(request: web.Request, message: str = "") -> web.Response:
    return error_page(
        request,
        403,
        "この操作はできません",
        message or "この操作を行う権限がありません。必要な場合は管理者にご相談ください。",
    )


class PageCall(Call):
    """A console request: `Call` plus rendering, redirects and forms."""

    def render(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        merged = page_context(self.request, self.principal)
        merged.update(context)
        return render_html(template, status=status, **merged)

    def redirect(self, path: str, *, notice: str | None = None, **params: str) -> web.HTTPSeeOther:
        query = {**params, **({"notice": notice} if notice else {})}
        return web.HTTPSeeOther(path + ("?" + urlencode(query) if query else ""))

    async def form(self) -> MultiDict[str]:
        """The posted form's text fields (files are not part of it)."""
        data = await self.request.post()
        return MultiDict((k, v) for k, v in data.items() if isinstance(v, str))

    async def form_model(
        self, model: type[M], labels: Mapping[str, str] | None = None
    ) -> tuple[M | None, dict[str, str]]:
        """The form as `model` (only the model's fields; empty means not given), or None and
        a Japanese message per field. `labels` gives the names used in the messages."""
        from bot.staff.api import describe

        form = await self.form()
        data = {name: form[name] for name in model.model_fields if form.get(name, "") != ""}
        try:
            return model.model_validate(data), {}
        except ValidationError as exc:
            errors: dict[str, str] = {}
            for err in exc.errors():
                name, message = describe(err, labels=labels)
                errors.setdefault(name, message)
            return None, errors


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    target = request.path_qs if request.method == "GET" else PREFIX + "/"
    return web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(target, safe='')}")


def page_handler(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of a page: login, role and pending password change checks."""

    async def handle(request: web.Request) -> web.StreamResponse:
        principal = principal_of(request)
        if principal is None:
            raise login_redirect(request)
        if principal.must_change_password and not page.while_password_change_pending:
            raise web.HTTPSeeOther(f"{PASSWORD_PATH}?notice=must_change_password")
        if not principal.can(page.role):
            return forbidden_page(request)
        if page.municipal_only and principal.tenant.is_platform:
            return not_found_page(request)
        return await page.handler(PageCall(request, principal))

    handle.__name__ = f"page_{page.handler.__name__}"
    return handle


def add_pages(app: web.Application, page_sets: list[Pages]) -> set[PublicHandler]:
    """Register the pages; returns the public handlers (the middleware lets them in)."""
    nav: list[NavItem] = []
    public: set[PublicHandler] = set()
    for pages in page_sets:
        for page in pages.pages:
            app.router.add_route(page.method, PREFIX + page.path, page_handler(page))
            if page.nav is not None:
                nav.append(page.nav)
        for method, path, handler in pages.public:
            app.router.add_route(method, PREFIX + path, handler)
            public.add(handler)
    app[NAVIGATION] = sorted(nav, key=lambda item: item.order)
    for shared in sorted(SHARED_STATIC.glob("*.*")):
        app.router.add_get(f"{PREFIX}/static/{shared.name}", _shared_file(shared))
    app.router.add_static(f"{PREFIX}/static", STATIC)
    return public


def _shared_file(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return serve
