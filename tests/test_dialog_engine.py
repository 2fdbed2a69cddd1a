"""The dialog engine, driven directly with `Incoming` values against the real database.

A test flow (`kinds`) exercises every input kind; the shipped registration flow exercises the
interrupts at each of its steps. Every event must get exactly one reply call (`DirectChat`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import Clock
from bot.dialog.engine import DialogEngine, build_engine
from bot.dialog.flows import DIALOGS_DIR
from bot.dialog.hooks import default_registry
from bot.dialog.model import Step
from bot.dialog.parsers import parse_text
from bot.dialog.turn import Registry, Turn
from bot.settings import Settings
from bot.storage import Storage
from bot.storage.conversations import Conversation
from tests.dialog_chat import DirectChat

FRUITS = [f"果物{i:02d}" for i in range(1, 21)]

KINDS_FLOW = """
flow: kinds
version: 1
title: テスト
start: word
steps:
  word: {prompt: common/help_step, input: text, title: ことば, max_length: 10, parser: gated_text}
  count: {prompt: common/help_step, input: number, title: 人数, min: 1, max: 9}
  day: {prompt: common/help_step, input: date, title: 日付, min_days: 0, max_days: 365}
  stay: {prompt: common/help_step, input: date_range, title: 滞在, max_span: 7, min_days: 0, max_days: 365}
  fruit:
    prompt: common/help_step
    input: choice
    title: 果物
    choices: [FRUIT_CHOICES]
  tags:
    prompt: common/help_step
    input: multi_choice
    title: タグ
    choices: [{value: a, label: あか}, {value: b, label: あお}, {value: c, label: きいろ}]
  ok: {prompt: common/help_step, input: confirm, title: 確認}
  photo: {prompt: common/help_step, input: image, title: 写真}
  spot: {prompt: common/help_step, input: location, title: 場所}
  town: {prompt: common/help_step, input: place_search, title: 地域}
""".replace(
    "FRUIT_CHOICES",
    ", ".join(f"{{value: f{i}, label: {name}}}" for i, name in enumerate(FRUITS, 1)),
)

BOOM_FLOW = """
flow: boom
version: 1
title: こわれた手続き
start: first
steps:
  first: {prompt: common/help_step, input: text, on_complete: explode}
"""

MEDDLE_FLOW = """
flow: meddle
version: 1
title: じゃまが入る手続き
start: first
steps:
  first: {prompt: common/help_step, input: text, parser: meddling}
