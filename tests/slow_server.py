"""A web process with one extra slow route, served by the real `bot.app.serve` (for SIGTERM tests)."""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web

from bot.app import create_app, serve
from bot.settings import Settings


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "2")))
    return web.json_response({"finished": True})


def main() -> None:
    app = create_app(Settings.from_env(os.environ))
    app.router.add_get("/slow", slow)
    asyncio.run(serve(app, "127.0.0.1", int(sys.argv[1])))


if __name__ == "__main__":
    main()
