"""`DbSession` commits before the response is sent and rolls back when the request fails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from app.db import Database


@pytest.fixture
async def probe_table(database: Database) -> None:
    # Created inside the test's outer transaction, so it vanishes with the rollback.
    async with database.sessionmaker() as session:
        await session.execute(text("CREATE TABLE probe_rows (value INTEGER NOT NULL)"))
        await session.commit()


async def _values(database: Database) -> list[int]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(text("SELECT value FROM probe_rows"))).all())


@pytest.mark.usefixtures("probe_table")
async def test_successful_request_commits(client: httpx.AsyncClient, database: Database) -> None:
    response = await client.post("/api/v1/probe/rows/7")

    assert response.status_code == 201
    assert await _values(database) == [7]


@pytest.mark.usefixtures("probe_table")
async def test_failed_request_rolls_back(client: httpx.AsyncClient, database: Database) -> None:
    response = await client.post("/api/v1/probe/rows/8/then-fail")

    assert response.status_code == 418
    assert await _values(database) == []


class _CommitFails(Session):
    """A session whose commit fails, as when the database drops the connection at COMMIT."""


def _refuse_commit(_session: Session) -> None:
    raise RuntimeError("connection lost during COMMIT")


event.listen(_CommitFails, "before_commit", _refuse_commit)


@pytest.mark.usefixtures("probe_table")
async def test_failed_commit_never_follows_a_success_status(
    client: httpx.AsyncClient, database: Database
) -> None:
    working: async_sessionmaker[Any] = database.sessionmaker
    database.sessionmaker = async_sessionmaker(**{**working.kw, "sync_session_class": _CommitFails})

    response = await client.post("/api/v1/probe/rows/9")

    database.sessionmaker = working
    assert response.status_code == 500
    assert await _values(database) == []
