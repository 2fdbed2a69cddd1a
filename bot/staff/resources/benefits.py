"""Benefits (特典): `/api/v1/benefits` and the 特典 console page.

A benefit is saved as a draft; publishing it shows it to eligible residents in the chat and has
the worker tell each eligible resident who allows 「特典」 notices once (`bot/benefits.py`).
Unpublishing hides it again; publishing it again tells only residents not told before.
"""

from __future__ import annotations

from datetime import date, datetime

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from bot.domain.benefits import (
    DEFAULT_HOW_TO_USE,
    Benefit,
    BenefitKind,
    Eligibility,
    PartnerShop,
)
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage.benefits import StoredBenefit
from bot.storage.questions import QUESTION_ID

routes = ApiRoutes(
    "benefits", "特典（公開すると対象の登録者に1回だけお知らせします）", municipal_only=True
)
pages = Pages(municipal_only=True)

BENEFIT_ID = QUESTION_ID  # 1-40 of a-z, 0-9, _ and -
MAX_TITLE = 100
MAX_DESCRIPTION = 2000
MAX_HOW_TO_USE = 500
MAX_SHOPS = 300

console.NOTICES.update(
    {
        "benefit_saved": "特典を保存しました（公開するまで住民には表示されません）。",
        "benefit_removed": "特典を削除しました。",
        "benefit_published": "特典を公開しました。対象の方へのお知らせは順に送られます。",
        "benefit_unpublished": "特典を非公開にしました。",
    }
)


class ShopIn(ApiModel):
    name: str = Field(min_length=1, max_length=100, description="店舗・施設の名前")
    address: str = Field(default="", max_length=200, description="住所")


class EligibilityIn(ApiModel):
    tiers: list[Tier] = Field(
        default_factory=lambda: list(Tier), min_length=1, description="対象の登録区分"
    )
    types: list[RelationshipType] = Field(
        default_factory=list, description="対象の関わり方（空ならどなたでも）"
    )
    outside_prefecture: bool = Field(default=False, description="県外にお住まいの方に限る")
    min_days_registered: int = Field(default=0, ge=0, le=3650, description="登録からの日数")
    program_id: str | None = Field(default=None, description="連携が必要な既存の取組のID")
    age_bands: list[AgeBand] = Field(default_factory=list, description="対象の年代（空なら全年代）")


class BenefitIn(ApiModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE, description="特典の名前")
    description: str = Field(default="", max_length=MAX_DESCRIPTION, description="内容")
    kind: BenefitKind = Field(description="種類")
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn, description="利用の条件")
    valid_from: date | None = Field(default=None, description="利用できる最初の日")
    valid_until: date | None = Field(default=None, description="利用できる最後の日")
    partner_shops: list[ShopIn] = Field(
        default_factory=list, max_length=MAX_SHOPS, description="使えるお店・施設"
    )
    how_to_use: str = Field(
        default=DEFAULT_HOW_TO_USE, max_length=MAX_HOW_TO_USE, description="使い方"
    )

    @model_validator(mode="after")
    def period_in_order(self) -> BenefitIn:
        if not self.title.strip():
            raise ValueError("特典の名前を入力してください")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("利用期間の終わりが始まりより前になっています")
        return self


class ShopOut(BaseModel):
    name: str
    address: str


class EligibilityOut(BaseModel):
    tiers: list[str]
    types: list[str]
    outside_prefecture: bool
    min_days_registered: int
    program_id: str | None
    program_name: str
    age_bands: list[str]


