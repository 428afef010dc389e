"""Races between requests that really commit: one state finishes one sign-in, and two
unlinks cannot together remove the last way to sign in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database
from app.domains.users.models import User
from app.main import create_app
from app.settings import Settings
from tests.conftest import serve
from tests.factories import bearer, unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, OAUTH, Browser
from tests.support import delete_accounts


@pytest.fixture
async def committing_browser(
    settings: Settings, engine: AsyncEngine, identity_provider: IdentityProvider
) -> AsyncIterator[Browser]:
    """A browser on an app whose requests commit; the accounts it signs up are deleted
    afterwards, with their `user.created` events."""
    email = identity_provider.account.email = unique_email()
    database = Database(engine)
    async with serve(create_app(settings, database=database)) as client:
        browser = Browser(client)
        yield browser
        await browser.close()
    await delete_accounts(engine, User.email == email)


async def test_of_callbacks_racing_with_one_state_exactly_one_signs_in(
    committing_browser: Browser,
) -> None:
    browser = committing_browser
    callback = await browser.authorize(await browser.start(GENERIC))

    responses = await asyncio.gather(*(browser.back_to_app(callback) for _ in range(6)))

    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400, 400, 400]


async def test_of_two_racing_unlinks_one_is_refused_to_keep_a_way_to_sign_in(
    committing_browser: Browser, identity_provider: IdentityProvider
) -> None:
    browser = committing_browser
    tokens = (await browser.sign_in(GENERIC)).json()  # an account without a password
    identity_provider.account.subject = "user-2"
    url = await browser.start_link("github", tokens["access_token"])
    assert (await browser.back_to_app(await browser.authorize(url))).status_code == 200
    headers = bearer(tokens["access_token"])

    responses = await asyncio.gather(
        browser.app.delete(f"{OAUTH}/accounts/{GENERIC}", headers=headers),
        browser.app.delete(f"{OAUTH}/accounts/github", headers=headers),
    )

    assert sorted(r.status_code for r in responses) == [204, 409]
    remaining = await browser.app.get(f"{OAUTH}/accounts", headers=headers)
    assert len(remaining.json()) == 1
