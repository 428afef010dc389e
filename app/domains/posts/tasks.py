"""Outbox handlers of the posts domain."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.outbox import HandlerContext, OutboxEvent


@outbox.handler("post.created")
@outbox.handler("post.updated")
@outbox.handler("post.deleted")
async def post_changed(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    """Nothing in this service reacts to post changes yet; a topic without a handler would
    end in the dead letter. Put search indexing or notifications here, idempotently."""
