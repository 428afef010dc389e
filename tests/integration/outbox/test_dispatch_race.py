"""Two dispatchers racing over the same events never hand one over twice (real commits)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app import outbox
from app.db import Database, utcnow
from app.outbox import OutboxEvent
from tests.support import make_settings

EVENTS = 1000


@pytest.fixture
async def topic(private_engine: AsyncEngine) -> str:
    """1,000 committed pending events, in a database of this test's own."""
    engine = private_engine
    name = f"test.race.{uuid.uuid4().hex}"
    now = utcnow()
    rows = [
        {
            "topic": name,
            "payload": {"n": i},
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "available_at": now,
        }
        for i in range(EVENTS)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(OutboxEvent), rows)
    return name


async def test_two_dispatchers_never_claim_one_event_twice(
    private_engine: AsyncEngine, topic: str
) -> None:
    engine = private_engine
    database = Database(engine)
    settings = make_settings("sqlite://", outbox={"batch_size": 50}).outbox
    handed: Counter[int] = Counter()

    async def enqueue(event_id: int) -> None:
        handed[event_id] += 1

    async def dispatcher() -> None:
        while await outbox.dispatch(database, settings, enqueue):
            pass

    await asyncio.gather(dispatcher(), dispatcher())

    async with engine.connect() as connection:
        ours = set(
            (
                await connection.execute(
                    OutboxEvent.__table__.select().where(OutboxEvent.topic == topic)
                )
            ).scalars()
        )
    assert len(ours) == EVENTS
    assert {event_id for event_id in handed if event_id in ours} == ours
    assert all(handed[event_id] == 1 for event_id in ours)
