"""The worker serves its metrics on a port of its own while it runs, and closes it on shutdown.

Startup does not connect to Redis, so these run without one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import outbox
from app.db import Database
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from tests.support import make_settings, unused_port
from worker.arq_worker import worker_settings

TOPIC = "test.metrics.worker.ok"


@outbox.handler(TOPIC)
async def _ok(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    pass


async def _scrape(port: int) -> list[Metric]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200, response.text
    return list(text_string_to_metric_families(response.text))


def _completed(families: list[Metric]) -> float:
    """Completed runs of this module's topic; 0 before the first."""
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "outbox_events_processed_total"
        and sample.labels == {"topic": TOPIC, "result": "completed"}
    )


async def _queued_event(engine: AsyncEngine) -> int:
    async with Database(engine).sessionmaker() as session:
        event = outbox.record(session, TOPIC, {})
        event.status = OutboxStatus.QUEUED
        await session.commit()
        return event.id


async def test_the_worker_serves_its_metrics_on_its_port_until_shutdown(
    private_engine: AsyncEngine,
) -> None:
    port = unused_port()
    settings_class = worker_settings(
        make_settings(
            private_engine.url.render_as_string(hide_password=False),
            redis={"url": "redis://127.0.0.1:1/0"},  # never connected to by startup
            metrics={"worker_port": port},
        )
    )
    (process_job,) = settings_class.functions
    event_id = await _queued_event(private_engine)
    ctx: dict[str, Any] = {}

    await settings_class.on_startup(ctx)
    try:
        before = await _scrape(port)
        await process_job.coroutine(ctx, [event_id])  # the job as ARQ runs it
        after = await _scrape(port)
    finally:
        await settings_class.on_shutdown(ctx)

    assert "outbox_events_processed" in {family.name for family in before}
    assert _completed(after) - _completed(before) == 1
    with pytest.raises(httpx.ConnectError):
        await _scrape(port)
