"""Column types behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import literal, select

from app.db import Database, UTCDateTime


async def test_timestamps_are_utc_aware_on_every_backend(database: Database) -> None:
    instant = datetime(2030, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    column = literal(instant, UTCDateTime())

    async with database.sessionmaker() as session:
        stored = await session.scalar(select(column))

    assert stored == instant
    assert stored is not None
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
