"""The web process: application factory, middleware, health, and serving with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.clock import Clock
from bot.line.client import RetryPolicy
from bot.line.webhook import CHANNEL_SECRET, PIPELINE, callback
from bot.logs import path_for_log, request_id
from bot.services import HandlerFactory, Services, make_pipeline, open_services
from bot.settings import Settings
from bot.storage import Storage

log = logging.getLogger("bot.web")

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
CLOCK = web.AppKey("clock", Clock)
SERVICES = web.AppKey("services", Services)

SHUTDOWN_TIMEOUT_S = 30.0
# How long shutdown waits for events being handled; the rest stay pending for the sweep (a
# database outage would otherwise hold the process until the outage ends).
DRAIN_TIMEOUT_S = 10.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (kept from X-Request-Id when sane) and log it as one JSON line."""
    incoming = request.headers.get("X-Request-Id", "")
    rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": path_for_log(request.path),
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        request_id.reset(token)


async def healthz(request: web.Request) -> web.Response:
    ok = await request.app[STORAGE].mongo.ping()
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "database": "up" if ok else "down"},
        status=200 if ok else 503,
    )


def services_context(
    settings: Settings,
    clock: Clock,
    handler_factory: HandlerFactory | None,
    policy: RetryPolicy | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings, clock, policy) as services:
            app[SERVICES] = services
            app[STORAGE] = services.storage
            app[PIPELINE] = pipeline = make_pipeline(services, handler_factory)
            services.richmenus.start()
            # Every web process sweeps: events of a process that died get handled even
            # when LINE does not redeliver them.
            sweeper = asyncio.create_task(pipeline.sweep_forever())
            try:
                yield
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                await services.richmenus.stop()

    return ctx


async def finish_events(app: web.Application) -> None:
    """On shutdown, let events already accepted be handled before clients close, for a while."""
    left = await app[PIPELINE].drain(DRAIN_TIMEOUT_S)
    if left:
        log.warning("shutdown: users' events left pending for the sweep", extra={"users": left})


def create_app(
    settings: Settings,
    clock: Clock | None = None,
    *,
    handler_factory: HandlerFactory | None = None,
    retry_policy: RetryPolicy | None = None,
) -> web.Application:
    """The web process. `handler_factory` and `retry_policy` exist for tests of the pipeline."""
    app = web.Application(middlewares=[request_context], client_max_size=2 * 1024**2)
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app[CHANNEL_SECRET] = settings.line_channel_secret.encode()
    app.cleanup_ctx.append(services_context(settings, app[CLOCK], handler_factory, retry_policy))
    app.on_shutdown.append(finish_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/callback", callback)
    from bot.web import add_verify_routes  # here, not on top: bot.web imports this module

    add_verify_routes(app)
    from bot.web.ics import add_ics_routes  # /stays/{token}.ics, the stays calendar feed

    add_ics_routes(app)
    from bot.staff.web import add_staff_routes  # /admin/ and /api/v1/

    add_staff_routes(app)
    return app


class PortInUse(Exception):
    pass


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, let in-flight work finish, close clients."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        log.info("web process listening", extra={"url": f"http://{host}:{port}"})
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
