"""Liveness (`/health`) and readiness (`/ready`) probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from redis.asyncio import Redis

from app.db import get_database
from app.errors import Problem, ProblemError, problem_responses
from app.settings import AppSettings

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


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
        logger.warning("Readiness check %s failed: %s", name, type(exc).__name__)
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
    responses=problem_responses(ServiceNotReady),
)
async def ready(request: Request, settings: AppSettings) -> Readiness:
    """Readiness: the database answers and, when required, Redis does too."""
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
