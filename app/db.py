"""Database engine, declarative base and the request-scoped `DbSession` dependency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, cast

from fastapi import Depends, Request
from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    Integer,
    MetaData,
    event,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from app.errors import ProblemError
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


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones and would hand back naive
    values, so they are written as UTC and read back with UTC attached.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def str_enum(enum: type[StrEnum], length: int = 32) -> Enum:
    """A string column holding an enum's values, read back as enum members.

    VARCHAR rather than a native PostgreSQL ENUM: adding a member needs no migration.
    """
    return Enum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


# Table option for every table with a surrogate id. SQLite would otherwise hand a deleted
# row's id to the next insert, and an outbox event or a client holding the old id would then
# point at a different row. PostgreSQL sequences never reuse ids.
NEVER_REUSE_IDS: Final = {"sqlite_autoincrement": True}

# BIGINT ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy API


# Execution option: how a SQLite transaction begins ("IMMEDIATE" unless set to "DEFERRED").
SQLITE_BEGIN_OPTION = "sqlite_begin"


def database_url(raw: str) -> URL:
    """Parse `DATABASE_URL`, picking the async driver for the common plain spellings."""
    url = make_url(raw)
    drivers = {
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "sqlite": "sqlite+aiosqlite",
    }
    return url.set(drivername=drivers.get(url.drivername, url.drivername))


def create_engine(settings: DatabaseSettings, *, migrating: bool = False) -> AsyncEngine:
    """The engine for `settings`.

    `migrating` leaves SQLite's foreign keys off: batch migrations drop and recreate tables,
    and a DROP with foreign keys on would cascade into the rows that reference it.
    """
    url = database_url(settings.url)
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, settings, foreign_keys=not migrating)
    engine = create_async_engine(
        url,
        echo=settings.echo,
        hide_parameters=True,  # errors and logs never show bound values (hashes, emails)
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        connect_args={"connect_timeout": settings.connect_timeout_seconds},
    )
    _ping_idle_connections(engine)
    return engine


# A pooled connection unused for longer than this is pinged (one round trip) before use.
PING_AFTER_IDLE_SECONDS: Final = 5.0
_IDLE_SINCE: Final = "idle_since"


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling for connections that sat idle, and only for them.

    A database restart is noticed at the first checkout after a quiet spell, as with
    SQLAlchemy's `pool_pre_ping`, without that round trip on every request: under load,
    connections are back in use within milliseconds. A connection that breaks while busy
    fails its query instead, and SQLAlchemy then replaces every older pooled connection.
    """
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (SQLAlchemy's
            # documented contract for this exception in a checkout listener).
            raise DisconnectionError("a pooled connection failed its ping") from exc


def _create_sqlite_engine(
    url: URL, settings: DatabaseSettings, *, foreign_keys: bool
) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=settings.echo, hide_parameters=True)
    busy_timeout_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module starts transactions lazily and commits before DDL on its own,
        # which breaks savepoints and transactional migrations: turn that off and let
        # SQLAlchemy emit BEGIN itself (SQLAlchemy docs, "Serializable isolation / Savepoints").
        dbapi_connection.isolation_level = None
        # SQLite's own lower() folds ASCII only; Python's folds the rest of Unicode too, so
        # case-insensitive search (ILIKE, rendered as lower() LIKE lower()) works beyond
        # ASCII. PostgreSQL lower-cases by its database locale: the two agree on most text
        # and differ on a few letters (Greek final sigma, Turkish dotted I).
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers queue on the busy
        # timeout; a deferred transaction that reads and then writes would instead fail with
        # SQLITE_BUSY when another writer committed in between. Read-only work opts out.
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class Database:
    """The engine and session factory that one application instance uses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Database:
        return cls(create_engine(settings))

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only: on SQLite, it leaves the write lock to writers."""
        async with self.engine.connect() as connection:
            read_only = await connection.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            async with self.sessionmaker(bind=read_only) as session:
                yield session

    async def ping(self) -> None:
        async with self.reader() as session:
            await session.execute(text("SELECT 1"))

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
        except ProblemError as exc:
            await (session.commit() if exc.commit else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


DbSession = Annotated[AsyncSession, Depends(_session, scope="function")]
