"""Fixtures for the OAuth tests: the loopback identity provider, the app configured to use
it for every provider, and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.settings import Settings
from tests.identity_provider import IdentityProvider, serving
from tests.oauth_browser import Browser, oauth_settings, register_clients
from tests.support import make_settings


@pytest.fixture(scope="session")
def provider_server() -> Iterator[IdentityProvider]:
    with serving(IdentityProvider()) as provider:
        yield provider


@pytest.fixture
def identity_provider(provider_server: IdentityProvider) -> IdentityProvider:
    provider_server.reset()
    register_clients(provider_server, "http://testserver")
    return provider_server


@pytest.fixture
def settings(database_url: str, identity_provider: IdentityProvider) -> Settings:
    return make_settings(database_url, oauth=oauth_settings(identity_provider))


@pytest.fixture
async def browser(client: httpx.AsyncClient) -> AsyncIterator[Browser]:
    browser = Browser(client)
    yield browser
    await browser.close()
