"""Hostile input: signatures, stored XSS, template injection, uploads, card token enumeration.

- Webhook signatures of every odd shape are a 400, never a 5xx; a replayed body is handled
  once (its events' ids were seen); a valid signature over another body does not carry over.
- Stored XSS: residents' nicknames and staff texts (news titles, benefits, programs, activities,
  questions) holding markup are escaped on every console page that shows them.
- Template injection: sandbox escapes and resource bombs in a staff template are refused by
  the API, quickly, and never saved.
- Uploads: oversized bodies are a 413 (JSON for the API, a page for the console); file names
  with paths in a 5374 import are never used as paths; identity photos over 10 MB are refused.
- Card tokens: every kind of invalid token (malformed, altered MAC, too long, another path)
  gets the same answer in the same time class (no database lookup for any), and the limit
  applies to all of them.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.domain.cards import sign_card_token
from bot.premium import MAX_DOCUMENT_BYTES, DocumentRejected, sniff_image
from bot.staff.console import PREFIX as CONSOLE
from bot.staff.web import PAGES
from tests.stack import Stack
from tests.test_fuzz_webhooks import answers
from tests.test_security_routes import build_world, fill
from tests.test_staff_support import Site, open_site
from tests.test_webhook import sign, text_event

XSS = "</script><img src=x onerror=alert(1)>"


@pytest.fixture
async def site(mongo_uri: str, own_db_name: str) -> AsyncIterator[Site]:
    # Its own database: the objects it makes for two municipalities must not show in other tests.
    async with open_site(mongo_uri, own_db_name) as s:
        yield s


# --- signatures -------------------------------------------------------------------------------


async def _post(stack: Stack, raw: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Line-Signature"] = signature
    async with stack.http.post(f"{stack.bot_url}/callback", data=raw, headers=headers) as r:
        return r.status


async def test_forged_altered_and_replayed_webhooks(stack: Stack) -> None:
    chat = await stack.user("署名")
    secret = stack.settings.line_channel_secret
    sends_before = await answers(stack)
    event = text_event(chat.user_id, "ヘルプ", 1_800_000_000_000)
    raw = json.dumps({"destination": "U0", "events": [event]}).encode()
    good = sign(secret, raw)
    for signature in (
        "",
        "ü" * 44,
        "=" * 10_000,
        good[:-4],
        good + "AA==",
        sign(secret, b""),
        sign(secret.upper(), raw),
        good.lower(),
    ):
        assert await _post(stack, raw, signature) == 400, signature[:20]
    # The right signature of one body does not carry over to another.
    other = raw.replace(b"\\u30d8\\u30eb\\u30d7", b"\\u767b\\u9332")
    assert other != raw
    assert await _post(stack, other, good) == 400
    assert await _post(stack, raw, None) == 400
    await stack.wait_idle()
    assert await chat.inbox(wait=0.3) == []  # nothing forged was handled
    # The genuine body, then the same body replayed twice: one reply.
    for _ in range(3):
        assert await _post(stack, raw, good) == 200
    await stack.wait_idle()
    replies = await chat.inbox(wait=3)
    assert len({entry["seq"] for entry in replies}) >= 1
    assert await chat.inbox(wait=0.5) == []
    assert await answers(stack) - sends_before == 1  # one answer to three deliveries


# --- stored XSS ----------------------------------------------------------------------------------


async def test_markup_in_stored_texts_is_escaped_on_every_console_page(site: Site) -> None:
    world = await build_world(site, mark=XSS)
    owner = world.b
    escaped = 0
    pages = 0
    for page_set in PAGES:
        for page in page_set.pages:
            if page.method != "GET":
                continue
            response = await owner.get_raw(CONSOLE + fill(page.path, world.ids))
            if response.content_type != "text/html":
                continue
            html = await response.text()
            pages += 1
            # Escaped as HTML text, or as \u003c in the JSON a page hands its script.
            assert XSS not in html, page.path
            escaped += html.count("&lt;img src=x onerror=alert(1)&gt;")
    # The texts were shown (escaped) on the pages that list them.
    assert escaped >= 8, escaped
    print(f"stored XSS: {pages} console pages checked, the markup shown escaped {escaped} times")


# --- template injection ------------------------------------------------------------------------

# Ways out of the sandbox (escaped names, namespace and self internals) and resource bombs
# (memory, CPU: the check's child process stops them). tests/test_templates_check.py has more.
ESCAPES = [
    "{{ place_name|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ (place_name ~ '')['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{% set x = namespace() %}{{ x.__init__ }}",
    "{{ self.__init__.__globals__ }}",
]
BOMBS = ["{{ 'a' * 1000000000 }}", "{{ (99999 ** 99999) ** 99 }}"]


async def test_template_injection_is_refused_quickly_and_never_saved(site: Site) -> None:
    editor = await site.staff("042056", "editor")
    path = "/templates/register/done"
    status, before = await editor.api("GET", path)
    assert status == 200
    for source in ESCAPES + BOMBS:
        started = time.monotonic()
        status, body = await editor.api("PUT", path, {"source": source})
        assert status == 422, (source, status, body)
        assert time.monotonic() - started < 30, source
    for source in ESCAPES:
        status, preview = await editor.api("POST", path + "/preview", {"source": source})
        assert status in (200, 422), (source, status)
        assert "<class" not in json.dumps(preview) and "function" not in json.dumps(preview)
    assert (await editor.api("GET", path))[1] == before


# --- uploads ----------------------------------------------------------------------------------


async def test_oversized_bodies_are_413_and_path_names_are_not_paths(site: Site) -> None:
    editor = await site.staff("042056", "editor")
    big = b"x" * (3 * 1024 * 1024)
    # API: a JSON answer.
    program = f"upload-{uuid.uuid4().hex[:6]}"
    body = {"name": "会員名簿", "member_number_format": "NNNN"}
    assert (await editor.api("PUT", f"/programs/{program}", body))[0] in (200, 201)
    headers = {"X-CSRF-Token": editor.csrf, "Content-Type": "text/csv"}
    async with editor.http.post(
        site.base + f"/api/v1/programs/{program}/members", data=big, headers=headers
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"
    # Console: a page, not a crash.
    await editor.page(CONSOLE + "/garbage")
    async with editor.http.post(
        site.base + CONSOLE + "/garbage/import",
        data=_form(editor.csrf, big),
    ) as response:
        assert response.status == 413
    # A 5374 import naming files with paths: refused by name, nothing written anywhere.
    for name in ("../../area_days.csv", "/etc/passwd", "..\\center.csv", "area_days.csv\x00.txt"):
        status, body = await editor.api("PUT", "/garbage", {"files": {name: "地名\n"}})
        assert status == 422, (name, status, body)
    status, _ = await editor.api("GET", "/garbage")
    assert status == 404  # nothing was imported


def _form(csrf: str, content: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("file", content, filename="area_days.csv", content_type="text/csv")
    return form


# --- card tokens --------------------------------------------------------------------------------


async def test_invalid_card_tokens_are_one_answer_in_one_time_class(stack: Stack) -> None:
    secret = stack.settings.card_signing_secret.encode()
    genuine = sign_card_token(str(uuid.uuid4().hex[:24]), 1, secret)
    body, mac = genuine.split(".")
    kinds = {
        "malformed": "not-a-token",
        "altered MAC": f"{body}.{mac[:-2]}{'AA' if not mac.endswith('AA') else 'BB'}",
        "other secret": sign_card_token("6b08bd82e1a9d03759d5c37c", 1, b"x" * 32),
        "too long": "A" * 5000,
        "other path": f"{genuine}/extra",
    }
    seen: dict[str, set[tuple[int, str]]] = {k: set() for k in kinds}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(4):  # interleaved, so machine load hits every kind alike
        for kind, token in kinds.items():
            started = time.perf_counter()
            async with stack.http.get(f"{stack.bot_url}/verify/{token}") as response:
                html = await response.text()
            times[kind].append(time.perf_counter() - started)
            seen[kind].add((response.status, re.sub(r"\s+", " ", html)))
    shapes = {answer for kind in seen.values() for answer in kind}
    assert len(shapes) == 1 and next(iter(shapes))[0] == 404
    medians = {k: statistics.median(v) for k, v in times.items()}
    assert max(medians.values()) < 3 * min(medians.values()) + 0.02, medians
    # The limit counts every attempt, genuine or not (30 a minute per address).
    statuses = []
    for n in range(40):
        token = kinds["malformed"] if n % 2 else genuine
        async with stack.http.get(f"{stack.bot_url}/verify/{token}") as response:
            statuses.append(response.status)
    assert 429 in statuses and statuses.index(429) <= 30


def test_identity_documents_over_the_limit_are_refused_before_anything_is_kept() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    assert sniff_image(png + bytes(1000)) == "image/png"
    with pytest.raises(DocumentRejected) as refused:
        sniff_image(png + bytes(MAX_DOCUMENT_BYTES))
    assert refused.value.template == "premium/document_too_large"
