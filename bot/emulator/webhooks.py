"""Webhook events as LINE builds them, and their signed delivery to the bot."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.emulator import ids
from bot.emulator.state import Delivery, EmulatorState, User

USER_AGENT = "LineBotWebhook/2.0"


def sign(channel_secret: str, body: bytes) -> str:
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def new_event(
    state: EmulatorState, kind: str, user: User, *, reply: bool = True, **parts: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user.user_id},
        "webhookEventId": ids.webhook_event_id(),
        "deliveryContext": {"isRedelivery": False},
    }
    if reply:
        event["replyToken"] = state.issue_reply_token(user.user_id)
    event.update(parts)
    return event


def message_event(state: EmulatorState, user: User, content: dict[str, Any]) -> dict[str, Any]:
    """A message event; `content` is the type-specific part (text, location, ...)."""
    message = {"id": state.message_ids.new(), **content}
    if content["type"] != "location":  # locations cannot be quoted
        message["quoteToken"] = ids.quote_token()
    return new_event(state, "message", user, message=message)


# LINE redelivers an event the bot did not accept (non-2xx or no answer) with growing delays;
# the emulator keeps the pattern on a shorter scale so tests see the recovery.
REDELIVERY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)


def accepted(status: int) -> bool:
    return 200 <= status < 300


class Webhooks:
    """Sends events to the bot's webhook URL and records every delivery."""

    def __init__(self, state: EmulatorState, session: aiohttp.ClientSession, timeout: float):
        self.state = state
        self.session = session
        self.timeout = timeout
        self.redeliveries: set[asyncio.Task[None]] = set()

    async def dispatch(self, event: dict[str, Any]) -> int:
        """Deliver a new event; the bot's first HTTP status.

        With redelivery on, every event is sent a second time at once (LINE may deliver twice),
        and an event the bot did not accept is redelivered later until it is.
        """
        self.state.keep_event(event)
        status = await self.send(event, is_redelivery=False)
        if self.state.redeliver:
            again = await self.send(event, is_redelivery=True)
            if not accepted(status) and not accepted(again):
                task = asyncio.create_task(self._redeliver_later(event))
                self.redeliveries.add(task)
                task.add_done_callback(self.redeliveries.discard)
        return status

    async def _redeliver_later(self, event: dict[str, Any]) -> None:
        for delay in REDELIVERY_DELAYS_S:
            await asyncio.sleep(delay)
            if not self.state.redeliver or accepted(await self.send(event, is_redelivery=True)):
                return

    async def close(self) -> None:
        for task in list(self.redeliveries):
            task.cancel()
        await asyncio.gather(*self.redeliveries, return_exceptions=True)

    async def send(self, event: dict[str, Any], *, is_redelivery: bool) -> int:
        """POST one event, signed; the bot's HTTP status, or 0 when it could not be reached."""
        event = {**event, "deliveryContext": {"isRedelivery": is_redelivery}}
        payload = {"destination": self.state.bot_user_id, "events": [event]}
        body = json.dumps(payload, ensure_ascii=False).encode()
        status, error = 0, None
        url = self.state.webhook_url
        if url is None:
            error = "no webhook URL configured"
        else:
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Line-Signature": sign(self.state.channel_secret, body),
                "User-Agent": USER_AGENT,
            }
            try:
                async with self.session.post(
                    url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(self.timeout)
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        self.state.deliveries.append(
            Delivery(
                webhook_event_id=event["webhookEventId"],
                event_type=event["type"],
                user_id=event["source"]["userId"],
                is_redelivery=is_redelivery,
                status=status,
                error=error,
                body=payload,
                at=datetime.now(UTC),
            )
        )
        return status


WEBHOOKS = web.AppKey("emulator_webhooks", Webhooks)
