"""Per-user rich menus that follow the resident's state.

Not registered: 登録する・使い方 (the default menu for everyone). Registered: 登録証・滞在予定・特典・
お知らせ・設定・使い方, linked to the user. Menus are created once through the API (the first
process to start claims the work; the others wait and reuse the stored ids) and a new layout gets
a new version in its name, so a deploy never edits a menu users are looking at.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from linebot.v3.messaging import (
    ApiException,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    MessageAction,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
)
from PIL import Image, ImageDraw, ImageFont

from bot.background import stop_if_cancelled
from bot.clock import Clock
from bot.storage import Storage

log = logging.getLogger("bot.richmenu")

LAYOUT_VERSION = 1
WIDTH = 2500
FONT_PATHS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
GREEN = (6, 199, 85)
PALE = (234, 248, 239)


@dataclass(frozen=True)
class MenuSpec:
    kind: str
    rows: int
    cols: int
    labels: tuple[str, ...]  # each tile sends its label as a message the dialogs understand

    @property
    def name(self) -> str:
        return f"furusato-{self.kind}-v{LAYOUT_VERSION}"

    @property
    def height(self) -> int:
        return 843 * self.rows


GUEST = MenuSpec("guest", 1, 2, ("登録する", "使い方"))
MEMBER = MenuSpec("member", 2, 3, ("登録証", "滞在予定", "特典", "お知らせ", "設定", "使い方"))


def tiles(spec: MenuSpec) -> list[tuple[str, int, int, int, int]]:
    """Each label with its bounds (x, y, width, height), left to right, top to bottom."""
    # Edges rounded from the exact fractions, so the tiles cover the whole image (2500 / 3).
    xs = [round(c * WIDTH / spec.cols) for c in range(spec.cols + 1)]
    ys = [round(r * spec.height / spec.rows) for r in range(spec.rows + 1)]
    out = []
    for i, label in enumerate(spec.labels):
        col, row = i % spec.cols, i // spec.cols
        out.append((label, xs[col], ys[row], xs[col + 1] - xs[col], ys[row + 1] - ys[row]))
    return out


def menu_request(spec: MenuSpec) -> RichMenuRequest:
    return RichMenuRequest(
        size=RichMenuSize(width=WIDTH, height=spec.height),
        selected=True,
        name=spec.name,
        chatBarText="メニュー",
        areas=[
            RichMenuArea(
                bounds=RichMenuBounds(x=x, y=y, width=w, height=h),
                action=MessageAction(label=label, text=label),
            )
            for label, x, y, w, h in tiles(spec)
        ],
    )


def menu_image(spec: MenuSpec) -> bytes:
    """A clean PNG of labelled tiles (drawn here so no design file has to be kept in sync)."""
    image = Image.new("RGB", (WIDTH, spec.height), PALE)
    draw = ImageDraw.Draw(image)
    font_path = next((p for p in FONT_PATHS if p.exists()), None)
    font = ImageFont.truetype(str(font_path), 130) if font_path else ImageFont.load_default()
    for n, (label, x, y, w, h) in enumerate(tiles(spec)):
        fill = GREEN if n == 0 else PALE
        draw.rectangle((x + 12, y + 12, x + w - 12, y + h - 12), fill=fill, outline=GREEN, width=8)
        draw.text(
            (x + w / 2, y + h / 2),
            label,
            font=font,
            fill=(255, 255, 255) if n == 0 else (20, 20, 20),
            anchor="mm",
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


class RichMenus:
    def __init__(
        self, api: AsyncMessagingApi, blob: AsyncMessagingApiBlob, storage: Storage, clock: Clock
    ) -> None:
        self.api = api
        self.blob = blob
        self.storage = storage
        self.clock = clock
        self.ids: dict[str, str] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Set the menus up in the background: the process serves webhooks meanwhile, and an
        unreachable LINE API at start-up delays menus instead of stopping the process."""
        self._task = asyncio.create_task(self._ensure_until_done())

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _ensure_until_done(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.ensure()
                return
            except Exception as exc:
                stop_if_cancelled()
                log.warning(
                    "rich menus not set up yet; retrying",
                    extra={"error": type(exc).__name__, "delay_s": delay},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def ensure(self) -> None:
        """Make sure both menus exist on LINE; set the guest menu as everyone's default."""
        for spec in (GUEST, MEMBER):
            self.ids[spec.kind] = await self._ensure_one(spec)
        await self.api.set_default_rich_menu(self.ids[GUEST.kind])
        self.ready.set()

    async def _ensure_one(self, spec: MenuSpec) -> str:
        lease = f"richmenu:{spec.name}"
        for _ in range(60):
            known = await self.storage.rich_menus.get(spec.name)
            if known and await self._exists(known):
                return known
            owner = f"setup:{id(self)}"
            if await self.storage.leases.acquire(
                lease, owner, self.clock.now(), timedelta(seconds=60)
            ):
                try:
                    created = await self._create(spec)
                    await self.storage.rich_menus.put(spec.name, created, self.clock.now())
                    return created
                finally:
                    await self.storage.leases.release(lease, owner)
            await asyncio.sleep(0.5)  # another process is creating it
        raise RuntimeError(f"rich menu {spec.name} was not created in time")

    async def _exists(self, rich_menu_id: str) -> bool:
        try:
            await self.api.get_rich_menu(rich_menu_id)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def _create(self, spec: MenuSpec) -> str:
        response = await self.api.create_rich_menu(menu_request(spec))
        rich_menu_id = str(response.rich_menu_id)
        await self.blob.set_rich_menu_image(
            rich_menu_id, body=menu_image(spec), _headers={"Content-Type": "image/png"}
        )
        log.info("rich menu created", extra={"menu": spec.name, "rich_menu_id": rich_menu_id})
        return rich_menu_id

    async def sync_user(self, user_id: str, registered: bool) -> None:
        """Registered residents get the member menu; others fall back to the default."""
        if not self.ready.is_set():
            log.warning("rich menus not ready; menu of a user left as it is")
            return
        if registered:
            await self.api.link_rich_menu_id_to_user(user_id, self.ids[MEMBER.kind])
            return
        try:
            await self.api.unlink_rich_menu_id_from_user(user_id)
        except ApiException as exc:
            if exc.status != 404:  # nothing linked: already on the default menu
                raise
