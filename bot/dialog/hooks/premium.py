"""Hooks of the Premium application flow (`dialogs/premium.yaml`).

Which registration → eligible? → what it takes → the document's photo (JPEG/PNG, ≤ 10 MB) →
confirmation → the application waits for the municipality's review (`bot/premium.py`).

The photo is checked when it arrives and fetched again on submission: the conversation state
keeps only the message id, never the image.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.dialog.model import Choice, EndFlow, Outcome, ParseError, Skip, Step
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.places import get_place
from bot.domain.registration import (
    PREMIUM_MAX_PLACES,
    RENEWAL_MIN_ACTIVITIES,
    RelationshipType,
    Tier,
)
from bot.premium import (
    PENDING_REASON,
    DocumentRejected,
    Eligibility,
    PremiumService,
    Standing,
    eligibility,
    place_name,
    standing_of,
)

log = logging.getLogger(__name__)


def _service(turn: Turn) -> PremiumService | None:
    return turn.services.premium


def _tier_label(value: object) -> str:
    try:
        return Tier(str(value)).label
    except ValueError:
        return ""


async def _standing(turn: Turn) -> Standing:
    return await standing_of(turn.storage, turn.user_id, turn.now)


def _after_buttons() -> list[ButtonSpec]:
    return [
        ButtonSpec("登録一覧", "cmd", "list_registrations"),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]


def _refusal(found: Eligibility) -> dict[str, Any]:
    return {
        "place_name": place_name(found.place_code),
        "reason": found.reason,
        "message": found.message,
        "counted_pending": found.counted_pending,
        "max_places": PREMIUM_MAX_PLACES,
        "designated_labels": "・".join(f"「{t.short_label}」" for t in found.designated),
    }


# --- choices, parsers, context ---------------------------------------------------------------------


async def premium_registrations(turn: Turn, step: Step) -> list[Choice]:
    """Every registration of the resident (municipalities and prefectures)."""
    standing = await _standing(turn)
    choices: list[Choice] = []
    for doc in standing.registrations:
        code = str(doc["place_code"])
        note = _tier_label(doc.get("tier"))
        if code in standing.pending:
            note = "審査中"
        place = get_place(code)
        choices.append(
            Choice(
                code,
                place_name(code),
                f"{place_name(code)}（{note}）" if note else place_name(code),
                (place.name,) if place else (),
            )
        )
    return choices


async def premium_place(raw: Any, turn: Turn, step: Step) -> str:
    """The place to apply at: eligible, else the reason and a chance to pick another."""
    found = eligibility(await _standing(turn), str(raw))
    if not found.ok:
        raise ParseError("premium/pick_refused", **_refusal(found))
    return found.place_code


async def premium_document(raw: Any, turn: Turn, step: Step) -> dict[str, Any]:
    """The photo (a message id): fetched from LINE and checked for type and size."""
    service = _service(turn)
    if service is None:
        log.error("premium document step without a PremiumService")
        raise ParseError("premium/document_unavailable")
    message_id = str(raw)
    try:
        content, content_type = await service.fetch_document(message_id)
    except DocumentRejected as rejected:
        raise ParseError(rejected.template) from None
    except Exception:
        log.exception("the resident's photo could not be fetched")
        raise ParseError("premium/document_unavailable") from None
    return {"message_id": message_id, "content_type": content_type, "size": len(content)}


async def premium_context(turn: Turn) -> dict[str, Any]:
    code = str(turn.answers.get("pick") or "")
    doc = await turn.storage.registrations.find(turn.user_id, code) if code else None
    types = []
    for value in (doc or {}).get("types") or []:
        try:
            types.append(RelationshipType(str(value)).short_label)
        except ValueError:
            continue
    return {
        "place_name": place_name(code) if code else "",
        "number": str((doc or {}).get("number", "")),
        "tier_label": _tier_label((doc or {}).get("tier")),
        "types_labels": types,
        "max_places": PREMIUM_MAX_PLACES,
        "renewal_activities": RENEWAL_MIN_ACTIVITIES,
    }


# --- actions ---------------------------------------------------------------------------------------


async def premium_start(turn: Turn) -> Outcome:
    """Nothing to apply for: no registration, or none that qualifies (each place's reason)."""
    standing = await _standing(turn)
    if not standing.registrations:
        return EndFlow("premium/none")
    results = [eligibility(standing, str(doc["place_code"])) for doc in standing.registrations]
    if any(found.ok for found in results):
        return None
    if len(results) == 1 and results[0].reason == PENDING_REASON:
        return EndFlow("premium/pending", {"place_name": place_name(results[0].place_code)})
    return EndFlow(
        "premium/refused",
        {"refusals": [_refusal(found) for found in results], "max_places": PREMIUM_MAX_PLACES},
    )


async def premium_pick_only_one(turn: Turn) -> Outcome:
    """With a single registration (and it qualifies, see `premium_start`) nothing to pick."""
    standing = await _standing(turn)
    if len(standing.registrations) == 1:
        return Skip(str(standing.registrations[0]["place_code"]))
    return None


async def submit_premium_application(turn: Turn) -> Outcome:
    """After the confirmation: check once more, fetch the photo again, store the application."""
    answers = turn.answers
    code = str(answers.get("pick") or "")
    found = eligibility(await _standing(turn), code)
    # Waiting since this very flow submitted it: run again after a crash, it finishes that.
    ours = found.reason == PENDING_REASON and bool(
        await turn.storage.premium_applications.waiting_from(turn.user_id, code, turn.run)
    )
    if found.reason == PENDING_REASON and not ours:
        return EndFlow("premium/pending", {"place_name": place_name(code)})
    if not (found.ok or ours) or found.registration is None:
        return EndFlow(
            "premium/refused",
            {"refusals": [_refusal(found)], "max_places": PREMIUM_MAX_PLACES},
        )
    service = _service(turn)
    document = answers.get("document")
    if service is None or not isinstance(document, dict):
        log.error("premium application without a PremiumService or a photo")
        return EndFlow("premium/submit_failed", {"place_name": place_name(code)})
    try:
        content, content_type = await service.fetch_document(str(document.get("message_id")))
        application = await service.apply(found.registration, content, content_type, turn.run)
    except Exception:
        log.exception("the Premium application could not be stored")
        return EndFlow("premium/submit_failed", {"place_name": place_name(code)})
    if application is None:  # a second confirmation lost the race
        return EndFlow("premium/pending", {"place_name": place_name(code)})
    turn.say("premium/submitted", buttons=_after_buttons(), place_name=place_name(code))
    return None


def register(registry: Registry) -> None:
    add = registry.add
    add("choices", "premium_registrations")(premium_registrations)
    add("parser", "premium_place")(premium_place)
    add("parser", "premium_document")(premium_document)
    add("context", "premium_context")(premium_context)
    add("action", "premium_start")(premium_start)
    add("action", "premium_pick_only_one")(premium_pick_only_one)
    add("action", "submit_premium_application")(submit_premium_application)
