"""Casting and withdrawing votes: idempotent, each change recorded in the outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.domains.votes import repository


async def cast(session: AsyncSession, *, user_id: int, post_id: int) -> None:
    if await repository.add(session, user_id=user_id, post_id=post_id):
        outbox.record(session, "vote.cast", {"post_id": post_id, "user_id": user_id})


async def withdraw(session: AsyncSession, *, user_id: int, post_id: int) -> None:
    if await repository.remove(session, user_id=user_id, post_id=post_id):
        outbox.record(session, "vote.removed", {"post_id": post_id, "user_id": user_id})
