"""Dispatchers and jobs racing over the same events never take one twice (real commits)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import outbox
from app.db import Database, utcnow
from app.mail import LogMailer
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from tests.support import make_settings

EVENTS = 1000


RUNS: Counter[int] = Counter()


@outbox.handler("test.race.counted")
async def _counted(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    RUNS[event.id] += 1
    await asyncio.sleep(0)  # let the other jobs in between handlers


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

    async def enqueue(event_ids: list[int]) -> None:
        handed.update(event_ids)

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


async def test_jobs_side_by_side_run_each_event_once(private_engine: AsyncEngine) -> None:
    """Two dispatchers, each handing its batches to jobs at once, and every batch handed to a
    second job as well, as after a reaper's requeue: each handler runs once."""
    database = Database(private_engine)
    settings = make_settings("sqlite://", outbox={"batch_size": 50})
    context = HandlerContext(settings=settings, mailer=LogMailer())
    now = utcnow()
    rows = [
        {"topic": "test.race.counted", "payload": {}, "status": "pending", "attempts": 0}
        | {"created_at": now, "available_at": now}
        for _ in range(EVENTS)
    ]
    async with private_engine.begin() as connection:
        await connection.execute(insert(OutboxEvent), rows)
    RUNS.clear()

    async def twice(event_ids: list[int]) -> None:
        await asyncio.gather(
            outbox.process(database, event_ids, context),
            outbox.process(database, event_ids, context),
        )

    async def dispatcher() -> None:
        while await outbox.dispatch(database, settings.outbox, twice):
            pass

    await asyncio.gather(dispatcher(), dispatcher())

    async with private_engine.connect() as connection:
        done = await connection.scalar(
            select(func.count()).where(OutboxEvent.status == OutboxStatus.COMPLETED)
        )
    assert done == EVENTS
    assert len(RUNS) == EVENTS
    assert set(RUNS.values()) == {1}
