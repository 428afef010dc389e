"""The operational endpoints: liveness (`/health`), readiness (`/ready`) and `/metrics`."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import ClassVar, Literal, cast

from fastapi import APIRouter, Request, Response
from prometheus_client import Gauge
from pydantic import BaseModel
from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from app import outbox
from app.db import Database, get_database, utcnow
from app.draining import Draining
from app.errors import DATABASE_DOWN, Problem, ProblemError, problem_responses
from app.observability import metrics
from app.observability.logs import get_logger
from app.settings import AppSettings

logger = get_logger(__name__)

# Read from the database at each scrape; across server processes, the latest reading wins.
OUTBOX_EVENTS = Gauge(
    "outbox_events",
    "Outbox events waiting or given up on, by status: pending, queued, failed.",
    ["status"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest pending outbox event; 0 when none is pending.",
    multiprocess_mode="mostrecent",
)
router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])


class CheckStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, CheckStatus]


class NotReadyProblem(Problem):
    checks: dict[str, CheckStatus]


class ServiceNotReady(ProblemError):
    status = 503
    code = "not_ready"
    title = "Service Unavailable"
    detail = "A dependency this service needs is not answering."
    schema = NotReadyProblem


class ShuttingDown(ProblemError):
    status = 503
    code = "shutting_down"
    title = "Service Unavailable"
    detail = "This instance is shutting down; requests it has already taken will finish."


@router.get("/health", response_model=Liveness)
async def health() -> Liveness:
    """Liveness: the process answers. Touches no dependency, so an outage never restarts pods."""
    return Liveness()


async def _check(
    name: str, probe: Callable[[], Awaitable[object]], limit_seconds: float
) -> CheckStatus:
    try:
        async with asyncio.timeout(limit_seconds):
            await probe()
    except Exception as exc:
        logger.warning("readiness check failed", check=name, error=type(exc).__name__)
        return CheckStatus.FAILED
    return CheckStatus.OK


async def _ping_redis(url: str) -> None:
    client: Redis = Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()


@router.get(
    "/ready",
    response_model=Readiness,
    responses=problem_responses(ServiceNotReady, ShuttingDown),
)
async def ready(request: Request, settings: AppSettings) -> Readiness:
    """Readiness: the database answers and, when required, Redis does too."""
    if cast(Draining, request.state.draining).started:
        raise ShuttingDown(headers={"Retry-After": "5"})
    probes: dict[str, Callable[[], Awaitable[object]]] = {"database": get_database(request).ping}
    redis_url = settings.redis.url
    if settings.redis.health_required and redis_url:  # settings guarantee the URL is there
        probes["redis"] = lambda: _ping_redis(redis_url)
    limit = settings.ready_timeout_seconds
    results = await asyncio.gather(*(_check(name, p, limit) for name, p in probes.items()))
    checks = {"database": CheckStatus.SKIPPED, "redis": CheckStatus.SKIPPED}
    checks.update(zip(probes, results, strict=True))
    if CheckStatus.FAILED in checks.values():
        raise ServiceNotReady(extensions={"checks": checks}, headers={"Retry-After": "5"})
    return Readiness(checks=checks)


class MetricsTokenRequired(ProblemError):
    status = 401
    code = "metrics_token_required"
    title = "Unauthorized"
    detail = "This endpoint answers only the scraper's bearer token."
    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), token.encode())


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text"},
        **problem_responses(MetricsTokenRequired),
    },
)
async def prometheus_metrics(request: Request, settings: AppSettings) -> Response:
    """Metrics in the Prometheus text format, the outbox backlog read at this moment."""
    token = settings.metrics.token
    if token is not None and not _bearer_matches(request, token.get_secret_value()):
        raise MetricsTokenRequired
    await _read_outbox_backlog(get_database(request), settings.ready_timeout_seconds)
    # Reading every process's files in multi-process mode is blocking work.
    text = await run_in_threadpool(metrics.exposition, settings.metrics)
    return Response(text, media_type=metrics.CONTENT_TYPE)


async def _read_outbox_backlog(database: Database, limit_seconds: float) -> None:
    """Update the outbox gauges; without a database they keep their last reading."""
    try:
        async with asyncio.timeout(limit_seconds), database.reader() as session:
            backlog = await outbox.backlog(session)
    except (*DATABASE_DOWN, TimeoutError) as exc:
        logger.warning("outbox backlog not read for metrics", error=type(exc).__name__)
        return
    for status, count in backlog.counts.items():
        OUTBOX_EVENTS.labels(status).set(count)
    age = (utcnow() - backlog.oldest_pending_at).total_seconds() if backlog.oldest_pending_at else 0
    OUTBOX_OLDEST_PENDING_AGE.set(max(age, 0.0))
