"""News rules without I/O: segments, content limits, schedules, the workflow, delivery limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import JST
from bot.domain.news import (
    MAX_TEXT,
    REGIONS,
    Content,
    DeliveryConfig,
    Schedule,
    Segment,
    Status,
    add_months,
    after_run,
    japan_day,
    progress,
    region_of,
    transition,
)
from bot.settings import SettingsError, news_delivery


def registration(**fields: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "status": "active",
        "tier": "basic",
        "types": ["visit"],
        "residence_code": "131016",  # 東京都千代田区
        "age_band": "30s",
    }
    doc.update(fields)
    return doc


# --- segments ----------------------------------------------------------------------------------


def test_empty_segment_is_everyone_active() -> None:
    assert Segment().matches(registration())
    assert not Segment().matches(registration(status="revoked"))


@pytest.mark.parametrize(
    ("segment", "doc", "expected"),
    [
        (Segment(tiers=("premium",)), registration(), False),
        (Segment(tiers=("premium",)), registration(tier="premium"), True),
        (Segment(types=("bearer", "visit")), registration(types=["visit"]), True),
        (Segment(types=("bearer",)), registration(types=["visit", "economic"]), False),
        (Segment(prefectures=("13",)), registration(), True),
        (Segment(prefectures=("27",)), registration(), False),
        (Segment(regions=("関東",)), registration(), True),
        (Segment(regions=("近畿",)), registration(residence_code="271004"), True),
        (Segment(regions=("九州・沖縄",)), registration(residence_code="472018"), True),
        (Segment(regions=("北海道",)), registration(residence_code=None), False),
        (Segment(prefectures=("01",), regions=("近畿",)), registration(), False),
        (Segment(age_bands=("60s", "70_plus")), registration(age_band="70_plus"), True),
        (Segment(age_bands=("60s",)), registration(), False),
    ],
)
def test_segment_matches(segment: Segment, doc: dict[str, object], expected: bool) -> None:
    assert segment.matches(doc) is expected


def test_regions_cover_every_prefecture_once() -> None:
    codes = [code for prefectures in REGIONS.values() for code in prefectures]
    assert sorted(codes) == [f"{n:02d}" for n in range(1, 48)]
    assert region_of("04") == "東北" and region_of("47") == "九州・沖縄" and region_of("99") is None


def test_segment_round_trip_and_validation() -> None:
    segment = Segment(("premium",), ("bearer",), ("13",), ("近畿",), ("30s",), "news")
    assert Segment.from_doc(segment.to_doc()) == segment
    segment.validate()
    with pytest.raises(ValueError, match="年代"):
        Segment(age_bands=("teen",)).validate()
    with pytest.raises(ValueError, match="居住都道府県"):
        Segment(prefectures=("48",)).validate()


# --- content -----------------------------------------------------------------------------------


def test_text_limits() -> None:
    Content(text="あ" * MAX_TEXT).validate()
    with pytest.raises(ValueError, match="本文は"):
        Content(text="あ" * (MAX_TEXT + 1)).validate()
    with pytest.raises(ValueError, match="本文を入力"):
        Content(text="  ").validate()


BUBBLE = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
    {"type": "text", "text": "牡蠣まつりのご案内"}]}}  # fmt: skip


def test_flex_is_checked_like_templates() -> None:
    Content(kind="flex", flex=BUBBLE, alt_text="牡蠣まつり").validate()
    with pytest.raises(ValueError, match="代替テキスト"):
        Content(kind="flex", flex=BUBBLE, alt_text="").validate()
    with pytest.raises(ValueError, match="代替テキストは1500"):
        Content(kind="flex", flex=BUBBLE, alt_text="あ" * 1501).validate()
    with pytest.raises(ValueError, match="Flex"):
        Content(kind="flex", flex={"type": "bubble"}, alt_text="空").validate()
    with pytest.raises(ValueError, match="Flex"):
        Content(kind="flex", flex={"type": "bubble", "bodyy": {}}, alt_text="誤字").validate()


def test_image_must_be_https() -> None:
    url = "https://example.jp/a.jpg"
    content = Content(text="本文", image_url=url)
    content.validate()
    image = {"type": "image", "originalContentUrl": url, "previewImageUrl": url}
    assert content.image_message() == image and Content(text="本文").image_message() is None
    with pytest.raises(ValueError, match="https"):
        Content(text="本文", image_url="http://example.jp/a.jpg").validate()
    assert Content.from_doc(content.to_doc()) == content


# --- schedules ---------------------------------------------------------------------------------


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST)


def test_quarterly_keeps_its_day_and_stops_after_until() -> None:
    schedule = Schedule("recurring", jst(2027, 1, 31), 3, date(2027, 12, 31))
    runs = [schedule.at]
    while (following := schedule.next_after(runs[-1])) is not None:  # type: ignore[arg-type]
        runs.append(following)
    assert runs == [jst(2027, 1, 31), jst(2027, 4, 30), jst(2027, 7, 31), jst(2027, 10, 31)]


def test_first_run() -> None:
    approved = jst(2027, 5, 1)
    assert Schedule().first(approved) == approved
    assert Schedule("at", jst(2027, 6, 1)).first(approved) == jst(2027, 6, 1)
    assert Schedule("at", jst(2027, 4, 30, 20)).first(approved) == approved  # late: at once
    quarterly = Schedule("recurring", jst(2027, 1, 1), 3)
    assert quarterly.first(approved) == jst(2027, 7, 1)  # April's was missed long ago
    assert Schedule("recurring", jst(2027, 1, 1), 3, date(2027, 6, 1)).first(approved) is None


@given(
    start=st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)),
    months=st.integers(1, 12),
    offset=st.integers(0, 2000),
)
def test_next_run_is_after_and_on_the_grid(start: datetime, months: int, offset: int) -> None:
    schedule = Schedule("recurring", start, months)
    moment = start + timedelta(days=offset)
    following = schedule.next_after(moment)
    assert following is not None and following > moment
    steps = [add_months(start, months * n) for n in range(1, 200)]
    assert following in steps
    assert all(s <= moment for s in steps if s < following)


def test_schedule_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="配信日時"):
        Schedule("at").validate()
    with pytest.raises(ValueError, match="間隔"):
        Schedule("recurring", jst(2027, 1, 1), 13).validate()
    with pytest.raises(ValueError, match="終了日"):
        Schedule("recurring", jst(2027, 1, 1), 3, date(2026, 12, 1)).validate()
    schedule = Schedule("recurring", jst(2027, 1, 1).astimezone(UTC), 3, date(2027, 12, 1))
    assert Schedule.from_doc(schedule.to_doc()) == schedule


# --- workflow ----------------------------------------------------------------------------------


def test_editor_drafts_admin_approves() -> None:
    assert transition(Status.DRAFT, "submit") is Status.PENDING
    assert transition(Status.PENDING, "approve") is Status.APPROVED
    assert transition(Status.PENDING, "reject") is Status.REJECTED
    assert transition(Status.REJECTED, "update") is Status.REJECTED
    assert transition(Status.SENDING, "cancel") is Status.CANCELLED
    with pytest.raises(ValueError, match="承認待ち"):
        transition(Status.DRAFT, "approve")
    with pytest.raises(ValueError, match="編集"):
        transition(Status.APPROVED, "update")
    with pytest.raises(ValueError, match="取り消せません"):
        transition(Status.SENT, "cancel")


def test_after_run() -> None:
    once = Schedule("at", jst(2027, 1, 1))
    assert after_run(once, jst(2027, 1, 1)) == (Status.SENT, None)
    quarterly = Schedule("recurring", jst(2027, 1, 1), 3)
    assert after_run(quarterly, jst(2027, 1, 1)) == (Status.APPROVED, jst(2027, 4, 1))


# --- delivery limits ---------------------------------------------------------------------------


def test_quiet_hours_and_next_day() -> None:
    config = DeliveryConfig()
    assert config.quiet(jst(2027, 1, 1, 22)) and not config.quiet(jst(2027, 1, 1, 8))
    assert config.not_before(jst(2027, 1, 1, 23)) == jst(2027, 1, 2, 8).replace(hour=8)
    assert config.not_before(jst(2027, 1, 1, 12)) == jst(2027, 1, 1, 12)
    assert config.next_day(jst(2027, 1, 1, 20)) == datetime(2027, 1, 2, 8, tzinfo=JST)
    never = DeliveryConfig(quiet_hours=(time(0), time(0)))
    assert not never.quiet(jst(2027, 1, 1, 23))
    assert never.next_day(jst(2027, 1, 1, 20)) == datetime(2027, 1, 2, 0, tzinfo=JST)


def test_japan_day_and_progress() -> None:
    assert japan_day(datetime(2027, 1, 1, 15, 30, tzinfo=UTC)) == "2027-01-02"
    assert progress(0, 0) == 0.0 and progress(10, 5) == 0.5 and progress(10, 10) == 1.0


def test_news_delivery_settings() -> None:
    config = news_delivery(
        {"NEWS_QUIET_HOURS": "22:00-07:30", "NEWS_DAILY_CAP": "2", "NEWS_LEASE_SECONDS": "5"}
    )
    assert config.quiet_hours == (time(22), time(7, 30)) and config.daily_cap == 2
    assert config.lease_seconds == 5 and config.multicast_per_second == 200
    assert news_delivery({"NEWS_QUIET_HOURS": "off"}).quiet_hours == (time(0), time(0))
    with pytest.raises(SettingsError, match="NEWS_DAILY_CAP"):
        news_delivery({"NEWS_DAILY_CAP": "0"})
    with pytest.raises(SettingsError, match="NEWS_QUIET_HOURS"):
        news_delivery({"NEWS_QUIET_HOURS": "夜"})
