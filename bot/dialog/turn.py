"""One turn of a conversation: what hooks see (`Turn`) and what they may register (`Registry`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import parse_qsl

from linebot.v3.messaging import Message

from bot.clock import Clock
from bot.dialog.model import Choice, Flow, Outcome, Step
from bot.line.incoming import Incoming, Location
from bot.render import Renderer
from bot.settings import Settings
from bot.storage.conversations import Conversation
from bot.storage.questions import Question

if TYPE_CHECKING:
    from bot.news import NewsService
    from bot.premium import PremiumService
    from bot.storage import Storage


class MenuSync(Protocol):
    """Keeps the resident's rich menu in step with whether they are registered."""

    async def sync_user(self, user_id: str, registered: bool) -> None: ...


@dataclass(frozen=True)
class Services:
    """What the engine and its hooks work with."""

    storage: Storage
    settings: Settings
    clock: Clock
    renderer: Renderer
    menus: MenuSync | None = None
    # Premium applications and the LINE client they push with; None where nothing is pushed.
    premium: PremiumService | None = None
    # News items (past news per place); None where nothing is pushed.
    news: NewsService | None = None


ButtonKind = Literal[
    "answer",
    "page",
    "start",
    "cmd",
    "resume",
    "message",
    "picker",
    "location",
    "camera",
    "camera_roll",
]


@dataclass(frozen=True)
class ButtonSpec:
    """A quick-reply button before it is bound to the state version at the end of the turn.

    `answer`: answers the current step with `value`; `page`: the next page of choices;
    `start`: starts flow `value`; `cmd`: runs command `value`; `resume`: re-asks the current
    step; `message`: sends the text `value`; `picker`: a date picker that answers the step;
    `location`, `camera`, `camera_roll`: the phone's pickers.
    """

    label: str
    kind: ButtonKind = "answer"
    value: str = ""
    display: str = ""
    page: int = 0
    mode: str = "date"
    min: str = ""
    max: str = ""


@dataclass
class Say:
    """A reply part: a template with its context, or ready messages (e.g. the card)."""

    template: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    messages: list[Message] | None = None
    buttons: list[ButtonSpec] = field(default_factory=list)
    municipality: str | None = None


@dataclass(frozen=True)
class UserInput:
    """The incoming event as a step sees it: text normalised (NFKC, trimmed)."""

    kind: str  # text, postback, image, location, sticker, other
    text: str = ""
    value: str | None = None  # postback: the button's value
    params: Mapping[str, str] = field(default_factory=dict)
    location: Location | None = None
    message_id: str = ""

    @property
    def is_text(self) -> bool:
        return self.kind == "text"


@dataclass
class Turn:
    """Everything about the turn being handled; hooks read answers and add replies here."""

    services: Services
    incoming: Incoming
    flows: Mapping[str, Flow]
    conv: Conversation | None
    says: list[Say] = field(default_factory=list)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    finished: Conversation | None = None  # the conversation a completed flow left
    # The completion runs again: an earlier attempt committed it and died, maybe after its work
    # (an action that finds its work done answers as the first run would have).
    again: bool = False
    menu: list[ButtonSpec] = field(default_factory=list)  # the main menu's buttons

    @property
    def user_id(self) -> str:
        return self.incoming.user_id

    @property
    def storage(self) -> Storage:
        return self.services.storage

    async def registrations_changed(self) -> None:
        """After a registration was made or removed: the menu follows the new state."""
        if self.services.menus is not None:
            registered = bool(await self.storage.registrations.place_codes(self.user_id))
            await self.services.menus.sync_user(self.user_id, registered)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    def argument(self, name: str) -> str:
        """An argument of a command's postback (`action=cmd&name=…&<name>=…`); empty for a
        typed keyword or malformed data."""
        data = self.incoming.data if self.incoming.kind == "postback" else ""
        try:
            return dict(parse_qsl(data or "", keep_blank_values=True)).get(name, "")
        except ValueError:
            return ""

    @property
    def today(self) -> date:
        """Today in Japan."""
        return self.services.clock.now_jst().date()

    @property
    def flow(self) -> Flow | None:
        conv = self.conv or self.finished
        return self.flows.get(conv.flow) if conv else None

    @property
    def run(self) -> str:
        """The id of the flow run in progress (or just completed): what a completion's writes
        carry, so that running it again after a crash recognises them."""
        conv = self.conv or self.finished
        return conv.run if conv else ""

    @property
    def step(self) -> Step | None:
        flow = self.flow
        return flow.step(self.conv.step) if flow and self.conv else None

    @property
    def answers(self) -> dict[str, Any]:
        """The answers of the flow in progress (or of the flow just completed)."""
        conv = self.conv or self.finished
        return conv.answers if conv else {}

    @property
    def scratch(self) -> dict[str, Any]:
        """Working data of the current step (candidates, selection); reset on every step."""
        if self.conv is None:
            raise RuntimeError("no conversation")
        return self.conv.scratch

    def municipality(self) -> str | None:
        flow = self.flow
        if flow and flow.municipality:
            code = self.answers.get(flow.municipality)
            return str(code) if code else None
        return None

    def say(self, template: str, /, buttons: list[ButtonSpec] | None = None, **context: Any) -> Say:
        item = Say(template, context, buttons=buttons or [], municipality=self.municipality())
        self.says.append(item)
        return item

    def say_messages(self, messages: list[Message], buttons: list[ButtonSpec] | None = None) -> Say:
        item = Say(messages=messages, buttons=buttons or [])
        self.says.append(item)
        return item


# --- hooks -------------------------------------------------------------------------------------

Parser = Callable[[Any, Turn, Step], Awaitable[Any]]
Action = Callable[[Turn], Awaitable[Outcome]]
ChoiceProvider = Callable[[Turn, Step], Awaitable[list[Choice]]]
QuestionProvider = Callable[[Turn, Step], Awaitable[list[Question]]]
ContextProvider = Callable[[Turn], Awaitable[dict[str, Any]]]
ConditionFn = Callable[[Mapping[str, Any]], bool]
Command = Callable[[Turn], Awaitable[None]]

HookKind = Literal["parser", "action", "choices", "questions", "context", "condition", "command"]


@dataclass
class Registry:
    """Named Python hooks that flow files refer to."""

    parsers: dict[str, Parser] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    choices: dict[str, ChoiceProvider] = field(default_factory=dict)
    questions: dict[str, QuestionProvider] = field(default_factory=dict)
    contexts: dict[str, ContextProvider] = field(default_factory=dict)
    conditions: dict[str, ConditionFn] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)

    def table(self, kind: HookKind) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "parser": self.parsers,
            "action": self.actions,
            "choices": self.choices,
            "questions": self.questions,
            "context": self.contexts,
            "condition": self.conditions,
            "command": self.commands,
        }
        return tables[kind]

    def add(self, kind: HookKind, name: str) -> Callable[[Any], Any]:
        """Decorator: `@registry.add("parser", "nickname")`."""

        def decorate(fn: Any) -> Any:
            table = self.table(kind)
            if name in table:
                raise ValueError(f"{kind} {name!r} is registered twice")
            table[name] = fn
            return fn

        return decorate

    def copy(self) -> Registry:
        return Registry(
            dict(self.parsers),
            dict(self.actions),
            dict(self.choices),
            dict(self.questions),
            dict(self.contexts),
            dict(self.conditions),
            dict(self.commands),
        )
