"""The personal calendar feed: `GET /stays/{token}.ics`, the stays and the collection days inside
them as iCalendar (made with `icalendar`).

The token is the LINE user id with an HMAC signature (`bot.garbage.feed_token`), given to the
resident in the chat (滞在予定 → カレンダー連携). Anything not genuine gets the same 404.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pymongo.errors import PyMongoError

from bot.app import CLOCK, SETTINGS, STORAGE
from bot.clock import JST
from bot.garbage import feed_for_user, user_of_feed_token

log = logging.getLogger(__name__)

HEADERS = {
    "Cache-Control": "private, max-age=900",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def stays_feed(request: web.Request) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    user_id = user_of_feed_token(settings.card_signing_secret, request.match_info["token"])
    if user_id is None:
        raise web.HTTPNotFound(text="not found")
    today = request.config_dict[CLOCK].now().astimezone(JST).date()
    try:
        body = await feed_for_user(request.config_dict[STORAGE], user_id, today)
    except PyMongoError:
        log.exception("calendar feed: database error")
        raise web.HTTPServiceUnavailable(text="unavailable") from None
    return web.Response(body=body, content_type="text/calendar", charset="utf-8", headers=HEADERS)


def add_ics_routes(app: web.Application) -> None:
    app.router.add_get("/stays/{token}.ics", stays_feed)
