"""RFC 9457 problem details: the `ProblemError` hierarchy and the handlers that render errors."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

import sentry_sdk
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.observability.logs import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:"

logger = get_logger(__name__)


class Problem(BaseModel):
    """An RFC 9457 problem details object; `error_code` is stable and never renamed."""

    type: str = Field(examples=[f"{PROBLEM_TYPE_PREFIX}not_found"])
    title: str
    status: int = Field(ge=400, le=599, description="Always equal to the HTTP status code.")
    detail: str
    instance: str = Field(description="The path of the request that failed.")
    error_code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[ValidationIssue]


class ProblemJSONResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ProblemError(Exception):
    """Base of every error the API reports on purpose.

    Subclasses set `status`, `code` and `title`; an instance may carry a specific `detail`.
    """

    status: ClassVar[int] = HTTPStatus.INTERNAL_SERVER_ERROR
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"
    detail: str = "The server could not complete the request."
    # The documented body; a subclass that adds extension members names its own model.
    schema: ClassVar[type[Problem]] = Problem
    # Headers every instance sends (e.g. `WWW-Authenticate` on a 401).
    default_headers: ClassVar[dict[str, str]] = {}
    # True when the request's writes must be committed even though it fails (e.g. revoking
    # a stolen token's session before answering 401). `DbSession` reads this.
    commit: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        if detail is not None:
            self.detail = detail
        self.headers = {**self.default_headers, **(headers or {})}
        self.extensions = dict(extensions or {})
        super().__init__(self.detail)


class BadRequest(ProblemError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"
    title = "Bad Request"
    detail = "The request could not be understood."


# RFC 9110 section 15 names, frozen here: `error_code` must never change, and Python's
# `HTTPStatus` phrases do change between versions (413, 422 in 3.13).
_STATUS_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def route_path(scope: Mapping[str, Any]) -> str:
    """The path the application routes on, without the prefix it is mounted under."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path


