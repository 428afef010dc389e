"""Account and session rules: registration, login, refresh rotation with reuse detection,
logout, and credential changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.domains.auth import repository, tokens
from app.domains.auth.errors import (
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRefreshToken,
    RefreshTokenReused,
    RefreshTokenSuperseded,
    SessionNotFound,
)
from app.domains.auth.models import RefreshToken, RevokeReason
from app.domains.auth.passwords import PasswordHasher
from app.domains.auth.schemas import SessionRead, TokenPair, UserUpdate
from app.domains.users import repository as users_repository
from app.domains.users import service as users_service
from app.domains.users.models import User
from app.domains.users.schemas import normalize_email
from app.observability.metrics import LOGINS, REFRESH_TOKEN_REUSE
from app.settings import Settings

USER_AGENT_MAX_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the user and the session their access token belongs to."""

    user: User
    session_id: uuid.UUID


async def register(
    session: AsyncSession, hasher: PasswordHasher, *, email: str, password: str
) -> User:
    async with hasher.reserved():
        # Checked before hashing, so a taken address costs no hash; the unique constraint
        # still decides when two registrations race.
        await users_service.ensure_email_available(session, email)
        password_hash = await hasher.hash(password)
    return await users_service.create_user(session, email=email, password_hash=password_hash)


async def login(
    session: AsyncSession,
    hasher: PasswordHasher,
    settings: Settings,
    *,
    email: str,
    password: str,
    user_agent: str | None,
) -> TokenPair:
    try:
        user = await _authenticate(session, hasher, email=email, password=password)
    except InvalidCredentials:
        LOGINS.labels("failure").inc()
        raise
    LOGINS.labels("success").inc()
    return await start_session(session, settings, user_id=user.id, user_agent=user_agent)


async def start_session(
    session: AsyncSession, settings: Settings, *, user_id: int, user_agent: str | None
) -> TokenPair:
    """A new session (refresh-token family) for a user who has just proven who they are.

    The caller holds the user's lock (see `users.repository.lock`).
    """
    now = utcnow()
    return await _issue(
        session,
        settings,
        user_id=user_id,
        family_id=uuid.uuid4(),
        parent_id=None,
        family_expires_at=now + timedelta(days=settings.auth.refresh_absolute_days),
        user_agent=user_agent,
        now=now,
    )


async def _authenticate(
    session: AsyncSession, hasher: PasswordHasher, *, email: str, password: str
) -> User:
    """The active user these credentials belong to, locked; `InvalidCredentials` otherwise."""
    async with hasher.reserved():
        found = await users_repository.get_by_email(session, normalize_email(email))
        # Unknown accounts are verified against a dummy hash: same work, same answer.
        verified_hash = found.password_hash if found else None
        valid, new_hash = await hasher.verify(password, verified_hash)
    if found is None or not valid:
        raise InvalidCredentials
    user = await users_repository.lock(session, found.id)
    # The password may have changed while it was being checked: only the verified one counts.
    if user is None or not user.is_active or user.password_hash != verified_hash:
        raise InvalidCredentials
    if new_hash is not None:
        user.password_hash = new_hash  # parameters were outdated: upgrade transparently
    return user


async def refresh(
    session: AsyncSession, settings: Settings, *, refresh_token: str, user_agent: str | None
) -> TokenPair:
    """Rotate a refresh token: the presented one is spent, its child is returned.

    Presenting a spent token means two parties hold it, one of them a thief: the whole
    family is revoked (RFC 9700 4.14.2). A repeat within the grace window is a client
    racing itself and only gets a 401.
    """
    now = utcnow()
    token_hash = tokens.hash_refresh_token(refresh_token)
    # User lock, then token lock: the order every session change takes (see users.lock).
    owner = await repository.lock_token_owner(session, token_hash)
    if owner is None:
        raise InvalidRefreshToken
    # Cannot be missing now: deleting the token's owner (and so the token) needs that lock.
    token = await repository.get_token_for_update(session, token_hash)
    if token.revoked_at is not None:
        if token.revoked_reason is not RevokeReason.ROTATED:
            raise InvalidRefreshToken
        if now - token.revoked_at <= timedelta(seconds=settings.auth.refresh_reuse_grace_seconds):
            raise RefreshTokenSuperseded
        await repository.revoke_family(
            session, token.family_id, reason=RevokeReason.REUSE_DETECTED, now=now
        )
        REFRESH_TOKEN_REUSE.inc()
        raise RefreshTokenReused
    if min(token.expires_at, token.family_expires_at) <= now or not owner.is_active:
        raise InvalidRefreshToken
    token.revoked_at, token.revoked_reason, token.last_used_at = now, RevokeReason.ROTATED, now
    return await _issue(
        session,
        settings,
        user_id=token.user_id,
        family_id=token.family_id,
        parent_id=token.id,
        family_expires_at=token.family_expires_at,
        user_agent=user_agent or token.user_agent,
        now=now,
    )