"""


class Gate:
    """Holds the first parse of a given text until released (to make two turns race)."""

    def __init__(self) -> None:
        self.text = ""
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def parse(self, raw: Any, turn: Turn, step: Step) -> str:
        text = await parse_text(raw, turn, step)
        if text == self.text and not self.started.is_set():
            self.started.set()
            await self.release.wait()
        return text


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def dialogs(tmp_path: Path) -> Path:
    directory = tmp_path / "dialogs"
    shutil.copytree(DIALOGS_DIR, directory)
    (directory / "kinds.yaml").write_text(KINDS_FLOW, encoding="utf-8")
    (directory / "boom.yaml").write_text(BOOM_FLOW, encoding="utf-8")
    (directory / "meddle.yaml").write_text(MEDDLE_FLOW, encoding="utf-8")
    return directory


@pytest.fixture
def registry(gate: Gate) -> Registry:
    registry = default_registry()
    registry.add("parser", "gated_text")(gate.parse)

    async def explode(turn: Turn) -> None:
        raise RuntimeError("boom")

    registry.add("action", "explode")(explode)

    async def meddling(raw: Any, turn: Turn, step: Step) -> str:
        """Another writer changes the state while every attempt of this turn is running."""
        conv = await turn.storage.conversations.get(turn.user_id)
        assert conv is not None
        conv.scratch["meddled"] = int(conv.scratch.get("meddled", 0)) + 1
        await turn.storage.conversations.put(conv, turn.now)
        return str(raw)

    registry.add("parser", "meddling")(meddling)
    return registry


@pytest.fixture
def engine(
    storage: Storage, settings: Settings, clock: Clock, dialogs: Path, registry: Registry
) -> DialogEngine:
    return build_engine(storage, settings, clock, registry=registry, dialogs_dir=dialogs)


@pytest.fixture
def chat(engine: DialogEngine, clock: Clock) -> DirectChat:
    return DirectChat(engine, clock)


async def state(storage: Storage, chat: DirectChat) -> Conversation | None:
    return await storage.conversations.get(chat.user_id)


async def put_state(
    storage: Storage,
    chat: DirectChat,
    clock: Clock,
    flow: str,
    step: str,
    answers: Mapping[str, Any],
) -> Conversation:
    conv = Conversation(chat.user_id, flow, 1, step, dict(answers), version=1000)
    await storage.conversations.put(conv, clock.now())
    return conv


def same(a: Conversation | None, b: Conversation | None) -> bool:
    assert a is not None and b is not None
    return (a.step, a.answers, a.scratch, a.version) == (b.step, b.answers, b.scratch, b.version)


# --- the registration flow's steps: interrupts at every one ---------------------------------------

REGISTER_ANSWERS: dict[str, Any] = {
    "place": "042056",
    "types": ["economic"],
    "connection": "hometown",
    "residence": "131121",
    "age_band": "under_18",
    "guardian": True,
    "nickname": "たろう",
    "questions": {},
    "terms": True,
}
REGISTER_STEPS = [
    "place", "types", "connection", "residence", "age_band", "guardian", "nickname", "terms",
    "confirm", "edit",
]  # fmt: skip


def answers_before(step: str) -> dict[str, Any]:
    order = list(REGISTER_ANSWERS)
    if step in ("confirm", "edit"):
        return dict(REGISTER_ANSWERS)
    return {name: REGISTER_ANSWERS[name] for name in order[: order.index(step)]}


@pytest.mark.parametrize("step", REGISTER_STEPS)
async def test_help_menu_and_cancel_at_every_register_step(
    chat: DirectChat, storage: Storage, clock: Clock, step: str
) -> None:
    await put_state(storage, chat, clock, "register", step, answers_before(step))
    before = await state(storage, chat)

    await chat.send("ヘルプ")
    assert len(chat.replies) >= 2  # the step's help, then the step asked again
    assert chat.labels  # the step's buttons come back with the question
    assert same(before, await state(storage, chat))

    await chat.send(" ﾒﾆｭｰ ")
    assert "手続きの途中です" in chat.text
    assert "手続きを続ける" in chat.labels and "ふるさと登録" in chat.labels
    assert same(before, await state(storage, chat))

    await chat.tap("手続きを続ける")
    assert chat.labels and "手続きを続ける" not in chat.labels
    assert same(before, await state(storage, chat))

    await chat.send("やめる")
    assert "ふるさと住民登録の手続きを中止しました" in chat.text
    assert "保存していません" in chat.text
    assert await state(storage, chat) is None
    assert await storage.registrations.for_user(chat.user_id) == []


async def test_cancel_and_help_outside_a_flow(chat: DirectChat) -> None:
    await chat.send("キャンセル")
    assert "いま進めている手続きはありません" in chat.text
    await chat.send("へるぷ")
    assert "できること" in chat.text and "ふるさと登録" in chat.labels


# --- idle for a day ----------------------------------------------------------------------------


async def test_a_flow_idle_for_24_hours_is_dropped_and_the_resident_told(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    await chat.send("登録")
    await chat.send("気仙沼")
    clock.offset += timedelta(hours=23, minutes=59)
    await chat.send("はい")  # still alive just under a day
    assert "関わり方" in chat.text
    clock.offset += timedelta(hours=24)
    await chat.tap("①経済")
    assert "24時間操作がなかったため終了しました" in chat.text
    assert "ふるさと登録" in chat.labels
    assert await state(storage, chat) is None

    await chat.send("登録")
    clock.offset += timedelta(hours=25)
    await chat.send("登録")  # the notice, then the keyword is handled outside the flow
    assert "24時間操作がなかったため" in chat.texts[0]
    assert "ふるさと住民登録をはじめます" in chat.text
    assert (await state(storage, chat)) is not None

    clock.offset += timedelta(days=2)
    await chat.send("こんにちは")
    assert "24時間操作がなかったため" in chat.text and len(chat.replies) == 1
    assert "ふるさと登録" in chat.labels


# --- racing events --------------------------------------------------------------------------------


async def test_two_racing_turns_lose_no_answer(
    engine: DialogEngine, clock: Clock, storage: Storage, gate: Gate
) -> None:
    first = DirectChat(engine, clock)
    second = DirectChat(engine, clock, user_id=first.user_id)
    await first.postback("action=start&flow=kinds")
    gate.text = "5"
    slow = asyncio.create_task(first.send("5"))  # reads the state, then waits in the parser
    await gate.started.wait()
    await second.send("beta")  # answers the same step meanwhile
    gate.release.set()
    await slow  # its write conflicts: it reloads and is handled at the step it is now at
    conv = await state(storage, first)
    assert conv is not None
    assert conv.answers == {"word": "beta", "count": 5}
    assert conv.step == "day"
    assert "日付" in first.text


async def test_two_racing_confirmations_make_one_registration(
    engine: DialogEngine, clock: Clock, storage: Storage
) -> None:
    chat = DirectChat(engine, clock)
    await put_state(storage, chat, clock, "register", "confirm", REGISTER_ANSWERS)
    await chat.send("ヘルプ")
    twin = DirectChat(engine, clock, user_id=chat.user_id)
    data = chat.action("登録する")["data"]
    await asyncio.gather(chat.postback(data), twin.postback(data))
    docs = await storage.registrations.for_user(chat.user_id)
    assert sorted(d["place_code"] for d in docs) == ["040002", "042056"]
    replies = chat.text + "\n" + twin.text
    assert replies.count("登録が完了しました") == 1
    assert "前のご案内のもの" in replies or "すでにご登録" in replies


# --- old buttons and deploys ---------------------------------------------------------------------


async def test_an_old_button_is_answered_kindly_and_changes_nothing(
    chat: DirectChat, storage: Storage
) -> None:
    await chat.send("登録")
    confirm_place = await chat.send("気仙沼")
    await chat.tap("はい")
    await chat.tap("①経済")
    before = await state(storage, chat)
    await chat.tap("ちがう", on=confirm_place)
    assert chat.texts[0].startswith("このボタンは前のご案内のものです")
    assert "選択中：①経済" in chat.text  # the current step asked again
    assert "✓①経済" in chat.labels
    assert same(before, await state(storage, chat))

    await chat.send("やめる")
    await chat.tap("②訪問", on=chat.history[-2])
    assert "このボタンは前のご案内のものです" in chat.text
    assert "ふるさと登録" in chat.labels
    assert await state(storage, chat) is None

    await chat.postback("action=ans&f=register&s=types")  # malformed
    assert "このボタンは前のご案内のものです" in chat.text
    await chat.postback("something-else")
    assert "このボタンは前のご案内のものです" in chat.text


async def test_a_removed_step_restarts_politely(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    await put_state(storage, chat, clock, "register", "favourite_food", {"place": "042056"})
    await chat.send("ラーメン")
    assert "サービスの更新があり" in chat.text
    assert "ふるさと住民登録をはじめます" in chat.text
    conv = await state(storage, chat)
    assert conv is not None and conv.step == "place" and conv.answers == {}


async def test_a_removed_flow_or_old_schema_restarts_politely(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    await put_state(storage, chat, clock, "old_survey", "q1", {})
    await chat.send("はい")
    assert "サービスの更新があり" in chat.text and "メニューから" in chat.text
    assert await state(storage, chat) is None

    for stale in (
        Conversation(chat.user_id, "register", 1, "types", {"place": "042056"}, schema=0),
        Conversation(chat.user_id, "register", 0, "types", {"place": "042056"}),  # older version
    ):
        await storage.conversations.put(stale, clock.now())
        await chat.send("1")
        assert "サービスの更新があり" in chat.text
        restarted = await state(storage, chat)
        assert restarted is not None and restarted.step == "place" and restarted.answers == {}
        assert restarted.flow_version == 1


# --- every input kind: good input moves on, bad input gets the step's retry and keeps the state ----

KINDS_ANSWERS: dict[str, Any] = {
    "word": "ことば",
    "count": 3,
    "day": "2099-01-01",
    "stay": {"start": "2099-01-01", "end": "2099-01-02"},
    "fruit": "f1",
    "tags": ["a"],
    "ok": True,
    "photo": "123",
    "spot": {},
}
LONG = "あ" * 5000


def kinds_answers_before(step: str) -> dict[str, Any]:
    order = [*KINDS_ANSWERS, "town"]
    return {name: KINDS_ANSWERS[name] for name in order[: order.index(step)]}


BAD_INPUTS: list[tuple[str, str, Any, str]] = [
    # step, input kind, value, expected words of the retry
    ("word", "sticker", None, "文字で入力"),
    ("word", "image", None, "文字で入力"),
    ("word", "location", None, "文字で入力"),
    ("word", "other", None, "文字で入力"),
    ("word", "text", "   ", "入力が空"),
    ("word", "text", LONG, "10文字以内"),
    ("word", "text", "あいう\u0007", "使えない文字"),
    ("count", "text", "たくさん", "数字で入力"),
    ("count", "text", "100", "1から9まで"),
    ("count", "sticker", None, "数字"),
    ("count", "text", LONG, "数字で入力"),
    ("day", "text", "きのうのつぎ", "日付が読み取れません"),
    ("day", "text", "2001-01-01", "その日付は選べません"),
    ("day", "text", "2027-02-30", "日付が読み取れません"),
    ("day", "sticker", None, "日付を文字で"),
    ("stay", "text", "来週", "期間が読み取れません"),
    ("stay", "text", "2027-01-12〜2027-01-09", "終了日が開始日より前"),
    ("stay", "image", None, "期間を文字で"),
    ("fruit", "text", "2027-01-09", "選択肢から選んでください"),
    ("fruit", "text", LONG, "選択肢から選んでください"),
    ("fruit", "sticker", None, "ボタンから選んで"),
    ("fruit", "location", None, "ボタンから選んで"),
    ("tags", "text", "決定", "1つ以上選んでから"),
    ("tags", "text", "むらさき", "選択肢から選んで"),
    ("tags", "image", None, "ボタンから選んで"),
    ("ok", "text", "たぶん", "「はい」か「いいえ」"),
    ("ok", "sticker", None, "ボタンでお答え"),
    ("photo", "text", "写真です", "画像を送って"),
    ("photo", "location", None, "画像を送って"),
    ("spot", "text", "駅前", "位置情報を送って"),
    ("spot", "image", None, "位置情報を送って"),
    ("town", "sticker", None, "地域名を文字で"),
    ("town", "text", LONG, "短く"),
    ("town", "text", "　", "地域名を入力"),
]


async def send_kind(chat: DirectChat, kind: str, value: Any) -> None:
    if kind == "text":
        await chat.send(value)
    elif kind == "sticker":
        await chat.sticker()
    elif kind == "image":
        await chat.image()
    elif kind == "location":
        await chat.location()
    elif kind == "other":
        await chat.event("other")
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(("step", "kind", "value", "expected"), BAD_INPUTS)
async def test_bad_input_gets_the_steps_retry_and_keeps_the_state(
    chat: DirectChat,
    storage: Storage,
    clock: Clock,
    step: str,
    kind: str,
    value: Any,
    expected: str,
) -> None:
    if step == "stay" and value and "〜" in value:
        start, end = clock.now_jst().date() + timedelta(days=5), clock.now_jst().date()
        value = f"{start.isoformat()}〜{(end + timedelta(days=2)).isoformat()}"
    await put_state(storage, chat, clock, "kinds", step, kinds_answers_before(step))
    before = await state(storage, chat)
    await send_kind(chat, kind, value)
    assert expected in chat.text, chat.text
    assert len(chat.replies) == 1
    assert same(before, await state(storage, chat))


async def test_every_kind_takes_good_input(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    today = clock.now_jst().date()
    await chat.postback("action=start&flow=kinds")
    assert "「ことば」のご案内" in chat.text
    await chat.send("ＡＢＣ　")  # NFKC and trimmed
    await chat.send("３人")
    assert "日付を選ぶ" in chat.labels
    await chat.tap("日付を選ぶ", {"date": (today + timedelta(days=3)).isoformat()})
    assert "開始日を選ぶ" in chat.labels
    await chat.tap("開始日を選ぶ", {"date": (today + timedelta(days=10)).isoformat()})
    assert "終了日を選ぶ" in chat.labels and "開始日は" in chat.text
    await chat.tap("終了日を選ぶ", {"date": (today + timedelta(days=12)).isoformat()})
    # 20 choices: a page of 12 and 「ほかの候補」
    assert chat.labels == [*FRUITS[:12], "ほかの候補"]
    await chat.tap("ほかの候補")
    assert chat.labels == [*FRUITS[12:], "ほかの候補"]
    await chat.tap("果物15")
    await chat.send("1、3")  # several typed at once: the selection is replaced, then confirmed
    assert chat.labels[:3] == ["✓あか", "あお", "✓きいろ"]
    await chat.tap("あお")
    await chat.tap("✓きいろ")
    await chat.tap("決定")
    await chat.send("ハイ")
    await chat.image()
    await chat.location()
    await chat.send("府中")
    assert chat.labels == ["東京都府中市", "広島県府中市", "広島県府中町"]
    await chat.tap("広島県府中市")
    assert "テストの手続きが完了しました" in chat.text
    assert await state(storage, chat) is None


async def test_the_kinds_flow_answers_are_kept_as_json(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    today = clock.now_jst().date()
    await put_state(storage, chat, clock, "kinds", "stay", kinds_answers_before("stay"))
    start, end = today + timedelta(days=1), today + timedelta(days=3)
    await chat.send(f"{start.month}/{start.day}〜{end.month}月{end.day}日")
    conv = await state(storage, chat)
    assert conv is not None and conv.step == "fruit"
    assert conv.answers["stay"] == {"start": start.isoformat(), "end": end.isoformat()}
    await chat.send("果物02")
    await chat.send("2")
    await chat.send("けってい")
    conv = await state(storage, chat)
    assert conv is not None and conv.answers["fruit"] == "f2" and conv.answers["tags"] == ["b"]


async def test_step_buttons_carry_flow_step_and_version_within_limits(
    chat: DirectChat, storage: Storage
) -> None:
    await chat.send("登録")
    await chat.send("府中")
    conv = await state(storage, chat)
    assert conv is not None
    for action in chat.quick_replies:
        assert action["type"] == "postback"
        assert len(action["data"].encode()) <= 300
        assert f"v={conv.version}" in action["data"] and "s=place" in action["data"]
        assert action["displayText"] == action["label"]


# --- outside a flow ------------------------------------------------------------------------------


async def test_keywords_outside_a_flow(chat: DirectChat, storage: Storage) -> None:
    await chat.send("ﾄｳﾛｸ")
    assert "ふるさと住民登録をはじめます" in chat.text
    await chat.send("やめる")
    await chat.send("登録証")
    assert "まだ登録はありません" in chat.text
    await chat.send("登録一覧")
    assert "まだ登録はありません" in chat.text
    await chat.send("使い方")
    assert "できること" in chat.text
    await chat.send("特典")
    assert "特典は、ふるさと住民登録をした地域のもの" in chat.text
    await chat.send("解除")
    assert "まだ登録はありません" in chat.text
    assert await state(storage, chat) is None


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("text", "こんにちは", "うまく理解できませんでした"),
        ("text", LONG, "うまく理解できませんでした"),
        ("sticker", None, "スタンプありがとうございます"),
        ("image", None, "対応していません"),
        ("location", None, "対応していません"),
    ],
)
async def test_unknown_input_outside_a_flow_gets_a_short_help_never_silence(
    chat: DirectChat, kind: str, value: Any, expected: str
) -> None:
    await send_kind(chat, kind, value)
    assert expected in chat.text
    assert "ふるさと登録" in chat.labels and "使い方" in chat.labels


async def test_postbacks_outside_a_flow(chat: DirectChat) -> None:
    await chat.postback("action=start&flow=register")
    assert "ふるさと住民登録をはじめます" in chat.text
    await chat.postback("action=start&flow=register")  # the same flow again: carry on
    assert "手続きの途中です" in chat.text and "市町村名" in chat.text
    assert "はじめます" not in chat.text  # asked again, not started again
    await chat.postback("action=start&flow=unregister")  # another flow: the first is left
    assert "中断しました" in chat.text and "まだ登録はありません" in chat.text
    await chat.postback("action=start&flow=nowhere")
    assert "前のご案内のもの" in chat.text
    await chat.postback("action=cmd&name=list_registrations")
    assert "まだ登録はありません" in chat.text
    await chat.postback("action=cmd&name=rm_rf")
    assert "前のご案内のもの" in chat.text
    await chat.postback("action=resume")
    assert "メニューです" in chat.text
    assert await chat.event("unfollow") == []


async def test_rich_menu_keywords_work_inside_a_flow_unless_the_step_takes_them(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    await put_state(storage, chat, clock, "register", "nickname", answers_before("nickname"))
    before = await state(storage, chat)
    await chat.send("登録証")
    assert "まだ登録はありません" in chat.text and "手続きを続ける" in chat.labels
    assert same(before, await state(storage, chat))
    await chat.send("登録する")
    assert "手続きの途中です" in chat.text and "ニックネーム" in chat.text
    assert same(before, await state(storage, chat))
    await chat.send("特典")
    assert "特典は、ふるさと住民登録をした地域のもの" in chat.text
    await chat.tap("手続きを続ける")
    assert "ニックネーム" in chat.text

    await storage.conversations.clear(chat.user_id)
    await put_state(storage, chat, clock, "register", "confirm", REGISTER_ANSWERS)
    await chat.send("登録する")  # the confirmation takes it: registered
    assert "登録が完了しました" in chat.text


async def test_a_failing_hook_gets_an_apology_in_one_reply(
    chat: DirectChat, storage: Storage
) -> None:
    await chat.postback("action=start&flow=boom")
    await chat.send("なにか")
    assert "申し訳ありません" in chat.text
    conv = await state(storage, chat)
    assert conv is not None and conv.answers == {}  # nothing was written


async def test_a_button_of_an_earlier_run_of_the_same_flow_is_old(
    chat: DirectChat, storage: Storage
) -> None:
    await chat.send("登録")
    first = await chat.send("府中")
    await storage.conversations.clear(chat.user_id)  # e.g. removed by the cleanup job
    await chat.send("登録")
    await chat.send("府中")  # same flow, step and version as before: only the run differs
    before = await state(storage, chat)
    await chat.tap("広島県府中市", on=first)
    assert "このボタンは前のご案内のものです" in chat.text
    assert same(before, await state(storage, chat))


async def test_a_turn_that_keeps_losing_the_race_says_so(
    chat: DirectChat, storage: Storage
) -> None:
    await chat.postback("action=start&flow=meddle")
    await chat.send("なにか")
    assert "操作が重なったため" in chat.text
    conv = await state(storage, chat)
    assert conv is not None and conv.step == "first" and "first" not in conv.answers
