"""Normalising what residents type, and reading dates and numbers out of it."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

import jaconv

# Characters dropped from the end of a keyword before matching (「登録。」「ヘルプ！」).
_TRAILING = "。．.!！、,"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters, the ideographic space) and trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def key(text: str) -> str:
    """A form for matching keywords and choices: normalised, hiragana, lower case, no spaces.

    「ヘルプ」, 「へるぷ」, 「ﾍﾙﾌﾟ」 and 「 ヘルプ。」 all give the same key.
    """
    folded: str = jaconv.kata2hira(normalize(text)).lower()
    folded = "".join(folded.split())
    stripped = folded.rstrip(_TRAILING)
    return stripped or folded


def circled_number(text: str) -> int | None:
    """1 for 「①」 (before NFKC, which turns ① into 1)."""
    stripped = text.strip()
    if len(stripped) == 1 and stripped in _CIRCLED:
        return _CIRCLED.index(stripped) + 1
    return None


def small_number(text: str) -> int | None:
    """A choice number typed as 「2」, 「２」, 「②」 or 「2番」."""
    circled = circled_number(text)
    if circled is not None:
        return circled
    match = re.fullmatch(r"([0-9]{1,2})(?:番|ばん)?", normalize(text))
    return int(match.group(1)) if match else None


_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def has_control(text: str) -> bool:
    """True for control, format, private-use or unassigned characters, and line breaks."""
    return any(unicodedata.category(char) in _CONTROL_CATEGORIES for char in text)


_URL = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://|www\.|\b[a-z0-9-]+\.(?:com|net|org|jp|io|me|info|co|ly|app)\b)",
    re.IGNORECASE,
)


def has_url(text: str) -> bool:
    return _URL.search(normalize(text)) is not None


# --- dates ---------------------------------------------------------------------------------------

_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_MD = re.compile(r"(\d{1,2})\s*[/月]\s*(\d{1,2})\s*日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_RELATIVE = {"今日": 0, "きょう": 0, "本日": 0, "明日": 1, "あした": 1, "あす": 1, "明後日": 2}
_RANGE_SEPARATORS = ("〜", "~", "から", "ー", "－", "―")


def parse_date(text: str, today: date) -> date | None:
    """「2027-01-09」「2027/1/9」「2027年1月9日」「20270109」「1/9」「1月9日」「明日」.

    Without a year: this year's date, or next year's when it has passed more than 30 days ago
    (「1/9」 typed in December means next January).
    """
    value = normalize(text).replace(" ", "")
    if value in _RELATIVE:
        return today + timedelta(days=_RELATIVE[value])
    for pattern in (_YMD, _COMPACT):
        match = pattern.fullmatch(value)
        if match:
            return _date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = _MD.fullmatch(value)
    if match:
        month, day = int(match.group(1)), int(match.group(2))
        found = _date(today.year, month, day)
        if found is not None and found < today - timedelta(days=30):
            found = _date(today.year + 1, month, day)
        return found
    return None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def split_range(text: str) -> tuple[str, str] | None:
    """「1/9〜1/12」「2027-01-09 ~ 2027-01-12」「1月9日から1月12日」 into two parts."""
    value = normalize(text)
    for separator in _RANGE_SEPARATORS:
        if separator in value:
            start, _, end = value.partition(separator)
            end = end.removesuffix("まで")
            if start.strip() and end.strip():
                return start.strip(), end.strip()
    # 「1/9-1/12」: a hyphen between two dates that do not use hyphens themselves.
    match = re.fullmatch(r"([^-]+?)\s*-\s*([^-]+)", value)
    if match:
        return match.group(1), match.group(2)
    return None


def parse_int(text: str) -> int | None:
    """「3」「３」「3人」「1,000」 → int; anything else → None."""
    value = normalize(text).replace(",", "")
    match = re.fullmatch(r"(-?\d{1,9})\s*[^\d\s]{0,3}", value)
    return int(match.group(1)) if match else None
