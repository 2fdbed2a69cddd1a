"""What a staff handler gets: `Call` (the request, its `Principal`, storage, clock, audit).

The principal is resolved by the middleware of `/admin` and `/api/v1` (`bot/staff/web.py`) and
kept under `PRINCIPAL`; handlers never read cookies or headers to find out who is asking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.app import CLOCK, SETTINGS, STORAGE
from bot.clock import Clock
from bot.settings import Settings
from bot.staff.accounts import LoginLimits
from bot.staff.audit import Action, Actor, record
from bot.staff.sessions import SessionPolicy
from bot.staff.tenancy import Principal, Tenant
from bot.storage import Storage


@dataclass
class StaffConfig:
    """Limits of the staff side; tests may replace it on the application before start."""

    login: LoginLimits = field(default_factory=LoginLimits)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)


STAFF_CONFIG = web.AppKey("staff_config", StaffConfig)
PRINCIPAL = web.RequestKey("staff_principal", Principal)
# Set once a handler has started streaming its response: errors can no longer be answered.
STREAMING = web.RequestKey("staff_streaming", bool)


def client_ip(request: web.Request) -> str:
    """The peer address. Behind a proxy, run aiohttp with a trusted forwarded-header setup."""
    return request.remote or "unknown"


def secure_cookies(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


class Call:
    """One authenticated request to a staff handler (API operation or console page)."""

    def __init__(self, request: web.Request, principal: Principal) -> None:
        self.request = request
        self.principal = principal

    @property
    def storage(self) -> Storage:
        return self.request.config_dict[STORAGE]

    @property
    def clock(self) -> Clock:
        return self.request.config_dict[CLOCK]

    @property
    def settings(self) -> Settings:
        return self.request.config_dict[SETTINGS]

    @property
    def config(self) -> StaffConfig:
        return self.request.config_dict[STAFF_CONFIG]

    @property
    def tenant(self) -> Tenant:
        """The tenant every query of this call is scoped to."""
        return self.principal.tenant

    @property
    def ip(self) -> str:
        return client_ip(self.request)

    @property
    def actor(self) -> Actor:
        return Actor.of(self.principal)

    def now(self) -> datetime:
        return self.clock.now()

    def param(self, name: str) -> str:
        """A path parameter, e.g. `{staff_id}`."""
        return self.request.match_info[name]

    async def audit(self, action: Action, target: str = "", **details: Any) -> None:
        await record(
            self.storage,
            self.now(),
            action,
            tenant=self.tenant.code,
            actor=self.actor,
            target=target,
            ip=self.ip,
            details=details,
        )
