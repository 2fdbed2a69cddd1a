"""A municipality's own registration questions: `/api/v1/questions` and the 独自の質問 page.

Residents registering with the place are asked these after the built-in questions; a change
takes effect for the next resident who reaches that step, without a deploy.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage.questions import (
    MAX_ANSWER,
    MAX_CHOICE_LABEL,
    MAX_CHOICES,
    MAX_PROMPT,
    QUESTION_ID,
    Question,
)

routes = ApiRoutes("questions", "独自の質問", municipal_only=True)
pages = Pages(municipal_only=True)

console.NOTICES.update(
    {"question_saved": "質問を保存しました。", "question_removed": "質問を削除しました。"}
)


class QuestionIn(ApiModel):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT, description="住民に表示する質問文")
    kind: Literal["text", "choice"] = Field(default="text", description="自由記述か選択式か")
    choices: list[str] = Field(
        default_factory=list, max_length=MAX_CHOICES, description="選択肢（選択式のみ）"
    )
    required: bool = Field(default=True, description="回答を必須にするか")
    max_length: int = Field(default=MAX_ANSWER, ge=1, le=MAX_ANSWER, description="回答の最大文字数")
    order: int = Field(default=0, ge=0, le=999, description="表示順（小さいほど先）")
    active: bool = Field(default=True, description="質問するかどうか")

    @model_validator(mode="after")
    def choices_fit_kind(self) -> QuestionIn:
        labels = [c.strip() for c in self.choices]
        if self.kind == "choice" and not labels:
            raise ValueError("選択式には選択肢が1つ以上必要です")
        if self.kind == "text" and labels:
            raise ValueError("自由記述の質問に選択肢は指定できません")
        if any(not 1 <= len(label) <= MAX_CHOICE_LABEL for label in labels):
            raise ValueError(f"選択肢は1〜{MAX_CHOICE_LABEL}文字にしてください")
        if len(set(labels)) != len(labels):
            raise ValueError("同じ選択肢が重なっています")
        self.choices = labels
        return self


class QuestionOut(BaseModel):
    question_id: str
    prompt: str
    kind: Literal["text", "choice"]
    choices: list[str]
    required: bool
    max_length: int
    order: int
    active: bool

    @classmethod
    def of(cls, question: Question) -> QuestionOut:
        return cls(
            question_id=question.question_id,
            prompt=question.prompt,
            kind=question.kind,
            choices=list(question.choices),
            required=question.required,
            max_length=question.max_length,
            order=question.order,
            active=question.active,
        )


class QuestionList(BaseModel):
    items: list[QuestionOut]


def _question_id(call: Call) -> str:
    question_id = call.param("question_id")
    if not QUESTION_ID.fullmatch(question_id):
        raise ApiError(
            422,
            "invalid_question_id",
            "質問IDは半角の英小文字・数字・_・- で40文字までです。",
            "question_id",
        )
    return question_id


async def _save(call: Call, question_id: str, body: QuestionIn) -> Question:
    question = Question(
        place_code=call.tenant.code,
        question_id=question_id,
        prompt=body.prompt.strip(),
        kind=body.kind,
        choices=tuple(body.choices),
        required=body.required,
        max_length=body.max_length,
        order=body.order,
        active=body.active,
    )
    await call.storage.questions.put(question, call.now())
    await call.audit(Action.QUESTION_SAVED, question_id)
    return question


@routes.get("/questions", response=QuestionList, role=Role.VIEWER, summary="独自の質問の一覧")
async def list_questions(call: Call) -> QuestionList:
    questions = await call.storage.questions.all_for_place(call.tenant.code)
    return QuestionList(items=[QuestionOut.of(q) for q in questions])


@routes.put(
    "/questions/{question_id}",
    body=QuestionIn,
    response=QuestionOut,
    role=Role.EDITOR,
    summary="独自の質問を追加・変更",
)
async def put_question(call: Call, body: QuestionIn) -> QuestionOut:
    return QuestionOut.of(await _save(call, _question_id(call), body))


@routes.delete("/questions/{question_id}", role=Role.EDITOR, summary="独自の質問を削除")
async def delete_question(call: Call) -> None:
    question_id = call.param("question_id")  # a malformed id names nothing: 404, as documented
    if not await call.storage.questions.remove(call.tenant.code, question_id):
        raise not_found()
    await call.audit(Action.QUESTION_REMOVED, question_id)


# --- console --------------------------------------------------------------------------------------

LABELS = {
    "question_id": "質問ID",
    "prompt": "質問文",
    "kind": "形式",
    "choices": "選択肢",
    "required": "必須",
    "order": "表示順",
}


async def _render(
    call: PageCall, *, status: int = 200, error: str = "", values: dict[str, str] | None = None
) -> web.Response:
    questions = await call.storage.questions.all_for_place(call.tenant.code)
    return call.render(
        "questions.html",
        status=status,
        title="独自の質問",
        questions=questions,
        error=error,
        values=values
        or {"question_id": "", "prompt": "", "kind": "text", "choices": "", "order": "0"},
        can_edit=call.principal.can(Role.EDITOR),
    )


@pages.get("/questions", role=Role.VIEWER, nav="独自の質問", order=40)
async def questions_page(call: PageCall) -> web.StreamResponse:
    return await _render(call)


@pages.post("/questions", role=Role.EDITOR)
async def questions_save(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values = {
        key: form.get(key, "") for key in ("question_id", "prompt", "kind", "choices", "order")
    }
    question_id = values["question_id"].strip()
    if not QUESTION_ID.fullmatch(question_id):
        return await _render(
            call,
            status=422,
            values=values,
            error="質問IDは半角の英小文字・数字・_・- で40文字までにしてください。",
        )
    try:
        body = QuestionIn(
            prompt=values["prompt"],
            kind="choice" if values["kind"] == "choice" else "text",
            choices=[c for c in values["choices"].splitlines() if c.strip()],
            required=form.get("required") == "on",
            order=int(values["order"] or 0),
        )
    except ValueError as exc:
        return await _render(call, status=422, values=values, error=_first_error(exc))
    await _save(call, question_id, body)
    raise call.redirect("/admin/questions", notice="question_saved")


@pages.post("/questions/{question_id}/delete", role=Role.EDITOR)
async def questions_delete(call: PageCall) -> web.StreamResponse:
    question_id = call.param("question_id")
    if not await call.storage.questions.remove(call.tenant.code, question_id):
        return console.not_found_page(call.request)
    await call.audit(Action.QUESTION_REMOVED, question_id)
    raise call.redirect("/admin/questions", notice="question_removed")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for error in errors():
            message = str(error.get("msg", ""))
            return message.removeprefix("Value error, ")
    return "入力内容を確かめてください。"
