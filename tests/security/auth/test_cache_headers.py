"""Token and account responses are never stored by browsers or proxies, errors included."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.factories import make_account


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/login", None),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": "unknown"}),
        ("POST", "/api/v1/auth/logout", {"refresh_token": "unknown"}),
        ("GET", "/api/v1/users/me", None),
        ("POST", "/api/v1/users", {"email": "bad"}),
        ("GET", "/api/v1/auth/sessions", None),
    ],
)
async def test_auth_responses_are_no_store(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await client.request(method, path, json=body)

    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_successful_token_responses_are_no_store(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    response = await client.get("/api/v1/auth/sessions", headers=account.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_other_responses_keep_their_caching(client: httpx.AsyncClient) -> None:
    assert "cache-control" not in (await client.get("/health")).headers


async def test_no_store_holds_behind_a_path_prefix(app: FastAPI) -> None:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, root_path="/svc")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post("/svc/api/v1/auth/logout", json={"refresh_token": "x"})

    assert response.status_code == 204
    assert response.headers["cache-control"] == "no-store"
