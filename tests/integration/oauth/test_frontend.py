"""The hand-over to a frontend: a 303 to an allowed origin only, with a one-time code (never
tokens) that the frontend exchanges once, within a minute, for the token pair."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from app.db import Database, utcnow
from app.domains.auth.models import OAuthExchangeCode
from app.domains.users.models import User
from tests.factories import bearer, make_account, unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, OAUTH, Browser
from tests.support import assert_problem

BrowserWith = Callable[..., AbstractAsyncContextManager[Browser]]
FRONTEND = "https://app.example.com/auth/callback"


def _query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


async def test_a_sign_in_ends_at_the_frontend_with_a_code_for_the_tokens(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    async with browser_with(frontend_callback_url=FRONTEND) as browser:
        response = await browser.sign_in(GENERIC)

        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith(f"{FRONTEND}?code=")
        assert "access_token" not in location
        assert "refresh_token" not in location
        assert "oauth_browser=" in response.headers["set-cookie"]  # the binding is cleared
        exchanged = await browser.app.post(
            f"{OAUTH}/exchange", json={"code": _query(location)["code"][0]}
        )

    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.headers["cache-control"] == "no-store"
    assert set(exchanged.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}


async def test_an_exchange_code_works_once(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    async with browser_with(frontend_callback_url=FRONTEND) as browser:
        code = _query((await browser.sign_in(GENERIC)).headers["location"])["code"][0]
        first = await browser.app.post(f"{OAUTH}/exchange", json={"code": code})
        second = await browser.app.post(f"{OAUTH}/exchange", json={"code": code})

    assert first.status_code == 200
    assert_problem(second, 400, "oauth_invalid_code")


async def test_an_exchange_code_expires_after_a_minute(
    browser_with: BrowserWith, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.account.email = unique_email()
    async with browser_with(frontend_callback_url=FRONTEND) as browser:
        code = _query((await browser.sign_in(GENERIC)).headers["location"])["code"][0]
        async with database.sessionmaker() as session:
            stored = await session.get(OAuthExchangeCode, hashlib.sha256(code.encode()).hexdigest())
            assert stored is not None
            assert stored.expires_at - utcnow() <= timedelta(seconds=60)
            await session.execute(
                update(OAuthExchangeCode).values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        response = await browser.app.post(f"{OAUTH}/exchange", json={"code": code})

    assert_problem(response, 400, "oauth_invalid_code")


async def test_an_unknown_exchange_code_is_refused(browser: Browser) -> None:
    response = await browser.app.post(f"{OAUTH}/exchange", json={"code": "made-up"})

    assert_problem(response, 400, "oauth_invalid_code")


async def test_a_requested_redirect_on_an_allowed_origin_is_followed(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    target = "https://admin.example.com/done?tab=security"
    async with browser_with(
        frontend_callback_url=FRONTEND, allowed_redirect_origins="https://admin.example.com"
    ) as browser:
        response = await browser.sign_in(GENERIC, redirect_to=target)

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://admin.example.com/done?")
    assert _query(location)["tab"] == ["security"]
    assert "code" in _query(location)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.net/",
        "//evil.example.net/",
        "/\\evil.example.net/",
        "https:/\\evil.example.net/",
        "https://app.example.com@evil.example.net/",
        "https://app.example.com.evil.example.net/",
        "https://evil.example.net\\@app.example.com/",
        "https://evil.example.net#@app.example.com/",
        "http://app.example.com/",  # the allowed origin is https
        "https://app.example.com:8443/",
        "javascript:alert(1)//https://app.example.com/",
        "https:app.example.com/",
        "https://app.example.com\t.evil.example.net/",
        "\nhttps://app.example.com/",
        "/relative/path",
        "https://",
        "https://app.example.com:99999/",
    ],
)
async def test_a_redirect_outside_the_allowlist_is_refused(
    browser_with: BrowserWith, target: str
) -> None:
    async with browser_with(frontend_callback_url=FRONTEND) as browser:
        response = await browser.app.get(f"{OAUTH}/{GENERIC}/start", params={"redirect_to": target})

    assert_problem(response, 400, "oauth_redirect_not_allowed")


async def test_a_redirect_is_refused_when_no_origin_is_allowed(browser: Browser) -> None:
    response = await browser.app.get(f"{OAUTH}/{GENERIC}/start", params={"redirect_to": FRONTEND})

    assert_problem(response, 400, "oauth_redirect_not_allowed")


async def test_the_allowlist_compares_origins_in_normal_form(
    browser_with: BrowserWith,
) -> None:
    async with browser_with(allowed_redirect_origins="HTTPS://App.Example.com:443/") as browser:
        response = await browser.app.get(
            f"{OAUTH}/{GENERIC}/start", params={"redirect_to": "https://app.example.com/x"}
        )

    assert response.status_code == 302


async def test_a_link_ends_at_the_frontend_naming_the_provider(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    async with browser_with(frontend_callback_url=FRONTEND) as browser:
        local = await make_account(browser.app)
        url = await browser.start_link(GENERIC, local.tokens["access_token"])
        response = await browser.back_to_app(await browser.authorize(url))
        accounts = await browser.app.get(
            f"{OAUTH}/accounts", headers=bearer(local.tokens["access_token"])
        )

    assert response.status_code == 303
    assert _query(response.headers["location"]) == {"linked": [GENERIC]}
    assert [a["provider"] for a in accounts.json()] == [GENERIC]


async def test_a_code_for_an_account_disabled_since_is_refused(
    browser_with: BrowserWith, identity_provider: IdentityProvider, database: Database
) -> None:
    email = identity_provider.account.email = unique_email()
    async with browser_with(frontend_callback_url=FRONTEND) as browser:
        code = _query((await browser.sign_in(GENERIC)).headers["location"])["code"][0]
        async with database.sessionmaker() as session:
            await session.execute(update(User).where(User.email == email).values(is_active=False))
            await session.commit()
        response = await browser.app.post(f"{OAUTH}/exchange", json={"code": code})

    assert_problem(response, 400, "oauth_invalid_code")
