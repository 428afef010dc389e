"""Registration and the caller's own account: /users and /users/me."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from app.db import Database
from app.domains.auth.models import RefreshToken
from app.domains.users.models import User
from app.outbox import OutboxEvent, OutboxStatus
from tests.factories import PASSWORD, login, make_account, make_user, refresh, unique_email
from tests.support import assert_problem


async def test_register_creates_a_lower_cased_account(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()

    response = await client.post(
        "/api/v1/users", json={"email": email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "email_verified", "created_at"}
    assert body["email"] == email
    assert body["email_verified"] is False
    async with database.sessionmaker() as session:
        user = await session.get_one(User, body["id"])
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_register_records_user_created_in_the_same_transaction(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(client)

    async with database.sessionmaker() as session:
        events = (
            await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "user.created"))
        ).all()
    (event,) = [e for e in events if e.payload["user_id"] == user["id"]]
    assert event.payload == {"user_id": user["id"]}  # ids only: no email, hash or password
    assert event.status is OutboxStatus.PENDING
    assert event.attempts == 0


@pytest.mark.parametrize("variant", [str.upper, str.title, str.swapcase])
async def test_an_email_can_register_once_whatever_its_case(
    client: httpx.AsyncClient, variant: object
) -> None:
    email = unique_email()
    await make_user(client, email=email)

    response = await client.post(
        "/api/v1/users",
        json={"email": variant(email), "password": PASSWORD},  # type: ignore[operator]
    )

    assert_problem(response, 409, "email_taken")


async def test_a_taken_email_costs_no_password_hash(
    client: httpx.AsyncClient, hashing_work: Counter[str]
) -> None:
    email = unique_email()
    await make_user(client, email=email)
    hashing_work.clear()

    await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})

    assert hashing_work["hash"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short77"}, "password"),
        ({"email": "a@example.com", "password": "x" * 257}, "password"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "is_superuser": True}, "is_superuser"),
        ({"email": "a@example.com", "password": PASSWORD, "id": 1}, "id"),
        ({"email": f"{'a' * 310}@example.com", "password": PASSWORD}, "email"),
    ],
)
async def test_invalid_registrations_are_422_before_any_hashing(
    client: httpx.AsyncClient, hashing_work: Counter[str], body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/users", json=body)

    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["loc"][-1] == field
    assert hashing_work["hash"] == 0


async def test_the_longest_allowed_password_is_used_whole(client: httpx.AsyncClient) -> None:
    long_password = "p" * 255 + "q"
    account = await make_account(client, password=long_password)

    truncated = await login(client, account.email, "p" * 255 + "x")

    assert_problem(truncated, 401, "invalid_credentials")


async def test_read_current_user(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    response = await client.get("/api/v1/users/me", headers=account.headers)

    assert response.status_code == 200
    assert response.json()["email"] == account.email


async def test_change_email_needs_and_checks_the_current_password(
    client: httpx.AsyncClient,
) -> None:
    account = await make_account(client)
    new_email = unique_email()

    missing = await client.patch(
        "/api/v1/users/me", json={"email": new_email}, headers=account.headers
    )
    wrong = await client.patch(
        "/api/v1/users/me",
        json={"email": new_email, "current_password": "not my password"},
        headers=account.headers,
    )
    right = await client.patch(
        "/api/v1/users/me",
        json={"email": new_email.upper(), "current_password": PASSWORD},
        headers=account.headers,
    )

    assert_problem(missing, 422, "validation_failed")
    assert_problem(wrong, 403, "invalid_current_password")
    assert right.status_code == 200
    assert right.json()["email"] == new_email
    assert (await login(client, new_email)).status_code == 200


async def test_changing_to_the_same_email_is_a_no_op(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    response = await client.patch(
        "/api/v1/users/me",
        json={"email": account.email, "current_password": PASSWORD},
        headers=account.headers,
    )

    assert response.status_code == 200
    assert response.json()["email"] == account.email


async def test_change_email_to_a_taken_one_is_409(client: httpx.AsyncClient) -> None:
    other = await make_user(client)
    account = await make_account(client)

    response = await client.patch(
        "/api/v1/users/me",
        json={"email": other["email"], "current_password": PASSWORD},
        headers=account.headers,
    )

    assert_problem(response, 409, "email_taken")


async def test_an_empty_patch_changes_nothing(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    response = await client.patch("/api/v1/users/me", json={}, headers=account.headers)

    assert response.status_code == 200
    assert response.json()["email"] == account.email


async def test_password_change_ends_every_session(client: httpx.AsyncClient) -> None:
    account = await make_account(client)
    other_device = (await login(client, account.email)).json()

    response = await client.patch(
        "/api/v1/users/me",
        json={"password": "a brand new passphrase", "current_password": PASSWORD},
        headers=account.headers,
    )

    assert response.status_code == 200
    for tokens in (account.tokens, other_device):
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert_problem(me, 401, "invalid_token")
        assert_problem(await refresh(client, tokens["refresh_token"]), 401, "invalid_refresh_token")
    assert_problem(await login(client, account.email), 401, "invalid_credentials")
    assert (await login(client, account.email, "a brand new passphrase")).status_code == 200


async def test_delete_account_removes_it_and_its_sessions(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)

    response = await client.delete("/api/v1/users/me", headers=account.headers)

    assert response.status_code == 204
    assert_problem(
        await client.get("/api/v1/users/me", headers=account.headers), 401, "invalid_token"
    )
    assert_problem(await refresh(client, account.refresh_token), 401, "invalid_refresh_token")
    assert_problem(await login(client, account.email), 401, "invalid_credentials")
    async with database.sessionmaker() as session:
        tokens = await session.scalar(
            select(func.count()).where(RefreshToken.user_id == account.id)
        )
    assert tokens == 0


async def test_a_disabled_user_is_locked_out_at_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)
    async with database.sessionmaker() as session:
        (await session.get_one(User, account.id)).is_active = False
        await session.commit()

    me = await client.get("/api/v1/users/me", headers=account.headers)

    assert_problem(me, 401, "invalid_token")
    assert_problem(await login(client, account.email), 401, "invalid_credentials")
    assert_problem(await refresh(client, account.refresh_token), 401, "invalid_refresh_token")


async def test_concurrent_registrations_of_one_email_create_one_account(
    committed_client: httpx.AsyncClient,
) -> None:
    email = unique_email()

    responses = await asyncio.gather(
        *(
            committed_client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
            for _ in range(8)
        )
    )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "email_taken")
