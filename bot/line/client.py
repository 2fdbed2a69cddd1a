"""The resilient LINE Messaging API client around the SDK's async client.

- reply; when the reply token is expired or already used, fall back to push;
- push, multicast, broadcast and narrowcast always carry an `X-Line-Retry-Key` stored before the
  first attempt, so a retry (or a resend after a crash) is accepted once and answered 409 after;
- 5xx, timeouts and 429 are retried with exponential backoff and jitter; other 4xx never;
- explicit request timeouts; `x-line-request-id` logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    ApiException,
    ApiResponse,
    AsyncMessagingApi,
    BroadcastRequest,
    DemographicFilter,
    Filter,
    Message,
    MulticastRequest,
    NarrowcastRequest,
    PushMessageRequest,
    Recipient,
    ReplyMessageRequest,
)

from bot.clock import Clock
from bot.domain.news import MULTICAST_MAX
from bot.storage.sends import RETRY_KEY_WINDOW, Sends, StoredKey
from bot.storage.users import Users

log = logging.getLogger("bot.line")


class SendFailed(Exception):
    """LINE refused the request (a 4xx other than 409/429) or every retry failed."""

    def __init__(self, endpoint: str, status: int, detail: str) -> None:
        super().__init__(f"{endpoint} failed with {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    request_timeout_s: float = 10.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_delay_s)
        # Full jitter keeps many retrying senders from hitting the rate limit in step.
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


_RETRYABLE_ERRORS = (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _is_invalid_reply_token(exc: ApiException) -> bool:
    return exc.status == 400 and "reply token" in str(exc.body or "").lower()


class LineClient:
    def __init__(
        self,
        api: AsyncMessagingApi,
        sends: Sends,
        users: Users,
        clock: Clock,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.api = api
        self.sends = sends
        self.users = users
        self.clock = clock
        self.policy = policy or RetryPolicy()

    async def reply(
        self,
        reply_token: str | None,
        user_id: str,
        messages: Sequence[Message],
        logical_key: str,
        *,
        push_fallback: bool = True,
    ) -> None:
        """Answer an event: by reply token when it still works, else by push.

        Without `push_fallback` a spent token means the answer went out already (an earlier
        attempt used it), so nothing more is sent.
        """
        if reply_token and await self._reply(reply_token, messages):
            return
        if push_fallback or not reply_token:
            # A reply's send is named by its event, deleted with the person: it keeps no
            # user id, also when the reply to 「すべて削除する」 goes out after the deletion.
            await self.push(user_id, messages, logical_key, keep_recipient=False)

    async def _reply(self, reply_token: str, messages: Sequence[Message]) -> bool:
        """True when the reply was delivered (or probably was); False to fall back to push."""
        request = ReplyMessageRequest(replyToken=reply_token, messages=list(messages))
        uncertain = False  # a 5xx or timeout may have delivered the reply after all
        for attempt in range(self.policy.attempts):
            try:
                response = await self.api.reply_message_with_http_info(
                    request, _request_timeout=self.policy.request_timeout_s
                )
                self._log_ok("reply", response)
                return True
            except ApiException as exc:
                if _is_invalid_reply_token(exc):
                    if uncertain:
                        # The token was spent by our own earlier attempt: it was delivered.
                        log.warning("reply outcome uncertain; token already used: not resending")
                        return True
                    return False
                if not _retryable(exc.status):
                    raise SendFailed("reply", exc.status, str(exc.body)) from exc
                uncertain = uncertain or exc.status >= 500
                await self._pause("reply", attempt, exc.status, _retry_after(exc))
            except _RETRYABLE_ERRORS as exc:
                uncertain = True
                await self._pause("reply", attempt, 0, None, error=type(exc).__name__)
        return uncertain  # retries exhausted: push only if nothing can have gone out

    async def push(
        self,
        user_id: str,
        messages: Sequence[Message],
        logical_key: str,
        *,
        keep_recipient: bool = True,
    ) -> bool:
        """Push to one user exactly once per logical key; False when the user has blocked us.
        The send's record keeps the user id (for 「データを削除」) unless `keep_recipient` is
        False."""
        if await self.users.is_blocked(user_id):
            return False
        request = PushMessageRequest(to=user_id, messages=list(messages))
        await self._keyed(
            "push",
            logical_key,
            lambda key, t: self.api.push_message_with_http_info(
                request, x_line_retry_key=key, _request_timeout=t
            ),
            user_id=user_id if keep_recipient else "",
        )
        return True

    async def multicast(
        self,
        user_ids: Sequence[str],
        messages: Sequence[Message],
        logical_key: str,
        stored: StoredKey | None = None,
    ) -> None:
        """`stored`: the send's retry key, stored already with others (`Sends.retry_keys`) by
        a caller that records how the send ended."""
        if not 1 <= len(user_ids) <= MULTICAST_MAX or not all(user_ids):
            raise ValueError(f"a multicast goes to 1–{MULTICAST_MAX} user ids")
        # Built without the SDK's field validation: the ids come from our own records and the
        # messages are SDK objects already, and validating 500 ids cost 1.2 ms of CPU a request
        # (a quarter of a news worker's CPU at LINE's 200 multicasts a second).
        request = MulticastRequest.construct(to=list(user_ids), messages=list(messages))
        await self._keyed(
            "multicast",
            logical_key,
            lambda key, t: self.api.multicast_with_http_info(
                request, x_line_retry_key=key, _request_timeout=t
            ),
            stored=stored,
        )

    async def broadcast(self, messages: Sequence[Message], logical_key: str) -> None:
        request = BroadcastRequest(messages=list(messages))
        await self._keyed(
            "broadcast",
            logical_key,
            lambda key, t: self.api.broadcast_with_http_info(
                request, x_line_retry_key=key, _request_timeout=t
            ),
        )

    async def narrowcast(
        self,
        messages: Sequence[Message],
        logical_key: str,
        recipient: Recipient | None = None,
        demographic: DemographicFilter | None = None,
    ) -> None:
        request = NarrowcastRequest(
            messages=list(messages),
            recipient=recipient,
            filter=(Filter(demographic=demographic) if demographic is not None else None),
        )
        await self._keyed(
            "narrowcast",
            logical_key,
            lambda key, t: self.api.narrowcast_with_http_info(
                request, x_line_retry_key=key, _request_timeout=t
            ),
        )

    async def _keyed(
        self,
        endpoint: str,
        logical_key: str,
        call: Callable[[str, float], Awaitable[ApiResponse]],
        user_id: str = "",
        stored: StoredKey | None = None,
    ) -> None:
        """Send once under the logical key's stored retry key. `stored`: the key was stored by
        the caller (with others), who also records how the send ended (a news batch's mark
        does); otherwise the send's record here says it."""
        now = self.clock.now()
        record = stored is None
        if stored is None:
            stored = await self.sends.retry_key(logical_key, now, user_id)
        if stored.status == "sent":
            return

        async def ended(status: str, detail: str = "") -> None:
            if record:
                await self.sends.mark(logical_key, status, self.clock.now(), detail)

        if now - stored.first_seen > RETRY_KEY_WINDOW:
            # LINE no longer remembers the key: resending could deliver twice.
            await ended("failed", "retry key older than 24 h")
            raise SendFailed(endpoint, 0, "retry key older than LINE's 24-hour window")
        for attempt in range(self.policy.attempts):
            try:
                response = await call(stored.retry_key, self.policy.request_timeout_s)
                self._log_ok(endpoint, response)
                await ended("sent")
                return
            except ApiException as exc:
                if exc.status == 409:  # accepted before (our earlier attempt got through)
                    await ended("sent", "409")
                    return
                if not _retryable(exc.status):
                    await ended("failed", str(exc.body))
                    raise SendFailed(endpoint, exc.status, str(exc.body)) from exc
                await self._pause(endpoint, attempt, exc.status, _retry_after(exc))
            except _RETRYABLE_ERRORS as exc:
                await self._pause(endpoint, attempt, 0, None, error=type(exc).__name__)
        raise SendFailed(endpoint, 0, f"gave up after {self.policy.attempts} attempts")

    async def _pause(
        self, endpoint: str, attempt: int, status: int, retry_after: str | None, error: str = ""
    ) -> None:
        if attempt + 1 >= self.policy.attempts:
            return
        delay = self.policy.delay(attempt, retry_after)
        log.warning(
            "LINE request will be retried",
            extra={
                "endpoint": endpoint,
                "status": status,
                "error": error,
                "delay_s": round(delay, 2),
            },
        )
        await asyncio.sleep(delay)

    def _log_ok(self, endpoint: str, response: ApiResponse) -> None:
        headers: Any = response.headers or {}
        log.info(
            "LINE request accepted",
            extra={"endpoint": endpoint, "line_request_id": headers.get("x-line-request-id")},
        )


def _retry_after(exc: ApiException) -> str | None:
    headers: Any = exc.headers or {}
    value = headers.get("Retry-After")
    return str(value) if value is not None else None
