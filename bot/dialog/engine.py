"""The dialog engine: runs the flows of `dialogs/` for every resident message.

Per turn: load the user's conversation, handle the input, write the new state conditionally on
the version that was read (a lost race reloads and runs the turn once more, so two racing events
never lose an answer), run what waits for the write (a completed flow's `on_complete`), then
render the replies and send them in exactly one reply call (at most 5 messages).

Order of handling, in one place:

1. A conversation idle for 24 hours is dropped and the resident told so.
2. A conversation whose flow or step no longer exists (after a deploy) restarts politely.
3. Postbacks: start a flow, run a command, resume, stop news; a step's button counts only when
   its flow, step and state version are still current, else it is an old button (kind reply, no
   change).
4. Interrupts (ヘルプ, キャンセル/やめる, メニュー), before any step.
5. The current step's input kind reads the input; bad input gets the step's retry template and
   leaves the state as it was.
6. Outside a flow: keywords from `dialogs/commands.yaml`; anything else a short friendly help.
"""

from __future__ import annotations

import copy
import functools
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linebot.v3.messaging import Message, TextMessage
from pymongo.errors import PyMongoError

from bot.clock import Clock
from bot.dialog import postback
from bot.dialog.commands import CommandTable, Interrupt, Target, load_commands
from bot.dialog.flows import COMMANDS_FILE, DIALOGS_DIR, load_flows
from bot.dialog.kinds import DONE_WORDS, KINDS, NO_WORDS, YES_WORDS, Accepted, match_choice
from bot.dialog.model import (
    CANCEL,
    COMPLETE,
    EDIT,
    END,
    MISSING,
    PICK,
    Choice,
    Condition,
    EndFlow,
    Flow,
    Goto,
    ParseError,
    Prefill,
    Skip,
    Step,
    answer_key,
)
from bot.dialog.text import key, normalize
from bot.dialog.turn import ButtonSpec, MenuSync, Registry, Services, Turn, UserInput
from bot.line.incoming import Incoming, Replier, TurnCommitted
from bot.render import MAX_LABEL, MAX_MESSAGES, MAX_TEXT, Button, Renderer, attach_quick_replies
from bot.settings import Settings
from bot.storage.conversations import SCHEMA, Conversation, ConversationConflict, Loaded

if TYPE_CHECKING:
    from bot.news import NewsService
    from bot.premium import PremiumService

log = logging.getLogger("bot.dialog")

IDLE_LIMIT = timedelta(hours=24)
APOLOGY = (
    "申し訳ありません。ただいま処理できませんでした。少し時間をおいて、もう一度お試しください。"
)


