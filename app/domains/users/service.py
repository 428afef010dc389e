"""Rules for the account record: unique email, creation with its event, deletion."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.domains.users import repository
from app.domains.users.errors import EmailTaken
from app.domains.users.models import User


async def ensure_email_available(session: AsyncSession, email: str) -> None:
    """An early, cheap check; the unique constraint is what finally decides."""
    if await repository.email_exists(session, email):
        raise EmailTaken


async def create_user(session: AsyncSession, *, email: str, password_hash: str | None) -> User:
    """Create an account and record `user.created` in the same transaction."""
    user = User(email=email, password_hash=password_hash)
    try:
        async with session.begin_nested():
            await repository.add(session, user)
    except IntegrityError as exc:  # the address is taken, perhaps by a concurrent request
        raise EmailTaken from exc
    outbox.record(session, "user.created", {"user_id": user.id})
    return user


async def change_email(session: AsyncSession, user: User, email: str) -> None:
    if email == user.email:
        return
    try:
        async with session.begin_nested():
            user.email = email
            user.email_verified = False  # a new address is unproven
            await session.flush()
    except IntegrityError as exc:
        raise EmailTaken from exc


async def delete_user(session: AsyncSession, user: User) -> None:
    """Delete the account. The database cascades to everything it owns (sessions, posts,
    votes) without an event per row; `user.deleted` tells consumers to drop the rest."""
    await repository.delete_by_id(session, user.id)
    session.expunge(user)
    outbox.record(session, "user.deleted", {"user_id": user.id})
