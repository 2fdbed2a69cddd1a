"""The registration card as a LINE Flex message: content, SDK validation, LINE's limits, carousels."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from linebot.v3.messaging import FlexMessage, Message

from bot.cards import (
    MAX_BUBBLE_BYTES,
    MAX_CAROUSEL_BUBBLES,
    MAX_CAROUSEL_BYTES,
    NICKNAME_MAX,
    NO_NICKNAME,
    card_message_batches,
    card_messages,
    card_token,
    cards_carousel,
    japanese_date,
    json_size,
    qr_image_url,
    verify_url,
)
from bot.domain.cards import verify_card_token
from bot.emulator.rules import message_problems
from bot.settings import Settings
from tests.conftest import make_env

PREFECTURES = ["070009", "130001", "150002", "210005"]


@pytest.fixture
def settings() -> Settings:
    # No database needed: these tests only build messages.
    env = make_env("mongodb://127.0.0.1:9", "cards", PUBLIC_BASE_URL="https://furusato.example.jp")
    return Settings.from_env(env)


def registration(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "user_id": "U" + "0" * 32,
        "place_code": "042056",
        "tier": "basic",
        "status": "active",
        "types": ["visit"],
        "connection": "birthplace",
        "residence_code": "131016",
        "age_band": "30s",
        "nickname": "けせもい",
        "number": "042056-000123-2",
        "since": datetime(2027, 1, 8, 15, 30, tzinfo=UTC),  # 2027-01-09 00:30 in Japan
        "valid_until": None,
        "card_version": 1,
        "via": "chat",
        "answers": {},
        "created_at": datetime(2027, 1, 8, 15, 30, tzinfo=UTC),
    }
    doc.update(overrides)
    return doc


def as_dict(message: Message) -> dict[str, Any]:
    data = message.to_dict()
    assert isinstance(data, dict)
    return data


def texts(node: Any) -> list[str]:
    """Every `text` of a Flex tree, in order."""
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "text" else []
        return own + [t for value in node.values() for t in texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in texts(value)]
    return []


def nodes(node: Any, kind: str) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if node.get("type") == kind else []
        return own + [n for value in node.values() for n in nodes(value, kind)]
    if isinstance(node, list):
        return [n for value in node for n in nodes(value, kind)]
    return []


def test_basic_card_shows_the_registration(settings: Settings) -> None:
    reg = registration()
    [message] = card_messages(reg, settings=settings)
    assert isinstance(message, FlexMessage)
    data = as_dict(message)
    assert data["altText"] == "ふるさと住民登録証（宮城県気仙沼市）"
    bubble = data["contents"]
    assert bubble["type"] == "bubble"
    assert texts(bubble["header"]) == ["ふるさと住民登録証", "宮城県気仙沼市"]
    shown = texts(bubble)
    for value in ("ベーシック登録", "けせもい", "042056-000123-2", "2027年1月9日", "期限なし"):
        assert value in shown
    [image] = nodes(bubble, "image")
    assert image["url"] == qr_image_url(reg, settings) == verify_url(reg, settings) + "/qr.png"
    assert image["aspectRatio"] == "1:1"
    [button] = nodes(bubble["footer"], "button")
    assert button["action"] == {
        "type": "uri",
        "label": "確認ページを開く",
        "uri": verify_url(reg, settings),
    }
    # Nothing more personal than the card needs.
    dumped = json.dumps(data, ensure_ascii=False)
    for private in (reg["user_id"], "131016", "30s", "birthplace"):
        assert private not in dumped


def test_card_is_valid_for_the_sdk_and_line_limits(settings: Settings) -> None:
    for reg in (
        registration(),
        registration(tier="premium", valid_until=datetime(2028, 1, 8, tzinfo=UTC)),
    ):
        [message] = card_messages(reg, settings=settings)
        data = as_dict(message)
        # The SDK's models keep every property (nothing was silently dropped as unknown).
        assert FlexMessage.from_dict(data).to_dict() == data
        assert message_problems(data) == []
        assert json_size(data["contents"]) <= MAX_BUBBLE_BYTES


def test_premium_card_has_its_own_badge_and_expiry(settings: Settings) -> None:
    basic = as_dict(card_messages(registration(), settings=settings)[0])["contents"]
    premium_reg = registration(tier="premium", valid_until=datetime(2028, 1, 8, 15, 0, tzinfo=UTC))
    premium = as_dict(card_messages(premium_reg, settings=settings)[0])["contents"]
    assert "プレミアム登録" in texts(premium)
    assert "2028年1月9日" in texts(premium)  # 15:00 UTC is the next day in Japan

    def badge_colour(bubble: dict[str, Any]) -> str:
        row = bubble["body"]["contents"][0]
        colour = row["contents"][0]["backgroundColor"]
        assert isinstance(colour, str)
        return colour

    assert badge_colour(basic) != badge_colour(premium)
    assert basic["styles"]["header"] != premium["styles"]["header"]


def test_card_token_names_the_registration_and_version(settings: Settings) -> None:
    reg = registration(card_version=7)
    claims = verify_card_token(
        card_token(reg, settings.card_signing_secret), settings.card_signing_secret.encode()
    )
    assert claims is not None
    assert (claims.registration_id, claims.version) == (str(reg["_id"]), 7)
    assert verify_url(reg, settings).startswith("https://furusato.example.jp/verify/")


def test_prefecture_and_awkward_nicknames(settings: Settings) -> None:
    cases = {
        "": NO_NICKNAME,
        "   ": NO_NICKNAME,
        None: NO_NICKNAME,
        'クォート"\\と</script>': 'クォート"\\と</script>',
        "長" * 200: "長" * (NICKNAME_MAX - 1) + "…",
    }
    for nickname, shown in cases.items():
        reg = registration(place_code="070009", nickname=nickname)
        data = as_dict(card_messages(reg, settings=settings)[0])
        assert data["altText"] == "ふるさと住民登録証（福島県）"
        assert shown in texts(data["contents"])
        assert message_problems(data) == []


def test_japanese_dates() -> None:
    assert japanese_date(datetime(2027, 1, 9, 14, 59, tzinfo=UTC)) == "2027年1月9日"
    assert japanese_date(datetime(2027, 1, 9, 15, 0, tzinfo=UTC)) == "2027年1月10日"
    assert japanese_date(datetime(2027, 12, 31, 0, 0)) == "2027年12月31日"  # naive = UTC


@pytest.mark.parametrize(
    ("count", "bubbles_per_message"),
    [
        (0, []),
        (1, [1]),
        (2, [2]),
        (12, [12]),
        (13, [12, 1]),
        (25, [12, 12, 1]),
        (60, [12, 12, 12, 12, 12]),
    ],
)
def test_carousel_splits_at_twelve(
    settings: Settings, count: int, bubbles_per_message: list[int]
) -> None:
    regs = [
        registration(place_code=PREFECTURES[i % 4], number=f"070009-{i + 1:06d}-0")
        for i in range(count)
    ]
    messages = cards_carousel(regs, settings)
    assert len(messages) <= 5
    sizes = []
    shown: list[str] = []
    for message in messages:
        data = as_dict(message)
        assert message_problems(data) == []
        assert FlexMessage.from_dict(data).to_dict() == data
        contents = data["contents"]
        if contents["type"] == "carousel":
            assert len(contents["contents"]) <= MAX_CAROUSEL_BUBBLES
            assert json_size(contents) <= MAX_CAROUSEL_BYTES
            sizes.append(len(contents["contents"]))
            assert data["altText"].startswith("ふるさと住民登録証（")
        else:
            sizes.append(1)
        shown += texts(contents)
    assert sizes == bubbles_per_message
    # Every card, in order.
    assert [t for t in shown if t.startswith("070009-")] == [r["number"] for r in regs]


def test_more_than_sixty_cards_come_in_batches(settings: Settings) -> None:
    regs = [registration(number=f"042056-{i + 1:06d}-0") for i in range(61)]
    batches = card_message_batches(regs, settings)
    assert [len(batch) for batch in batches] == [5, 1]
    assert cards_carousel(regs, settings) == batches[0]
    last = as_dict(batches[1][0])
    assert last["contents"]["type"] == "carousel"
    assert [t for t in texts(last["contents"]) if t.startswith("042056-")] == ["042056-000061-0"]


def test_carousels_also_split_by_size(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Real cards stay near 2.5 KB (twelve fit in 50 KB); with a smaller byte limit the carousel
    # must split by size too, keeping every card in order.
    monkeypatch.setattr("bot.cards.MAX_CAROUSEL_BYTES", 10_000)
    regs = [registration(nickname="😀" * 200, number=f"042056-{i + 1:06d}-0") for i in range(12)]
    messages = cards_carousel(regs, settings)
    assert len(messages) > 1
    numbers: list[str] = []
    for message in messages:
        data = as_dict(message)
        assert json_size(data["contents"]) <= 10_000
        assert message_problems(data) == []
        numbers += [t for t in texts(data["contents"]) if t.startswith("042056-")]
    assert numbers == [r["number"] for r in regs]
