"""The PostgreSQL pool replaces connections the server dropped while they sat idle."""

from __future__ import annotations

import time
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import PING_AFTER_IDLE_SECONDS, create_engine
from app.settings import DatabaseSettings
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs TEST_DATABASE_URL")


async def test_an_idle_connection_the_server_ended_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(DatabaseSettings(_env_file=None, url=database_url, pool_size=1))
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        plain = make_url(database_url).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False)) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))  # a restart, for it
        later = time.monotonic() + PING_AFTER_IDLE_SECONDS
        monkeypatch.setattr("app.db.time", SimpleNamespace(monotonic=lambda: later))

        async with engine.connect() as connection:
            second = await connection.scalar(text("SELECT pg_backend_pid()"))
    finally:
        await engine.dispose()

    assert second != first  # a new connection, and no error reached the caller
