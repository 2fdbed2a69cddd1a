"""Premium through LINE: the resident applies in the chat (emulator), staff decide through the
API of the same web process, the resident is told in the chat. Real database, no mocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from bot.clock import JST
from bot.domain.registration import premium_valid_until
from tests.stack import Chat
from tests.test_premium_support import (
    GIF,
    JPEG,
    NOT_A_JPEG,
    apply,
    b64,
    open_premium_site,
    pending_id,
    png,
    resident,
    texts,
)
from tests.test_staff_support import Site, add_registration


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_premium_site(mongo_uri, db_name) as s:
        yield s


async def test_apply_approve_and_the_resident_is_told(site: Site) -> None:
    chat, registration = await resident(site)
    photo = png(3, 2)
    await apply(chat, photo)
    assert "和歌山県和歌山市" in chat.last_text
    app_id = await pending_id(site, chat.user_id)

    staff = await site.staff("302015", "editor")
    status, listing = await staff.api("GET", "/premium-applications")
    assert status == 200
    mine = [item for item in listing["items"] if item["id"] == app_id]
    assert len(mine) == 1
    item = mine[0]
    assert item["status"] == "pending" and item["has_document"] is True
    assert item["registration_number"] == registration["number"]
    assert item["types"] == ["bearer"] and item["place_name"] == "和歌山県和歌山市"
    assert "user_id" not in item and chat.user_id not in str(item)

    async with staff.http.get(
        f"{staff.base}/api/v1/premium-applications/{app_id}/document"
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read() == photo

    status, decided = await staff.api("POST", f"/premium-applications/{app_id}/approve")
    assert status == 200, decided
    assert decided["status"] == "approved" and decided["notified"] is True
    assert decided["tier"] == "premium" and decided["has_document"] is False

    pushed = await chat.inbox()
    said = texts(pushed)
    assert "和歌山県和歌山市のプレミアム登録が承認されました" in said
    today = site.stack.clock.now().astimezone(JST).date()
    last_day = premium_valid_until(today)
    assert f"{last_day.year}年{last_day.month}月{last_day.day}日" in said
    assert any(entry["message"]["type"] == "flex" for entry in pushed)  # the new card
    assert all(entry["via"] == "push" for entry in pushed)

    stored = await site.storage.registrations.get(str(registration["_id"]))
    assert stored is not None and stored["tier"] == "premium" and stored["card_version"] == 2
    valid_until = stored["valid_until"].astimezone(JST)
    assert valid_until.date() == last_day
    assert (
        timedelta(days=363) < stored["valid_until"] - site.stack.clock.now() < timedelta(days=366)
    )

    # The photo is gone with the decision.
    status, body = await staff.api("GET", f"/premium-applications/{app_id}/document")
    assert status == 404 and body["error"]["code"] == "document_gone"
    assert not await site.storage.identity_documents.exists(ObjectId(app_id))

    # The card now says プレミアム登録; a second application there is refused kindly.
    await chat.send("登録証")
    assert "プレミアム登録" in chat.last_text
    await chat.send("プレミアム")
    assert "すでにプレミアム登録をいただいています" in chat.last_text


async def test_rejection_tells_the_reason_and_allows_a_new_application(site: Site) -> None:
    chat, registration = await resident(site, "佐藤", place_code="442011")
    await apply(chat, JPEG)
    app_id = await pending_id(site, chat.user_id)
    staff = await site.staff("442011", "admin")
    reason = "書類の文字が読み取れませんでした。明るい場所で撮り直してください。"
    status, body = await staff.api(
        "POST", f"/premium-applications/{app_id}/reject", {"reason": f"  {reason}  "}
    )
    assert status == 200, body
    assert body["status"] == "rejected" and body["reason"] == reason

    said = texts(await chat.inbox())
    assert "大分県大分市のプレミアム登録は、今回は承認されませんでした" in said
    assert f"理由：{reason}" in said
    stored = await site.storage.registrations.get(str(registration["_id"]))
    assert stored is not None and stored["tier"] == "basic" and stored["card_version"] == 1
    assert not await site.storage.identity_documents.exists(ObjectId(app_id))

    await apply(chat, png())  # a new application is welcome
    assert await pending_id(site, chat.user_id) != app_id


async def test_a_fourth_premium_place_is_refused_with_the_reason(site: Site) -> None:
    chat, _ = await resident(site, "鈴木", place_code="452017")
    now = site.stack.clock.now()
    for place in ("302015", "352012", "442011"):
        await add_registration(
            site.storage,
            user_id=chat.user_id,
            place_code=place,
            tier="premium",
            types=["bearer"],
            valid_until=now + timedelta(days=200),
        )
    await chat.send("プレミアム登録")
    assert "プレミアム登録は同時に3か所までです" in chat.last_text
    assert "申請に進みますか" not in chat.last_text
    assert "ふるさと登録" in [item["action"]["label"] for item in quick(chat)]
    assert await site.storage.premium_applications.pending_for_user(chat.user_id) == []


async def test_a_waiting_application_counts_towards_the_limit(site: Site) -> None:
    chat, _ = await resident(site, "高橋", place_code="452017")
    now = site.stack.clock.now()
    for place in ("302015", "352012"):
        await add_registration(
            site.storage,
            user_id=chat.user_id,
            place_code=place,
            tier="premium",
            types=["bearer"],
            valid_until=now + timedelta(days=200),
        )
    await add_registration(
        site.storage, user_id=chat.user_id, place_code="442011", types=["bearer"]
    )
    await apply(chat, pick="大分県大分市")
    await chat.send("プレミアム")
    assert "宮崎市：プレミアム登録は同時に3か所までです（審査中の申請も数えます）" in chat.last_text
    assert "大分県大分市：審査中です" in chat.last_text


async def test_residence_and_types_are_refused(site: Site) -> None:
    own, _ = await resident(site, "伊藤", place_code="131016", residence_code="131016")
    await own.send("プレミアム登録")
    assert "お住まいの市区町村のため、プレミアム登録はできません" in own.last_text

    visitor, _ = await resident(site, "渡辺", types=["visit", "economic"])
    await visitor.send("プレミアム登録")
    assert "「担い手」・「二地域居住」の関わりがある方が対象です" in visitor.last_text
    assert "登録内容の変更" in visitor.last_text

    nobody = await site.stack.user("中村")
    await nobody.send("プレミアム")
    assert "まず「ふるさと登録」から" in nobody.last_text


async def test_picking_a_place_that_does_not_qualify_lets_the_resident_pick_again(
    site: Site,
) -> None:
    chat, _ = await resident(site, "小林", types=["visit"])
    await add_registration(
        site.storage, user_id=chat.user_id, place_code="192015", types=["dual_residence"]
    )
    await chat.send("プレミアム登録")
    assert "申し込む地域を選んでください" in chat.last_text
    assert {"和歌山県和歌山市", "山梨県甲府市"} <= set(labels(chat))
    await chat.tap("和歌山県和歌山市")
    assert "「担い手」・「二地域居住」の関わりがある方が対象です" in chat.last_text
    assert "ほかの地域を選ぶか" in chat.last_text
    await chat.tap("山梨県甲府市")
    assert "山梨県甲府市のプレミアム登録を申し込みます" in chat.last_text
    assert "1年間に3回以上の担い手活動" in chat.last_text


async def test_a_photo_is_asked_for_again_after_text_stickers_and_wrong_images(
    site: Site,
) -> None:
    chat, _ = await resident(site, "加藤")
    await chat.send("プレミアム登録")
    await chat.tap("申請に進む")
    assert {"カメラ", "写真を選ぶ"} <= set(labels(chat))
    cases = [
        (chat.sticker, "スタンプではなく、書類の写真を送ってください"),
        (lambda: chat.send("写真はあとで送ります"), "文字ではなく、書類の写真を送ってください"),
        (lambda: chat.image(b64(GIF)), "JPEGまたはPNGの写真を送ってください"),
        (lambda: chat.image(b64(NOT_A_JPEG)), "JPEGまたはPNGの写真を送ってください"),
    ]
    for send, expected in cases:
        await send()
        assert expected in chat.last_text, chat.last_text
        assert {"カメラ", "写真を選ぶ"} <= set(labels(chat))  # still on the photo step
    await chat.image(b64(JPEG))
    assert "この写真で申請しますか" in chat.last_text
    await chat.tap("写真を送り直す")
    assert "写真を送り直してください" in chat.last_text
    await chat.image(b64(png()))
    await chat.tap("申請する")
    assert "審査結果はこのトークでお知らせします" in chat.last_text
    app_id = await pending_id(site, chat.user_id)
    document = await site.storage.identity_documents.get(ObjectId(app_id))
    assert document == (png(), "image/png")  # the second photo, not the first

    await chat.send("プレミアム")
    assert "ただいま審査中です" in chat.last_text


async def test_cancelling_keeps_nothing(site: Site) -> None:
    chat, _ = await resident(site, "山本")
    await chat.send("プレミアム登録")
    await chat.tap("申請に進む")
    await chat.image(b64(png()))
    await chat.send("やめる")
    assert "プレミアム登録の申請の手続きを中止しました" in chat.last_text
    assert await site.storage.premium_applications.pending_for_user(chat.user_id) == []


def quick(chat: Chat) -> list[dict[str, Any]]:
    last = chat.replies[-1] if chat.replies else {}
    return list((last.get("quickReply") or {}).get("items") or [])


def labels(chat: Chat) -> list[str]:
    return [str(item["action"]["label"]) for item in quick(chat)]
