"""Random walks through every flow, as residents would stumble through them: seeded random steps
of text (keywords, answers, junk), taps on the newest buttons and on old ones, the rich menu,
stickers, images, locations, and the interruptions ヘルプ, キャンセル and メニュー.

After every step:
- the webhook answered 200 (never a 5xx) and no event was left pending or failed;
- the step got exactly one reply turn: one accepted reply or push for the event;
- メニュー brings the main menu back (no conversation is stuck).

The seeds are fixed, so a failure names the seed and the step that broke; the number of steps
run is printed (and recorded in docs/SECURITY.md).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.stack import Chat, Stack, menu_labels, quick_labels, unfinished_events
from tests.test_fuzz_webhooks import answers

SEEDS = range(4)
STEPS = 45  # per seed

WORDS = [
    "登録",
    "登録する",
    "登録一覧",
    "登録証",
    "登録変更",
    "登録解除",
    "プレミアム",
    "活動",
    "特典",
    "会員番号",
    "滞在予定",
    "お知らせ",
    "お知らせの設定",
    "設定",
    "使い方",
    "データ削除",
    "気仙沼",
    "けせんぬま",
    "ケセンヌマ",
    "福島",
    "伊達市",
    "東京都千代田区",
    "はい",
    "いいえ",
    "次へ",
    "完了",
    "1",
    "3",
    "2027-01-09",
    "けせもい",
    " ",
    "😀",
    "{{ 7*7 }}",
    "<b>太字</b>",
    "あ" * 300,
]
INTERRUPTS = ["ヘルプ", "キャンセル", "メニュー"]
# The smallest PNG: one transparent pixel.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
PICKED = {"date": "2027-01-09", "time": "09:30", "datetime": "2027-01-09T09:30"}


def actions_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every action in these messages (quick replies, buttons, Flex)."""
    if isinstance(node, dict):
        action = node.get("action")
        if isinstance(action, dict) and "type" in action:
            yield action
        for value in node.values():
            yield from actions_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from actions_in(item)


@dataclass
class Walk:
    stack: Stack
    chat: Chat
    rng: random.Random
    old_postbacks: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def step(self, text: str | None = None) -> None:
        before = await answers(self.stack)
        if text is None:
            what = await self._act()
        else:
            what = f"text:{text}"
            self.log.append(what)
            await self.chat.send(text)
        await self.stack.wait_idle()
        self.chat.replies += [entry["message"] for entry in await self.chat.inbox(wait=0)]
        turns = await answers(self.stack) - before
        assert turns == 1, f"{what}: {turns} reply turns; steps: {self.log}"
        for action in actions_in(self.chat.replies):
            if action["type"] == "postback" and action.get("data"):
                self.old_postbacks.append(str(action["data"]))
        if what == "text:メニュー":
            assert "メニューです" in self.chat.last_text, self.log
            labels = quick_labels(self.chat)
            assert "ふるさと登録" in labels or "手続きを続ける" in labels, (labels, self.log)

    async def _act(self) -> str:
        rng = self.rng
        roll = rng.random()
        tappable = [
            a
            for a in actions_in(self.chat.replies)
            if a["type"] in ("message", "postback", "datetimepicker") and a.get("label")
        ]
        if roll < 0.40 and tappable:
            action = rng.choice(tappable)
            what = f"tap:{action['label']}"
            self.log.append(what)
            params = None
            if action["type"] == "datetimepicker":
                mode = str(action.get("mode", "date"))
                params = {mode: str(action.get("initial") or action.get("min") or PICKED[mode])}
            await self.chat.tap(action["label"], params)
            return what
        if roll < 0.50 and self.old_postbacks:
            data = rng.choice(self.old_postbacks)
            self.log.append(f"old:{data[:40]}")
            await self.chat.postback(data)
            return "old button"
        if roll < 0.58:
            labels = await menu_labels(self.stack, self.chat)
            label = rng.choice(labels)
            self.log.append(f"richmenu:{label}")
            await self.chat.tap(label)
            return f"richmenu:{label}"
        if roll < 0.70:
            text = rng.choice(INTERRUPTS)
        elif roll < 0.74:
            self.log.append("sticker")
            await self.chat.sticker()
            return "sticker"
        elif roll < 0.78:
            self.log.append("image")
            await self.chat.image(PNG)
            return "image"
        elif roll < 0.82:
            self.log.append("location")
            await self.chat.location("気仙沼港", "宮城県気仙沼市", 38.9, 141.57)
            return "location"
        else:
            text = rng.choice(WORDS)
        self.log.append(f"text:{text[:20]}")
        await self.chat.send(text)
        return f"text:{text}"


async def test_random_walks_through_every_flow(stack: Stack) -> None:
    storage = stack.services.storage
    steps = 0
    walkers: list[str] = []
    for seed in SEEDS:
        chat = await stack.user(f"さんぽ{seed}")
        walkers.append(chat.user_id)
        walk = Walk(stack, chat, random.Random(seed))
        for _ in range(STEPS):
            await walk.step()
            steps += 1
        # Whatever happened, キャンセル ends the flow and メニュー gets the plain menu back.
        await walk.step("キャンセル")
        await walk.step("メニュー")
        assert "手続きの途中" not in chat.last_text, walk.log
        assert await storage.conversations.get(chat.user_id) is None, walk.log
    assert await unfinished_events(storage, walkers) == []
    print(f"flow walks: {len(SEEDS)} residents, {steps} random steps")
