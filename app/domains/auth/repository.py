"""SQL for refresh tokens and sessions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.domains.auth.models import RefreshToken, RevokeReason
from app.domains.users import repository as users_repository
from app.domains.users.models import User


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None


def _live(now: datetime | BindParameter[datetime]) -> list[ColumnElement[bool]]:
    """A token that still works: not revoked, and before both its idle and family deadlines."""
    return [
        RefreshToken.revoked_at.is_(None),
        RefreshToken.expires_at > now,
        RefreshToken.family_expires_at > now,
    ]


# Built once: it runs on every authenticated request, and building it cost more than running it.
_ACTIVE_USER_IN_SESSION = select(User).where(
    User.id == bindparam("user_id"),
    User.is_active,
    exists().where(
        RefreshToken.family_id == bindparam("session_id"),
        RefreshToken.user_id == bindparam("user_id"),
        *_live(bindparam("now", type_=RefreshToken.expires_at.type)),
    ),
)


async def active_user_in_session(
    session: AsyncSession, *, user_id: int, session_id: uuid.UUID, now: datetime
) -> User | None:
    """The user, if active and the session their access token names is still live.

    One query per authenticated request: a revoked session (logout, password change,
    detected token theft) stops its access tokens at once, not when they expire.
    """
    parameters = {"user_id": user_id, "session_id": session_id, "now": now}
    return await session.scalar(_ACTIVE_USER_IN_SESSION, parameters)


async def add_token(session: AsyncSession, token: RefreshToken) -> RefreshToken:
    session.add(token)
    await session.flush()
    return token


async def lock_token_owner(session: AsyncSession, token_hash: str) -> User | None:
    """The owner of the token, locked (see `users.repository.lock`); None for no such token."""
    owner_id = select(RefreshToken.user_id).where(RefreshToken.token_hash == token_hash)
    return await users_repository.lock(session, owner_id.scalar_subquery())


async def get_token_for_update(session: AsyncSession, token_hash: str) -> RefreshToken:
    """The token row, re-read and locked until the transaction ends, so concurrent refreshes
    of one token serialise (PostgreSQL row lock; SQLite transactions run one at a time)."""
    result = await session.scalars(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.one()


async def get_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


async def revoke_family(
    session: AsyncSession, family_id: uuid.UUID, *, reason: RevokeReason, now: datetime
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def revoke_user_families(
    session: AsyncSession,
    user_id: int,
    *,
    reason: RevokeReason,
    now: datetime,
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def live_sessions(session: AsyncSession, user_id: int, now: datetime) -> list[SessionRow]:
    """One row per live family: its live token, and when the family started."""
    started = (
        select(RefreshToken.family_id, func.min(RefreshToken.created_at).label("created_at"))
        .where(RefreshToken.user_id == user_id)
        .group_by(RefreshToken.family_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            RefreshToken.family_id,
            started.c.created_at,
            RefreshToken.last_used_at,
            RefreshToken.user_agent,
        )
        .join(started, started.c.family_id == RefreshToken.family_id)
        .where(RefreshToken.user_id == user_id, *_live(now))
        .order_by(RefreshToken.last_used_at.desc(), RefreshToken.id.desc())
    )
    return [SessionRow(*row) for row in rows]


async def live_family_exists(
    session: AsyncSession, *, user_id: int, family_id: uuid.UUID, now: datetime
) -> bool:
    query = select(RefreshToken.id).where(
        RefreshToken.user_id == user_id, RefreshToken.family_id == family_id, *_live(now)
    )
    return await session.scalar(query.limit(1)) is not None
