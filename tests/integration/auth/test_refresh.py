"""Refresh rotation, reuse detection (RFC 9700 4.14.2), lifetimes, and logout."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database, utcnow
from app.domains.auth.models import RefreshToken, RevokeReason
from app.domains.auth.tokens import hash_refresh_token
from tests.factories import bearer, login, make_account, refresh
from tests.support import assert_problem


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    response = await refresh(client, account.refresh_token)

    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert rotated["access_token"] != account.tokens["access_token"]
    assert response.headers["cache-control"] == "no-store"
    me = await client.get("/api/v1/users/me", headers=bearer(rotated["access_token"]))
    assert me.status_code == 200
    assert (await refresh(client, rotated["refresh_token"])).status_code == 200


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    assert_problem(await refresh(client, "made-up-token"), 401, "invalid_refresh_token")


async def test_a_repeat_within_the_grace_window_does_not_end_the_session(
    client: httpx.AsyncClient,
) -> None:
    account = await make_account(client)
    child = (await refresh(client, account.refresh_token)).json()

    repeat = await refresh(client, account.refresh_token)

    assert_problem(repeat, 401, "refresh_token_superseded")
    assert (await refresh(client, child["refresh_token"])).status_code == 200


async def _age_rotation(database: Database, token: str, seconds: int) -> None:
    """Pretend the token was rotated `seconds` ago."""
    async with database.sessionmaker() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hash_refresh_token(token))
            .values(revoked_at=utcnow() - timedelta(seconds=seconds))
        )
        await session.commit()


async def test_replaying_a_rotated_token_revokes_the_whole_family(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)
    child = (await refresh(client, account.refresh_token)).json()
    grandchild = (await refresh(client, child["refresh_token"])).json()
    await _age_rotation(database, account.refresh_token, seconds=60)

    replay = await refresh(client, account.refresh_token)

    assert_problem(replay, 401, "refresh_token_reused")
    assert_problem(await refresh(client, grandchild["refresh_token"]), 401, "invalid_refresh_token")
    for tokens in (account.tokens, child, grandchild):
        me = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        assert_problem(me, 401, "invalid_token")
    async with database.sessionmaker() as session:
        reasons = set(
            (
                await session.scalars(
                    select(RefreshToken.revoked_reason).where(RefreshToken.user_id == account.id)
                )
            ).all()
        )
    assert reasons == {RevokeReason.ROTATED, RevokeReason.REUSE_DETECTED}


async def test_reuse_detection_leaves_other_sessions_alone(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)
    laptop = (await login(client, account.email)).json()
    await refresh(client, account.refresh_token)
    await _age_rotation(database, account.refresh_token, seconds=60)

    await refresh(client, account.refresh_token)

    assert (await refresh(client, laptop["refresh_token"])).status_code == 200


async def _expire(database: Database, token: str, **deadlines: object) -> None:
    async with database.sessionmaker() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hash_refresh_token(token))
            .values(**deadlines)
        )
        await session.commit()


async def test_a_token_unused_past_the_idle_lifetime_is_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)
    await _expire(database, account.refresh_token, expires_at=utcnow() - timedelta(seconds=1))

    assert_problem(await refresh(client, account.refresh_token), 401, "invalid_refresh_token")


async def test_a_session_ends_at_its_absolute_lifetime_however_often_refreshed(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)
    deadline = utcnow() + timedelta(minutes=5)
    await _expire(database, account.refresh_token, family_expires_at=deadline)

    child = (await refresh(client, account.refresh_token)).json()
    async with database.sessionmaker() as session:
        live = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == hash_refresh_token(child["refresh_token"])
            )
        )
    assert live is not None
    assert live.expires_at == live.family_expires_at == deadline  # capped by the family

    await _expire(
        database, child["refresh_token"], family_expires_at=utcnow() - timedelta(seconds=1)
    )
    assert_problem(await refresh(client, child["refresh_token"]), 401, "invalid_refresh_token")
    me = await client.get("/api/v1/users/me", headers=bearer(child["access_token"]))
    assert_problem(me, 401, "invalid_token")


async def test_new_tokens_get_the_idle_and_absolute_deadlines(
    client: httpx.AsyncClient, database: Database, app: FastAPI
) -> None:
    before = utcnow()
    account = await make_account(client)
    auth = app.state.settings.auth

    async with database.sessionmaker() as session:
        token = await session.scalar(select(RefreshToken).where(RefreshToken.user_id == account.id))
    assert token is not None
    assert token.parent_id is None
    assert token.user_agent == "pytest"
    assert token.token_hash == hash_refresh_token(account.refresh_token)
    assert timedelta(0) <= token.expires_at - (before + timedelta(days=auth.refresh_idle_days))
    assert token.expires_at - before <= timedelta(days=auth.refresh_idle_days, seconds=5)
    assert token.family_expires_at - before <= timedelta(days=auth.refresh_absolute_days, seconds=5)


async def test_logout_is_idempotent_and_ends_the_session(client: httpx.AsyncClient) -> None:
    account = await make_account(client)
    body = {"refresh_token": account.refresh_token}

    first = await client.post("/api/v1/auth/logout", json=body)
    second = await client.post("/api/v1/auth/logout", json=body)
    unknown = await client.post("/api/v1/auth/logout", json={"refresh_token": "never-issued"})

    assert [first.status_code, second.status_code, unknown.status_code] == [204, 204, 204]
    assert first.headers["cache-control"] == "no-store"
    assert_problem(await refresh(client, account.refresh_token), 401, "invalid_refresh_token")
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert_problem(me, 401, "invalid_token")


async def test_logout_all_ends_every_session(client: httpx.AsyncClient) -> None:
    account = await make_account(client)
    phone = (await login(client, account.email)).json()

    response = await client.post("/api/v1/auth/logout-all", headers=account.headers)

    assert response.status_code == 204
    for tokens in (account.tokens, phone):
        assert_problem(await refresh(client, tokens["refresh_token"]), 401, "invalid_refresh_token")
        me = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        assert_problem(me, 401, "invalid_token")


async def _live_tokens(engine: AsyncEngine, user_id: int) -> int:
    """Unrevoked tokens of the user, read outside any request's transaction."""
    async with engine.connect() as connection:
        live = await connection.scalar(
            select(func.count()).where(
                RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
            )
        )
    return live or 0


async def test_concurrent_refreshes_of_one_token_give_exactly_one_success(
    committed_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    account = await make_account(committed_client)

    responses = await asyncio.gather(
        *(refresh(committed_client, account.refresh_token) for _ in range(20))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 19
    for response in responses:
        if response.status_code == 401:
            assert_problem(response, 401, "refresh_token_superseded")
    assert await _live_tokens(engine, account.id) == 1


async def test_a_revocation_never_misses_a_refresh_running_beside_it(
    committed_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Logout-all racing a refresh: whichever wins, no token of the user stays live."""
    account = await make_account(committed_client)
    token = account.refresh_token
    for _ in range(10):
        fresh = (await login(committed_client, account.email)).json()
        access = bearer(fresh["access_token"])
        rotated, ended = await asyncio.gather(
            refresh(committed_client, token),
            committed_client.post("/api/v1/auth/logout-all", headers=access),
        )
        assert ended.status_code == 204
        assert await _live_tokens(engine, account.id) == 0
        if rotated.status_code == 200:
            me = await committed_client.get(
                "/api/v1/users/me", headers=bearer(rotated.json()["access_token"])
            )
            assert_problem(me, 401, "invalid_token")
        token = fresh["refresh_token"]