class BenefitOut(BaseModel):
    benefit_id: str
    title: str
    description: str
    kind: str
    kind_label: str
    eligibility: EligibilityOut
    valid_from: date | None
    valid_until: date | None
    partner_shops: list[ShopOut]
    how_to_use: str
    status: str
    published_at: datetime | None
    notified: int = Field(description="お知らせを送った（送る予定の）登録者の数")

    @classmethod
    def of(cls, stored: StoredBenefit, notified: int = 0) -> BenefitOut:
        b = stored.benefit
        rule = b.eligibility
        return cls(
            benefit_id=b.id,
            title=b.title,
            description=b.description,
            kind=b.kind.value,
            kind_label=b.kind.label,
            eligibility=EligibilityOut(
                tiers=sorted(t.value for t in rule.tiers),
                types=sorted(t.value for t in rule.types),
                outside_prefecture=rule.outside_prefecture,
                min_days_registered=rule.min_days_registered,
                program_id=rule.program_id,
                program_name=rule.program_name,
                age_bands=sorted(a.value for a in rule.age_bands),
            ),
            valid_from=b.valid_from,
            valid_until=b.valid_until,
            partner_shops=[ShopOut(name=s.name, address=s.address) for s in b.partner_shops],
            how_to_use=b.how_to_use,
            status=stored.status,
            published_at=stored.published_at,
            notified=notified,
        )


class BenefitList(BaseModel):
    items: list[BenefitOut]


def _benefit_id(call: Call) -> str:
    """The id of a benefit being saved; looking one up takes any id (a malformed one is 404)."""
    benefit_id = call.param("benefit_id")
    if not BENEFIT_ID.fullmatch(benefit_id):
        raise ApiError(
            422,
            "invalid_benefit_id",
            "特典IDは半角の英小文字・数字・_・- で40文字までです。",
            "benefit_id",
        )
    return benefit_id


async def _make(call: Call, place: str, benefit_id: str, body: BenefitIn) -> Benefit:
    rule = body.eligibility
    program_name = ""
    if rule.program_id:
        program = await call.storage.programs.get(rule.program_id)
        if program is None or program.program.place_code != place:
            raise ApiError(
                422,
                "unknown_program",
                "指定の既存の取組が見つかりません。先に「既存の取組」で登録してください。",
                "eligibility.program_id",
            )
        program_name = program.program.name
    return Benefit(
        id=benefit_id,
        municipality_code=place,
        title=body.title.strip(),
        description=body.description.strip(),
        kind=body.kind,
        eligibility=Eligibility(
            tiers=frozenset(rule.tiers),
            types=frozenset(rule.types),
            outside_prefecture=rule.outside_prefecture,
            min_days_registered=rule.min_days_registered,
            program_id=rule.program_id or None,
            program_name=program_name,
            age_bands=frozenset(rule.age_bands),
        ),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        partner_shops=tuple(
            PartnerShop(s.name.strip(), s.address.strip()) for s in body.partner_shops
        ),
        how_to_use=body.how_to_use.strip() or DEFAULT_HOW_TO_USE,
    )


async def _save(call: Call, benefit_id: str, body: BenefitIn) -> StoredBenefit:
    place = call.tenant.code
    benefit = await _make(call, place, benefit_id, body)
    stored = await call.storage.benefits.put(benefit, call.now())
    await call.audit(Action.BENEFIT_SAVED, benefit_id)
    return stored


async def _out(call: Call, stored: StoredBenefit) -> BenefitOut:
    return BenefitOut.of(stored, await call.storage.benefit_notices.count_for(stored.key))


@routes.get("/benefits", response=BenefitList, role=Role.VIEWER, summary="特典の一覧")
async def list_benefits(call: Call) -> BenefitList:
    items = await call.storage.benefits.for_place(call.tenant.code)
    return BenefitList(items=[await _out(call, stored) for stored in items])


@routes.get(
    "/benefits/{benefit_id}", response=BenefitOut, role=Role.VIEWER, summary="特典を1件取得"
)
async def get_benefit(call: Call) -> BenefitOut:
    stored = await call.storage.benefits.get(call.tenant.code, call.param("benefit_id"))
    if stored is None:
        raise not_found()
    return await _out(call, stored)


@routes.put(
    "/benefits/{benefit_id}",
    body=BenefitIn,
    response=BenefitOut,
    role=Role.EDITOR,
    summary="特典を追加・変更（新しい特典は非公開で保存）",
)
async def put_benefit(call: Call, body: BenefitIn) -> BenefitOut:
    return await _out(call, await _save(call, _benefit_id(call), body))


@routes.delete("/benefits/{benefit_id}", role=Role.EDITOR, summary="特典を削除")
async def delete_benefit(call: Call) -> None:
    benefit_id = call.param("benefit_id")
    if not await call.storage.benefits.remove(call.tenant.code, benefit_id):
        raise not_found()
    await call.audit(Action.BENEFIT_REMOVED, benefit_id)


