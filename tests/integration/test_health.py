"""Liveness never touches a dependency; readiness reports each one and fails with a 503."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.conftest import TEST_REDIS_URL
from tests.support import assert_problem, make_settings, unused_port


def _unreachable_postgres() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{unused_port()}/nowhere"


def _unreachable_redis() -> str:
    return f"redis://127.0.0.1:{unused_port()}/0"


async def _get(database_url: str, path: str, **settings: Any) -> httpx.Response:
    """One request to a fresh app that owns its own engine, as a deployed pod does."""
    app = create_app(make_settings(database_url, **settings))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)


async def test_health_answers_without_any_dependency() -> None:
    response = await _get(_unreachable_postgres(), "/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "skipped"}}


async def test_ready_is_503_when_the_database_is_down() -> None:
    response = await _get(_unreachable_postgres(), "/ready")

    body = assert_problem(response, 503, "not_ready")
    assert body["checks"] == {"database": "failed", "redis": "skipped"}
    assert response.headers["retry-after"] == "5"


async def test_ready_is_503_when_required_redis_is_down(database_url: str) -> None:
    response = await _get(
        database_url, "/ready", redis={"url": _unreachable_redis(), "health_required": True}
    )

    body = assert_problem(response, 503, "not_ready")
    assert body["checks"] == {"database": "ok", "redis": "failed"}


async def test_ready_ignores_redis_unless_required(database_url: str) -> None:
    response = await _get(database_url, "/ready", redis={"url": _unreachable_redis()})

    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "skipped"


async def test_a_hung_database_fails_the_check_within_the_timeout(black_hole_port: int) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{black_hole_port}/db"

    with anyio.fail_after(10):  # a broken timeout fails here instead of hanging the suite
        response = await _get(url, "/ready", ready_timeout_seconds=0.2)

    assert_problem(response, 503, "not_ready")


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL (a real Redis)")
async def test_ready_pings_required_redis(database_url: str) -> None:
    response = await _get(
        database_url, "/ready", redis={"url": TEST_REDIS_URL, "health_required": True}
    )

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}
