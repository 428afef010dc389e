"""Login: one answer for every failure, the same work for unknown accounts, rehash on login."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.db import Database
from app.domains.users.models import User
from tests.factories import PASSWORD, login, make_account, make_user, unique_email
from tests.support import CHEAP_HASHING, assert_problem


async def test_login_returns_a_token_pair(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    response = await login(client, user["email"].upper())

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)

    wrong_password = await login(client, user["email"], "not the password")
    unknown_email = await login(client, unique_email(), "not the password")

    for response in (wrong_password, unknown_email):
        assert_problem(response, 401, "invalid_credentials")
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong_password.json() == unknown_email.json()


async def test_unknown_email_still_verifies_a_hash(
    client: httpx.AsyncClient, hashing_work: Counter[str]
) -> None:
    user = await make_user(client)
    hashing_work.clear()

    await login(client, user["email"], "not the password")
    known = hashing_work.copy()
    hashing_work.clear()
    await login(client, unique_email(), "not the password")

    assert known["verify"] + known["verify_and_update"] == 1
    assert hashing_work["verify"] + hashing_work["verify_and_update"] == 1
    assert hashing_work["hash"] == known["hash"] == 0


async def test_an_account_without_a_password_cannot_log_in_with_one(
    client: httpx.AsyncClient, database: Database, hashing_work: Counter[str]
) -> None:
    account = await make_account(client)
    async with database.sessionmaker() as session:
        (await session.get_one(User, account.id)).password_hash = None
        await session.commit()
    hashing_work.clear()

    response = await login(client, account.email)

    assert_problem(response, 401, "invalid_credentials")
    assert hashing_work["verify"] == 1


async def test_oversize_password_is_refused_before_hashing(
    client: httpx.AsyncClient, hashing_work: Counter[str]
) -> None:
    response = await login(client, unique_email(), "x" * 10_000)

    assert_problem(response, 422, "validation_failed")
    assert sum(hashing_work.values()) == 0


@pytest.mark.parametrize(
    "form",
    [
        {"username": "a@example.com"},
        {"password": PASSWORD},
        {"username": "a@example.com", "password": PASSWORD, "grant_type": "client_credentials"},
    ],
)
async def test_incomplete_or_foreign_grant_forms_are_422(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    assert_problem(await client.post("/api/v1/login", data=form), 422, "validation_failed")


async def test_oauth2_clients_may_send_the_grant_type_and_scope(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)

    response = await client.post(
        "/api/v1/login",
        data={
            "grant_type": "password",
            "username": user["email"],
            "password": PASSWORD,
            "scope": "",
            "client_id": "swagger",
        },
    )

    assert response.status_code == 200


async def _stored_hash(database: Database, user_id: int) -> str:
    async with database.sessionmaker() as session:
        stored = (await session.get_one(User, user_id)).password_hash
    assert stored is not None
    return stored


async def _set_hash(database: Database, user_id: int, password_hash: str) -> None:
    async with database.sessionmaker() as session:
        (await session.get_one(User, user_id)).password_hash = password_hash
        await session.commit()


async def test_outdated_argon2_parameters_are_upgraded_on_login(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(client)
    weaker = Argon2Hasher(time_cost=1, memory_cost=32, parallelism=1).hash(PASSWORD)
    await _set_hash(database, user["id"], weaker)

    assert (await login(client, user["email"])).status_code == 200

    upgraded = await _stored_hash(database, user["id"])
    assert upgraded != weaker
    assert (
        f"m={CHEAP_HASHING['argon2_memory_kib']},t={CHEAP_HASHING['argon2_time_cost']}" in upgraded
    )


async def test_legacy_bcrypt_hashes_verify_and_become_argon2id(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(client)
    await _set_hash(database, user["id"], BcryptHasher(rounds=4).hash(PASSWORD))

    assert (await login(client, user["email"])).status_code == 200

    assert (await _stored_hash(database, user["id"])).startswith("$argon2id$")
    assert (await login(client, user["email"])).status_code == 200


async def test_legacy_bcrypt_truncated_long_passwords_still_log_in(
    client: httpx.AsyncClient, database: Database
) -> None:
    long_password = "long passphrase " * 6  # 96 bytes; legacy bcrypt kept the first 72
    user = await make_user(client, password=long_password)
    legacy = BcryptHasher(rounds=4).hash(long_password.encode()[:72])
    await _set_hash(database, user["id"], legacy)

    assert (await login(client, user["email"], long_password)).status_code == 200

    # Rehashed with argon2id over the whole password: the 72-byte prefix no longer works.
    assert (await login(client, user["email"], long_password[:72])).status_code == 401
