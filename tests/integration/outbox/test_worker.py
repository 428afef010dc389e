"""The ARQ worker: dispatch batches into Redis, process them, heal lost jobs, hand events back
on shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis
from arq.worker import Worker
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import outbox
from app.db import Database, utcnow
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from tests.conftest import TEST_REDIS_URL
from tests.support import forget_queue, make_settings
from worker.arq_worker import job_id, worker_settings

needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
HANDLED: list[int] = []
ENTERED: list[asyncio.Event] = []  # set by the stuck handler once it runs; one a test


@outbox.handler("test.worker.ok")
async def _ok(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    HANDLED.append(event.id)


@outbox.handler("test.worker.stuck")
async def _stuck(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    ENTERED[-1].set()
    await asyncio.Event().wait()  # until cancelled


@pytest.fixture(autouse=True)
def _handled() -> None:
    HANDLED.clear()  # ids start at 1 in each test's database
    ENTERED.append(asyncio.Event())


def _worker_settings(engine: AsyncEngine, redis_url: str, **outbox_settings: Any) -> type[Any]:
    settings = make_settings(
        engine.url.render_as_string(hide_password=False),
        redis={"url": redis_url},
        outbox={"queue_name": f"test-outbox-{uuid.uuid4().hex}"} | outbox_settings,
        # Started twice in one process below (fixture and worker): one metrics port each
        # is the worker process's; test_worker_metrics covers it.
        metrics={"enabled": False},
    )
    return worker_settings(settings)


@pytest.fixture
async def arq(private_engine: AsyncEngine) -> AsyncIterator[tuple[type[Any], dict[str, Any]]]:
    """Worker settings on a queue of this test's own, started like ARQ starts them."""
    assert TEST_REDIS_URL
    settings_class = _worker_settings(
        private_engine, TEST_REDIS_URL, visibility_timeout_seconds=2, job_timeout_seconds=1
    )
    redis: ArqRedis = await create_pool(
        settings_class.redis_settings, default_queue_name=settings_class.queue_name
    )
    ctx: dict[str, Any] = {"redis": redis}
    await settings_class.on_startup(ctx)
    yield settings_class, ctx
    await settings_class.on_shutdown(ctx)
    await forget_queue(redis, settings_class.queue_name)
    await redis.aclose()


async def _record(engine: AsyncEngine, topic: str, count: int) -> list[int]:
    async with Database(engine).sessionmaker() as session:
        events = [outbox.record(session, topic, {"n": i}) for i in range(count)]
        await session.commit()
        return [event.id for event in events]


async def _expire_locks(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(OutboxEvent).values(locked_until=utcnow() - timedelta(seconds=1))
        )


async def _statuses(engine: AsyncEngine, ids: list[int]) -> list[OutboxStatus]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(OutboxEvent.status).where(OutboxEvent.id.in_(ids)).order_by(OutboxEvent.id)
        )
        return list(rows.scalars())


async def _run_burst(settings_class: type[Any]) -> None:
    """Run a worker until its queue is empty, as `python -m worker` would, then stop.

    Built without the cron job: a scheduled dispatcher keeps a burst worker from ending.
    """
    names = (
        "functions",
        "on_startup",
        "on_shutdown",
        "redis_settings",
        "queue_name",
        "max_tries",
        "job_timeout",
        "keep_result",
    )
    worker = Worker(**{n: getattr(settings_class, n) for n in names}, burst=True, poll_delay=0.01)
    try:
        await worker.main()
    finally:
        await worker.close()


def test_the_worker_needs_redis() -> None:
    with pytest.raises(ValueError, match="needs REDIS_URL"):
        worker_settings(make_settings("sqlite://"))


def test_a_batch_has_one_job_named_after_its_events() -> None:
    assert job_id("outbox", [7, 8]) == job_id("outbox", [7, 8])
    assert job_id("outbox", [7, 8]).startswith("outbox:batch:")
    assert len({job_id("outbox", [7, 8]), job_id("outbox", [7, 9]), job_id("other", [7, 8])}) == 3


@needs_redis
async def test_dispatched_events_are_processed_by_a_worker(
    private_engine: AsyncEngine, arq: tuple[type[Any], dict[str, Any]]
) -> None:
    settings_class, ctx = arq
    ids = await _record(private_engine, "test.worker.ok", 5)
    dispatch = settings_class.cron_jobs[0].coroutine

    assert await dispatch(ctx) == 5
    assert await dispatch(ctx) == 0  # queued events are not handed over again
    await _expire_locks(private_engine)
    assert await dispatch(ctx) == 5  # reaped and claimed again while their job waits...
    assert await ctx["redis"].zcard(settings_class.queue_name) == 1  # ...yet one job for them
    await _run_burst(settings_class)

    assert await _statuses(private_engine, ids) == [OutboxStatus.COMPLETED] * 5
    assert sorted(i for i in HANDLED if i in ids) == ids


