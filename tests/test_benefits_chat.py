"""Residents browse the benefits open to them in the chat: a paged Flex carousel, details with
the reasons a benefit is not open, and a shortcut to their card."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.benefits import Benefit, BenefitKind, Eligibility
from bot.domain.registration import RelationshipType
from bot.storage import Storage
from tests.stack import Stack
from tests.test_staff_support import add_registration

YUBARI = "012092"  # 北海道夕張市: no other test publishes benefits here
BIHORO = "015431"  # 北海道美幌町


def flex_bubbles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for message in messages:
        if message.get("type") == "flex":
            contents = message["contents"]
            return contents["contents"] if contents["type"] == "carousel" else [contents]
    return []


def postbacks(node: Any) -> dict[str, str]:
    """label → postback data of every Flex button in the messages."""
    found: dict[str, str] = {}

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            action = item.get("action")
            if isinstance(action, dict) and action.get("type") == "postback":
                found.setdefault(action["label"], action["data"])
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(node)
    return found


@pytest.fixture
async def clean(stack: Stack) -> AsyncIterator[Storage]:
    storage = stack.services.storage
    yield storage
    await storage.benefits.col.delete_many({"place_code": {"$in": [YUBARI, BIHORO]}})


async def publish(storage: Storage, benefit: Benefit) -> None:
    await storage.benefits.put(benefit, _now())
    await storage.benefits.publish(benefit.municipality_code, benefit.id, _now(), notify=False)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_browse_pages_details_and_card(stack: Stack, clean: Storage) -> None:
    storage = clean
    today = stack.clock.now_jst().date()
    for n in range(14):
        await publish(
            storage,
            Benefit(
                f"open-{n:02d}",
                YUBARI,
                f"夕張の特典{n:02d}",
                f"夕張の特典{n:02d}の説明です。",
                BenefitKind.SHOP_DISCOUNT,
                valid_until=today + timedelta(days=10 + n),
            ),
        )
    await publish(
        storage,
        Benefit(
            "members-only",
            YUBARI,
            "会員だけの特典",
            "ファンクラブ会員限定です。",
            BenefitKind.OTHER,
            Eligibility(program_id="yubari-club", program_name="夕張ファンクラブ"),
        ),
    )
    await publish(  # drafts and other places never show
        storage, Benefit("elsewhere", BIHORO, "美幌の特典", "美幌", BenefitKind.OTHER)
    )
    await storage.benefits.unpublish(YUBARI, "open-13", _now())

    chat = await stack.user("特典を見る人")
    await add_registration(storage, user_id=chat.user_id, place_code=YUBARI, types=["visit"])
    replies = await chat.send("特典")
    assert "ご利用いただける特典が13件あります" in chat.last_text
    bubbles = flex_bubbles(replies)
    assert len(bubbles) == 12  # 11 benefits + 「次の特典を見る」
    assert "夕張の特典00" in chat.last_text  # ending soonest first
    assert "ほかに2件あります" in chat.last_text
    assert "会員だけの特典" not in chat.last_text and "美幌の特典" not in chat.last_text

    replies = await chat.tap("次の特典を見る")
    bubbles = flex_bubbles(replies)
    assert len(bubbles) == 2
    assert "夕張の特典11" in chat.last_text and "夕張の特典12" in chat.last_text
    assert "次の特典を見る" not in str(bubbles)

    data = postbacks(bubbles)["詳しく見る"]
    replies = await chat.postback(data)
    assert "夕張の特典11の説明です。" in chat.last_text
    assert "登録証を提示してください" in chat.last_text
    assert "現在はご利用いただけません" not in chat.last_text
    buttons = postbacks(replies)
    assert "登録証を表示" in buttons

    replies = await chat.postback(buttons["登録証を表示"])
    assert any("ふるさと住民登録証" in t for t in chat.texts)
    assert flex_bubbles(replies)

    # A benefit not open to them: the details say why.
    await chat.postback(f"action=cmd&name=benefit&b={YUBARI}:members-only")
    assert "現在はご利用いただけません" in chat.last_text
    assert "夕張ファンクラブの会員の方が対象です" in chat.last_text

    # An unpublished one is gone.
    await chat.postback(f"action=cmd&name=benefit&b={YUBARI}:open-13")
    assert "公開を終了したか" in chat.last_text


async def test_no_benefits_open(stack: Stack, clean: Storage) -> None:
    storage = clean
    await publish(
        storage,
        Benefit(
            "bearers",
            BIHORO,
            "担い手の特典",
            "担い手の方へ",
            BenefitKind.OTHER,
            Eligibility(types=frozenset({RelationshipType.BEARER})),
        ),
    )
    guest = await stack.user("未登録の人")
    await guest.send("特典")
    assert "ふるさと住民登録" in guest.last_text

    chat = await stack.user("対象外の人")
    await add_registration(storage, user_id=chat.user_id, place_code=BIHORO, types=["visit"])
    await chat.send("とくてん")
    assert "いまご利用いただける特典はありません" in chat.last_text
    assert "1件" in chat.last_text


async def test_the_rich_menu_word_works_inside_a_flow(stack: Stack, clean: Storage) -> None:
    storage = clean
    await publish(storage, Benefit("any", YUBARI, "だれでも特典", "説明", BenefitKind.OTHER))
    chat = await stack.user("手続き中の人")
    await add_registration(storage, user_id=chat.user_id, place_code=YUBARI)
    await chat.send("登録変更")
    await chat.send("特典")
    assert "だれでも特典" in chat.last_text
    assert "手続きを続ける" in chat.last_text  # the flow stays where it was
