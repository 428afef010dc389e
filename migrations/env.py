"""Alembic environment: async engine, every domain's models, batch mode for SQLite."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.db import Base, UTCDateTime, create_engine
from app.domains import load_models
from app.settings import DatabaseSettings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

load_models()
target_metadata = Base.metadata


def _database_settings() -> DatabaseSettings:
    # The test suite passes its own URL; everything else uses DATABASE_URL.
    url = config.attributes.get("database_url")
    return DatabaseSettings(url=url) if url else DatabaseSettings()


def _render_item(kind: str, obj: object, _context: AutogenContext) -> str | Literal[False]:
    # Migrations are frozen history and must not import application code: write the
    # UTC column type as the plain type it stores.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead, and the
        # same migration runs unchanged on PostgreSQL.
        render_as_batch=True,
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
        # SQLite's DDL is transactional too once the driver stops committing on its own (see
        # app/db.py): run all revisions of one upgrade in a single transaction everywhere.
        transactional_ddl=True,
        literal_binds=url is not None,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_settings().url)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # Foreign keys were off while tables were rebuilt; prove nothing was left dangling
            # before anything commits (raising here rolls every revision of this run back).
            dangling = connection.execute(text("PRAGMA foreign_key_check")).all()
            if dangling:
                raise RuntimeError(f"migration left rows with broken foreign keys: {dangling}")


async def run_migrations_online() -> None:
    engine = create_engine(_database_settings(), migrating=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
