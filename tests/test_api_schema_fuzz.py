"""schemathesis against the staff API's own OpenAPI document, over HTTP against the running web
process (emulator + real database), with real credentials: an editor's API key for every
operation, and an admin's session (cookie + `X-CSRF-Token`) for the admin-only ones.

Every operation gets schema-valid (positive) and schema-invalid (negative) requests. No answer may
be a 5xx; every answer must match the document (status code, content type, body schema); invalid
requests must be refused (4xx). The number of cases is printed and recorded in docs/SECURITY.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from bot.staff.api import OPENAPI_PATH, PREFIX
from tests.test_staff_support import Site, add_registration, open_site

# Per operation and generation mode: ~40 operations x 2 modes x 2 principals stay < 90 s.
EXAMPLES = 6

# What every answer is held to. Left out: `positive_data_acceptance` (a valid body still meets
# a 404 for a random id), and the auth and method probes, which tests/test_security_*.py cover
# with real principals.
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@dataclass
class Tally:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    unsatisfiable: int = 0


def _has_constraints(operation: dict[str, Any]) -> bool:
    """Whether there is anything invalid to send: path parameters are free text here."""
    return "requestBody" in operation or any(
        p["in"] == "query" for p in operation.get("parameters", [])
    )


def fuzz(document: dict[str, Any], base_url: str, headers: dict[str, str], tally: Tally) -> None:
    """Runs in a thread: schemathesis calls the server with blocking requests."""
    # The credentials are ours: without this, schemathesis makes up bearer keys and cookies
    # from the security schemes, and most requests would only ever meet the 401.
    schema = schemathesis.openapi.from_dict({**document, "security": []})
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if _has_constraints(document["paths"][operation.path][operation.method.lower()]):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=10)
                tally.cases += 1
                tally.by_status[response.status_code] = (
                    tally.by_status.get(response.status_code, 0) + 1
                )
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # a query of optional free texts: nothing invalid to send
                tally.unsatisfiable += 1
            except (Exception, BaseExceptionGroup) as exc:
                tally.failures.append(f"{operation.label} [{mode.value}]: {exc}"[:3000])


@pytest.fixture
async def site(mongo_uri: str, own_db_name: str) -> AsyncIterator[Site]:
    # Its own database: the generated writes change municipalities' settings at random.
    async with open_site(mongo_uri, own_db_name) as s:
        yield s


async def test_the_api_answers_every_generated_request_as_documented(site: Site) -> None:
    await add_registration(site.storage, place_code="042056")
    admin = await site.staff("042056", "admin")
    key, _ = await site.api_key(admin, role="editor")
    status, document = await admin.api("GET", OPENAPI_PATH.removeprefix(PREFIX))
    assert status == 200
    cookie = admin.session_cookie
    assert cookie is not None
    tally = Tally()
    base_url = site.base + PREFIX
    await asyncio.to_thread(fuzz, document, base_url, {"Authorization": f"Bearer {key}"}, tally)
    await asyncio.to_thread(
        fuzz,
        document,
        base_url,
        {"Cookie": f"fb_session={cookie}", "X-CSRF-Token": admin.csrf},
        tally,
    )
    print(
        f"schemathesis: {tally.cases} requests, statuses {sorted(tally.by_status.items())}, "
        f"{tally.unsatisfiable} negative runs with nothing invalid to send"
    )
    assert tally.cases > 100
    assert not any(status >= 500 for status in tally.by_status), tally.by_status
    assert not tally.failures, "\n\n".join(tally.failures)
