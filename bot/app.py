"""The web process: application factory, middleware, health, and serving with graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.clock import Clock
from bot.logs import request_id
from bot.settings import Settings
from bot.storage import Mongo, Storage

log = logging.getLogger("bot.web")

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
CLOCK = web.AppKey("clock", Clock)

SHUTDOWN_TIMEOUT_S = 30.0

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
                "path": request.path,
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


def storage_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        mongo = Mongo(settings.mongodb_uri, settings.mongodb_db)
        try:
            await mongo.wait_until_up(settings.db_startup_timeout_s)
            storage = Storage(mongo)
            await storage.ensure_indexes()
            app[STORAGE] = storage
            yield
        finally:
            await mongo.close()

    return ctx


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[request_context], client_max_size=2 * 1024**2)
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app.cleanup_ctx.append(storage_context(settings))
    app.router.add_get("/healthz", healthz)
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