class DialogEngine:
    """The `EventHandler` for residents' messages: `await engine(incoming, reply)`."""

    def __init__(
        self,
        services: Services,
        flows: Mapping[str, Flow],
        registry: Registry,
        commands: CommandTable,
        *,
        idle_limit: timedelta = IDLE_LIMIT,
    ) -> None:
        self.services = services
        self.flows = flows
        self.registry = registry
        self.commands = commands
        self.idle_limit = idle_limit

    @property
    def renderer(self) -> Renderer:
        return self.services.renderer

    # --- entry points ------------------------------------------------------------------------

    async def __call__(self, incoming: Incoming, reply: Replier) -> None:
        try:
            messages = await self.handle(incoming)
        except (TurnCommitted, PyMongoError):
            raise  # the pipeline's to handle: the event stays pending and is retried
        except Exception:
            log.exception("dialog turn failed", extra={"event_id": incoming.event_id})
            messages = self._apology()
        if messages:
            await reply(messages)

    async def handle(self, incoming: Incoming) -> list[Message]:
        """Handle one event and return the reply (1–5 messages; none for an unfollow)."""
        if incoming.kind == "unfollow":
            return []
        store = self.services.storage.conversations
        for attempt in range(2):
            loaded = await store.load(incoming.user_id)
            if incoming.event_id and loaded.event_id == incoming.event_id:
                if loaded.completing is not None and not loaded.reply:
                    return await self._complete_again(incoming, loaded.completing)
                raise TurnCommitted(incoming.event_id, loaded.reply)
            turn = self._new_turn(incoming, copy.deepcopy(loaded.conversation))
            await self._turn(turn)
            writes = self._next_version(turn, loaded)
            # The answer is rendered before the commit and stored with the state, so a process
            # that dies after the commit leaves it to the one that finishes the event. A turn
            # with work after the commit (a completion) adds that work's answer afterwards.
            early = self._finalize(turn) if writes and not turn.after_commit else None
            if writes:
                try:
                    await store.save(
                        turn.user_id,
                        turn.conv,
                        loaded.version,
                        self.services.clock.now(),
                        incoming.event_id,
                        [message.to_dict() for message in early or []],
                        turn.finished if turn.after_commit else None,
                    )
                except ConversationConflict:
                    log.info("conversation changed meanwhile", extra={"attempt": attempt + 1})
                    continue
            # A database error here leaves the event pending: its retry finds the completion
            # committed without an answer and runs the (idempotent) work again.
            for job in turn.after_commit:
                await job()
            return early if early is not None else self._finalize(turn)
        turn = self._new_turn(incoming, None)
        turn.say("common/busy", buttons=self.commands.menu_buttons())
        return self._finalize(turn)

    def _new_turn(self, incoming: Incoming, conv: Conversation | None) -> Turn:
        turn = Turn(self.services, incoming, self.flows, conv)
        turn.menu = self.commands.menu_buttons()
        return turn

    # --- state --------------------------------------------------------------------------------

    def _next_version(self, turn: Turn, loaded: Loaded) -> bool:
        """Whether the turn changed the state; the conversation gets the version it will be
        written as (its buttons carry it)."""
        old, new = loaded.conversation, turn.conv
        if new is None and old is None:
            return False
        if new is not None and old is not None and new.snapshot() == old.snapshot():
            new.version = old.version
            return False
        if new is not None:
            new.version = loaded.version + 1
        return True

    def _idle(self, conv: Conversation, now: datetime) -> bool:
        return conv.updated_at is not None and now - conv.updated_at >= self.idle_limit

    def _valid(self, conv: Conversation) -> bool:
        """The flow and step still exist, in the version the conversation started with."""
        flow = self.flows.get(conv.flow)
        return (
            conv.schema == SCHEMA
            and flow is not None
            and conv.flow_version == flow.version
            and conv.step in flow.steps
        )

    # --- the turn -----------------------------------------------------------------------------

    async def _turn(self, turn: Turn) -> None:
        inp = _input(turn.incoming)
        expired = False
        conv = turn.conv
        if conv is not None:
            if self._idle(conv, turn.now):
                flow = self.flows.get(conv.flow)
                turn.conv = None
                expired = True
                turn.say("common/expired", flow_title=flow.title if flow else "手続き")
            elif not self._valid(conv):
                await self._restart(turn)
                return
        if turn.incoming.kind == "follow":
            await self._command(turn, "help")
        elif inp.kind == "postback":
            await self._postback(turn, inp, expired)
        elif inp.is_text and (interrupt := self.commands.interrupt(inp.text)):
            await self._interrupt(turn, interrupt)
        elif (
            inp.is_text
            and turn.conv is not None
            and (target := self.commands.match_global(inp.text)) is not None
            and not await self._step_claims(turn, inp.text)
        ):
            await self._global(turn, target)
        elif turn.conv is not None:
            await self._answer(turn, inp)
        else:
            await self._outside(turn, inp, expired)

    async def _restart(self, turn: Turn) -> None:
        """The flow or step is gone (a deploy changed the flow): start again, politely."""
        assert turn.conv is not None
        flow = self.flows.get(turn.conv.flow)
        turn.conv = None
        log.info("conversation restarted after a flow change", extra={"flow": flow and flow.name})
        if flow is None:
            turn.say("common/restarted", buttons=turn.menu, flow_title="", restarting=False)
            return
        turn.say("common/restarted", flow_title=flow.title, restarting=True)
        await self._start(turn, flow)

    async def _postback(self, turn: Turn, inp: UserInput, expired: bool) -> None:
        data = postback.parse(turn.incoming.data)
        if data is None:
            await self._stale(turn, expired)
        elif data.action == "start":
            flow = self.flows.get(data.flow)
            if flow is None:
                await self._stale(turn, expired)
            elif turn.conv is not None and turn.conv.flow == flow.name:
                turn.say("common/resume_same", flow_title=flow.title)
                await self._prompt_current(turn)
            else:
                if turn.conv is not None:
                    leaving = self.flows[turn.conv.flow]
                    turn.say("common/switched", flow_title=leaving.title)
                await self._start(turn, flow)
        elif data.action == "cmd":
            if data.name not in self.registry.commands:
                await self._stale(turn, expired)
            else:
                await self._command(turn, data.name)
        elif data.action == "news_stop":  # 「配信停止」 under a news item (hooks/news.py)
            await self._command(turn, "news_stop")
        elif data.action == "resume":
            if turn.conv is not None:
                await self._prompt_current(turn)
            else:
                await self._command(turn, "menu")
        else:  # a step's button: current only if flow, step and version still match
            conv = turn.conv
            current = (
                conv is not None
                and conv.flow == data.flow
                and conv.step == data.step
                and conv.run == data.run
                and conv.version == data.version
            )
            if not current:
                await self._stale(turn, expired)
            elif data.action == "pg":
                await self._prompt_current(turn, page=data.page)
            else:
                await self._answer(turn, UserInput("postback", value=data.value, params=inp.params))

    async def _stale(self, turn: Turn, expired: bool) -> None:
        """A button of an older message: say so kindly and ask the current step again."""
        if expired:  # the expiry notice already explains; offer the menu
            turn.says[-1].buttons = turn.menu
            return
        if turn.conv is None:
            turn.say("common/old_button", buttons=turn.menu, in_flow=False)
            return
        turn.say("common/old_button", in_flow=True)
        await self._prompt_current(turn)

    async def _interrupt(self, turn: Turn, interrupt: Interrupt) -> None:
        conv = turn.conv
        if interrupt == "help":
            step = turn.step
            if conv is None or step is None:
                await self._command(turn, "help")
                return
            context = await self._context(turn, step)
            turn.say(step.help, **context)
            await self._prompt_current(turn)
        elif interrupt == "cancel":
            if conv is None:
                turn.say("common/nothing_to_cancel", buttons=turn.menu)
                return
            self._cancel(turn)
        else:
            await self._command(turn, "menu")

    def _cancel(self, turn: Turn) -> None:
        flow = turn.flow
        turn.conv = None
        turn.say("common/cancelled", buttons=turn.menu, flow_title=flow.title if flow else "")

    async def _command(self, turn: Turn, name: str) -> None:
        await self.registry.commands[name](turn)
        if turn.conv is not None and turn.says:
            last = turn.says[-1]
            if len(last.buttons) < 13:
                last.buttons = [*last.buttons[:12], ButtonSpec("手続きを続ける", "resume")]

    async def _step_claims(self, turn: Turn, text: str) -> bool:
        """Whether the current step would take this text as one of its answers."""
        step = turn.step
        if step is None:
            return False
        folded = key(text)
        if step.input in ("choice", "multi_choice"):
            if step.input == "multi_choice" and folded in DONE_WORDS:
                return True
            return match_choice(text, await self.choices(turn, step)) is not None
        if step.input == "confirm":
            labels = {key(str(step.option("yes_label", ""))), key(str(step.option("no_label", "")))}
            return folded in YES_WORDS | NO_WORDS | labels
        return False

    async def _global(self, turn: Turn, target: Target) -> None:
        """A keyword that works inside a flow (a rich-menu tile) while a flow is in progress."""
        conv = turn.conv
        assert conv is not None
        if target.command:
            await self._command(turn, target.command)
            return
        flow = self.flows[target.flow]
        if flow.name == conv.flow:
            turn.say("common/resume_same", flow_title=flow.title)
            await self._prompt_current(turn)
            return
        turn.say("common/switched", flow_title=self.flows[conv.flow].title)
        await self._start(turn, flow)

    async def _outside(self, turn: Turn, inp: UserInput, expired: bool) -> None:
        target = self.commands.match(inp.text) if inp.is_text else None
        if target is not None and target.flow:
            await self._start(turn, self.flows[target.flow])
        elif target is not None:
            await self._command(turn, target.command)
        elif expired:
            turn.says[-1].buttons = turn.menu
        else:
            turn.say("common/unknown", buttons=turn.menu, got=inp.kind)

    # --- flows and steps -------------------------------------------------------------------

    async def _start(self, turn: Turn, flow: Flow) -> None:
        turn.conv = Conversation(
            user_id=turn.user_id,
            flow=flow.name,
            flow_version=flow.version,
            step=flow.start,
            run=secrets.token_hex(6),  # also keys what a completion writes (unique per user)
            started_at=turn.now,
        )
        if flow.on_start:
            outcome = await self.registry.actions[flow.on_start](turn)
            if isinstance(outcome, EndFlow):
                self._end(turn, outcome.template, dict(outcome.context))
                return
        await self._goto(turn, flow.start, None, None)

    async def _answer(self, turn: Turn, inp: UserInput) -> None:
        conv, step = turn.conv, turn.step
        assert conv is not None and step is not None
        saved_answers = copy.deepcopy(conv.answers)
        saved_scratch = copy.deepcopy(conv.scratch)
        said = len(turn.says)
        try:
            result = await KINDS[step.input].take(self, turn, step, inp)
            target = await self._take_answer(turn, step, result.value) if result else None
        except ParseError as error:
            conv.answers, conv.scratch = saved_answers, saved_scratch
            conv.step = step.name
            del turn.says[said:]
            await self._retry(turn, step, error, inp)
            return
        if target is not None:
            await self._goto(turn, target, result.value if result else None, step)

    async def _take_answer(self, turn: Turn, step: Step, value: Any) -> str | None:
        """Keep the answer, run the step's `on_complete`; the next target (None: flow ended)."""
        conv = turn.conv
        assert conv is not None
        if step.save:
            conv.answers[step.name] = value
        if step.on_complete:
            outcome = await self.registry.actions[step.on_complete](turn)
            if isinstance(outcome, EndFlow):
                self._end(turn, outcome.template, dict(outcome.context))
                return None
            if isinstance(outcome, Goto):
                return outcome.step
        return self._next(step, value)

    def _next(self, step: Step, value: Any) -> str:
        if isinstance(step.next, str):
            return step.next
        return step.next.get(answer_key(value)) or step.next.get("else") or MISSING

    async def _goto(self, turn: Turn, target: str, value: Any, origin: Step | None) -> None:
        flow = turn.flow
        conv = turn.conv
        assert flow is not None and conv is not None
        carry: Any = None
        for _ in range(4 * len(flow.steps) + 8):
            if target == MISSING:
                target = self.first_missing(flow, conv.answers) or COMPLETE
            if target == COMPLETE:
                await self._complete(turn)
                return
            if target == CANCEL:
                self._cancel(turn)
                return
            if target == END:
                self._end(turn, origin.end_template if origin else "common/cancelled", {})
                return
            if target == EDIT:
                edit = flow.step(str(value))
                if edit is None or not edit.editable:
                    target = MISSING
                    continue
                carry = conv.answers.pop(edit.name, None)
                for other in flow.steps.values():
                    if edit.name in other.depends_on:
                        conv.answers.pop(other.name, None)
                target = edit.name
            step = flow.step(target)
            if step is None:
                raise RuntimeError(f"flow {flow.name}: no step {target!r}")
            if step.when is not None and not self.holds(step.when, conv.answers):
                target = MISSING
                continue
            conv.step = step.name
            conv.scratch = {"previous": carry} if carry is not None else {}
            carry = None
            if step.on_enter:
                outcome = await self.registry.actions[step.on_enter](turn)
                if isinstance(outcome, EndFlow):
                    self._end(turn, outcome.template, dict(outcome.context))
                    return
                if isinstance(outcome, Goto):
                    target = outcome.step
                    continue
                if isinstance(outcome, Prefill):
                    conv.scratch["previous"] = outcome.value
                if isinstance(outcome, Skip):
                    accepted: Accepted | None = Accepted(outcome.value)
                else:
                    accepted = await KINDS[step.input].enter(self, turn, step)
            else:
                accepted = await KINDS[step.input].enter(self, turn, step)
            if accepted is not None:
                next_target = await self._take_answer(turn, step, accepted.value)
                if next_target is None:
                    return
                target, value, origin = next_target, accepted.value, step
                continue
            await self.prompt(turn, step, again=False)
            return
        raise RuntimeError(f"flow {flow.name} goes round in circles")

    def first_missing(self, flow: Flow, answers: Mapping[str, Any]) -> str | None:
        """The first required step (file order) that applies and has no answer yet."""
        for step in flow.steps.values():
            if not step.required:
                continue
            if step.when is not None and not self.holds(step.when, answers):
                continue
            if not step.save or step.name not in answers:
                return step.name
        return None

    def holds(self, condition: Condition, answers: Mapping[str, Any]) -> bool:
        if condition.name:
            return bool(self.registry.conditions[condition.name](answers))
        if condition.step not in answers:
            return False
        return answer_key(answers[condition.step]) in condition.equals

    async def _complete(self, turn: Turn) -> None:
        conv, flow = turn.conv, turn.flow
        assert conv is not None and flow is not None
        conv.answers = {
            name: value
            for name, value in conv.answers.items()
            if (step := flow.step(name)) is not None
            and (step.when is None or self.holds(step.when, conv.answers))
        }
        turn.finished = conv
        turn.conv = None
        if not flow.on_complete:
            turn.say("common/completed", buttons=turn.menu, flow_title=flow.title)
            return
        turn.after_commit.append(functools.partial(self._run_completion, turn, flow))

    async def _run_completion(self, turn: Turn, flow: Flow) -> None:
        """The flow's `on_complete`, after the commit. Each such action is idempotent for its
        flow run (`Conversation.run`): run again after a crash, it finishes what the first run
        left and gives the same answer."""
        outcome = await self.registry.actions[flow.on_complete](turn)
        if isinstance(outcome, EndFlow):
            turn.say(outcome.template, buttons=turn.menu, **dict(outcome.context))

    async def _complete_again(self, incoming: Incoming, finished: Conversation) -> list[Message]:
        """An earlier attempt committed this event's completion and died before its answer
        was stored: run the completion again."""
        flow = self.flows.get(finished.flow)
        if flow is None or not flow.on_complete:
            raise TurnCommitted(incoming.event_id, [])
        log.warning("completion run again after an interrupted attempt", extra={"flow": flow.name})
        turn = self._new_turn(incoming, None)
        turn.finished, turn.again = finished, True
        await self._run_completion(turn, flow)
        return self._finalize(turn)

    def _end(self, turn: Turn, template: str, context: dict[str, Any]) -> None:
        flow = turn.flow
        turn.finished = turn.conv or turn.finished
        turn.conv = None
        turn.say(
            template, buttons=turn.menu, **({"flow_title": flow.title if flow else ""} | context)
        )

    # --- prompts ------------------------------------------------------------------------------

    async def _prompt_current(self, turn: Turn, *, page: int = 0) -> None:
        step = turn.step
        if step is None:
            await self._command(turn, "menu")
            return
        await self.prompt(turn, step, page=page)

    async def prompt(self, turn: Turn, step: Step, *, page: int = 0, again: bool = True) -> None:
        """Ask for the step's input in its current sub-state, with its buttons.

        `again` (in the template context) is False only when the step is entered.
        """
        kind = KINDS[step.input]
        context = await self._context(turn, step)
        context["again"] = again
        buttons = await kind.buttons(self, turn, step, page)
        turn.say(kind.template(turn, step), buttons=buttons, **context)

    async def _retry(self, turn: Turn, step: Step, error: ParseError, inp: UserInput) -> None:
        kind = KINDS[step.input]
        context = await self._context(turn, step)
        context.update({"reason": "invalid", "got": inp.kind})
        context.update(error.context)
        buttons = await kind.buttons(self, turn, step, 0)
        turn.say(error.template or step.retry, buttons=buttons, **context)

    async def _context(self, turn: Turn, step: Step) -> dict[str, Any]:
        flow = turn.flow
        assert flow is not None
        scratch = turn.conv.scratch if turn.conv else {}
        context: dict[str, Any] = {
            "flow_title": flow.title,
            "step_title": step.title,
            "answers": dict(turn.answers),
            "options": dict(step.options),
            "previous": scratch.get("previous"),
            "reason": None,
            "got": None,
        }
        if flow.context:
            context.update(await self.registry.contexts[flow.context](turn))
        context.update(await KINDS[step.input].context(self, turn, step))
        return context

    # --- what kinds need (KindOps) ----------------------------------------------------------

    async def choices(self, turn: Turn, step: Step) -> list[Choice]:
        if not step.choices_provider:
            return list(step.choices)
        limit = MAX_LABEL - 1 if step.input == "multi_choice" else MAX_LABEL
        found = await self.registry.choices[step.choices_provider](turn, step)
        return [
            Choice(
                c.value,
                c.label if len(c.label) <= limit else c.label[: limit - 1] + "…",
                c.text or c.label,
                c.aliases,
            )
            for c in found
        ]

    async def parse(self, turn: Turn, step: Step, raw: Any) -> Any:
        return await self.registry.parsers[step.parser](raw, turn, step)

    # --- replies ------------------------------------------------------------------------------

    def _finalize(self, turn: Turn) -> list[Message]:
        if not turn.says:
            turn.say("common/unknown", buttons=turn.menu, got=turn.incoming.kind)
        messages: list[Message] = []
        last = len(turn.says) - 1
        for index, say in enumerate(turn.says):
            if say.messages is not None:
                rendered = list(say.messages)
            else:
                rendered = self.renderer.render(
                    say.template, say.context, municipality=say.municipality
                )
            if index == last:
                buttons = [b for spec in say.buttons if (b := self._button(spec, turn.conv))]
                rendered = attach_quick_replies(rendered, buttons)
            messages.extend(rendered)
        return fit(messages)

    def _button(self, spec: ButtonSpec, conv: Conversation | None) -> Button | None:
        if spec.kind in ("answer", "page", "picker"):
            if conv is None:
                log.warning("a step button without a conversation was dropped")
                return None
            if spec.kind == "page":
                data = postback.page_data(conv.flow, conv.step, conv.run, conv.version, spec.page)
                return Button(spec.label, "postback", data, display_text=spec.label)
            value = PICK if spec.kind == "picker" else spec.value
            data = postback.answer_data(conv.flow, conv.step, conv.run, conv.version, value)
            if spec.kind == "picker":
                return Button(
                    spec.label, "datetimepicker", data, mode=spec.mode, min=spec.min, max=spec.max
                )
            return Button(spec.label, "postback", data, display_text=spec.display or spec.label)
        if spec.kind == "start":
            return Button(
                spec.label, "postback", postback.start_data(spec.value), display_text=spec.label
            )
        if spec.kind == "cmd":
            return Button(
                spec.label, "postback", postback.command_data(spec.value), display_text=spec.label
            )
        if spec.kind == "resume":
            return Button(spec.label, "postback", postback.resume_data(), display_text=spec.label)
        if spec.kind == "message":
            return Button(spec.label, "message", text=spec.value or spec.label)
        if spec.kind == "camera_roll":
            return Button(spec.label, "cameraRoll")
        if spec.kind in ("camera", "location"):
            return Button(spec.label, spec.kind)
        return None

    def _apology(self) -> list[Message]:
        try:
            return self.renderer.render("common/error", {})
        except Exception:
            log.exception("the error template failed too")
            return [TextMessage(text=APOLOGY, quickReply=None, quoteToken=None)]


