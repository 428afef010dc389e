"""One set of migrations runs both ways on SQLite and PostgreSQL and matches the models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect
from sqlalchemy.engine import Connection

from app.db import Base, create_engine
from app.domains import discover
from app.settings import DatabaseSettings
from tests.conftest import TEST_DATABASE_URL
from tests.support import alembic_config, create_postgres_database, drop_postgres_database

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs TEST_DATABASE_URL"),
    ),
]


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the parametrised kind that no migration has touched yet."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    assert TEST_DATABASE_URL
    url = create_postgres_database(TEST_DATABASE_URL)
    try:
        yield url
    finally:
        drop_postgres_database(url, TEST_DATABASE_URL)


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_engine(DatabaseSettings(_env_file=None, url=url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _drift(metadata: MetaData) -> Any:
    def compare(connection: Connection) -> Any:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)

    return compare


def _run_alembic(url: str, *steps: tuple[str, str]) -> None:
    config = alembic_config(url)
    for action, target in steps:
        getattr(command, action)(config, target)


def _table_names(url: str) -> set[str]:
    tables: set[str] = asyncio.run(_inspect(url, _tables))
    return tables


def test_upgrade_downgrade_upgrade_round_trip(empty_database: str) -> None:
    # Synchronous on purpose: Alembic's env runs its own event loop, as `make migrate` does.
    _run_alembic(empty_database, ("upgrade", "head"))
    at_head = _table_names(empty_database)
    _run_alembic(empty_database, ("downgrade", "base"))
    at_base = _table_names(empty_database)
    _run_alembic(empty_database, ("upgrade", "head"))

    assert _table_names(empty_database) == at_head
    assert at_base == {"alembic_version"}
    assert "alembic_version" in at_head


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    discover()

    assert await _inspect(database_url, _drift(Base.metadata)) == []


async def test_drift_check_notices_a_model_without_a_migration(database_url: str) -> None:
    discover()
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("unmigrated", metadata, Column("id", Integer, primary_key=True))

    diff = await _inspect(database_url, _drift(metadata))

    assert [(op, table.name) for op, table in diff] == [("add_table", "unmigrated")]