@routes.post(
    "/benefits/{benefit_id}/publish",
    response=BenefitOut,
    role=Role.EDITOR,
    summary="特典を公開（対象の登録者に1回だけお知らせ）",
)
async def publish_benefit(call: Call) -> BenefitOut:
    benefit_id = call.param("benefit_id")
    stored = await call.storage.benefits.publish(call.tenant.code, benefit_id, call.now())
    if stored is None:
        raise not_found()
    await call.audit(Action.BENEFIT_PUBLISHED, benefit_id)
    return await _out(call, stored)


@routes.post(
    "/benefits/{benefit_id}/unpublish",
    response=BenefitOut,
    role=Role.EDITOR,
    summary="特典を非公開にする",
)
async def unpublish_benefit(call: Call) -> BenefitOut:
    benefit_id = call.param("benefit_id")
    stored = await call.storage.benefits.unpublish(call.tenant.code, benefit_id, call.now())
    if stored is None:
        raise not_found()
    await call.audit(Action.BENEFIT_UNPUBLISHED, benefit_id)
    return await _out(call, stored)


# --- console --------------------------------------------------------------------------------------

LABELS = {
    "benefit_id": "特典ID",
    "title": "特典の名前",
    "description": "内容",
    "kind": "種類",
    "valid_from": "利用開始日",
    "valid_until": "利用終了日",
    "how_to_use": "使い方",
    "partner_shops": "使えるお店・施設",
    "min_days_registered": "登録からの日数",
}
FORM_FIELDS = (
    "benefit_id",
    "title",
    "description",
    "kind",
    "valid_from",
    "valid_until",
    "how_to_use",
    "partner_shops",
    "min_days_registered",
    "program_id",
)


def _blank_values() -> dict[str, object]:
    return {
        "benefit_id": "",
        "title": "",
        "description": "",
        "kind": BenefitKind.SHOP_DISCOUNT.value,
        "valid_from": "",
        "valid_until": "",
        "how_to_use": DEFAULT_HOW_TO_USE,
        "partner_shops": "",
        "min_days_registered": "0",
        "program_id": "",
        "tiers": [t.value for t in Tier],
        "types": [],
        "age_bands": [],
        "outside_prefecture": False,
    }


def _values_of(stored: StoredBenefit) -> dict[str, object]:
    b = stored.benefit
    rule = b.eligibility
    return {
        "benefit_id": b.id,
        "title": b.title,
        "description": b.description,
        "kind": b.kind.value,
        "valid_from": b.valid_from.isoformat() if b.valid_from else "",
        "valid_until": b.valid_until.isoformat() if b.valid_until else "",
        "how_to_use": b.how_to_use,
        "partner_shops": "\n".join(
            f"{s.name},{s.address}" if s.address else s.name for s in b.partner_shops
        ),
        "min_days_registered": str(rule.min_days_registered),
        "program_id": rule.program_id or "",
        "tiers": [t.value for t in rule.tiers],
        "types": [t.value for t in rule.types],
        "age_bands": [a.value for a in rule.age_bands],
        "outside_prefecture": rule.outside_prefecture,
    }


def parse_shops(text: str) -> list[ShopIn]:
    """One shop a line: 「名前,住所」 (the address is optional; 「、」「，」 also separate)."""
    shops: list[ShopIn] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        for separator in (",", "，", "、", "\t"):
            if separator in line:
                name, _, address = line.partition(separator)
                break
        else:
            name, address = line, ""
        shops.append(ShopIn(name=name.strip(), address=address.strip()))
    return shops


async def _render(
    call: PageCall,
    *,
    status: int = 200,
    error: str = "",
    values: dict[str, object] | None = None,
) -> web.Response:
    place = call.tenant.code
    items = [
        (stored, await call.storage.benefit_notices.count_for(stored.key))
        for stored in await call.storage.benefits.for_place(place)
    ]
    return call.render(
        "benefits.html",
        status=status,
        title="特典",
        items=items,
        error=error,
        values=values or _blank_values(),
        kinds=list(BenefitKind),
        tiers=list(Tier),
        types=list(RelationshipType),
        age_bands=list(AgeBand),
        programs=await call.storage.programs.for_place(place),
        can_edit=call.principal.can(Role.EDITOR),
    )


