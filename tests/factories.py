"""Test data through the public API: accounts, logins and bearer headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


def unique_email(domain: str = "example.com") -> str:
    return f"user-{uuid.uuid4().hex[:12]}@{domain}"


@dataclass
class Account:
    id: int
    email: str
    password: str
    tokens: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.tokens["refresh_token"])


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def make_user(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/users", json={"email": email or unique_email(), "password": password}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    *,
    user_agent: str = "pytest",
) -> httpx.Response:
    return await client.post(
        "/api/v1/login",
        data={"username": email, "password": password},
        headers={"User-Agent": user_agent},
    )


async def make_account(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = PASSWORD
) -> Account:
    """A registered user with a fresh session."""
    user = await make_user(client, email=email, password=password)
    response = await login(client, user["email"], password)
    assert response.status_code == 200, response.text
    return Account(id=user["id"], email=user["email"], password=password, tokens=response.json())


async def refresh(
    client: httpx.AsyncClient, refresh_token: str, *, user_agent: str = "pytest"
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": refresh_token},
        headers={"User-Agent": user_agent},
    )


async def make_post(client: httpx.AsyncClient, author: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": "A title", "content": "Some content", **fields}
    response = await client.post("/api/v1/posts", json=body, headers=author.headers)
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post
