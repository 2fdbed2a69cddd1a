"""Routes each incoming event: follow and unfollow here, everything a resident says to dialogs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.domain.places import get_place
from bot.domain.registration import Tier
from bot.line.incoming import EventHandler, Incoming, Replier
from bot.line.richmenu import RichMenus
from bot.render import Renderer
from bot.storage import Storage

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("bot.router")


class Router:
    def __init__(
        self,
        storage: Storage,
        renderer: Renderer,
        clock: Clock,
        richmenus: RichMenus,
        dialog: EventHandler,
    ) -> None:
        self.storage = storage
        self.renderer = renderer
        self.clock = clock
        self.richmenus = richmenus
        self.dialog = dialog

    async def __call__(self, incoming: Incoming, reply: Replier) -> None:
        if incoming.kind == "follow":
            await self.follow(incoming, reply)
        elif incoming.kind == "unfollow":
            # No reply token and nothing may be sent: only remember the block.
            await self.storage.users.block(incoming.user_id, self.clock.now())
        else:
            await self.dialog(incoming, reply)

    async def follow(self, incoming: Incoming, reply: Replier) -> None:
        before = await self.storage.users.follow(incoming.user_id, self.clock.now())
        registrations = await self.storage.registrations.for_user(incoming.user_id)
        await self.richmenus.sync_user(incoming.user_id, registered=bool(registrations))
        # A record without `followed_at` was made by an unfollow alone (e.g. after the person
        # deleted their data): greet them as new.
        if (before is None or "followed_at" not in before) and not registrations:
            await reply(self.renderer.render("follow/greeting", {}))
            return
        await reply(
            self.renderer.render(
                "follow/welcome_back",
                {
                    "registrations": [
                        {"place": _place_name(r["place_code"]), "tier": Tier(r["tier"]).label}
                        for r in registrations
                    ]
                },
            )
        )


def _place_name(code: str) -> str:
    place = get_place(code)
    return place.display_name if place else code


def build_handler(services: Services) -> EventHandler:
    """The production handler: follow/unfollow here, the rest to the dialog engine."""
    from bot.dialog.engine import build_engine

    dialog = build_engine(
        services.storage,
        services.settings,
        services.clock,
        renderer=services.renderer,
        menus=services.richmenus,
        premium=services.premium,
        news=services.news,
    )
    return Router(services.storage, services.renderer, services.clock, services.richmenus, dialog)
