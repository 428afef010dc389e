"""Every error the API can give is RFC 9457 problem+json with a stable `error_code`."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import MAX_ID, Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import serve
from tests.support import assert_problem, log_events


async def test_problem_error_renders_its_status_code_headers_and_extensions(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/probe/problem")

    body = assert_problem(response, 418, "teapot")
    assert body["title"] == "I'm a teapot"
    assert body["detail"] == "This endpoint brews tea."
    assert body["instance"] == "/api/v1/probe/problem"
    assert body["temperature"] == 80
    assert response.headers["x-brew"] == "green"


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")

    body = assert_problem(response, 404, "not_found")
    assert body["title"] == "Not Found"


async def test_unversioned_api_alias_does_not_exist(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/probe/problem"), 404, "not_found")


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/probe/problem")

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


async def test_allow_lists_every_method_of_the_resource(client: httpx.AsyncClient) -> None:
    # GET, PATCH and DELETE /users/me are three routes; the router alone would name one.
    response = await client.post("/api/v1/users/me")
    again = await client.put("/api/v1/users/me")

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == again.headers["allow"] == "DELETE, GET, PATCH"


async def test_allow_for_undocumented_routes_comes_from_the_router(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/docs")

    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_a_failure_outside_the_error_boundary_is_still_a_problem(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, database=database)  # of its own: a middleware is added

    def breaks_on_the_way_in(inner: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                raise RuntimeError("broken middleware")
            await inner(scope, receive, send)

        return middleware

    app.add_middleware(breaks_on_the_way_in)  # outermost: outside UnhandledErrorMiddleware
    async with serve(app) as client:
        response = await client.get("/health")

    assert_problem(response, 500, "internal_error")
    assert "broken middleware" not in response.text
    (logged,) = log_events(caplog.records, "app.errors")
    assert isinstance(logged["exc_info"], RuntimeError)


@pytest.mark.parametrize(
    ("status", "error_code", "title"),
    [
        (409, "conflict", "Conflict"),
        (413, "content_too_large", "Content Too Large"),
        (418, "http_error", "Error"),
        (599, "http_error", "Error"),
    ],
)
async def test_http_exception_gets_a_code_from_its_status(
    client: httpx.AsyncClient, status: int, error_code: str, title: str
) -> None:
    response = await client.get(f"/api/v1/probe/http/{status}")

    assert_problem(response, status, error_code)
    assert response.json()["title"] == title


async def test_unhandled_error_is_a_generic_500_logged_with_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/api/v1/probe/crash", headers={"X-Request-ID": "req-crash-1"})

    body = assert_problem(response, 500, "internal_error")
    assert body["detail"] == "The server could not complete the request."
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"] == "req-crash-1"
    assert response.headers["x-api-version"] == "v1"
    (record,) = [r for r in caplog.records if r.name == "app.middleware"]
    assert record.levelno == logging.ERROR
    assert isinstance(record.msg, dict)
    assert record.msg["exc_info"] is True  # the traceback goes to the log
    assert record.msg["request_id"] == "req-crash-1"


async def test_invalid_query_or_path_is_a_422_with_an_errors_list(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/probe/items/abc")

    body = assert_problem(response, 422, "validation_failed")
    assert body["title"] == "Unprocessable Content"
    assert body["errors"] == [
        {
            "loc": ["path", "item_id"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]


@pytest.mark.parametrize("item_id", [0, -1, MAX_ID + 1, 2**70])
async def test_out_of_range_ids_are_422_not_a_database_error(
    client: httpx.AsyncClient, item_id: int
) -> None:
    assert_problem(await client.get(f"/api/v1/probe/items/{item_id}"), 422, "validation_failed")


async def test_largest_id_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/probe/items/{MAX_ID}")

    assert response.status_code == 200
    assert response.json() == {"id": MAX_ID}


@pytest.mark.parametrize("payload", [b'{"text": ', b"\xff\xfe{}", b"[1, 2"])
async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient, payload: bytes) -> None:
    response = await client.post(
        "/api/v1/probe/notes", content=payload, headers={"Content-Type": "application/json"}
    )

    body = assert_problem(response, 400, "malformed_json")
    assert body["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_json_route_refuses_other_content_types_with_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/api/v1/probe/notes", content=b'{"text": "hi"}', headers=headers)

    assert_problem(response, 415, "unsupported_media_type")


async def test_unknown_body_fields_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/probe/notes", json={"text": "hi", "is_superuser": True})

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["body", "is_superuser"]


async def test_valid_json_body_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/probe/notes", json={"text": "hi"})

    assert response.status_code == 201
    assert response.json() == {"text": "hi", "secret": None}


async def test_a_constraint_lost_to_a_concurrent_change_is_a_409(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/probe/dangling-vote")

    assert_problem(response, 409, "concurrent_change")
