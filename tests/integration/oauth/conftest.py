"""Fixtures for the OAuth tests: the app configured to use the loopback identity provider
for every provider, and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from app.db import Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import serve
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import Browser, oauth_settings
from tests.support import make_settings


@pytest.fixture
def settings(database_url: str, identity_provider: IdentityProvider) -> Settings:
    return make_settings(database_url, oauth=oauth_settings(identity_provider))


@pytest.fixture
async def browser(client: httpx.AsyncClient) -> AsyncIterator[Browser]:
    browser = Browser(client)
    yield browser
    await browser.close()


@pytest.fixture
def browser_with(
    database_url: str, database: Database, identity_provider: IdentityProvider
) -> Callable[..., AbstractAsyncContextManager[Browser]]:
    """A browser on an app whose `OAUTH_*` settings differ: `async with browser_with(...)`."""

    @asynccontextmanager
    async def open_browser(**oauth: Any) -> AsyncIterator[Browser]:
        settings = make_settings(database_url, oauth=oauth_settings(identity_provider, **oauth))
        async with serve(create_app(settings, database=database)) as client:
            browser = Browser(client)
            try:
                yield browser
            finally:
                await browser.close()

    return open_browser
