"""The baseline of the chat benchmark: a bare echo bot with line-bot-sdk v3's async client and
aiohttp, in the shape of the SDK's own `examples/aiohttp-echo` (parse the signed webhook, reply
to each text message inside the request, answer 200). No database, no dialog, no templates.

    LINE_CHANNEL_SECRET=… LINE_CHANNEL_ACCESS_TOKEN=… LINE_API_BASE_URL=http://127.0.0.1:9000 \\
        python -m benchmarks.echo_bot --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os

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


class Handler:
    def __init__(self, line_bot_api: AsyncMessagingApi, parser: WebhookParser) -> None:
        self.line_bot_api = line_bot_api
        self.parser = parser

    async def echo(self, request: web.Request) -> web.Response:
        signature = request.headers["X-Line-Signature"]
        body = await request.text()
        try:
            events = self.parser.parse(body, signature)
        except InvalidSignatureError:
            return web.Response(status=400, text="Invalid signature")
        for event in events:
            if not isinstance(event, MessageEvent):
                continue
            if not isinstance(event.message, TextMessageContent):
                continue
            await self.line_bot_api.reply_message(
                ReplyMessageRequest(
                    reply_token=event.reply_token, messages=[TextMessage(text=event.message.text)]
                )
            )
        return web.Response(text="OK\n")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def main(port: int) -> None:
    configuration = Configuration(
        access_token=os.environ["LINE_CHANNEL_ACCESS_TOKEN"],
        host=os.environ.get("LINE_API_BASE_URL", "https://api.line.me"),
    )
    async with AsyncApiClient(configuration) as api_client:
        handler = Handler(
            AsyncMessagingApi(api_client), WebhookParser(os.environ["LINE_CHANNEL_SECRET"])
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo_bot")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    logging.basicConfig(format="%(levelname)s:%(message)s", level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(options.port))
