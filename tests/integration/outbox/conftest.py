"""Outbox tests run on a database of their own: the dispatcher acts on every due event."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database


@pytest.fixture
def database(private_engine: AsyncEngine) -> Database:
    """Overrides the shared, rolled-back database: these tests commit, in a private one."""
    return Database(private_engine)
