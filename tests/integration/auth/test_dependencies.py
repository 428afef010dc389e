"""`OptionalUser`: anonymous without a token, but a bad token is still refused."""

from __future__ import annotations

import httpx

from tests.factories import bearer, make_account
from tests.support import assert_problem


async def test_no_token_is_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/whoami")

    assert response.json() == {"user_id": None}


async def test_a_valid_token_names_the_user(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    response = await client.get("/api/v1/probe/whoami", headers=account.headers)

    assert response.json() == {"user_id": account.id}


async def test_an_invalid_token_is_not_downgraded_to_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/whoami", headers=bearer("forged.token.here"))

    assert_problem(response, 401, "invalid_token")
