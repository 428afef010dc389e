"""The whole redirect dance over real HTTP: the server process, the loopback identity
provider and a browser between them."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domains.users.models import User
from tests.e2e.server import served
from tests.factories import bearer, unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, OAUTH, Browser, oauth_settings, register_clients
from tests.support import delete_accounts

FRONTEND = "https://app.example.com/auth/callback"


def _environment(provider: IdentityProvider, database_url: str) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "OUTBOX_RELAY_ENABLED": "false",
        "RATE_LIMIT_ENABLED": "false",
    }
    settings = oauth_settings(provider, allowed_redirect_origins="https://app.example.com")
    for name, value in settings.items():
        env[f"OAUTH_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


@pytest.fixture(scope="module")
def server(provider_server: IdentityProvider, database_url: str) -> Iterator[str]:
    """The API in a subprocess, shared by this module's tests."""
    with served(_environment(provider_server, database_url)) as running:
        yield running.url
        assert running.stop() == -signal.SIGTERM


@pytest.fixture
async def browser(server: str, provider_server: IdentityProvider) -> AsyncIterator[Browser]:
    provider_server.reset()
    register_clients(provider_server, server)
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        browser = Browser(client)
        yield browser
        await browser.close()


@pytest.fixture
async def email(engine: AsyncEngine, provider_server: IdentityProvider) -> AsyncIterator[str]:
    """The address at the provider; the account the server makes for it is deleted after."""
    address = provider_server.account.email = unique_email()
    yield address
    await delete_accounts(engine, User.email == address)


async def test_an_oidc_sign_up_over_real_http(browser: Browser, email: str) -> None:
    response = await browser.sign_in(GENERIC)

    assert response.status_code == 200, response.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["email"] == email


async def test_apples_form_post_over_real_http(
    browser: Browser, email: str, provider_server: IdentityProvider
) -> None:
    provider_server.account.email_verified = "true"
    callback = await browser.authorize(await browser.start("apple"))

    assert callback.method == "POST"
    response = await browser.back_to_app(callback)
    assert response.status_code == 200, response.text


async def test_a_frontend_gets_a_code_and_exchanges_it_over_real_http(
    browser: Browser, email: str
) -> None:
    response = await browser.sign_in("github", redirect_to=FRONTEND)

    assert response.status_code == 303, response.text
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    exchanged = await browser.app.post(f"{OAUTH}/exchange", json={"code": code})
    assert exchanged.status_code == 200, exchanged.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(exchanged.json()["access_token"]))
    assert me.json()["email"] == email


async def test_a_facebook_sign_up_over_real_http(browser: Browser, email: str) -> None:
    response = await browser.sign_in("facebook")

    assert response.status_code == 200, response.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["email"] == email
    assert me.json()["email_verified"] is False
