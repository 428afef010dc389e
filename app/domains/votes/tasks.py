"""Outbox handlers of the votes domain."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.outbox import HandlerContext, OutboxEvent


@outbox.handler("vote.cast")
@outbox.handler("vote.removed")
async def vote_changed(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    """Nothing reacts to votes yet (a ranking or a notification would, idempotently)."""
