"""Outbox throughput: events per second through the dispatcher and one ARQ worker.

    .venv/bin/python -m bench.outbox_throughput [EVENTS] [POSTGRES_URL] [REDIS_URL]

Creates a database of its own (dropped at the end), records EVENTS events (default 10,000)
of a topic with a no-op handler, then runs one worker (the production job and cron
functions, in this process) until every event is completed. Its Redis keys live under a
queue name of its own and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import psycopg
from alembic import command
from arq.worker import create_worker
from redis.asyncio import Redis
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import Database, utcnow
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from app.settings import DatabaseSettings
from tests.support import alembic_config, make_settings
from worker.arq_worker import worker_settings

TOPIC = "bench.noop"


@outbox.handler(TOPIC)
async def _noop(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    """Does nothing: the benchmark measures the outbox, not a handler."""


def _admin(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def main(events: int, server_url: str, redis_url: str) -> None:
    name = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    queue = f"bench-outbox-{uuid.uuid4().hex}"
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        settings = make_settings(
            url,
            redis={"url": redis_url},
            outbox={"queue_name": queue, "batch_size": 500, "dispatch_interval_seconds": 1},
            log_level="WARNING",  # one INFO line per job would be measured too
        )
        database = Database.from_settings(DatabaseSettings(_env_file=None, url=url))
        now = utcnow()
        async with database.engine.begin() as connection:
            await connection.execute(
                insert(OutboxEvent),
                [
                    {
                        "topic": TOPIC,
                        "payload": {"n": i},
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "available_at": now,
                    }
                    for i in range(events)
                ],
            )
        result = await _run_worker(worker_settings(settings), database, events)
        print(result)
        await database.dispose()
    finally:
        async with Redis.from_url(redis_url) as redis:
            keys = [key async for key in redis.scan_iter(f"*{queue}*")]
            if keys:
                await redis.delete(*keys)
        with psycopg.connect(_admin(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _run_worker(settings_class: Any, database: Database, events: int) -> str:
    worker = create_worker(settings_class, max_jobs=50)  # as `python -m worker` builds it
    started = time.perf_counter()
    running = asyncio.create_task(worker.async_run())
    done = 0
    while done < events:
        await asyncio.sleep(0.2)
        async with database.sessionmaker() as session:
            done = (
                await session.scalar(
                    select(func.count()).where(OutboxEvent.status == OutboxStatus.COMPLETED)
                )
                or 0
            )
    elapsed = time.perf_counter() - started
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await worker.close()
    return f"{events} events in {elapsed:.1f} s: {events / elapsed:.0f} events/s"


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    postgres = sys.argv[2] if len(sys.argv) > 2 else "postgresql://postgres@127.0.0.1:5432/postgres"
    redis = sys.argv[3] if len(sys.argv) > 3 else "redis://127.0.0.1:6379/0"
    asyncio.run(main(count, postgres, redis))
