"""Outbox handlers of the users domain: the worked example of a side effect."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.domains.users.models import User
from app.mail import compose
from app.outbox import HandlerContext, OutboxEvent


@outbox.handler("user.created")
async def send_welcome_email(
    session: AsyncSession, event: OutboxEvent, context: HandlerContext
) -> None:
    user = await session.get(User, event.payload["user_id"])
    if user is None:  # deleted before we got here: nobody to welcome
        return
    # Recorded before sending and committed with the event: a re-run skips the mail.
    if await outbox.first_time(session, event, "welcome_email"):
        await context.mailer.send(
            compose(
                context.settings.smtp,
                to=user.email,
                subject=f"Welcome to {context.settings.project_name}",
                body="Your account is ready. You can sign in now.",
            )
        )


@outbox.handler("user.deleted")
async def user_deleted(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    """The database already removed what the account owned here; outside systems (a mailing
    list, an analytics store) would forget the user from this handler, idempotently."""
