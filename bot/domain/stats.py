"""The 関係人口 counters: which counters a person's registrations contribute to (no I/O).

A counter is a (scope, field) pair.

- **Scopes**: `place:<code>` (the registrations *at* one municipality or prefecture),
  `pref:<code>` (everything within a prefecture: its own registrations and those of all its
  municipalities) and `nation` (everything).
- **Fields**: `"<measure>|<dimension>|<value>"`. The measure is `r` (延べ人数: registrations) or
  `p` (実人数: distinct people). Dimensions: `all` (value `*`), `tier`, `type` (multi-select:
  one registration counts once under each of its types), `res` (the prefecture of residence),
  `age`, `conn` (connection), and `place` (in a prefecture scope: per place of the prefecture)
  and `area` (in the nation scope: per prefecture).

`r` counts registrations; `p` counts a person once per counter when at least one of their
registrations contributes to it (so in a prefecture, a person registered with two of its towns is
one person and two registrations). Since a person registers at most once per place, `p` equals
`r` in a `place:` scope.

`contributions(registrations of one person)` gives everything that person adds to the counters;
the difference between two states of one person is the change to apply. The same function is the
recount's definition of the truth.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.places import get_place
from bot.domain.registration import AgeBand, Connection, RelationshipType, Tier

NATION = "nation"
REGISTRATIONS = "r"  # 延べ人数
PEOPLE = "p"  # 実人数

ALL = "all"
TIER = "tier"
TYPE = "type"
RESIDENCE = "res"
AGE = "age"
CONNECTION = "conn"
PLACE = "place"  # prefecture scopes only
AREA = "area"  # the nation scope only
DIMENSIONS = (TIER, TYPE, RESIDENCE, AGE, CONNECTION)
EVERY = "*"
UNKNOWN = "unknown"

# Government targets (MIC): 10 million people, 100 million registrations within ten years.
TARGET_PEOPLE = 10_000_000
TARGET_REGISTRATIONS = 100_000_000

COUNTED_STATUS = "active"
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_-]{1,40}")

Key = tuple[str, str]  # (scope, field)


def place_scope(code: str) -> str:
    return f"place:{code}"


def pref_scope(code: str) -> str:
    return f"pref:{code}"


def field(measure: str, dimension: str, value: str = EVERY) -> str:
    return f"{measure}|{dimension}|{value}"


def parse_field(name: str) -> tuple[str, str, str] | None:
    """(measure, dimension, value) of a field name, or None when it is not one."""
    parts = name.split("|")
    if len(parts) != 3 or parts[0] not in (REGISTRATIONS, PEOPLE):
        return None
    return parts[0], parts[1], parts[2]


def _value(raw: Any) -> str:
    """A value safe as part of a field name (no `.` or `$`); anything else is UNKNOWN."""
    text = str(raw or "")
    return text if _SAFE_VALUE.fullmatch(text) else UNKNOWN


def residence_prefecture(residence_code: str) -> str:
    """The code of the prefecture the person lives in, or UNKNOWN."""
    place = get_place(residence_code) if residence_code else None
    return place.prefecture_code if place is not None else UNKNOWN


@dataclass(frozen=True)
class Facts:
    """What of a registration the counters depend on."""

    place_code: str
    tier: str
    types: tuple[str, ...]  # sorted, distinct
    residence_code: str
    age_band: str
    connection: str

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Facts | None:
        """The facts of a registration document; None when it does not count (not active, or a
        place outside the directory)."""
        if doc.get("status") != COUNTED_STATUS:
            return None
        code = str(doc.get("place_code") or "")
        if get_place(code) is None:
            return None
        types = doc.get("types") or []
        return cls(
            place_code=code,
            tier=_value(doc.get("tier")),
            types=tuple(sorted({_value(t) for t in types})) if isinstance(types, list) else (),
            residence_code=str(doc.get("residence_code") or ""),
            age_band=_value(doc.get("age_band")),
            connection=_value(doc.get("connection")),
        )

    def to_doc(self) -> dict[str, str]:
        """The ledger form (flat strings: no nested arrays)."""
        return {
            "place": self.place_code,
            "tier": self.tier,
            "types": ",".join(self.types),
            "res": self.residence_code,
            "age": self.age_band,
            "conn": self.connection,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Facts:
        types = str(doc.get("types") or "")
        return cls(
            place_code=str(doc.get("place") or ""),
            tier=str(doc.get("tier") or ""),
            types=tuple(t for t in types.split(",") if t),
            residence_code=str(doc.get("res") or ""),
            age_band=str(doc.get("age") or ""),
            connection=str(doc.get("conn") or ""),
        )


def scopes_of(place_code: str) -> tuple[str, ...]:
    """The scopes a registration at this place counts in: the place, its prefecture, the nation."""
    place = get_place(place_code)
    if place is None:
        return ()
    return (place_scope(place.code), pref_scope(place.prefecture_code), NATION)


def _keys(facts: Facts) -> Iterator[tuple[str, str, str]]:
    """(scope, dimension, value) of every counter one registration counts in."""
    place = get_place(facts.place_code)
    if place is None:
        return
    values: list[tuple[str, str]] = [
        (ALL, EVERY),
        (TIER, facts.tier),
        *((TYPE, t) for t in facts.types),
        (RESIDENCE, residence_prefecture(facts.residence_code)),
        (AGE, facts.age_band),
        (CONNECTION, facts.connection),
    ]
    for scope in scopes_of(place.code):
        for dimension, value in values:
            yield scope, dimension, value
    yield pref_scope(place.prefecture_code), PLACE, place.code
    yield NATION, AREA, place.prefecture_code


def contributions(registrations: Iterable[Facts]) -> Counter[Key]:
    """What one person's registrations add to the counters: per counter, `r` the number of
    registrations counted and `p` 1 when any is."""
    out: Counter[Key] = Counter()
    people: set[Key] = set()
    for facts in registrations:
        for scope, dimension, value in _keys(facts):
            out[(scope, field(REGISTRATIONS, dimension, value))] += 1
            people.add((scope, field(PEOPLE, dimension, value)))
    for key in people:
        out[key] = 1
    return out


def difference(before: Mapping[Key, int], after: Mapping[Key, int]) -> dict[Key, int]:
    """after − before, without the zeros: what to add to the counters."""
    delta: dict[Key, int] = {}
    for key in before.keys() | after.keys():
        change = after.get(key, 0) - before.get(key, 0)
        if change:
            delta[key] = change
    return delta


def by_scope(delta: Mapping[Key, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (scope, name), n in delta.items():
        out.setdefault(scope, {})[name] = n
    return out


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    value: str
    label: str
    people: int  # 実人数
    registrations: int  # 延べ人数


@dataclass(frozen=True)
class Figures:
    """The summed counters of one scope (negative transient values read as 0)."""

    scope: str
    values: Mapping[str, int]

    def get(self, measure: str, dimension: str, value: str = EVERY) -> int:
        return max(0, int(self.values.get(field(measure, dimension, value), 0)))

    @property
    def people(self) -> int:
        return self.get(PEOPLE, ALL)

    @property
    def registrations(self) -> int:
        return self.get(REGISTRATIONS, ALL)

    def values_of(self, dimension: str) -> set[str]:
        found: set[str] = set()
        for name in self.values:
            parsed = parse_field(name)
            if parsed is not None and parsed[1] == dimension:
                found.add(parsed[2])
        return found

    def breakdown(self, dimension: str) -> list[Count]:
        """Counts per value of a dimension: enum dimensions in their fixed order (zeros included),
        places and prefectures by size (zeros left out)."""
        order = _ORDER.get(dimension)
        seen = self.values_of(dimension)
        if order is not None:
            values = [*order, *sorted(seen - set(order))]
            counts = [self._count(dimension, v) for v in values]
            return [c for c in counts if c.value in order or c.registrations or c.people]
        counts = [self._count(dimension, v) for v in seen]
        counts = [c for c in counts if c.registrations or c.people]
        counts.sort(key=lambda c: (-c.people, -c.registrations, c.value))
        return counts

    def _count(self, dimension: str, value: str) -> Count:
        return Count(
            value=value,
            label=label(dimension, value),
            people=self.get(PEOPLE, dimension, value),
            registrations=self.get(REGISTRATIONS, dimension, value),
        )


def top(counts: list[Count], n: int, other_label: str = "その他") -> list[Count]:
    """The first n, and the rest summed as その他 (people summed too: an upper bound when one
    person may fall in several values; the dimensions cut this way are per registration)."""
    if len(counts) <= n:
        return counts
    rest = counts[n:]
    other = Count(
        value="other",
        label=other_label,
        people=sum(c.people for c in rest),
        registrations=sum(c.registrations for c in rest),
    )
    return [*counts[:n], other]


_ORDER: dict[str, tuple[str, ...]] = {
    TIER: tuple(t.value for t in Tier),
    TYPE: tuple(t.value for t in RelationshipType),
    AGE: tuple(a.value for a in AgeBand),
    CONNECTION: tuple(c.value for c in Connection),
}

DIMENSION_LABELS = {
    TIER: "区分",
    TYPE: "関わり方",
    RESIDENCE: "お住まいの都道府県",
    AGE: "年代",
    CONNECTION: "きっかけ",
    PLACE: "市区町村",
    AREA: "都道府県",
}


def label(dimension: str, value: str) -> str:
    """Plain Japanese label of a value (「不明」 for values outside the known ones)."""
    try:
        if dimension == TIER:
            return Tier(value).label
        if dimension == TYPE:
            return RelationshipType(value).label.split("（")[0]
        if dimension == AGE:
            return AgeBand(value).label
        if dimension == CONNECTION:
            return Connection(value).label
    except ValueError:
        return "不明"
    if dimension in (RESIDENCE, AREA, PLACE):
        place = get_place(value)
        if place is None:
            return "不明"
        return place.name
    return value
