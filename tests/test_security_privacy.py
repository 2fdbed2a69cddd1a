"""Personal data: never in the logs, gone when the resident asks.

- A resident's conversation and a staff member's work run with the production log format
  (`bot/logs.py` JSON lines) captured; the lines hold no secret (channel secret, access token,
  session and card secrets, passwords, API keys, session cookies, CSRF and card tokens), no
  nickname or message text, no staff e-mail and no LINE user id in clear.
- 「データ削除」 in the chat leaves nothing of the person in any collection of the database
  (not only the stores `bot/storage/privacy.py` knows): neither the user id nor the nickname.
- Sends carry their recipient's user id, so the deletion finds them by it (old sends without
  it by their logical key), and only the person's.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from linebot.v3.messaging import TextMessage

from bot.logs import QUIET_LOGGERS, JsonFormatter, pseudonym
from bot.storage import Storage
from tests.stack import Stack
from tests.test_privacy_transcript import register, verify_uri
from tests.test_staff_support import PASSWORD, Site
from tests.test_webhook import sign

NICKNAME = "ひみつのニック"
SECRET_TEXT = "電話は090-1234-5678です"


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record at INFO and above, formatted as production writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [root.level, *(q.level for q in quiet)]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for logger in quiet:  # as `setup_logging` sets them in production
        logger.setLevel(logging.WARNING)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for logger, level in zip([root, *quiet], levels, strict=True):
            logger.setLevel(level)


async def test_secrets_and_personal_data_never_reach_the_logs(stack: Stack) -> None:
    site = Site(stack)
    settings = stack.settings
    with captured_logs() as logs:
        # A resident registers, says something personal, opens the card.
        chat = await stack.user("ログ太郎")
        card = await register(chat, nickname=NICKNAME)
        await chat.send(SECRET_TEXT)
        uri = verify_uri(card)
        async with stack.http.get(uri) as response:
            assert response.status == 200 and NICKNAME in await response.text()
        token = uri.rstrip("/").rsplit("/", 1)[-1]
        # A forged webhook carrying the nickname.
        raw = '{"destination":"U0","events":[{"type":"message","text":"' + NICKNAME + '"}]}'
        headers = {"X-Line-Signature": sign("not-the-secret", raw.encode())}
        async with stack.http.post(
            f"{stack.bot_url}/callback", data=raw.encode(), headers=headers
        ) as r:
            assert r.status == 400
        # Staff: a wrong password, a login, a key, the registrant, the CSV export.
        email, _ = await site.account("042056", "admin")
        browser = site.browser()
        assert (await browser.login(email, "wrong " + PASSWORD))[0] != 303
        await stack.services.storage.login_throttle.col.delete_many({})
        assert (await browser.login(email, PASSWORD))[0] == 303
        key, _ = await site.api_key(browser)
        status, page = await browser.api("GET", "/registrants", key=key)
        assert status == 200 and page["items"]
        registrant = page["items"][0]["id"]
        assert (await browser.api("GET", f"/registrants/{registrant}", key=key))[0] == 200
        status, csv = await browser.api("GET", "/registrants.csv")
        assert status == 200 and NICKNAME in csv
        await stack.wait_idle()
        await site.close()
    lines = logs.getvalue().splitlines()
    assert len(lines) > 20  # the scan looked at something
    forbidden = {
        "channel secret": settings.line_channel_secret,
        "access token": settings.line_channel_access_token,
        "session secret": settings.session_secret,
        "card signing secret": settings.card_signing_secret,
        "staff password": PASSWORD,
        "API key": key,
        "session cookie": browser.session_cookie or "no cookie",
        "CSRF token": browser.csrf,
        "card token": token,
        "nickname": NICKNAME,
        "message text": SECRET_TEXT,
        "staff e-mail": email,
        "LINE user id": chat.user_id,
    }
    for what, value in forbidden.items():
        assert value and len(value) >= 6, what
        leaks = [line for line in lines if value in line]
        assert not leaks, f"{what} in the logs: {leaks[:3]}"
    # User ids appear only pseudonymised: the same person, the same pseudonym.
    assert pseudonym(chat.user_id) != chat.user_id
    assert re.fullmatch(r"U#[0-9a-f]{12}", pseudonym(chat.user_id))


def test_log_lines_pseudonymise_every_line_user_id() -> None:
    user = "U" + secrets.token_hex(16)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "for %s", (user,), None)
    record.key = f"gomi-reminder:{user}:2030-01-05"
    line = JsonFormatter().format(record)
    assert user not in line and line.count(pseudonym(user)) == 2


async def test_deleting_all_data_leaves_no_trace_in_any_collection(stack: Stack) -> None:
    storage = stack.services.storage
    chat = await stack.user("削除花子")
    nickname = "".join(secrets.choice("あいうえおかきくけこさしすせそ") for _ in range(8))
    await register(chat, nickname=nickname)
    await chat.send("滞在予定")  # a flow in progress, with state stored
    # A push under a key that does not name the person (as Premium decisions do).
    assert await stack.services.line.push(
        chat.user_id, [TextMessage(text="お知らせ")], f"test-push:{secrets.token_hex(4)}"
    )
    await chat.inbox(wait=5)
    await stack.wait_idle()
    names = await storage.mongo.db.list_collection_names()
    assert await _where(storage, names, chat.user_id), "the test stored nothing of the person"
    assert await _where(storage, names, nickname)

    await chat.send("キャンセル")
    await chat.send("データ削除")
    await chat.tap("削除する")
    await chat.tap("すべて削除する")
    assert "すべてのデータを削除しました" in chat.last_text
    await stack.wait_idle()

    names = await storage.mongo.db.list_collection_names()
    assert await _where(storage, names, chat.user_id) == []
    assert await _where(storage, names, nickname) == []


async def _where(storage: Storage, names: list[str], value: str) -> list[str]:
    """The collections holding `value` anywhere in a document."""
    found = []
    for name in names:
        async for doc in storage.mongo.db[name].find({}):
            if value in repr(doc):
                found.append(name)
                break
    return found


async def test_sends_are_deleted_by_their_recipient(stack: Stack) -> None:
    sends = stack.services.storage.sends
    now = datetime.now(UTC)
    person, other = ("U" + secrets.token_hex(16) for _ in range(2))
    tag = secrets.token_hex(4)
    await sends.retry_key(f"premium:{tag}", now, person)  # the key names nobody
    await sends.retry_key(f"gomi-reminder:{person}:{tag}", now)  # stored before user_id
    await sends.retry_key(f"premium:{tag}-other", now, other)
    await sends.retry_key(f"gomi-reminder:{other}:{tag}", now)
    await sends.retry_key(f"broadcast:{tag}", now)
    assert await sends.delete_for_user(person) == 2
    left = {doc["_id"] async for doc in sends.col.find({"_id": {"$regex": tag}})}
    assert left == {f"premium:{tag}-other", f"gomi-reminder:{other}:{tag}", f"broadcast:{tag}"}
    assert await sends.delete_for_user("") == 0
    index = {ix["name"] async for ix in await sends.col.list_indexes()}
    assert "user_id" in index
