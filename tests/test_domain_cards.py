"""Card verification tokens and card status."""

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.cards import (
    MAX_TOKEN_LENGTH,
    CardClaims,
    CardStatus,
    card_status,
    sign_card_token,
    verify_card_token,
)

SECRET = b"test-card-secret-0123456789abcdef"
OBJECT_ID = "66f1c2a9e4b0a1b2c3d4e5f6"
TOKEN = sign_card_token(OBJECT_ID, 1, SECRET)
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

registration_ids = st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) <= 64)
versions = st.integers(min_value=0, max_value=9_999_999_999)


def test_round_trip_and_shape() -> None:
    assert verify_card_token(TOKEN, SECRET) == CardClaims(OBJECT_ID, 1)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", TOKEN)
    assert len(TOKEN) <= 60  # short enough for a small QR code
    assert sign_card_token(OBJECT_ID, 1, SECRET) == TOKEN  # deterministic


@settings(max_examples=300)
@given(registration_ids, versions)
def test_round_trip_any_claims(registration_id: str, version: int) -> None:
    token = sign_card_token(registration_id, version, SECRET)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert verify_card_token(token, SECRET) == CardClaims(registration_id, version)


def test_wrong_secret_and_other_claims() -> None:
    assert verify_card_token(TOKEN, b"another-secret") is None
    assert verify_card_token(TOKEN, b"") is None
    other = sign_card_token(OBJECT_ID, 2, SECRET)
    assert other != TOKEN
    payload, _ = TOKEN.split(".")
    _, mac = other.split(".")
    assert verify_card_token(f"{payload}.{mac}", SECRET) is None  # spliced


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        TOKEN[:-1],
        TOKEN[1:],
        TOKEN + "A",
        TOKEN + "=",
        TOKEN + "\n",
        TOKEN.replace(".", ""),
        TOKEN.replace(".", ".."),
        TOKEN.split(".")[0],
        TOKEN + "." + TOKEN.split(".")[1],
        TOKEN.replace("-", "+").replace("_", "/") + "+/",
        "ａ" + TOKEN,
        TOKEN + "\udcff",
        "A" * 10_000,
        "A" * 40 + "." + "A" * 22,
    ],
)
def test_garbage_is_rejected(token: str) -> None:
    assert verify_card_token(token, SECRET) is None


@settings(max_examples=500)
@given(st.text(max_size=200))
def test_random_text_never_verifies(text: str) -> None:
    assert verify_card_token(text, SECRET) is None


@settings(max_examples=200)
@given(st.text(alphabet=BASE64URL + ".", max_size=90))
def test_random_token_shaped_text_never_verifies(text: str) -> None:
    assert verify_card_token(text, SECRET) is None


@settings(max_examples=500)
@given(st.data())
def test_any_single_character_change_is_rejected(data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(TOKEN) - 1))
    replacement = data.draw(
        st.one_of(
            st.sampled_from(BASE64URL + ".="),
            st.characters(),
        ).filter(lambda c: c != TOKEN[index])
    )
    altered = TOKEN[:index] + replacement + TOKEN[index + 1 :]
    assert verify_card_token(altered, SECRET) is None


def test_every_single_character_change_is_rejected() -> None:
    for index, original in enumerate(TOKEN):
        for replacement in BASE64URL + ".=":
            if replacement != original:
                altered = TOKEN[:index] + replacement + TOKEN[index + 1 :]
                assert verify_card_token(altered, SECRET) is None, altered


@pytest.mark.parametrize(
    ("registration_id", "version", "secret"),
    [
        ("", 1, SECRET),
        ("x" * 65, 1, SECRET),
        (OBJECT_ID, -1, SECRET),
        (OBJECT_ID, 10**10, SECRET),
        (OBJECT_ID, 1, b""),
    ],
)
def test_sign_rejects_bad_input(registration_id: str, version: int, secret: bytes) -> None:
    with pytest.raises(ValueError):
        sign_card_token(registration_id, version, secret)


NOW = datetime(2027, 6, 1, 3, 0, tzinfo=UTC)  # 12:00 in Japan
JST = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    ("now", "valid_until", "revoked", "token_version", "current_version", "status"),
    [
        (NOW, None, False, 1, 1, CardStatus.VALID),
        (NOW, date(2027, 6, 1), False, 1, 1, CardStatus.VALID),  # last valid day
        (NOW, date(2027, 5, 31), False, 1, 1, CardStatus.EXPIRED),
        (NOW, date(2028, 1, 1), True, 1, 1, CardStatus.REVOKED),
        (NOW, date(2028, 1, 1), False, 1, 2, CardStatus.REVOKED),  # card reissued
        (NOW, date(2020, 1, 1), True, 1, 1, CardStatus.REVOKED),  # revoked beats expired
        # 2027-05-31 16:00 UTC is already 2027-06-01 in Japan
        (
            datetime(2027, 5, 31, 16, 0, tzinfo=UTC),
            date(2027, 5, 31),
            False,
            1,
            1,
            CardStatus.EXPIRED,
        ),
        (
            datetime(2027, 5, 31, 23, 59, tzinfo=JST),
            date(2027, 5, 31),
            False,
            1,
            1,
            CardStatus.VALID,
        ),
        # naive datetimes (as PyMongo returns them) are UTC
        (
            datetime(2027, 5, 31, 16, 0),
            datetime(2027, 5, 31, 0, 0),
            False,
            1,
            1,
            CardStatus.EXPIRED,
        ),
        (datetime(2027, 5, 31, 14, 59), datetime(2027, 5, 31, 0, 0), False, 1, 1, CardStatus.VALID),
    ],
)
def test_card_status(
    now: datetime,
    valid_until: date | None,
    revoked: bool,
    token_version: int,
    current_version: int,
    status: CardStatus,
) -> None:
    assert card_status(now, valid_until, revoked, token_version, current_version) is status


def test_card_status_labels() -> None:
    assert CardStatus.VALID.label == "有効"
    assert CardStatus.EXPIRED.label == "有効期限切れ"
    assert CardStatus.REVOKED.label == "失効"
    assert CardStatus("valid") is CardStatus.VALID
