"""SQL for the users table."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.users.models import User


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def lock(session: AsyncSession, user_id: int | ColumnElement[int]) -> User | None:
    """The user, re-read and locked until the transaction ends.

    Everything that creates or ends a user's sessions, or changes their credentials, takes
    this lock first, so those changes happen one after another: a revocation can never miss
    a token that a concurrent refresh or login is about to add.
    """
    return await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def email_exists(session: AsyncSession, email: str) -> bool:
    return await session.scalar(select(User.id).where(User.email == email)) is not None


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


async def delete_by_id(session: AsyncSession, user_id: int) -> None:
    # A bulk DELETE lets the foreign keys cascade to everything the user owns.
    await session.execute(delete(User).where(User.id == user_id))
