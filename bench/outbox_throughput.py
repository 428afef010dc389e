"""Outbox throughput: events per second through the dispatcher and one worker process.

    .venv/bin/python -m bench.outbox_throughput [EVENTS] [POSTGRES_URL] [REDIS_URL] [--json]

Creates a database of its own (dropped at the end) and records EVENTS events (default
10,000) of a topic whose handler does nothing. Then it starts one worker process as
production runs it: `python -m worker` (the dispatcher cron job and the processing jobs)
with the production environment and the default outbox settings, INFO logs as JSON and the
metrics served on a port of its own; the only additions are this module, imported first so
that the topic's handler is registered, and a queue name of its own. The time runs from the
moment the worker is up (its metrics port answers) to the last completion (the latest
`processed_at`). The worker is stopped with SIGTERM, and its Redis keys (they contain the
queue name) are deleted. With `--json`, the last line printed is
`{"events": N, "seconds": S, "events_per_second": R}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime
from typing import IO

from alembic import command
from redis.asyncio import Redis
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import Database, utcnow
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from app.settings import DatabaseSettings
from tests.support import (
    ROOT,
    alembic_config,
    create_postgres_database,
    drop_postgres_database,
    unused_port,
)

TOPIC = "bench.noop"
# The worker process: the production entry point, with this module's handler registered.
WORKER = "import bench.outbox_throughput; import worker.__main__ as w; w.main()"
GIVE_UP_SECONDS = 600


@outbox.handler(TOPIC)
async def _noop(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    """Does nothing: the benchmark measures the outbox, not a handler."""


async def main(events: int, server_url: str, redis_url: str) -> tuple[float, float]:
    """Record `events` events and time one worker through them: (seconds, events/s)."""
    url = create_postgres_database(server_url, prefix="bench_outbox")
    queue = f"bench-outbox-{uuid.uuid4().hex}"
    database = Database.from_settings(DatabaseSettings(_env_file=None, url=url))
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        await _record(database, events)
        with tempfile.TemporaryFile() as log:
            started, finished = await _run_worker(database, events, url, redis_url, queue, log)
        seconds = (finished - started).total_seconds()
        return seconds, events / seconds
    finally:
        await database.dispose()
        async with Redis.from_url(redis_url) as redis:
            keys = [key async for key in redis.scan_iter(f"*{queue}*")]
            if keys:
                await redis.delete(*keys)
        drop_postgres_database(url, server_url)


async def _record(database: Database, events: int) -> None:
    now = utcnow()
    rows = [
        {"topic": TOPIC, "payload": {"n": i}, "status": "pending", "attempts": 0}
        | {"created_at": now, "available_at": now}
        for i in range(events)
    ]
    async with database.engine.begin() as connection:
        await connection.execute(insert(OutboxEvent), rows)


async def _run_worker(
    database: Database, events: int, url: str, redis_url: str, queue: str, log: IO[bytes]
) -> tuple[datetime, datetime]:
    """Run the worker until every event is completed: when it was up, and the last
    completion."""
    port = unused_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TRUSTED_HOSTS": "bench.invalid",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "OUTBOX_QUEUE_NAME": queue,
        "METRICS_WORKER_PORT": str(port),
    }
    with tempfile.TemporaryDirectory() as cwd:  # no developer's `.env` is read
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, cwd=cwd, env=env, stdout=log, stderr=log
        )
        try:
            started = await _up(worker, port, log)
            deadline = time.monotonic() + GIVE_UP_SECONDS
            while await _completed(database) < events:
                _check_alive(worker, log)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not done after {GIVE_UP_SECONDS} s{_tail(log)}")
                await asyncio.sleep(0.2)
            async with database.sessionmaker() as session:
                finished = await session.scalar(select(func.max(OutboxEvent.processed_at)))
            worker.send_signal(signal.SIGTERM)
            await asyncio.wait_for(worker.wait(), timeout=30)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    if finished is None:
        raise RuntimeError("no event was completed")
    return started, finished


async def _up(worker: asyncio.subprocess.Process, port: int, log: IO[bytes]) -> datetime:
    """Wait for the worker's startup to finish (its metrics port answers); when it did."""
    deadline = time.monotonic() + 60
    while True:
        _check_alive(worker, log)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start{_tail(log)}") from None
            await asyncio.sleep(0.02)
        else:
            up = utcnow()
            writer.close()
            await writer.wait_closed()
            return up


async def _completed(database: Database) -> int:
    async with database.sessionmaker() as session:
        query = select(func.count()).where(OutboxEvent.status == OutboxStatus.COMPLETED)
        return await session.scalar(query) or 0


def _check_alive(worker: asyncio.subprocess.Process, log: IO[bytes]) -> None:
    if worker.returncode is not None:
        raise RuntimeError(f"the worker exited with {worker.returncode}{_tail(log)}")


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    lines = log.read().decode(errors="replace").splitlines()[-20:]
    return "; its last log lines:\n" + "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outbox_throughput",
        description="Events per second through the dispatcher and one worker process.",
    )
    parser.add_argument("events", nargs="?", type=int, default=10_000)
    parser.add_argument(
        "postgres", nargs="?", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("redis", nargs="?", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    seconds, rate = asyncio.run(main(arguments.events, arguments.postgres, arguments.redis))
    print(f"{arguments.events} events in {seconds:.1f} s: {rate:.0f} events/s")
    if arguments.json:
        result = {
            "events": arguments.events,
            "seconds": round(seconds, 3),
            "events_per_second": round(rate, 1),
        }
        print(json.dumps(result))
