"""Errors answered the way the LINE platform answers them: status + {"message", "details"}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

Detail = dict[str, str]


def detail(message: str, prop: str) -> Detail:
    return {"message": message, "property": prop}


class ApiError(Exception):
    """Raised anywhere in a handler; the middleware turns it into LINE's error response."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[Detail] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message}
        if self.details:
            body["details"] = self.details
        body.update(self.extra)
        return web.json_response(body, status=self.status, headers=self.headers)


def bad_request(details: list[Detail]) -> ApiError:
    return ApiError(400, f"The request body has {len(details)} error(s)", details)


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, message)