@pages.get("/benefits", role=Role.VIEWER, nav="特典", order=45)
async def benefits_page(call: PageCall) -> web.StreamResponse:
    edit = call.request.query.get("edit", "")
    values = None
    if edit:
        stored = await call.storage.benefits.get(call.tenant.code, edit)
        values = _values_of(stored) if stored is not None else None
    return await _render(call, values=values)


@pages.post("/benefits", role=Role.EDITOR)
async def benefits_save(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values: dict[str, object] = {key: form.get(key, "") for key in FORM_FIELDS}
    values["tiers"] = form.getall("tiers", [])
    values["types"] = form.getall("types", [])
    values["age_bands"] = form.getall("age_bands", [])
    values["outside_prefecture"] = form.get("outside_prefecture") == "on"
    benefit_id = str(values["benefit_id"]).strip()
    if not BENEFIT_ID.fullmatch(benefit_id):
        return await _render(
            call,
            status=422,
            values=values,
            error="特典IDは半角の英小文字・数字・_・- で40文字までにしてください。",
        )
    try:
        body = BenefitIn.model_validate(
            {
                "title": values["title"],
                "description": values["description"],
                "kind": values["kind"],
                "valid_from": values["valid_from"] or None,
                "valid_until": values["valid_until"] or None,
                "how_to_use": values["how_to_use"] or DEFAULT_HOW_TO_USE,
                "partner_shops": parse_shops(str(values["partner_shops"])),
                "eligibility": {
                    "tiers": values["tiers"],
                    "types": values["types"],
                    "age_bands": values["age_bands"],
                    "outside_prefecture": values["outside_prefecture"],
                    "min_days_registered": values["min_days_registered"] or 0,
                    "program_id": values["program_id"] or None,
                },
            }
        )
        await _save(call, benefit_id, body)
    except ApiError as exc:
        return await _render(call, status=422, values=values, error=exc.message)
    except ValueError as exc:
        return await _render(call, status=422, values=values, error=_first_error(exc))
    raise call.redirect("/admin/benefits", notice="benefit_saved")


async def _change(call: PageCall, action: str) -> web.StreamResponse:
    benefit_id = call.param("benefit_id")
    place = call.tenant.code
    if not BENEFIT_ID.fullmatch(benefit_id):
        return console.not_found_page(call.request)
    now = call.now()
    benefits = call.storage.benefits
    if action == "publish":
        done = await benefits.publish(place, benefit_id, now) is not None
        audit, notice = Action.BENEFIT_PUBLISHED, "benefit_published"
    elif action == "unpublish":
        done = await benefits.unpublish(place, benefit_id, now) is not None
        audit, notice = Action.BENEFIT_UNPUBLISHED, "benefit_unpublished"
    else:
        done = await benefits.remove(place, benefit_id)
        audit, notice = Action.BENEFIT_REMOVED, "benefit_removed"
    if not done:
        return console.not_found_page(call.request)
    await call.audit(audit, benefit_id)
    raise call.redirect("/admin/benefits", notice=notice)


@pages.post("/benefits/{benefit_id}/publish", role=Role.EDITOR)
async def benefits_publish(call: PageCall) -> web.StreamResponse:
    return await _change(call, "publish")


@pages.post("/benefits/{benefit_id}/unpublish", role=Role.EDITOR)
async def benefits_unpublish(call: PageCall) -> web.StreamResponse:
    return await _change(call, "unpublish")


@pages.post("/benefits/{benefit_id}/delete", role=Role.EDITOR)
async def benefits_delete(call: PageCall) -> web.StreamResponse:
    return await _change(call, "delete")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for error in errors():
            location = [str(part) for part in error.get("loc", ())]
            label = next((LABELS[p] for p in reversed(location) if p in LABELS), "")
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            return f"{label}: {message}" if label else message
    return "入力内容を確かめてください。"