async def _issue(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    family_id: uuid.UUID,
    parent_id: int | None,
    family_expires_at: datetime,
    user_agent: str | None,
    now: datetime,
) -> TokenPair:
    refresh_token = tokens.new_refresh_token()
    idle_deadline = now + timedelta(days=settings.auth.refresh_idle_days)
    await repository.add_token(
        session,
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            parent_id=parent_id,
            token_hash=tokens.hash_refresh_token(refresh_token),
            user_agent=user_agent[:USER_AGENT_MAX_LENGTH] if user_agent else None,
            created_at=now,
            last_used_at=now,
            expires_at=min(idle_deadline, family_expires_at),
            family_expires_at=family_expires_at,
        ),
    )
    access_token = tokens.issue_access_token(
        settings, user_id=user_id, session_id=family_id, now=now
    )
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=settings.auth.access_token_minutes * 60,
    )


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    """End the session the token belongs to. Unknown or spent tokens are not an error."""
    token = await repository.get_token(session, tokens.hash_refresh_token(refresh_token))
    if token is not None:
        await users_repository.lock(session, token.user_id)
        await repository.revoke_family(
            session, token.family_id, reason=RevokeReason.LOGOUT, now=utcnow()
        )


async def logout_all(session: AsyncSession, user: User) -> None:
    await users_repository.lock(session, user.id)
    await repository.revoke_user_families(
        session, user.id, reason=RevokeReason.LOGOUT_ALL, now=utcnow()
    )


async def list_sessions(session: AsyncSession, identity: Identity) -> list[SessionRead]:
    rows = await repository.live_sessions(session, identity.user.id, utcnow())
    return [
        SessionRead(
            id=row.id,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            user_agent=row.user_agent,
            current=row.id == identity.session_id,
        )
        for row in rows
    ]


async def end_session(session: AsyncSession, user: User, session_id: uuid.UUID) -> None:
    await users_repository.lock(session, user.id)
    now = utcnow()
    if not await repository.live_family_exists(
        session, user_id=user.id, family_id=session_id, now=now
    ):
        raise SessionNotFound
    await repository.revoke_family(session, session_id, reason=RevokeReason.SESSION_ENDED, now=now)


async def update_account(
    session: AsyncSession, hasher: PasswordHasher, user: User, changes: UserUpdate
) -> User:
    """Apply a PATCH to the caller's account; credentials need the current password."""
    verified_hash = user.password_hash
    async with hasher.reserved():
        if changes.current_password is not None:
            valid, _ = await hasher.verify(changes.current_password, verified_hash)
            if not valid:
                raise InvalidCurrentPassword
        new_hash = await hasher.hash(changes.password) if changes.password else None
    locked = await users_repository.lock(session, user.id)
    if locked is None or locked.password_hash != verified_hash:  # changed meanwhile
        raise InvalidCurrentPassword
    if changes.email is not None:
        await users_service.change_email(session, locked, changes.email)
    if new_hash is not None:
        locked.password_hash = new_hash
        # Whoever knew the old password may hold a session: end every one (OWASP ASVS 7.4.3).
        await repository.revoke_user_families(
            session, locked.id, reason=RevokeReason.PASSWORD_CHANGED, now=utcnow()
        )
    await session.flush()
    return locked
