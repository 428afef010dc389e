"""SQL for sign-in flows, exchange codes and linked accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.auth.models import OAuthAccount, OAuthExchangeCode, OAuthFlow


async def add_flow(session: AsyncSession, flow: OAuthFlow, *, now: datetime) -> None:
    """Store a new flow, clearing out the ones nobody finished."""
    await session.execute(delete(OAuthFlow).where(OAuthFlow.expires_at <= now))
    session.add(flow)
    await session.flush()


async def take_flow(
    session: AsyncSession, *, state_hash: str, browser_hash: str, provider: str
) -> OAuthFlow | None:
    """Delete and return the flow this state names, if this browser started it for this
    provider. One statement, so of two callbacks racing with one state, one gets the flow
    and the other nothing (PostgreSQL's row lock; SQLite runs writers one at a time)."""
    taken = await session.scalars(
        delete(OAuthFlow)
        .where(
            OAuthFlow.state_hash == state_hash,
            OAuthFlow.browser_hash == browser_hash,
            OAuthFlow.provider == provider,
        )
        .returning(OAuthFlow)
    )
    return taken.one_or_none()


async def add_exchange_code(
    session: AsyncSession, code: OAuthExchangeCode, *, now: datetime
) -> None:
    await session.execute(delete(OAuthExchangeCode).where(OAuthExchangeCode.expires_at <= now))
    session.add(code)
    await session.flush()


async def take_exchange_code(session: AsyncSession, code_hash: str) -> OAuthExchangeCode | None:
    """Delete and return the exchange code; single use as `take_flow` is."""
    taken = await session.scalars(
        delete(OAuthExchangeCode)
        .where(OAuthExchangeCode.code_hash == code_hash)
        .returning(OAuthExchangeCode)
    )
    return taken.one_or_none()


async def find_account(session: AsyncSession, provider: str, subject: str) -> OAuthAccount | None:
    return await session.scalar(
        select(OAuthAccount).where(
            OAuthAccount.provider == provider, OAuthAccount.subject == subject
        )
    )


async def user_accounts(session: AsyncSession, user_id: int) -> list[OAuthAccount]:
    rows = await session.scalars(
        select(OAuthAccount).where(OAuthAccount.user_id == user_id).order_by(OAuthAccount.id)
    )
    return list(rows)


async def add_account(session: AsyncSession, account: OAuthAccount) -> OAuthAccount:
    session.add(account)
    await session.flush()
    return account