@needs_redis
async def test_two_workers_side_by_side_run_each_event_once(private_engine: AsyncEngine) -> None:
    assert TEST_REDIS_URL
    settings_class = _worker_settings(private_engine, TEST_REDIS_URL, batch_size=10)
    redis: ArqRedis = await create_pool(
        settings_class.redis_settings, default_queue_name=settings_class.queue_name
    )
    ctx: dict[str, Any] = {"redis": redis}
    await settings_class.on_startup(ctx)
    try:
        ids = await _record(private_engine, "test.worker.ok", 100)
        assert await settings_class.cron_jobs[0].coroutine(ctx) == 100
        assert await redis.zcard(settings_class.queue_name) == 10  # a job for each batch
        await asyncio.gather(_run_burst(settings_class), _run_burst(settings_class))
    finally:
        await settings_class.on_shutdown(ctx)
        await forget_queue(redis, settings_class.queue_name)
        await redis.aclose()

    assert await _statuses(private_engine, ids) == [OutboxStatus.COMPLETED] * 100
    assert sorted(i for i in HANDLED if i in ids) == ids


@needs_redis
async def test_jobs_lost_from_redis_are_healed_by_the_reaper(
    private_engine: AsyncEngine, arq: tuple[type[Any], dict[str, Any]]
) -> None:
    settings_class, ctx = arq
    ids = await _record(private_engine, "test.worker.ok", 3)
    dispatch = settings_class.cron_jobs[0].coroutine
    await dispatch(ctx)
    # Redis loses everything it held for this queue (a FLUSHDB, limited to our keys).
    redis: ArqRedis = ctx["redis"]
    queue = settings_class.queue_name
    await redis.delete(queue, f"arq:job:{job_id(queue, ids)}")

    deadline = utcnow().timestamp() + 10
    while await dispatch(ctx) < 3:  # the reaper frees them once their 2 s lock expires
        assert utcnow().timestamp() < deadline, "the reaper never re-queued the lost events"
        await asyncio.sleep(0.1)
    await _run_burst(settings_class)

    assert await _statuses(private_engine, ids) == [OutboxStatus.COMPLETED] * 3


async def test_a_job_cancelled_by_shutdown_releases_its_event(private_engine: AsyncEngine) -> None:
    settings_class = _worker_settings(private_engine, "redis://127.0.0.1:1/0")
    ctx: dict[str, Any] = {}
    await settings_class.on_startup(ctx)
    (event_id,) = await _record(private_engine, "test.worker.stuck", 1)
    async with Database(private_engine).sessionmaker() as session:
        await outbox.claim(session, make_settings("sqlite://").outbox, utcnow())
        await session.commit()
    job = asyncio.create_task(settings_class.functions[0].coroutine(ctx, [event_id]))
    await asyncio.wait_for(ENTERED[-1].wait(), timeout=10)

    job.cancel()  # what ARQ does to the job in hand on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await job
    await settings_class.on_shutdown(ctx)

    assert await _statuses(private_engine, [event_id]) == [OutboxStatus.PENDING]


async def test_a_hanging_handler_uses_up_its_attempts(private_engine: AsyncEngine) -> None:
    """Each attempt is counted when it starts: a handler that never returns is cut off by
    the job timeout and, after the last attempt, dead-lettered instead of looping."""
    settings_class = _worker_settings(
        private_engine, "redis://127.0.0.1:1/0", max_attempts=2, retry_base_seconds=0.001
    )
    ctx: dict[str, Any] = {}
    await settings_class.on_startup(ctx)
    (event_id,) = await _record(private_engine, "test.worker.stuck", 1)
    job = settings_class.functions[0].coroutine
    settings = make_settings("sqlite://", outbox={"max_attempts": 2}).outbox

    for _ in range(2):
        async with Database(private_engine).sessionmaker() as session:
            await _make_all_due(session)
            assert await outbox.claim(session, settings, utcnow()) == [[event_id]]
            await session.commit()
        ENTERED[-1].clear()
        running = asyncio.create_task(job(ctx, [event_id]))
        await asyncio.wait_for(ENTERED[-1].wait(), timeout=10)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(running, timeout=0)  # ARQ's job timeout, run out
    await settings_class.on_shutdown(ctx)

    assert await _statuses(private_engine, [event_id]) == [OutboxStatus.FAILED]


async def _make_all_due(session: AsyncSession) -> None:
    await session.execute(update(OutboxEvent).values(available_at=utcnow()))
