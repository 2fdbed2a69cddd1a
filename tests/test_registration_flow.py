"""Basic registration through the dialog engine (direct), and self-service on registrations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId

from bot.clock import Clock
from bot.dialog.engine import build_engine
from bot.domain.registration import is_valid_registration_number
from bot.settings import Settings
from bot.storage import Storage
from bot.storage.questions import Question
from tests.dialog_chat import DirectChat


async def register(
    chat: DirectChat,
    place: str = "気仙沼",
    *,
    residence: str = "世田谷区",
    age: str = "30代",
    nickname: str = "たろう",
    types: tuple[str, ...] = ("①経済",),
    submit: bool = True,
) -> None:
    """The whole Basic registration, typing and tapping like a resident."""
    await chat.send("登録")
    await chat.send(place)
    if "でよろしいですか" in chat.text:
        await chat.tap("はい")
    for label in types:
        await chat.tap(label)
    await chat.tap("決定")
    await chat.tap("出身")
    await chat.send(residence)
    await chat.tap("はい")
    await chat.tap(age)
    if age == "18歳未満":
        await chat.tap("同意を得ています")
    await chat.send(nickname)
    while "からの質問です" in chat.text:
        await chat.tap(chat.labels[0])
    await chat.tap("同意する")
    assert "この内容で登録しますか" in chat.text
    if submit:
        await chat.tap("登録する")


async def test_the_whole_basic_registration(chat: DirectChat, storage: Storage) -> None:
    await chat.send("登録")
    assert "ふるさと住民登録をはじめます" in chat.text
    await chat.send("けせんぬま")
    assert chat.text == "「宮城県気仙沼市」でよろしいですか？"
    await chat.tap("はい")
    assert "宮城県気仙沼市との関わり方" in chat.text
    assert chat.labels == ["①経済", "②訪問", "③担い手", "④二地域居住", "決定"]
    await chat.tap("①経済")
    await chat.tap("④二地域居住")
    assert chat.labels[:4] == ["✓①経済", "②訪問", "③担い手", "✓④二地域居住"]
    await chat.tap("決定")
    assert chat.labels == [
        "出身", "居住経験", "勤務・通学", "家族・親族", "応援・ファン", "災害ボランティア", "その他",
    ]  # fmt: skip
    await chat.tap("応援・ファン")
    assert "お住まいの市区町村" in chat.text
    await chat.send("世田谷")
    await chat.tap("はい")
    assert "年代" in chat.text and "18歳未満" in chat.labels
    await chat.tap("40代")
    assert "ニックネーム" in chat.text
    await chat.send("ﾀﾛｳ")
    assert "規約と個人情報の取扱い" in chat.text
    await chat.tap("同意する")
    summary = chat.text
    for expected in ("宮城県気仙沼市", "宮城県にもあわせて登録", "経済", "二地域居住", "応援・ファン",
                     "東京都世田谷区", "40代", "タロウ"):  # fmt: skip
        assert expected in summary
    assert chat.labels == ["登録する", "修正する", "やめる"]
    await chat.tap("登録する")
    assert "登録が完了しました" in chat.text
    assert chat.replies[-1]["type"] == "flex"  # the card from bot/cards.py
    assert await storage.conversations.get(chat.user_id) is None

    docs = await storage.registrations.for_user(chat.user_id)
    main, prefecture = sorted(docs, key=lambda d: d["place_code"], reverse=True)
    assert set(main) == {
        "_id", "user_id", "place_code", "tier", "status", "types", "connection", "residence_code",
        "age_band", "nickname", "number", "since", "valid_until", "card_version", "via", "answers",
        "origin", "created_at", "updated_at",
    }  # fmt: skip
    assert isinstance(main["_id"], ObjectId)
    assert main["place_code"] == "042056" and prefecture["place_code"] == "040002"
    assert main["tier"] == "basic" and main["status"] == "active"
    assert main["types"] == ["economic", "dual_residence"]
    assert main["connection"] == "fan"
    assert main["residence_code"] == "131121"
    assert main["age_band"] == "40s"
    assert main["nickname"] == "タロウ"
    assert main["valid_until"] is None and main["card_version"] == 1
    assert main["via"] is None and prefecture["via"] == "042056"
    assert main["answers"] == {}
    assert isinstance(main["since"], datetime) and main["since"].tzinfo is not None
    assert main["since"].utcoffset() == UTC.utcoffset(None)
    for doc in docs:
        assert is_valid_registration_number(doc["number"])
        assert doc["number"].startswith(doc["place_code"] + "-")
        assert doc["number"] in summary or doc["number"] in chat.text
    assert await storage.registrations.get(str(main["_id"])) == main


async def test_an_ambiguous_place_offers_display_names(chat: DirectChat, storage: Storage) -> None:
    await chat.send("登録")
    await chat.send("府中")
    assert "いくつかあります" in chat.text
    assert chat.labels == ["東京都府中市", "広島県府中市", "広島県府中町"]
    await chat.tap("広島県府中市")
    conv = await storage.conversations.get(chat.user_id)
    assert conv is not None and conv.answers["place"] == "342084" and conv.step == "types"


async def test_a_place_not_found_is_never_a_dead_end(chat: DirectChat) -> None:
    await chat.send("登録")
    await chat.send("ほげほげ村")
    assert "見つかりませんでした" in chat.text
    assert 1 <= len(chat.labels) <= 13
    await chat.send("ｹｾﾝﾇﾏ")
    assert "宮城県気仙沼市" in chat.text
    await chat.tap("ちがう")
    assert "もう一度、市区町村名を入力してください" in chat.text
    await chat.send("宮城県気仙沼市")
    await chat.send("はい")
    assert "関わり方" in chat.text


async def test_registering_twice_with_one_place_is_refused_at_the_place_step(
    chat: DirectChat, storage: Storage
) -> None:
    await register(chat)
    await chat.send("登録")
    await chat.send("気仙沼")
    assert "すでにご登録いただいています" in chat.text
    assert "ほかに登録したい地域" in chat.text
    conv = await storage.conversations.get(chat.user_id)
    assert conv is not None and conv.step == "place" and conv.answers == {}
    await chat.send("宮城県")  # registered together with 気仙沼市
    assert "すでにご登録いただいています" in chat.text
    await chat.send("南三陸町")
    await chat.tap("はい")
    assert "関わり方" in chat.text


async def test_one_person_may_hold_many_registrations(chat: DirectChat, storage: Storage) -> None:
    await register(chat, "気仙沼")
    await register(chat, "南魚沼")
    await register(chat, "南三陸町")  # 宮城県 is there already
    await register(chat, "福島県")
    codes = sorted(d["place_code"] for d in await storage.registrations.for_user(chat.user_id))
    assert codes == ["040002", "042056", "046060", "070009", "150002", "152269"]
    await chat.send("登録一覧")
    assert "登録一覧（6件）" in chat.text
    assert "（宮城県気仙沼市とあわせて登録）" in chat.text
    await chat.send("登録証")
    flex = [m for m in chat.replies if m["type"] == "flex"]
    assert flex and "カード" not in chat.text


async def test_the_residence_must_differ_and_be_a_municipality(chat: DirectChat) -> None:
    await chat.send("登録")
    await chat.send("世田谷区")
    await chat.tap("はい")
    await chat.tap("②訪問")
    await chat.tap("決定")
    await chat.tap("その他")
    await chat.send("世田谷区")
    assert "登録先と同じ市区町村です" in chat.text
    await chat.send("東京都")
    assert "都道府県です" in chat.text and "市区町村名で" in chat.text
    await chat.send("府中")  # only municipalities are offered
    assert chat.labels == ["東京都府中市", "広島県府中市", "広島県府中町"]
    await chat.tap("東京都府中市")
    assert "年代" in chat.text


async def test_a_minor_needs_a_guardians_consent(chat: DirectChat, storage: Storage) -> None:
    await chat.send("登録")
    await chat.send("気仙沼")
    await chat.tap("はい")
    await chat.tap("②訪問")
    await chat.tap("決定")
    await chat.tap("家族・親族")
    await chat.send("仙台市")
    await chat.tap("はい")
    await chat.tap("18歳未満")
    assert "保護者の方の同意が必要です" in chat.text
    assert chat.labels == ["同意を得ています", "まだです"]
    await chat.tap("まだです")
    assert "保護者の方の同意を得てから" in chat.text
    assert await storage.conversations.get(chat.user_id) is None
    assert await storage.registrations.for_user(chat.user_id) == []

    await register(chat, age="18歳未満", residence="仙台市")
    docs = await storage.registrations.for_user(chat.user_id)
    assert {d["age_band"] for d in docs} == {"under_18"}


async def test_declining_the_terms_saves_nothing(chat: DirectChat, storage: Storage) -> None:
    await register(chat, submit=False)
    await chat.tap("修正する")
    await chat.tap("登録先")
    await chat.send("南魚沼")
    await chat.tap("はい")
    assert "新潟県南魚沼市のふるさと住民登録の規約" in chat.text  # consent again: new place
    await chat.tap("同意しない")
    assert "登録を中止しました" in chat.text
    assert await storage.registrations.for_user(chat.user_id) == []
    assert await storage.conversations.get(chat.user_id) is None


async def test_answers_can_be_changed_from_the_confirmation(
    chat: DirectChat, storage: Storage
) -> None:
    await register(chat, submit=False)
    await chat.tap("修正する")
    assert chat.labels == [
        "登録先", "関わり方", "きっかけ", "お住まい", "年代", "ニックネーム", "確認に戻る",
    ]  # fmt: skip
    await chat.tap("確認に戻る")
    assert "この内容で登録しますか" in chat.text
    await chat.tap("修正する")
    await chat.tap("ニックネーム")
    assert "いまのニックネーム：たろう" in chat.text
    await chat.send("じろう")
    assert "この内容で登録しますか" in chat.text and "じろう" in chat.text

    await chat.tap("修正する")
    await chat.tap("関わり方")
    assert "✓①経済" in chat.labels  # the earlier choice comes pre-selected
    await chat.tap("③担い手")
    await chat.tap("決定")
    assert "この内容で登録しますか" in chat.text and "担い手" in chat.text

    await chat.tap("修正する")
    await chat.tap("年代")
    await chat.tap("18歳未満")
    assert "保護者の方の同意" in chat.text
    await chat.tap("同意を得ています")
    assert "この内容で登録しますか" in chat.text and "保護者の同意あり" in chat.text

    await chat.tap("登録する")
    [doc] = [
        d for d in await storage.registrations.for_user(chat.user_id) if d["place_code"] == "042056"
    ]
    assert doc["nickname"] == "じろう"
    assert doc["types"] == ["economic", "bearer"]
    assert doc["age_band"] == "under_18"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("あ" * 21, "20文字以内でお願いします（いま21文字です）"),
        ("https://example.com", "URLは使えません"),
        ("see example.jp", "URLは使えません"),
        ("たろう\nじろう", "改行などの特殊な文字は使えません"),
        ("はい", "「はい」以外で"),
    ],
)
async def test_bad_nicknames_get_a_specific_retry(
    chat: DirectChat, storage: Storage, clock: Clock, text: str, expected: str
) -> None:
    from tests.test_dialog_engine import answers_before, put_state

    await put_state(storage, chat, clock, "register", "nickname", answers_before("nickname"))
    await chat.send(text)
    assert expected in chat.text
    conv = await storage.conversations.get(chat.user_id)
    assert conv is not None and conv.step == "nickname" and "nickname" not in conv.answers
    await chat.sticker()
    assert "ニックネームは文字で入力してください" in chat.text


async def test_a_municipalitys_own_questions_come_after_the_built_in_ones(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    place = "152269"  # 南魚沼市
    questions = storage.questions
    await questions.put(
        Question(
            place,
            "visited",
            "南魚沼市に来たことはありますか？",
            "choice",
            ("ある", "ない"),
            order=1,
        ),
        clock.now(),
    )
    await questions.put(
        Question(place, "food", "好きな南魚沼の食べ物は？", "text", required=False, order=2),
        clock.now(),
    )
    with pytest.raises(ValueError, match="question_id"):
        await questions.put(Question(place, "a.b", "?"), clock.now())

    await chat.send("登録")
    await chat.send("南魚沼")
    await chat.tap("はい")
    await chat.tap("②訪問")
    await chat.tap("決定")
    await chat.tap("応援・ファン")
    await chat.send("横浜市")
    await chat.tap("はい")
    await chat.tap("50代")
    await chat.send("こしひかり")
    assert "新潟県南魚沼市からの質問です（1/2）" in chat.text
    assert chat.labels == ["ある", "ない"]
    await chat.sticker()
    assert "文字かボタンでお答えください" in chat.text
    await chat.send("2")
    assert "（2/2）" in chat.text and "回答しない" in chat.labels
    await chat.send("あ" * 201)
    assert "200文字以内" in chat.text
    await chat.send("へぎそば")
    assert "規約" in chat.text
    await chat.tap("同意する")
    assert "南魚沼市に来たことはありますか？" in chat.text and "へぎそば" in chat.text
    await chat.tap("修正する")
    assert "追加の質問" in chat.labels
    await chat.tap("追加の質問")
    await chat.tap("ある")
    await chat.tap("回答しない")
    assert "この内容で登録しますか" in chat.text
    await chat.tap("登録する")
    [doc] = [
        d for d in await storage.registrations.for_user(chat.user_id) if d["place_code"] == place
    ]
    assert doc["answers"] == {"visited": "ある"}
    [prefecture] = [d for d in await storage.registrations.for_user(chat.user_id) if d["via"]]
    assert prefecture["answers"] == {}


async def test_a_place_without_questions_skips_the_step(chat: DirectChat) -> None:
    await register(chat, "福島県", submit=False)
    assert "からの質問です" not in "\n".join(t for r in chat.history for t in str(r))


async def test_unregister_removes_the_prefecture_made_with_it(
    chat: DirectChat, storage: Storage
) -> None:
    await register(chat, "気仙沼")
    await chat.send("登録解除")  # a single registration is picked at once
    assert "宮城県気仙沼市" in chat.text and "宮城県の登録も解除されます" in chat.text
    assert chat.labels == ["解除する", "やめる"]
    await chat.tap("やめる")
    assert len(await storage.registrations.for_user(chat.user_id)) == 2
    await chat.send("登録解除")
    await chat.tap("解除する")
    assert "宮城県気仙沼市・宮城県の登録を解除しました" in chat.text
    assert await storage.registrations.for_user(chat.user_id) == []


async def test_unregister_keeps_a_prefecture_another_municipality_needs(
    chat: DirectChat, storage: Storage
) -> None:
    await register(chat, "気仙沼")
    await register(chat, "南三陸町")
    await chat.send("登録解除")
    assert chat.labels == ["宮城県気仙沼市", "宮城県南三陸町"]
    await chat.tap("宮城県気仙沼市")
    await chat.tap("解除する")
    docs = await storage.registrations.for_user(chat.user_id)
    assert sorted(d["place_code"] for d in docs) == ["040002", "046060"]
    [prefecture] = [d for d in docs if d["place_code"] == "040002"]
    assert prefecture["via"] == "046060"


async def test_change_nickname_and_types(chat: DirectChat, storage: Storage) -> None:
    await register(chat, "気仙沼")
    await chat.send("登録変更")
    assert chat.labels == ["関わり方", "ニックネーム"]
    await chat.tap("ニックネーム")
    assert "いまのニックネーム：たろう" in chat.text
    await chat.send("a" * 30)
    assert "20文字以内" in chat.text
    await chat.send("さぶろう")
    assert "登録内容を変更しました" in chat.text and "さぶろう" in chat.text
    docs = await storage.registrations.for_user(chat.user_id)
    assert {d["nickname"] for d in docs} == {"さぶろう"}

    await chat.send("登録変更")
    await chat.tap("関わり方")
    assert "✓①経済" in chat.labels
    await chat.tap("✓①経済")
    await chat.tap("決定")
    assert "1つ以上" in chat.text
    await chat.tap("②訪問")
    await chat.tap("決定")
    assert "訪問" in chat.text
    docs = await storage.registrations.for_user(chat.user_id)
    assert [d["types"] for d in docs] == [["visit"], ["visit"]]
    assert all(d["card_version"] == 1 for d in docs)


async def test_self_service_without_registrations(chat: DirectChat, storage: Storage) -> None:
    for text in ("登録一覧", "登録証", "登録解除", "登録変更"):
        await chat.send(text)
        assert "まだ登録はありません" in chat.text
        assert await storage.conversations.get(chat.user_id) is None


async def test_a_place_registered_meanwhile_is_refused_at_completion(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    from bot.storage.registrations import BasicApplication

    await register(chat, submit=False)
    await storage.registrations.create_basic(
        BasicApplication(chat.user_id, "042056", ["visit"], "fan", "131121", "30s", "x"),
        clock.now(),
    )
    await chat.tap("登録する")
    assert "宮城県気仙沼市にはすでにご登録いただいています" in chat.text
    assert "ふるさと登録" in chat.labels
    assert len(await storage.registrations.for_user(chat.user_id)) == 2


class KesennumaTerms:
    def source(self, name: str, municipality_code: str) -> str | None:
        if name == "register/terms" and municipality_code == "042056":
            return "気仙沼市ふるさと住民の規約です（{{ place_name }}）。同意いただけますか？"
        return None


async def test_a_municipality_override_is_used_for_its_registrations(
    storage: Storage, settings: Settings, clock: Clock
) -> None:
    from bot.render import Renderer

    engine = build_engine(storage, settings, clock, renderer=Renderer(overrides=KesennumaTerms()))
    chat = DirectChat(engine, clock)
    await register(chat, "気仙沼", submit=False)
    terms = next(t for r in chat.history for t in [str(r)] if "規約" in t)
    assert "気仙沼市ふるさと住民の規約です（宮城県気仙沼市）" in terms
    other = DirectChat(engine, clock)
    await register(other, "福島県", submit=False)
    assert not any("気仙沼市ふるさと住民の規約" in str(r) for r in other.history)
