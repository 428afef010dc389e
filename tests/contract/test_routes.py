"""The public HTTP surface: pinned route table and an OpenAPI document that tells the truth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.db import Database
from app.main import create_app
from app.settings import Settings

# Changing this table changes the public contract: update the README's API table with it.
# (method, path, operation id); the operation id is the endpoint function's name.
ROUTES = {
    ("GET", "/health", "health"),
    ("GET", "/ready", "ready"),
    ("GET", "/metrics", "prometheus_metrics"),
    ("POST", "/api/v1/users", "create_user"),
    ("GET", "/api/v1/users/me", "read_current_user"),
    ("PATCH", "/api/v1/users/me", "update_current_user"),
    ("DELETE", "/api/v1/users/me", "delete_current_user"),
    ("POST", "/api/v1/login", "login"),
    ("POST", "/api/v1/auth/refresh", "refresh_tokens"),
    ("GET", "/api/v1/auth/oauth/providers", "list_oauth_providers"),
    ("GET", "/api/v1/auth/oauth/{provider}/start", "start_oauth_sign_in"),
    ("POST", "/api/v1/auth/oauth/{provider}/link/start", "start_oauth_link"),
    ("GET", "/api/v1/auth/oauth/{provider}/callback", "oauth_callback"),
    ("POST", "/api/v1/auth/oauth/{provider}/callback", "oauth_form_post_callback"),
    ("POST", "/api/v1/auth/oauth/exchange", "exchange_oauth_code"),
    ("GET", "/api/v1/auth/oauth/accounts", "list_oauth_accounts"),
    ("DELETE", "/api/v1/auth/oauth/accounts/{provider}", "unlink_oauth_account"),
    ("POST", "/api/v1/auth/logout", "logout"),
    ("POST", "/api/v1/auth/logout-all", "logout_all"),
    ("GET", "/api/v1/auth/sessions", "list_sessions"),
    ("DELETE", "/api/v1/auth/sessions/{session_id}", "end_session"),
    ("GET", "/api/v1/posts", "list_posts"),
    ("POST", "/api/v1/posts", "create_post"),
    ("GET", "/api/v1/posts/{post_id}", "read_post"),
    ("PATCH", "/api/v1/posts/{post_id}", "update_post"),
    ("DELETE", "/api/v1/posts/{post_id}", "delete_post"),
    ("PUT", "/api/v1/posts/{post_id}/vote", "cast_vote"),
    ("DELETE", "/api/v1/posts/{post_id}/vote", "withdraw_vote"),
}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The application as built, without starting it: the contract is in its structure."""
    return create_app(settings)


def route_table(app: FastAPI) -> set[tuple[str, str, str]]:
    """Every operation the application serves, read from its OpenAPI document."""
    return {
        (method.upper(), path, operation["operationId"])
        for path, path_item in app.openapi()["paths"].items()
        for method, operation in path_item.items()
    }


def test_route_table_is_pinned(app: FastAPI) -> None:
    assert route_table(app) == ROUTES


def test_every_api_route_is_versioned(app: FastAPI) -> None:
    paths = {path for _, path, _ in route_table(app)}

    assert all(path.startswith("/api/v1/") for path in paths - {"/health", "/ready", "/metrics"})


# Operations that answer anonymous callers and callers with a bearer token alike.
OPTIONAL_BEARER = {("GET", "/api/v1/posts"), ("GET", "/api/v1/posts/{post_id}")}


def test_the_bearer_token_is_documented_as_optional_where_it_is(app: FastAPI) -> None:
    bearer: dict[str, list[str]] = {"OAuth2PasswordBearer": []}
    security = {
        (method.upper(), path): operation["security"]
        for path, path_item in app.openapi()["paths"].items()
        for method, operation in path_item.items()
        if "security" in operation
    }

    assert {operation for operation, ways in security.items() if {} in ways} == OPTIONAL_BEARER
    for operation, ways in security.items():
        assert ways == ([bearer, {}] if operation in OPTIONAL_BEARER else [bearer]), operation


async def test_interactive_docs_are_served(client: httpx.AsyncClient) -> None:
    docs, schema = await client.get("/docs"), await client.get("/openapi.json")

    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert schema.json()["info"]["title"] == "FastAPI Starter"


def _error_responses(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (status, response)
        for path_item in schema["paths"].values()
        for operation in path_item.values()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    ]


def test_openapi_documents_errors_as_problem_json(app: FastAPI) -> None:
    schema = app.openapi()

    errors = _error_responses(schema)
    assert errors
    assert all(list(response["content"]) == ["application/problem+json"] for _, response in errors)
    components = schema["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "ValidationIssue"} <= components.keys()
    assert "HTTPValidationError" not in components
    assert components["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "error_code",
    ]


def test_validation_errors_are_documented_with_their_errors_list(app: FastAPI) -> None:
    @app.get("/api/v1/contract-probe/{item_id}")
    async def probe(item_id: int) -> dict[str, int]:
        raise NotImplementedError  # pragma: no cover - only its documentation is under test

    schema = app.openapi()

    response = schema["paths"]["/api/v1/contract-probe/{item_id}"]["get"]["responses"]["422"]
    assert response["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationProblem"
    }


def test_json_bodies_document_malformed_and_wrong_media_type(app: FastAPI) -> None:
    responses = app.openapi()["paths"]["/api/v1/users"]["post"]["responses"]

    for status in ("400", "415", "422"):
        assert responses[status]["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/ValidationProblem"
        }
    assert "409" in responses  # the route's own problems stay documented


def test_api_operations_document_rate_limits_and_outages(app: FastAPI) -> None:
    schema = app.openapi()

    for path, path_item in schema["paths"].items():
        for operation in path_item.values():
            responses = operation["responses"]
            documented = {"429", "503"} <= responses.keys()
            assert documented is path.startswith("/api/v1/"), path
    users = schema["paths"]["/api/v1/users"]["post"]["responses"]
    assert "rate_limited" in users["429"]["description"]
    assert "database_unavailable" in users["503"]["description"]


def test_openapi_is_generated_once(app: FastAPI) -> None:
    assert app.openapi() is app.openapi()


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
async def test_docs_can_be_turned_off(settings: Settings, database: Database, path: str) -> None:
    app = create_app(settings.model_copy(update={"docs_enabled": False}), database=database)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(path)

    assert response.status_code == 404


def test_a_partial_update_documents_its_fields_as_omittable_never_null(app: FastAPI) -> None:
    schema = app.openapi()["components"]["schemas"]["PostUpdate"]

    assert "required" not in schema
    assert {name: field.get("type") for name, field in schema["properties"].items()} == {
        "title": "string",
        "content": "string",
        "published": "boolean",
    }
