"""Helpers shared by the test suite: settings, migrations and problem+json checks."""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from alembic.config import Config
from prometheus_client import REGISTRY
from pydantic_settings import BaseSettings
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domains.users.models import User
from app.errors import PROBLEM_MEDIA_TYPE
from app.outbox import OutboxEvent
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 64}


_GROUPS: dict[str, type[BaseSettings]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
}


def setting_variables() -> set[str]:
    """Every environment variable Settings reads."""
    names = {name.upper() for name in Settings.model_fields if name not in _GROUPS}
    for group in _GROUPS.values():
        prefix = str(group.model_config.get("env_prefix", ""))
        for name, field in group.model_fields.items():
            alias = field.validation_alias
            names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: only what the test says, never the developer's `.env`.

    Password hashing is made cheap, and rate limiting and the embedded outbox relay are off,
    unless a test asks otherwise. A group's overrides are a dict: `rate_limit={...}`.
    """
    defaults: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "auth": CHEAP_HASHING,
        "rate_limit": {"enabled": False},
        "outbox": {"relay_enabled": False},
        "metrics": {"worker_port": unused_port()},
    }
    groups: dict[str, Any] = {
        name: group(_env_file=None, **(defaults.get(name, {}) | (overrides.pop(name, None) or {})))
        for name, group in _GROUPS.items()
    }
    return Settings(
        _env_file=None,
        environment=overrides.pop("environment", "test"),
        # The built frontend is served only where a test asks for it, with a build of its own.
        frontend_dir=overrides.pop("frontend_dir", ROOT / "tests" / "no-frontend"),
        **groups,
        **overrides,
    )


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def _admin_dsn(url: str) -> str:
    """A libpq DSN for the server of `url` (psycopg does not take SQLAlchemy driver names)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_postgres_database(server_url: str, prefix: str = "test") -> str:
    """A new, empty database on the server of `server_url`, named `{prefix}_` and a random
    suffix; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str, server_url: str) -> None:
    """Drop a database made by `create_postgres_database`, connected as `server_url` was."""
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


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


async def delete_accounts(engine: AsyncEngine, which: ColumnElement[bool]) -> None:
    """Delete the accounts `which` selects, committed by a test: the database cascades to
    what they own, and their `user.created` events go too (other events stay)."""
    async with engine.begin() as connection:
        ids = list(await connection.scalars(select(User.id).where(which)))
        await connection.execute(delete(User).where(User.id.in_(ids)))
        await connection.execute(
            delete(OutboxEvent).where(
                OutboxEvent.topic == "user.created",
                OutboxEvent.payload["user_id"].as_integer().in_(ids),
            )
        )


async def forget_queue(redis: Any, queue: str) -> None:
    """Delete every Redis key a worker made for `queue` (all of them contain its name)."""
    keys = [key async for key in redis.scan_iter(f"*{queue}*")]
    if keys:
        await redis.delete(*keys)


def counters(metric: str) -> dict[str, float]:
    """A counter's values in this process, keyed by their label values: `"login:refused"`."""
    return {
        ":".join(sample.labels.values()): sample.value
        for family in REGISTRY.collect()
        if family.name == metric
        for sample in family.samples
        if sample.name == f"{metric}_total"
    }


def counted_since(before: dict[str, float], metric: str) -> dict[str, float]:
    """What a counter gained since `before = counters(metric)`, leaving out what did not move."""
    return {
        labels: value - before.get(labels, 0.0)
        for labels, value in counters(metric).items()
        if value != before.get(labels, 0.0)
    }


def log_events(records: list[logging.LogRecord], logger: str) -> list[dict[str, Any]]:
    """The structured events a logger wrote, as captured by `caplog.records`."""
    return [r.msg for r in records if r.name == logger and isinstance(r.msg, dict)]
