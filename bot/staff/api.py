"""The JSON API's route registry: one declaration gives the aiohttp route, request and response
validation with pydantic, the role check, and the OpenAPI 3.1 operation.

A resource module declares its operations on an `ApiRoutes` and is listed in
`bot/staff/web.py` (`API_ROUTES`):

    routes = ApiRoutes("benefits", "特典")

    @routes.get("/benefits/{benefit_id}", response=BenefitOut, summary="特典を1件取得")
    async def get_benefit(call: Call) -> BenefitOut:
        doc = await call.storage.benefits.get_for(call.tenant, call.param("benefit_id"))
        if doc is None:
            raise not_found()
        return BenefitOut.of(doc)

    @routes.post("/benefits", body=BenefitIn, response=BenefitOut, status=201,
                 role=Role.EDITOR, summary="特典を追加")
    async def add_benefit(call: Call, body: BenefitIn) -> BenefitOut: ...

The handler gets `call` (`bot.staff.context.Call`: principal, tenant, storage, clock, audit),
then `body=` (validated request body) and/or `query=` (validated query string) when declared. It
returns an instance of `response` (200/201), None (204), or a `web.StreamResponse` for
`produces` other than JSON (CSV). Errors are `ApiError`s, answered as
`{"error": {"code", "message", "field"?}}` with Japanese messages; validation errors are 422 and
name the field. `ApiRoutes(..., municipal_only=True)` (or `municipal_only=` on one operation): the
operator (platform tenant) has none of these things and is answered 404 before the handler runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.staff.context import Call, principal_of
from bot.staff.tenancy import Role

M = TypeVar("M", bound=BaseModel)

PREFIX = "/api/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ApiHandler = Callable[..., Awaitable[Any]]
_PATH_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

dumps = partial(json.dumps, ensure_ascii=False)


# --- errors ---------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def not_found() -> ApiError:
    """The one answer for anything outside the caller's tenant, or that does not exist."""
    return ApiError(404, "not_found", "指定されたデータが見つかりません。")


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "この操作を行う権限がありません。")


def error_response(
    status: int, code: str, message: str, field: str | None = None, **extra: Any
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return web.json_response({"error": body}, status=status, dumps=dumps)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ApiModel(BaseModel):
    """Base of request models: unknown fields are refused (a typo is a 422, not ignored)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- validation messages --------------------------------------------------------------------------


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def describe(
    error: Any, *, where: str = "body", labels: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The field a pydantic error is about, and a Japanese sentence saying what is wrong."""
    name = _field_name(tuple(error["loc"])) if error.get("loc") else where
    label = (labels or {}).get(name, name)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        message = f"「{label}」を指定してください。"
    elif kind == "extra_forbidden":
        message = f"「{label}」という項目は使えません。"
    elif kind in ("string_too_short", "too_short"):
        message = f"「{label}」が短すぎます（{ctx.get('min_length', '')}文字以上）。"
    elif kind in ("string_too_long", "too_long"):
        message = f"「{label}」が長すぎます（{ctx.get('max_length', '')}文字以内）。"
    elif kind in ("literal_error", "enum"):
        message = f"「{label}」は次のいずれかにしてください: {ctx.get('expected', '')}"
    elif kind in (
        "date_parsing",
        "date_from_datetime_parsing",
        "date_type",
        "date_from_datetime_inexact",
    ):
        message = f"「{label}」は日付（例: 2027-01-31）で指定してください。"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        message = f"「{label}」は整数で指定してください。"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        message = f"「{label}」の値が範囲外です。"
    elif kind == "value_error" and ctx.get("error") is not None:
        message = f"「{label}」: {ctx['error']}"
    elif kind == "string_pattern_mismatch":
        message = f"「{label}」の形式が正しくありません。"
    else:
        message = f"「{label}」の値が正しくありません。"
    return name, message


def validation_error(exc: ValidationError, *, where: str) -> ApiError:
    errors = exc.errors()
    if not errors:
        return ApiError(422, "validation_error", "入力に誤りがあります。", field=where)
    if errors[0]["type"] == "json_invalid":
        return ApiError(
            422, "invalid_json", "リクエスト本文を正しいJSONで送ってください。", field="body"
        )
    name, message = describe(errors[0], where=where)
    return ApiError(422, "validation_error", message, field=name)


def validate_query(model: type[M], request: web.Request) -> M:
    """The query string as `model`; an empty value counts as not given (as forms send it)."""
    data: dict[str, Any] = {}
    for key in request.query:
        values = [v for v in request.query.getall(key) if v != ""]
        if values:
            data[key] = values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, where="query") from None


async def _validate_body(model: type[BaseModel], request: web.Request) -> BaseModel:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        raise validation_error(exc, where="body") from None


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: Method
    path: str  # below /api/v1, e.g. "/staff/{staff_id}"
    handler: ApiHandler
    summary: str
    role: Role
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    produces: str = "application/json"
    description: str = ""
    municipal_only: bool = False  # the operator (platform tenant) gets 404

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


