"""Browser hardening headers on every response, body limits and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.db import Database
from app.main import create_app
from app.middleware import API_CSP, DOCS_CSP, HSTS
from app.settings import Settings
from tests.conftest import serve
from tests.support import assert_problem, make_settings

HARDENED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


def _assert_hardened(response: httpx.Response, csp: str = API_CSP) -> None:
    for name, value in HARDENED.items():
        assert response.headers[name] == value, (response.request.url, name)
    assert response.headers["content-security-policy"] == csp


async def test_every_route_answers_with_the_headers(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    for path, path_item in app.openapi()["paths"].items():
        for method in path_item:
            url = path.replace("{post_id}", "1").replace("{session_id}", "x")
            response = await client.request(method.upper(), url)
            _assert_hardened(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nowhere", 404),
        ("DELETE", "/health", 405),
        ("GET", "/api/v1/posts?limit=0", 422),
        ("GET", "/api/v1/probe/crash", 500),
    ],
)
async def test_errors_carry_the_headers_too(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)

    assert response.status_code == status
    _assert_hardened(response)


async def test_the_docs_get_their_own_policy(client: httpx.AsyncClient) -> None:
    _assert_hardened(await client.get("/docs"), csp=DOCS_CSP)


async def test_hsts_only_over_https(app: FastAPI) -> None:
    async with serve(app) as client:
        plain = await client.get("/health")
        client.base_url = httpx.URL("https://testserver")
        secure = await client.get("/health")

    assert "strict-transport-security" not in plain.headers
    assert secure.headers["strict-transport-security"] == HSTS


@pytest.fixture
async def small_body_client(
    settings: Settings, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"max_request_body_bytes": 2048}), database=database
    )
    async with serve(app) as client:
        yield client


async def test_a_declared_oversize_body_is_refused_unread(
    small_body_client: httpx.AsyncClient,
) -> None:
    response = await small_body_client.post(
        "/api/v1/users", content=b"x" * 4096, headers={"Content-Type": "application/json"}
    )

    body = assert_problem(response, 413, "content_too_large")
    assert body["title"] == "Content Too Large"
    _assert_hardened(response)


async def test_a_streamed_oversize_body_is_cut_off(small_body_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 1024

    response = await small_body_client.post(
        "/api/v1/users", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413, "content_too_large")


async def test_a_body_within_the_limit_is_read(small_body_client: httpx.AsyncClient) -> None:
    response = await small_body_client.post("/api/v1/users", json={"email": "x"})

    assert_problem(response, 422, "validation_failed")


async def test_cors_only_for_configured_origins(settings: Settings, database: Database) -> None:
    app = create_app(
        settings.model_copy(update={"cors_origins": ["https://app.example.com"]}),
        database=database,
    )
    async with serve(app) as client:
        allowed = await client.options(
            "/api/v1/posts",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
        )
        other = await client.get("/api/v1/posts", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    # Credentialed calls carry the OAuth flow's binding cookie (see `.../link/start`).
    assert allowed.headers["access-control-allow-credentials"] == "true"
    # Without Access-Control-Allow-Origin, a browser shows the other origin nothing.
    assert "access-control-allow-origin" not in other.headers


async def test_without_origins_there_is_no_cors(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/posts", headers={"Origin": "https://app.example.com"})

    assert "access-control-allow-origin" not in response.headers


def test_a_wildcard_origin_is_refused() -> None:
    with pytest.raises(ValidationError, match="CORS_ORIGINS must list origins"):
        make_settings("sqlite://", cors_origins=["*"])


@pytest.fixture
async def redirecting(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"https_redirect": True}), database=database)
    async with serve(app) as client:
        yield client


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_plain_http_reads_are_redirected_to_https(
    redirecting: httpx.AsyncClient, method: str
) -> None:
    response = await redirecting.request(method, "/api/v1/posts?limit=5")

    assert response.status_code == 308
    assert response.headers["location"] == "https://testserver/api/v1/posts?limit=5"


async def test_plain_http_writes_are_refused_not_redirected(
    redirecting: httpx.AsyncClient,
) -> None:
    response = await redirecting.post(
        "/api/v1/login", data={"username": "a@b.co", "password": "secret"}
    )

    assert_problem(response, 400, "https_required")
    assert "location" not in response.headers


async def test_https_and_probes_pass_through(redirecting: httpx.AsyncClient) -> None:
    probe = await redirecting.get("/health")
    redirecting.base_url = httpx.URL("https://testserver")
    secure = await redirecting.get("/api/v1/posts")

    assert (probe.status_code, secure.status_code) == (200, 200)