def fit(messages: Sequence[Message]) -> list[Message]:
    """At most 5 messages: merge neighbouring plain texts (no quick reply) from the start."""
    result = list(messages)
    while len(result) > MAX_MESSAGES:
        for index in range(len(result) - 1):
            first, second = result[index], result[index + 1]
            if (
                isinstance(first, TextMessage)
                and isinstance(second, TextMessage)
                and first.quick_reply is None
                and len(first.text) + len(second.text) + 2 <= MAX_TEXT
            ):
                merged = Message.from_dict(
                    second.to_dict() | {"text": f"{first.text}\n\n{second.text}"}
                )
                result[index : index + 2] = [merged]
                break
        else:
            log.error("reply had more than 5 messages; the first were dropped")
            result = result[-MAX_MESSAGES:]
    return result


def _input(incoming: Incoming) -> UserInput:
    if incoming.kind == "text":
        return UserInput("text", text=normalize(incoming.text))
    if incoming.kind == "postback":
        return UserInput("postback", params=dict(incoming.params))
    if incoming.kind == "image":
        return UserInput("image", message_id=incoming.message_id)
    if incoming.kind == "location":
        return UserInput("location", location=incoming.location)
    return UserInput(incoming.kind)


def build_engine(
    storage: Any,
    settings: Settings,
    clock: Clock,
    *,
    renderer: Renderer | None = None,
    registry: Registry | None = None,
    dialogs_dir: Path = DIALOGS_DIR,
    menus: MenuSync | None = None,
    premium: PremiumService | None = None,
    news: NewsService | None = None,
) -> DialogEngine:
    """The engine over the flows in `dialogs_dir` (checked: raises `FlowError`)."""
    from bot.dialog.hooks import default_registry

    renderer = renderer or Renderer()
    registry = registry or default_registry()
    flows = load_flows(dialogs_dir, registry=registry, renderer=renderer)
    commands = load_commands(flows, registry, dialogs_dir / COMMANDS_FILE)
    return DialogEngine(
        Services(storage, settings, clock, renderer, menus, premium, news),
        flows,
        registry,
        commands,
    )
