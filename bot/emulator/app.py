"""The emulator's application factory and its process entry point."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
from aiohttp import web

from bot.emulator import api, control, richmenus, simulator
from bot.emulator.middleware import platform
from bot.emulator.state import STATE, EmulatorState
from bot.emulator.webhooks import WEBHOOKS, Webhooks

# Big enough that an oversized rich menu image gets LINE's 400, not the server's 413.
MAX_BODY_BYTES = 10 * 1024 * 1024


def create_emulator_app(
    *,
    channel_secret: str,
    access_token: str,
    webhook_url: str | None,
    rate_limits: Mapping[str, float] | None = None,
    reply_token_ttl: float = 60.0,
    retry_key_ttl: float = 24 * 3600.0,
    webhook_timeout: float = 10.0,
) -> web.Application:
    """The LINE platform for one channel: Messaging API, control API and chat simulator."""
    state = EmulatorState(
        channel_secret=channel_secret,
        access_token=access_token,
        webhook_url=webhook_url,
        rate_limits=rate_limits,
        reply_token_ttl=reply_token_ttl,
        retry_key_ttl=retry_key_ttl,
    )
    app = web.Application(middlewares=[platform], client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.cleanup_ctx.append(_webhook_client(state, webhook_timeout))
    for module in (api, richmenus, control, simulator):
        module.add_routes(app.router)
    return app


def _webhook_client(
    state: EmulatorState, timeout: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[WEBHOOKS] = webhooks = Webhooks(state, session, timeout)
            try:
                yield
            finally:
                await webhooks.close()

    return ctx


async def run_emulator(
    *, host: str, port: int, channel_secret: str, access_token: str, webhook_url: str
) -> None:
    """Serve the emulator until cancelled or SIGINT/SIGTERM."""
    app = create_emulator_app(
        channel_secret=channel_secret, access_token=access_token, webhook_url=webhook_url
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:  # one clear line for the command line, not a traceback
            raise SystemExit(
                f"LINE emulator: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        print(f"LINE emulator on http://{host}:{port}/ (webhooks to {webhook_url})", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
