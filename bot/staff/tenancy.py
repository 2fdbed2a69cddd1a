"""Who is asking, for which tenant, with which role: the one place tenant scoping is decided.

A tenant is a municipality or prefecture (its 6-digit 全国地方公共団体コード) or the platform
(operators). Every request under `/admin` and `/api/v1` gets a `Principal` from the middleware;
every store method that reads tenant data takes a `Tenant` and adds the filter itself:

- `Tenant.owned()`: the filter for the tenant's own records (staff accounts, API keys, later
  templates, benefits, …): exactly the tenant.
- `Tenant.registrant_places`: the places whose registrants the tenant may see: a municipality its
  own; a prefecture itself and all its municipalities; the platform none (operators see national
  figures only).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Literal

from bot.domain.places import all_places, get_place

PLATFORM = "platform"


class Role(StrEnum):
    """What a staff member (or API key) may do; each role includes the ones below it."""

    ADMIN = "admin"  # manages staff and API keys
    EDITOR = "editor"  # drafts content and templates
    VIEWER = "viewer"  # reads

    @property
    def rank(self) -> int:
        return {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank

    @property
    def label(self) -> str:
        return {Role.ADMIN: "管理者", Role.EDITOR: "編集者", Role.VIEWER: "閲覧者"}[self]


TenantKind = Literal["municipality", "prefecture", "platform"]


@dataclass(frozen=True)
class Tenant:
    code: str  # 6-digit code, or PLATFORM
    name: str
    kind: TenantKind

    @classmethod
    def of(cls, code: str) -> Tenant | None:
        """The tenant with this code (a place in the directory, or PLATFORM), or None."""
        return _tenant(code)

    @property
    def is_platform(self) -> bool:
        return self.kind == "platform"

    def owned(self) -> dict[str, Any]:
        """Filter for records the tenant owns (field `tenant`)."""
        return {"tenant": self.code}

    @property
    def registrant_places(self) -> frozenset[str]:
        """Place codes whose registrations the tenant may see (empty for the platform)."""
        return _registrant_places(self.code)

    def sees_place(self, place_code: str) -> bool:
        return place_code in self.registrant_places


@cache
def _tenant(code: str) -> Tenant | None:
    if code == PLATFORM:
        return Tenant(PLATFORM, "運営（全国）", "platform")
    place = get_place(code)
    if place is None:
        return None
    return Tenant(
        place.code, place.display_name, "prefecture" if place.is_prefecture else "municipality"
    )


@cache
def _registrant_places(code: str) -> frozenset[str]:
    place = get_place(code)
    if place is None:  # the platform
        return frozenset()
    if not place.is_prefecture:
        return frozenset({place.code})
    return places_in_prefecture(place.code)


@cache
def places_in_prefecture(prefecture_code: str) -> frozenset[str]:
    """The prefecture and its municipalities (empty when the code is not a prefecture)."""
    place = get_place(prefecture_code)
    if place is None or not place.is_prefecture:
        return frozenset()
    return frozenset(p.code for p in all_places() if p.prefecture_code == place.code)


AuthKind = Literal["session", "api_key"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request: a staff member (session) or an API key."""

    kind: AuthKind
    id: str  # staff account id, or API key id
    label: str  # staff e-mail, or API key name
    tenant: Tenant
    role: Role
    session_id: str | None = None  # the session's stored id (hash of the cookie) for sessions
    csrf_token: str | None = None  # for sessions
    must_change_password: bool = False

    def can(self, required: Role) -> bool:
        return self.role.allows(required)

    @property
    def staff_id(self) -> str | None:
        return self.id if self.kind == "session" else None
