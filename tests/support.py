"""Helpers shared by the test suite: settings, migrations and problem+json checks."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
from alembic.config import Config

from app.errors import PROBLEM_MEDIA_TYPE
from app.settings import (
    ApiSettings,
    AuthSettings,
    DatabaseSettings,
    OutboxSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
)

ROOT = Path(__file__).resolve().parents[1]
CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 64}


def make_settings(
    database_url: str,
    *,
    database: dict[str, Any] | None = None,
    redis: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    rate_limit: dict[str, Any] | None = None,
    outbox: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings for a test: only what the test says, never the developer's `.env`.

    Password hashing is made cheap, and rate limiting and the embedded outbox relay are off,
    unless a test asks otherwise.
    """
    return Settings(
        _env_file=None,
        environment=overrides.pop("environment", "test"),
        database=DatabaseSettings(_env_file=None, url=database_url, **(database or {})),
        redis=RedisSettings(_env_file=None, **(redis or {})),
        api=ApiSettings(_env_file=None, **(api or {})),
        auth=AuthSettings(_env_file=None, **(CHEAP_HASHING | (auth or {}))),
        rate_limit=RateLimitSettings(_env_file=None, **({"enabled": False} | (rate_limit or {}))),
        outbox=OutboxSettings(_env_file=None, **({"relay_enabled": False} | (outbox or {}))),
        **overrides,
    )


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def unused_port() -> int:
    """A local TCP port nothing listens on (the OS just handed it out and took it back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_problem(response: httpx.Response, status: int, error_code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error_code"] == error_code
    assert body["type"] == f"urn:problem-type:{error_code}"
    assert {"title", "detail", "instance"} <= body.keys()
    assert "Traceback" not in response.text
    return body


async def forget_queue(redis: Any, queue: str) -> None:
    """Delete every Redis key a worker made for `queue` (all of them contain its name)."""
    keys = [key async for key in redis.scan_iter(f"*{queue}*")]
    if keys:
        await redis.delete(*keys)