@dataclass
class ApiRoutes:
    """Operations of one resource (`tag` names it in the OpenAPI document). `municipal_only`:
    its operations serve a municipality's staff only, unless one says otherwise."""

    tag: str
    description: str = ""
    municipal_only: bool = False
    operations: list[Operation] = field(default_factory=list)

    def operation(
        self,
        method: Method,
        path: str,
        *,
        summary: str,
        role: Role = Role.VIEWER,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int | None = None,
        produces: str = "application/json",
        description: str = "",
        municipal_only: bool | None = None,
    ) -> Callable[[ApiHandler], ApiHandler]:
        if not path.startswith("/"):
            raise ValueError(f"API path must start with '/': {path!r}")

        def register(handler: ApiHandler) -> ApiHandler:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    role=role,
                    tag=self.tag,
                    body=body,
                    query=query,
                    response=response,
                    status=status or (200 if response or produces != "application/json" else 204),
                    produces=produces,
                    description=description,
                    municipal_only=(
                        self.municipal_only if municipal_only is None else municipal_only
                    ),
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[ApiHandler], ApiHandler]:
        return self.operation("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[ApiHandler], ApiHandler]:
        return self.operation("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[ApiHandler], ApiHandler]:
        return self.operation("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[ApiHandler], ApiHandler]:
        return self.operation("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[ApiHandler], ApiHandler]:
        return self.operation("DELETE", path, **kw)


def _aiohttp_handler(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = principal_of(request)
        if principal is None:  # the middleware answers 401 before this; never reached
            raise ApiError(401, "unauthorized", "認証が必要です。")
        if not principal.can(op.role):
            raise forbidden()
        kwargs: dict[str, Any] = {}
        if op.query is not None:
            kwargs["query"] = validate_query(op.query, request)
        if op.body is not None:
            kwargs["body"] = await _validate_body(op.body, request)
        if op.municipal_only and principal.tenant.is_platform:
            # After validation, where the handlers' own checks stood: the operator has no
            # municipality's data to act on.
            raise not_found()
        result = await op.handler(Call(request, principal), **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        if op.response is None or not isinstance(result, op.response):
            raise TypeError(f"{op.operation_id} returned {type(result).__name__}")
        return web.json_response(result.model_dump(mode="json"), status=op.status, dumps=dumps)

    handle.__name__ = f"api_{op.operation_id}"
    return handle


def add_api_routes(app: web.Application, route_sets: list[ApiRoutes]) -> None:
    seen: set[tuple[str, str]] = set()
    for routes in route_sets:
        for op in routes.operations:
            if (op.method, op.path) in seen:
                raise ValueError(f"duplicate API operation {op.method} {op.path}")
            seen.add((op.method, op.path))
            app.router.add_route(op.method, PREFIX + op.path, _aiohttp_handler(op))
    document = openapi_document(route_sets)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document, dumps=dumps)

    app.router.add_get(OPENAPI_PATH, openapi)


# --- OpenAPI --------------------------------------------------------------------------------------

_ERRORS = {
    "401": "認証されていません（セッションかAPIキーが必要です）",
    "403": "権限がありません",
    "404": "見つかりません（他の自治体のデータを含む）",
    "422": "入力に誤りがあります（`field` が項目名）",
}


def openapi_document(
    route_sets: list[ApiRoutes], title: str = "ふるさと住民登録 スタッフAPI"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these operations, schemas from their pydantic models."""
    ops = [op for routes in route_sets for op in routes.operations]
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for op in ops:
        for model, mode in (
            (op.body, "validation"),
            (op.query, "validation"),
            (op.response, "serialization"),
        ):
            if model is not None and (model, mode) not in wanted:
                wanted.append((model, mode))  # type: ignore[arg-type]
    refs, defs = models_json_schema(wanted, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = defs.get("$defs", {})

    def schema_of(ref: dict[str, Any]) -> dict[str, Any]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        resolved: dict[str, Any] = schemas[name]
        return resolved

    error_ref = refs[(ErrorResponse, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in op.path_params
        ]
        if op.query is not None:
            query_schema = schema_of(refs[(op.query, "validation")])
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                param: dict[str, Any] = {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": {k: v for k, v in prop.items() if k != "description"},
                }
                if prop.get("description"):
                    param["description"] = prop["description"]
                parameters.append(param)
        responses: dict[str, Any] = {}
        if op.status == 204:
            responses["204"] = {"description": "成功（本文なし）"}
        elif op.response is not None:
            responses[str(op.status)] = {
                "description": "成功",
                "content": {op.produces: {"schema": refs[(op.response, "serialization")]}},
            }
        else:
            responses[str(op.status)] = {
                "description": "成功",
                "content": {op.produces: {"schema": {"type": "string"}}},
            }
        # Any operation may be 404: a tenant can lack the thing (no calendar yet; operators
        # have no benefits). Writes may read a body of their own (CSV uploads) and refuse it.
        codes = ["401", "403", "404"]
        if op.body is not None or op.query is not None or op.method in ("POST", "PUT", "PATCH"):
            codes.append("422")
        for code in codes:
            responses[code] = {
                "description": _ERRORS[code],
                "content": {"application/json": {"schema": error_ref}},
            }
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
            "x-required-role": op.role.value,
        }
        if op.description:
            operation["description"] = op.description
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    tags = []
    for routes in route_sets:
        if routes.operations:
            tags.append({"name": routes.tag, "description": routes.description})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": (
                "自治体職員向けのJSON API。認証はAPIキー（`Authorization: Bearer fk_…`）または"
                "管理画面のセッション（変更系の操作には `X-CSRF-Token` ヘッダーが必要）。"
                "データは常にログインした自治体の範囲に限られます。"
            ),
        },
        "servers": [{"url": PREFIX}],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "APIキー fk_…"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "fb_session"},
            },
        },
    }
