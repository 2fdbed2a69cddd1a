"""The municipality directory: 1,741 市区町村 and 47 都道府県, and search over them."""

from __future__ import annotations

import csv
import difflib
import io
import unicodedata
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import cache
from importlib import resources

import jaconv

_SUFFIXES = "市町村区都道府県"
# Readings of each suffix kanji, stripped from a reading to get its stem.
_SUFFIX_READINGS: dict[str, tuple[str, ...]] = {
    "市": ("し",),
    "区": ("く",),
    "町": ("ちょう", "まち"),
    "村": ("むら", "そん"),
    "都": ("と",),
    "道": ("どう",),
    "府": ("ふ",),
    "県": ("けん",),
}
# ヶ and ケ are used interchangeably in names (龍ケ崎市, 鶴ヶ島市); kata2hira maps ヶ to ゖ.
_FOLD = str.maketrans({"ゖ": "け", "ゕ": "か"})


@dataclass(frozen=True)
class Place:
    """A municipality or prefecture, identified by its 6-digit 全国地方公共団体コード."""

    code: str
    name: str
    prefecture: str
    prefecture_code: str
    kana: str
    is_prefecture: bool

    @property
    def display_name(self) -> str:
        """「宮城県気仙沼市」 for a municipality, 「福島県」 for a prefecture."""
        return self.name if self.is_prefecture else self.prefecture + self.name


class SearchStatus(StrEnum):
    """What a search found."""

    UNIQUE = "unique"  # exactly one place matched exactly: `place`
    AMBIGUOUS = "ambiguous"  # several exact matches, or partial ones only: pick from `places`
    NOT_FOUND = "not_found"  # nothing matched: `suggestions` has the closest places
    EMPTY = "empty"  # the query was blank


@dataclass(frozen=True)
class SearchResult:
    """Outcome of `search_places`; `places` are best first."""

    query: str
    status: SearchStatus
    places: tuple[Place, ...] = ()
    suggestions: tuple[Place, ...] = ()

    @property
    def place(self) -> Place | None:
        """The unique hit, if the search found exactly one place."""
        return self.places[0] if self.status is SearchStatus.UNIQUE else None


class _Tier(IntEnum):
    """Match quality, best first; tiers up to EXACT_READING count as exact."""

    EXACT_NAME = 0
    EXACT_STEM = 1
    EXACT_READING = 2
    PREFIX = 3
    QUALIFIED_PREFIX = 4
    SUBSTRING = 5
    QUALIFIED_SUBSTRING = 6
    READING_PREFIX = 7
    READING_SUBSTRING = 8


@dataclass(frozen=True)
class _Entry:
    """A place with its normalised search forms."""

    place: Place
    names: frozenset[str]  # name, display name, code
    stems: frozenset[str]  # names without suffix, also prefixed by the prefecture
    readings: frozenset[str]  # readings with and without suffix and prefecture
    bare: str  # the normalised name
    qualified: tuple[str, ...]  # the name prefixed by the prefecture
    reading_forms: tuple[str, ...]  # readings for prefix and substring matches
    haystack: str  # every form above, to skip non-matching places fast


@dataclass(frozen=True)
class _Directory:
    places: tuple[Place, ...]
    by_code: dict[str, Place]
    entries: tuple[_Entry, ...]


def _normalize(text: str) -> str:
    """Fold width, katakana to hiragana, ヶ/ケ, case, and drop all whitespace."""
    hira: str = jaconv.kata2hira(unicodedata.normalize("NFKC", text))
    return "".join(hira.translate(_FOLD).lower().split())


def _stem(name: str) -> str:
    return name[:-1] if len(name) > 1 and name[-1] in _SUFFIXES else name


def _reading_stem(name: str, reading: str) -> str:
    for suffix in _SUFFIX_READINGS.get(name[-1], ()):
        if reading.endswith(suffix) and len(reading) > len(suffix):
            return reading[: -len(suffix)]
    return reading


def _entry(place: Place, prefecture: Place) -> _Entry:
    name = _normalize(place.name)
    names = {name, place.code}
    stems = {_stem(name)}
    readings = {place.kana, _reading_stem(place.name, place.kana)}
    qualified: tuple[str, ...] = ()
    reading_forms: tuple[str, ...] = (place.kana,)
    if not place.is_prefecture:
        pref_names = (_normalize(prefecture.name), _stem(_normalize(prefecture.name)))
        pref_readings = (prefecture.kana, _reading_stem(prefecture.name, prefecture.kana))
        names.add(pref_names[0] + name)
        stems |= {p + s for p in pref_names for s in (name, *stems)} - names
        readings |= {p + r for p in pref_readings for r in readings}
        qualified = tuple(p + name for p in pref_names)
        reading_forms += tuple(p + place.kana for p in pref_readings)
    return _Entry(
        place=place,
        names=frozenset(names),
        stems=frozenset(stems),
        readings=frozenset(readings),
        bare=name,
        qualified=qualified,
        reading_forms=reading_forms,
        haystack="\0".join((*names, *stems, *readings, *qualified, *reading_forms)),
    )


