"""The municipality directory and its search."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.places import (
    Place,
    SearchStatus,
    all_places,
    get_place,
    prefecture_of,
    search_places,
)

PLACES = all_places()


def test_counts() -> None:
    assert len(PLACES) == 1788
    assert sum(place.is_prefecture for place in PLACES) == 47
    assert sum(not place.is_prefecture for place in PLACES) == 1741
    assert len({place.code for place in PLACES}) == 1788


def test_place_fields() -> None:
    kesennuma = get_place("042056")
    assert kesennuma == Place(
        code="042056",
        name="気仙沼市",
        prefecture="宮城県",
        prefecture_code="040002",
        kana="けせんぬまし",
        is_prefecture=False,
    )
    assert kesennuma.display_name == "宮城県気仙沼市"
    fukushima = get_place("070009")
    assert fukushima is not None
    assert fukushima.is_prefecture
    assert fukushima.display_name == "福島県"
    assert fukushima.kana == "ふくしまけん"
    assert fukushima.prefecture_code == "070009"
    assert get_place("999999") is None
    assert get_place("") is None


def test_every_place_belongs_to_a_prefecture() -> None:
    for place in PLACES:
        prefecture = prefecture_of(place)
        assert prefecture.is_prefecture
        assert prefecture.name == place.prefecture
        assert prefecture.code[:2] == place.code[:2]
        assert len(place.code) == 6
        assert place.code.isdigit()


KESENNUMA_QUERIES = ["けせんぬま", "ケセンヌマ", "ｹｾﾝﾇﾏ", "気仙沼", "気仙沼市", " 気仙沼 "]


@pytest.mark.parametrize("query", KESENNUMA_QUERIES)
def test_kesennuma_in_any_script(query: str) -> None:
    result = search_places(query)
    assert result.status is SearchStatus.UNIQUE
    assert result.place is not None
    assert result.place.code == "042056"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("福島県伊達市", "072133"),
        ("福島 伊達", "072133"),
        ("福島　伊達市", "072133"),
        ("伊達市 福島県", "072133"),
        ("ふくしま だて", "072133"),
        ("北海道伊達市", "012335"),
        ("福島県", "070009"),
        ("ふくしまけん", "070009"),
        ("ほっかいどう", "010006"),
        ("東京", "130001"),
        ("福島市", "072010"),
        ("龍ヶ崎市", "082082"),  # the data writes 龍ケ崎市
        ("鶴ケ島", "112411"),  # the data writes 鶴ヶ島市
        ("南アルプス", "192082"),
        ("みなみあるぷす", "192082"),
        ("042056", "042056"),
    ],
)
def test_unique_hits(query: str, code: str) -> None:
    result = search_places(query)
    assert result.status is SearchStatus.UNIQUE, result
    assert result.place is not None
    assert result.place.code == code
    assert result.places[0].code == code


def test_prefecture_search_lists_the_prefecture_first() -> None:
    result = search_places("福島県")
    assert result.place is not None
    assert result.place.is_prefecture
    assert [place.prefecture for place in result.places] == ["福島県"] * len(result.places)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("府中", {"東京都府中市", "広島県府中市", "広島県府中町"}),
        ("府中市", {"東京都府中市", "広島県府中市"}),
        ("ふちゅう", {"東京都府中市", "広島県府中市", "広島県府中町"}),
        ("伊達市", {"北海道伊達市", "福島県伊達市"}),
        ("伊達", {"北海道伊達市", "福島県伊達市"}),
        ("だてし", {"北海道伊達市", "福島県伊達市"}),
        ("京都", {"京都府", "京都府京都市"}),
    ],
)
def test_ambiguous(query: str, expected: set[str]) -> None:
    result = search_places(query)
    assert result.status is SearchStatus.AMBIGUOUS
    assert result.place is None
    shown = [place.display_name for place in result.places]
    assert set(shown[: len(expected)]) == expected
    assert len(set(shown)) == len(shown)


def test_partial_matches_are_candidates_not_hits() -> None:
    result = search_places("気仙")
    assert result.status is SearchStatus.AMBIGUOUS
    assert result.places[0].code == "042056"
    assert search_places("けせん").places[0].code == "042056"


def test_ranking_exact_before_prefix_before_substring() -> None:
    names = [place.display_name for place in search_places("大和", limit=50).places]
    exact = names.index("神奈川県大和市")
    prefix = names.index("奈良県大和郡山市")
    substring = names.index("東京都東大和市")
    assert exact < prefix < substring


def test_limit() -> None:
    assert len(search_places("市", limit=5).places) == 5
    with pytest.raises(ValueError):
        search_places("市", limit=0)


@pytest.mark.parametrize("query", ["", "   ", "\u3000", "\t\n"])
def test_empty_query(query: str) -> None:
    result = search_places(query)
    assert result.status is SearchStatus.EMPTY
    assert result.places == ()
    assert result.suggestions == ()
    assert result.place is None


def test_typo_gets_suggestions() -> None:
    result = search_places("きせんぬま")
    assert result.status is SearchStatus.NOT_FOUND
    assert result.places == ()
    assert "宮城県気仙沼市" in [place.display_name for place in result.suggestions][:3]


def test_kanji_typo_gets_suggestions() -> None:
    result = search_places("気仙沼町")
    assert result.status is SearchStatus.NOT_FOUND
    assert result.suggestions[0].code == "042056"


def test_nothing_similar_offers_the_prefectures() -> None:
    result = search_places("猫")
    assert result.status is SearchStatus.NOT_FOUND
    assert len(result.suggestions) == 47
    assert all(place.is_prefecture for place in result.suggestions)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda text: text.strip()))
def test_any_nonblank_query_is_never_a_dead_end(query: str) -> None:
    result = search_places(query)
    assert result.status is not SearchStatus.EMPTY
    assert result.places or result.suggestions
    assert (result.place is not None) == (result.status is SearchStatus.UNIQUE)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PLACES), st.booleans())
def test_display_name_finds_the_place_first(place: Place, spaced: bool) -> None:
    query = place.display_name
    if spaced and not place.is_prefecture:
        query = f"{place.prefecture} {place.name}"
    result = search_places(query)
    assert result.status is SearchStatus.UNIQUE
    assert result.places[0] == place


def test_every_display_name_is_a_unique_hit() -> None:
    for place in PLACES:
        assert search_places(place.display_name).place == place, place


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PLACES))
def test_reading_finds_the_place(place: Place) -> None:
    result = search_places(place.kana, limit=50)
    assert result.status in (SearchStatus.UNIQUE, SearchStatus.AMBIGUOUS)
    assert place in result.places
