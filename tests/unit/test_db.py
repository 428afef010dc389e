"""Engine construction for both runtime modes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DisconnectionError

from app.db import (
    NAMING_CONVENTION,
    PING_AFTER_IDLE_SECONDS,
    Base,
    UTCDateTime,
    create_engine,
    database_url,
)
from app.settings import DatabaseSettings


@pytest.mark.parametrize(
    ("raw", "driver"),
    [
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite"),
    ],
)
def test_plain_urls_get_the_async_driver(raw: str, driver: str) -> None:
    assert database_url(raw).drivername == driver


async def test_postgres_engine_pools_as_configured() -> None:
    engine = create_engine(
        DatabaseSettings(_env_file=None, url="postgresql://u@db.invalid/app", pool_size=3)
    )

    assert engine.url.drivername == "postgresql+psycopg"
    assert not engine.pool._pre_ping  # idle connections only: see the next test
    assert engine.pool.size() == 3  # type: ignore[attr-defined]  # QueuePool API
    await engine.dispose()


async def test_only_a_connection_idle_for_a_while_is_pinged_on_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine(DatabaseSettings(_env_file=None, url="postgresql://u@db.invalid/app"))
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", pings.append)
    now = 1000.0
    monkeypatch.setattr("app.db.time", SimpleNamespace(monotonic=lambda: now))
    dispatch = engine.sync_engine.pool.dispatch
    connection, record = object(), SimpleNamespace(info={})

    dispatch.checkout(connection, record, None)  # a new connection
    dispatch.checkin(connection, record)
    now += PING_AFTER_IDLE_SECONDS - 0.1
    dispatch.checkout(connection, record, None)  # back in use a moment later
    assert pings == []

    dispatch.checkin(connection, record)
    now += PING_AFTER_IDLE_SECONDS
    dispatch.checkout(connection, record, None)
    assert pings == [connection]

    def fail(_connection: object) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(engine.dialect, "do_ping", fail)
    dispatch.checkin(connection, record)
    now += PING_AFTER_IDLE_SECONDS
    with pytest.raises(DisconnectionError):  # the pool's cue to use another connection
        dispatch.checkout(connection, record, None)
    await engine.dispose()


async def test_sqlite_engine_creates_its_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "app.db"
    engine = create_engine(
        DatabaseSettings(_env_file=None, url=f"sqlite:///{path}", sqlite_busy_timeout_ms=1234)
    )
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    assert path.exists()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 1234}


async def test_sqlite_lower_folds_unicode_like_postgresql() -> None:
    engine = create_engine(DatabaseSettings(_env_file=None, url="sqlite+aiosqlite:///:memory:"))
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(text("SELECT lower('ÉCOLE Ünï'), lower(NULL)"))).one()
    finally:
        await engine.dispose()

    assert tuple(row) == ("école ünï", None)


async def test_sqlite_savepoints_roll_back_only_the_inner_work() -> None:
    engine = create_engine(DatabaseSettings(_env_file=None, url="sqlite+aiosqlite:///:memory:"))
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE t (v INTEGER)"))
            async with connection.begin_nested() as inner:
                await connection.execute(text("INSERT INTO t VALUES (1)"))
                await inner.rollback()
            await connection.execute(text("INSERT INTO t VALUES (2)"))
            rows = (await connection.execute(text("SELECT v FROM t"))).scalars().all()
            await connection.rollback()
            # The DDL was part of the transaction too, so the table is gone.
            tables = (
                await connection.execute(text("SELECT name FROM sqlite_master WHERE name='t'"))
            ).all()
    finally:
        await engine.dispose()

    assert rows == [2]
    assert tables == []


def test_metadata_names_constraints_by_convention() -> None:
    assert Base.metadata.naming_convention == NAMING_CONVENTION


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(datetime(2030, 1, 1), sqlite_dialect.dialect())  # noqa: DTZ001


@pytest.mark.parametrize(
    "stored",
    [datetime(2030, 1, 1, 12), datetime(2030, 1, 1, 12, tzinfo=UTC)],  # noqa: DTZ001 - naive on purpose
)
def test_stored_timestamps_read_back_as_utc(stored: datetime) -> None:
    value = UTCDateTime().process_result_value(stored, sqlite_dialect.dialect())

    assert value == datetime(2030, 1, 1, 12, tzinfo=UTC)
