"""Data routes answer 503 within a bounded time while the database is unreachable."""

from __future__ import annotations

import anyio
import httpx

from app.main import create_app
from tests.conftest import serve
from tests.support import assert_problem, make_settings, unused_port


async def _get_posts(database_url: str, **database: object) -> httpx.Response:
    app = create_app(make_settings(database_url, database=database))
    async with serve(app) as client:
        return await client.get("/api/v1/posts")


async def test_refused_connections_are_a_503_problem() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{unused_port()}/db"

    with anyio.fail_after(10):
        response = await _get_posts(url)

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "5"


async def test_a_silent_server_is_a_503_after_the_connect_timeout(black_hole_port: int) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{black_hole_port}/db"

    with anyio.fail_after(10):
        response = await _get_posts(url, connect_timeout_seconds=2)

    assert_problem(response, 503, "database_unavailable")
