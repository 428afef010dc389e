"""SQL for votes: idempotent writes and per-post aggregates as column expressions."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.domains.votes.models import Vote

_INSERTS: dict[str, Any] = {"postgresql": pg_insert, "sqlite": sqlite_insert}


PostIdColumn = ColumnElement[int] | InstrumentedAttribute[int]


def count_for(post_id: PostIdColumn) -> ColumnElement[int]:
    """The number of votes on the post `post_id` refers to, as a correlated subquery."""
    return (
        select(func.count()).where(Vote.post_id == post_id).correlate_except(Vote).scalar_subquery()
    )


def cast_by(post_id: PostIdColumn, viewer_id: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether the user `viewer_id` refers to voted on the post, as an EXISTS subquery."""
    return exists().where(Vote.post_id == post_id, Vote.user_id == viewer_id)


@functools.cache
def _insert_unless_present(dialect: str) -> Any:
    return (
        _INSERTS[dialect](Vote)
        .on_conflict_do_nothing(index_elements=[Vote.user_id, Vote.post_id])
        .returning(Vote.post_id)  # a row comes back only when one was inserted
    )


async def add(session: AsyncSession, *, user_id: int, post_id: int) -> bool:
    """Insert the vote unless it exists; True when a row was added."""
    statement = _insert_unless_present(session.get_bind().dialect.name)
    return await session.scalar(statement, {"user_id": user_id, "post_id": post_id}) is not None


async def remove(session: AsyncSession, *, user_id: int, post_id: int) -> bool:
    """Delete the vote if it exists; True when a row was removed."""
    result = await session.execute(
        delete(Vote).where(Vote.user_id == user_id, Vote.post_id == post_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # a DELETE gives a CursorResult