@cache
def _directory() -> _Directory:
    text = resources.files("bot").joinpath("data/municipalities.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    pref_codes = {row["code"][:2]: row["code"] for row in rows if not row["city"]}
    places = tuple(
        Place(
            code=row["code"],
            name=row["city"] or row["prefecture"],
            prefecture=row["prefecture"],
            prefecture_code=pref_codes[row["code"][:2]],
            kana=_normalize(row["city_kana"] or row["prefecture_kana"]),
            is_prefecture=not row["city"],
        )
        for row in rows
    )
    by_code = {place.code: place for place in places}
    entries = tuple(_entry(place, by_code[place.prefecture_code]) for place in places)
    return _Directory(places=places, by_code=by_code, entries=entries)


def all_places() -> tuple[Place, ...]:
    """Every prefecture and municipality, in code order."""
    return _directory().places


def get_place(code: str) -> Place | None:
    """The place with this 6-digit code, or None."""
    return _directory().by_code.get(code)


def prefecture_of(place: Place) -> Place:
    """The prefecture a place belongs to (a prefecture is its own)."""
    return _directory().by_code[place.prefecture_code]


def _tier(entry: _Entry, query: str) -> _Tier | None:
    if query not in entry.haystack:
        return None
    if query in entry.names:
        return _Tier.EXACT_NAME
    if query in entry.stems:
        return _Tier.EXACT_STEM
    if query in entry.readings:
        return _Tier.EXACT_READING
    checks = (
        (_Tier.PREFIX, (entry.bare,), str.startswith),
        (_Tier.QUALIFIED_PREFIX, entry.qualified, str.startswith),
        (_Tier.SUBSTRING, (entry.bare,), str.__contains__),
        (_Tier.QUALIFIED_SUBSTRING, entry.qualified, str.__contains__),
        (_Tier.READING_PREFIX, entry.reading_forms, str.startswith),
        (_Tier.READING_SUBSTRING, entry.reading_forms, str.__contains__),
    )
    for tier, forms, matches in checks:
        if any(matches(form, query) for form in forms):
            return tier
    return None


def _suggestions(query: str, limit: int) -> tuple[Place, ...]:
    """Places whose names or readings are closest to the query; all prefectures if none is."""
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(query)
    scored: list[tuple[float, str, Place]] = []
    for entry in _directory().entries:
        best = 0.0
        for form in (entry.bare, *entry.qualified, *entry.reading_forms):
            matcher.set_seq1(form)
            if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
                best = max(best, matcher.ratio())
        if best > 0:
            scored.append((-best, entry.place.code, entry.place))
    if not scored:
        return tuple(place for place in all_places() if place.is_prefecture)
    scored.sort()
    return tuple(place for _, _, place in scored[:limit])


def search_places(query: str, limit: int = 10) -> SearchResult:
    """Find places by name, reading (kanji or kana, any width) or code.

    The prefecture may come first (「福島県伊達市」, 「福島 伊達」) or, split by a space, last.
    When nothing matches, `suggestions` holds up to `limit` similar places, or all prefectures
    when none is similar at all, so a non-empty query never ends in a dead end.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    tokens = [_normalize(token) for token in query.split()]
    needles = {"".join(tokens), "".join(reversed(tokens))} - {""}
    if not needles:
        return SearchResult(query=query, status=SearchStatus.EMPTY)
    hits: list[tuple[_Tier, str, Place]] = []
    for entry in _directory().entries:
        tiers = [tier for needle in needles if (tier := _tier(entry, needle)) is not None]
        if tiers:
            hits.append((min(tiers), entry.place.code, entry.place))
    if not hits:
        suggestions = _suggestions("".join(tokens), limit)
        return SearchResult(query=query, status=SearchStatus.NOT_FOUND, suggestions=suggestions)
    hits.sort()
    best = hits[0][0]
    unique = best <= _Tier.EXACT_READING and (len(hits) == 1 or hits[1][0] != best)
    return SearchResult(
        query=query,
        status=SearchStatus.UNIQUE if unique else SearchStatus.AMBIGUOUS,
        places=tuple(place for _, _, place in hits[:limit]),
    )
