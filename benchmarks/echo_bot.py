"""The baseline of the chat benchmark: a bare echo bot with line-bot-sdk v3's async client and
aiohttp, in the shape of the SDK's own `examples/aiohttp-echo` (parse the signed webhook, reply
to each text message inside the request, answer 200). No database, no dialog, no templates.

With `--store` it first inserts each event into `MONGODB_URI`/`MONGODB_DB`, and nothing more: the
least any bot can do that keeps its events stored before it answers LINE (docs/RELIABILITY.md),
so the chat benchmark shows what that one write costs on the database it runs against. With
`--record-replies` it also inserts each reply, keyed by its event, just before sending it: the
least that also sends each reply once across a crash (an attempt after one finds the record and
resends only by the spent reply token). Those two inserts are the floor of any exactly-once bot.

    LINE_CHANNEL_SECRET=… LINE_CHANNEL_ACCESS_TOKEN=… LINE_API_BASE_URL=http://127.0.0.1:9000 \\
        python -m benchmarks.echo_bot --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
from typing import Any

from aiohttp import web
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import MessageEvent, TextMessageContent
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection


class Handler:
    def __init__(
        self,
        line_bot_api: AsyncMessagingApi,
        parser: WebhookParser,
        store: AsyncCollection[dict[str, Any]] | None = None,
        replies: AsyncCollection[dict[str, Any]] | None = None,
    ) -> None:
        self.line_bot_api = line_bot_api
        self.parser = parser
        self.store = store
        self.replies = replies

    async def echo(self, request: web.Request) -> web.Response:
        signature = request.headers["X-Line-Signature"]
        body = await request.text()
        try:
            events = self.parser.parse(body, signature)
        except InvalidSignatureError:
            return web.Response(status=400, text="Invalid signature")
        if self.store is not None:
            for raw in json.loads(body)["events"]:
                await self.store.insert_one(
                    {"_id": raw["webhookEventId"], "event": json.dumps(raw)}
                )
        for event in events:
            if not isinstance(event, MessageEvent):
                continue
            if not isinstance(event.message, TextMessageContent):
                continue
            answer = ReplyMessageRequest(
                reply_token=event.reply_token, messages=[TextMessage(text=event.message.text)]
            )
            if self.replies is not None:
                await self.replies.insert_one(
                    {"_id": f"{event.webhook_event_id}:1", "reply": answer.to_json()}
                )
            await self.line_bot_api.reply_message(answer)
        return web.Response(text="OK\n")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def main(port: int, store: bool, record_replies: bool) -> None:
    configuration = Configuration(
        access_token=os.environ["LINE_CHANNEL_ACCESS_TOKEN"],
        host=os.environ.get("LINE_API_BASE_URL", "https://api.line.me"),
    )
    mongo: AsyncMongoClient[dict[str, Any]] | None = (
        AsyncMongoClient(os.environ["MONGODB_URI"]) if store else None
    )
    db = mongo[os.environ["MONGODB_DB"]] if mongo is not None else None
    async with AsyncApiClient(configuration) as api_client:
        handler = Handler(
            AsyncMessagingApi(api_client),
            WebhookParser(os.environ["LINE_CHANNEL_SECRET"]),
            db["events"] if db is not None else None,
            db["replies"] if db is not None and record_replies else None,
        )
        app = web.Application()
        app.add_routes([web.post("/callback", handler.echo), web.get("/healthz", health)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            await asyncio.Event().wait()  # until the process is stopped
        finally:
            await runner.cleanup()
            if mongo is not None:
                await mongo.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo_bot")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store", action="store_true", help="insert each event before replying")
    parser.add_argument(
        "--record-replies",
        action="store_true",
        help="with --store, also insert each reply just before sending it",
    )
    options = parser.parse_args()
    if options.record_replies and not options.store:
        parser.error("--record-replies needs --store")
    logging.basicConfig(format="%(levelname)s:%(message)s", level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(options.port, options.store, options.record_replies))
