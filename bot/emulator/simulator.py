"""Serves the browser chat simulator (files in static/, written separately)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.emulator.errors import not_found

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Shared with the staff console: the LINE message renderer (line-preview.js / .css).
SHARED_DIR = Path(__file__).resolve().parent.parent / "static"

PLACEHOLDER = """<!doctype html>
<html lang="ja"><meta charset="utf-8"><title>LINE emulator</title>
<p>The chat simulator is not installed (bot/emulator/static/index.html is missing).
The Messaging API and the control API under /_emulator/ work.</p></html>
"""


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        return web.Response(text=PLACEHOLDER, content_type="text/html")
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


async def static_file(request: web.Request) -> web.StreamResponse:
    for directory in (STATIC_DIR, SHARED_DIR):
        path = (directory / request.match_info["name"]).resolve()
        if path.is_relative_to(directory) and path.is_file():
            return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
    raise not_found()


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", index)
    router.add_get("/static/{name:.+}", static_file)
