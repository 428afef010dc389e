"""Database engine, declarative base and the request-scoped `DbSession` dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.settings import DatabaseSettings

# Deterministic constraint names keep migrations identical on SQLite and PostgreSQL and let
# Alembic's batch mode find constraints it has to recreate.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Primary keys are BIGINT-sized; larger ids in a path or query are rejected as bad input (422)
# before they can overflow a database parameter.
MAX_ID = 2**63 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012 - SQLAlchemy API


def database_url(raw: str) -> URL:
    """Parse `DATABASE_URL`, picking the async driver for the common plain spellings."""
    url = make_url(raw)
    drivers = {
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "sqlite": "sqlite+aiosqlite",
    }
    return url.set(drivername=drivers.get(url.drivername, url.drivername))


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = database_url(settings.url)
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, settings)
    return create_async_engine(
        url,
        echo=settings.echo,
        pool_pre_ping=True,  # a restarted database is noticed on checkout, not by a request
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
    )


def _create_sqlite_engine(url: URL, settings: DatabaseSettings) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=settings.echo)
    busy_timeout_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module starts transactions lazily and commits before DDL on its own,
        # which breaks savepoints and transactional migrations: turn that off and let
        # SQLAlchemy emit BEGIN itself (SQLAlchemy docs, "Serializable isolation / Savepoints").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


class Database:
    """The engine and session factory that one application instance uses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        return cls(create_engine(settings))

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def get_database(request: Request) -> Database:
    return cast(Database, request.state.database)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below runs the code after `yield` before the response is sent, so a
    # commit that fails turns into an error response instead of following a 2xx.
    async with get_database(request).sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


DbSession = Annotated[AsyncSession, Depends(_session, scope="function")]
