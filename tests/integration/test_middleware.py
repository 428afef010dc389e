"""Request ids, API version headers and trusted hosts, seen from a client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.db import Database
from app.main import create_app
from app.settings import Settings
from tests.support import assert_problem


async def test_a_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "edge-7f3a.01:b"})

    assert response.headers["x-request-id"] == "edge-7f3a.01:b"


@pytest.mark.parametrize("sent", [None, "", "has spaces", "x" * 129, "line\rbreak"])
async def test_a_missing_or_malformed_request_id_is_replaced(
    client: httpx.AsyncClient, sent: str | None
) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}

    response = await client.get("/health", headers=headers)

    generated = response.headers["x-request-id"]
    assert generated != sent
    assert len(generated) == 32
    assert int(generated, 16) >= 0


async def test_every_response_gets_its_own_request_id(client: httpx.AsyncClient) -> None:
    first, second = await client.get("/health"), await client.get("/health")

    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_versioned_path_names_the_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/items/1")

    assert response.headers["x-api-version"] == "v1"
    assert "x-api-version-defaulted" not in response.headers


async def test_unversioned_path_gets_the_default_version_flagged(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health")

    assert response.headers["x-api-version"] == "v1"
    assert response.headers["x-api-version-defaulted"] == "true"


async def test_a_supported_version_header_names_the_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-API-Version": "v1"})

    assert response.headers["x-api-version"] == "v1"
    assert "x-api-version-defaulted" not in response.headers


async def test_an_unsupported_version_header_falls_back_to_the_default(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health", headers={"X-API-Version": "v9"})

    assert response.headers["x-api-version"] == "v1"
    assert response.headers["x-api-version-defaulted"] == "true"


async def test_error_responses_carry_the_version_and_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/missing", headers={"X-Request-ID": "abc"})

    assert response.headers["x-api-version"] == "v1"
    assert response.headers["x-request-id"] == "abc"


@pytest.fixture
async def host_client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    guarded = settings.model_copy(update={"trusted_hosts": ["api.example.com", "*.example.org"]})
    app = create_app(guarded, database=database)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as c:
            yield c


@pytest.mark.parametrize(
    "host", ["api.example.com", "API.example.com:8443", "eu.example.org", "a.b.example.org:80"]
)
async def test_trusted_hosts_are_served(host_client: httpx.AsyncClient, host: str) -> None:
    response = await host_client.get("/docs", headers={"Host": host})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.com",
        "example.org",
        "api.example.com.evil.com",
        "[::1]:8000",
        "",
        "api.example.com:80@evil.com",
        "api.example.com:abc",
        "evil.com/.example.org",
        "evil.com?.example.org",
        "evil.com#.example.org",
        "api.example.com ",
    ],
)
async def test_other_hosts_are_refused(host_client: httpx.AsyncClient, host: str) -> None:
    response = await host_client.get("/docs", headers={"Host": host})

    assert_problem(response, 400, "invalid_host")
    assert "x-request-id" in response.headers


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_probes_answer_whatever_the_host(host_client: httpx.AsyncClient, path: str) -> None:
    response = await host_client.get(path, headers={"Host": "10.1.2.3:8000"})

    assert response.status_code == 200


async def test_probes_behind_a_path_prefix_still_answer_any_host(
    settings: Settings, database: Database
) -> None:
    guarded = settings.model_copy(update={"trusted_hosts": ["api.example.com"]})
    app = create_app(guarded, database=database)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, root_path="/svc")
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.7") as client:
            probe = await client.get("/svc/health")
            api = await client.get("/svc/api/v1/users/me", headers={"Host": "api.example.com"})

    assert probe.status_code == 200
    assert api.headers["x-api-version"] == "v1"
    assert "x-api-version-defaulted" not in api.headers
