"""ARQ wiring: a cron job that dispatches due outbox events, and the job that processes a batch.

Kept thin on purpose (ARQ is in maintenance mode upstream): swapping the queue means
rewriting this module, not the outbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, ClassVar

from arq import cron, func
from arq.connections import RedisSettings

from app import outbox
from app.db import Database
from app.domains import load_models
from app.mail import mailer_from_settings
from app.observability.error_reporting import configure_error_reporting
from app.observability.logs import configure_logging
from app.observability.metrics import metrics_server
from app.observability.tracing import traced_clients
from app.outbox import HandlerContext
from app.settings import Settings

Context = dict[str, Any]


def job_id(queue: str, event_ids: Sequence[int]) -> str:
    """The batch's job, named after its events: while it is queued or running, dispatching
    the same batch again adds nothing (`keep_result = 0` frees the id when it ends). The
    queue name is part of every key the worker makes, so deployments sharing a Redis never
    meet."""
    digest = hashlib.blake2b(",".join(map(str, event_ids)).encode(), digest_size=16)
    return f"{queue}:batch:{digest.hexdigest()}"


def worker_settings(settings: Settings) -> type[Any]:
    """The `WorkerSettings` class ARQ runs, built from the application's settings."""
    redis_url = settings.redis.url
    if not redis_url:
        raise ValueError("the worker needs REDIS_URL; without it the API relays events itself")
    config = settings.outbox
    arq_redis = RedisSettings.from_dsn(redis_url)

    async def startup(ctx: Context) -> None:
        configure_logging(settings)
        configure_error_reporting(settings)
        load_models()  # imports every domain's tasks.py, which registers the handlers
        database = Database.from_settings(settings.database)
        ctx["database"] = database
        ctx["context"] = HandlerContext(settings, mailer_from_settings(settings.smtp))
        ctx["cleanup"] = cleanup = ExitStack()
        cleanup.enter_context(traced_clients(settings.tracing, database.engine))
        if settings.metrics.enabled:
            cleanup.enter_context(metrics_server(settings.metrics))

    async def shutdown(ctx: Context) -> None:
        ctx["cleanup"].close()
        await ctx["database"].dispose()

    async def dispatch_outbox(ctx: Context) -> int:
        async def enqueue(event_ids: list[int]) -> None:
            await ctx["redis"].enqueue_job(
                "process_outbox_events",
                event_ids,
                _job_id=job_id(config.queue_name, event_ids),
                _queue_name=config.queue_name,
            )

        return await outbox.dispatch(ctx["database"], config, enqueue)

    async def process_outbox_events(ctx: Context, event_ids: list[int]) -> None:
        # Cancelled (shutdown, or the job timeout), `process` keeps what finished and hands
        # the rest of the batch back at once, not after the visibility timeout.
        await outbox.process(ctx["database"], event_ids, ctx["context"])

    class WorkerSettings:
        functions: ClassVar = [func(process_outbox_events, name="process_outbox_events")]
        cron_jobs: ClassVar = [
            cron(
                dispatch_outbox,
                name=f"{config.queue_name}:dispatch",
                second=set(range(0, 60, config.dispatch_interval_seconds)),
                run_at_startup=True,
                unique=True,  # each tick runs on one worker only
            )
        ]
        on_startup = startup
        on_shutdown = shutdown
        redis_settings = arq_redis
        queue_name = config.queue_name
        max_tries = 1  # retries are the outbox's: backoff, attempts and the dead letter
        # A job cancelled by shutdown is not kept for a retry: process() already handed its
        # events back, and a kept job would hold the batch's job id until it is dropped.
        retry_jobs = False
        job_timeout = config.job_timeout_seconds
        keep_result = 0

    return WorkerSettings