class DatabaseUnavailable(ProblemError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "database_unavailable"
    title = "Service Unavailable"
    detail = "The database is not answering. Try again shortly."
    default_headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class ConcurrentChange(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "concurrent_change"
    title = "Conflict"
    detail = "The request collided with a change made at the same moment. Try it again."


# Failures of the database's availability, not of the request: unreachable or restarted
# server, no free connection in the pool, SQLite's lock held past its busy timeout.
DATABASE_DOWN = (
    sqlalchemy_exc.OperationalError,
    sqlalchemy_exc.InterfaceError,
    sqlalchemy_exc.TimeoutError,
)


# Kept in the ASGI scope, which belongs to one request (lifespan `state` may be shared).
_CARRIED_HEADERS = "app.headers_for_errors"


def carry_header(request: Request, name: str, value: str) -> None:
    """Send `name: value` with the error response too, should this request fail later.

    A dependency sets headers on a successful response through FastAPI's `Response`
    parameter; an exception replaces that response, so headers that must always reach the
    client (the rate-limit state of the request) are carried here as well.
    """
    request.scope.setdefault(_CARRIED_HEADERS, []).append((name, value))


def status_title(status: int) -> str:
    return _STATUS_NAMES.get(status, "Error")


def error_code_for(status: int) -> str:
    """A stable snake_case code for a bare HTTP status: 404 -> `not_found`."""
    if status not in _STATUS_NAMES:
        return "http_error"
    return _STATUS_NAMES[status].lower().replace(" ", "_").replace("-", "_")


def problem_response(
    request_path: str,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemJSONResponse:
    body = {
        **(extra or {}),  # first, so an extension can never replace a standard member
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request_path,
        "error_code": code,
    }
    return ProblemJSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _handle_problem(request: Request, exc: ProblemError) -> ProblemJSONResponse:
    return problem_response(
        request.url.path,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extensions,
    )


async def _handle_http(request: Request, exc: StarletteHTTPException) -> ProblemJSONResponse:
    title = status_title(exc.status_code)
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (
        allowed := _allowed_methods(request.app, route_path(request.scope))
    ):
        # The router names only the methods of the first route that matched the path;
        # RFC 9110 10.2.1 wants every method the resource supports.
        headers["Allow"] = ", ".join(allowed)
    return problem_response(
        request.url.path,
        status=exc.status_code,
        code=error_code_for(exc.status_code),
        title=title,
        detail=exc.detail if isinstance(exc.detail, str) else title,
        headers=headers,
    )


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Methods of every documented operation whose path template matches `path`."""
    index: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "method_index", None)
    if index is None:
        index = [
            (compile_path(template)[0], {method.upper() for method in operations})
            for template, operations in app.openapi()["paths"].items()
        ]
        app.state.method_index = index
    return sorted(set().union(*(methods for regex, methods in index if regex.match(path))))


def _issues(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Only location, message and type: pydantic's `input` and `ctx` can echo a password back.
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


async def _handle_validation(request: Request, exc: RequestValidationError) -> ProblemJSONResponse:
    errors = _issues(exc.errors())
    if isinstance(exc.body, bytes):
        # FastAPI leaves the body as raw bytes when its Content-Type is not JSON.
        status, code = 415, "unsupported_media_type"
        detail = "The request body must be sent as application/json."
    elif any(e["type"] == "json_invalid" for e in errors):
        # Broken syntax is a 400 (RFC 9110 15.5.1); well-formed but wrong content is a 422.
        status, code, detail = 400, "malformed_json", "The request body is not valid JSON."
    else:
        status, code, detail = 422, "validation_failed", "The request has invalid fields."
    return problem_response(
        request.url.path,
        status=status,
        code=code,
        title=status_title(status),
        detail=detail,
        extra={"errors": errors},
    )


def unhandled_error_response(request_path: str) -> ProblemJSONResponse:
    """The generic 500: nothing about the failure leaves the server."""
    return problem_response(
        request_path,
        status=ProblemError.status,
        code=ProblemError.code,
        title=ProblemError.title,
        detail=ProblemError.detail,
    )


E = TypeVar("E", bound=Exception)


def _register(
    app: FastAPI, exc_class: type[E], handler: Callable[[Request, E], Awaitable[Response]]
) -> None:
    async def respond(request: Request, exc: E) -> Response:
        response = await handler(request, exc)
        for name, value in request.scope.get(_CARRIED_HEADERS, ()):
            response.headers.append(name, value)
        return response

    # Starlette dispatches by class, so each handler receives the narrower type it declares.
    app.add_exception_handler(exc_class, respond)  # type: ignore[arg-type]  # typed as Exception


async def _handle_unexpected(request: Request, exc: Exception) -> ProblemJSONResponse:
    # Reached only for failures outside `UnhandledErrorMiddleware`, in the middleware that
    # wraps it; Starlette's outermost layer calls this, then re-raises to the server.
    logger.error("unhandled error", path=request.url.path, exc_info=exc)
    sentry_sdk.capture_exception(exc)
    return unhandled_error_response(request.url.path)


async def _handle_database_down(request: Request, exc: Exception) -> ProblemJSONResponse:
    logger.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
    return await _handle_problem(request, DatabaseUnavailable())


async def _handle_integrity(request: Request, exc: Exception) -> ProblemJSONResponse:
    # Domain code checks its rules first (and locks what it changes), so a constraint that
    # still fails means another transaction got there between the check and the write.
    logger.warning("constraint failed", path=request.url.path, error=type(exc.__cause__).__name__)
    return await _handle_problem(request, ConcurrentChange())


def install_error_handlers(app: FastAPI) -> None:
    _register(app, Exception, _handle_unexpected)
    _register(app, sqlalchemy_exc.IntegrityError, _handle_integrity)
    for exc_class in DATABASE_DOWN:
        _register(app, exc_class, _handle_database_down)
    _register(app, ProblemError, _handle_problem)
    _register(app, StarletteHTTPException, _handle_http)
    _register(app, RequestValidationError, _handle_validation)


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry that documents the problems a route can answer with."""
    by_status: dict[int, list[type[ProblemError]]] = defaultdict(list)
    for error in errors:
        by_status[error.status].append(error)
    return {
        status: {
            "model": group[0].schema,
            "description": "; ".join(f"`{e.code}`: {e.detail}" for e in group),
        }
        for status, group in by_status.items()
    }


_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_problem_openapi(
    app: FastAPI, *, api_prefix: str, api_errors: Sequence[type[ProblemError]] = ()
) -> None:
    """Document every error response as `application/problem+json` with our schemas.

    FastAPI documents error responses as `application/json` and 422 with its own
    `HTTPValidationError`; this rewrites the generated document once, on first request.
    `api_errors` are problems any route under `api_prefix` can answer with (rate limits,
    an unavailable database).
    """
    common = problem_responses(*api_errors)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for path, path_item in schema.get("paths", {}).items():
                if path.startswith(api_prefix):
                    for operation in path_item.values():
                        _document_common(operation.setdefault("responses", {}), common)
            app.openapi_schema = _problem_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override hook


def _problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    _, definitions = models_json_schema(
        [(model, "validation") for model in (Problem, ValidationProblem)],
        ref_template="#/components/schemas/{model}",
    )
    components.update(definitions["$defs"])
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                _document_body_errors(operation.setdefault("responses", {}))
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400 and "content" in response:
                    response["content"] = {PROBLEM_MEDIA_TYPE: _problem_schema(status, response)}
    return schema


def _document_common(responses: dict[str, Any], common: dict[int | str, dict[str, Any]]) -> None:
    for status, entry in common.items():
        responses.setdefault(
            str(status),
            {
                "description": entry["description"],
                "content": {"application/json": {"schema": {"$ref": _ref(entry["model"])}}},
            },
        )


def _ref(model: type[BaseModel]) -> str:
    return f"#/components/schemas/{model.__name__}"


def _document_body_errors(responses: dict[str, Any]) -> None:
    """Every JSON body can be malformed (400) or sent as another media type (415)."""
    reference = {"$ref": "#/components/schemas/ValidationProblem"}
    for status, description in (
        ("400", "`malformed_json`: The request body is not valid JSON."),
        ("415", "`unsupported_media_type`: The request body must be sent as application/json."),
    ):
        responses.setdefault(
            status,
            {"description": description, "content": {"application/json": {"schema": reference}}},
        )


def _problem_schema(status: str, response: dict[str, Any]) -> dict[str, Any]:
    if status == "422":
        return {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}
    (content,) = response["content"].values()
    return dict(content)
