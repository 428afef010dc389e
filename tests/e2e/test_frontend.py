"""The frontend in a real browser (Debian's Chromium through Playwright), served by the API
process, signing in with a password and through the loopback identity provider.

Every page runs under the frontend's Content-Security-Policy: a test fails on any policy
violation or uncaught script error the browser reports.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domains.users.models import User
from tests.e2e.server import served
from tests.factories import unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, oauth_settings, register_clients
from tests.support import ROOT, delete_accounts

BUILT = ROOT / "app" / "frontend" / "index.html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "a long browser password"
SSO = "Company SSO"  # the generic provider's display name in oauth_settings


@pytest.fixture(scope="module")
def server(provider_server: IdentityProvider, database_url: str) -> Iterator[str]:
    """The API process serving the built frontend, with the providers at the loopback one."""
    assert BUILT.is_file(), "the frontend is not built: run `make frontend`"

    def environment(url: str) -> dict[str, str]:
        env = {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "OUTBOX_RELAY_ENABLED": "false",
            "RATE_LIMIT_ENABLED": "false",
        }
        for name, value in oauth_settings(provider_server, allowed_redirect_origins=url).items():
            env[f"OAUTH_{name.upper()}"] = (
                json.dumps(value) if isinstance(value, list) else str(value)
            )
        return env

    with served(environment) as running:
        yield running.url


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        await browser.close()


@pytest.fixture
async def page(chromium: Browser, server: str) -> AsyncIterator[Page]:
    """A fresh browser profile; the test fails on a policy violation or a script error."""
    complaints: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            complaints.append(message.text)

    def on_error(error: Error) -> None:
        complaints.append(f"{error.name}: {error.message}")

    context = await chromium.new_context(base_url=server)
    page = await context.new_page()
    page.on("console", on_console)
    page.on("pageerror", on_error)
    yield page
    await context.close()
    assert complaints == []


@pytest.fixture
def provider(provider_server: IdentityProvider, server: str) -> IdentityProvider:
    """The loopback provider with the server registered, signing in a new person."""
    provider_server.reset()
    register_clients(provider_server, server)
    provider_server.account.subject = str(uuid.uuid4())
    return provider_server


@pytest.fixture
async def emails(engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """Addresses a test signs up with; their accounts are deleted after it."""
    addresses: list[str] = []
    yield addresses
    await delete_accounts(engine, User.email.in_(addresses))


async def _register(page: Page, email: str) -> None:
    await page.goto("/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


async def test_a_visitor_registers_writes_votes_and_stays_signed_in(
    page: Page, emails: list[str]
) -> None:
    emails.append(email := unique_email())
    title = f"From the browser {uuid.uuid4().hex[:8]}"

    await _register(page, email)
    await expect(page.get_by_text(email)).to_be_visible()
    await page.get_by_role("link", name="New post").click()
    await page.get_by_label("Title").fill(title)
    await page.get_by_label("Content").fill("Written in a real browser.")
    await page.get_by_role("button", name="Create post").click()
    await expect(page.get_by_role("heading", name=title)).to_be_visible()
    vote = page.get_by_role("button", name="Vote")
    await expect(vote).to_have_attribute("aria-pressed", "false")
    await vote.click()
    await expect(vote).to_have_attribute("aria-pressed", "true")
    await expect(page.get_by_text("1 vote", exact=True)).to_be_visible()

    # A reload forgets the access token; the stored refresh token signs the tab in again.
    await page.reload()
    await expect(page.get_by_role("button", name="Vote")).to_have_attribute("aria-pressed", "true")
    await page.get_by_role("link", name="Posts", exact=True).click()
    await expect(page.get_by_role("link", name=title)).to_be_visible()

    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()


async def test_a_wrong_password_is_told_not_thrown(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(unique_email())
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("alert")).to_contain_text("password")
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()


async def test_a_visitor_signs_up_with_a_provider(
    page: Page, provider: IdentityProvider, emails: list[str]
) -> None:
    emails.append(email := unique_email())
    provider.account.email = email

    await page.goto("/login")
    await page.get_by_role("link", name=f"Continue with {SSO}").click()

    await expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    await expect(page.get_by_text(email)).to_be_visible()
    assert "code=" not in page.url  # the one-time code leaves the address bar and history


async def test_a_signed_in_user_links_a_provider_and_unlinks_it(
    page: Page, provider: IdentityProvider, emails: list[str]
) -> None:
    emails.append(email := unique_email())
    provider.account.email = unique_email()
    await _register(page, email)

    await page.get_by_role("link", name="Account").click()
    await page.get_by_role("button", name=f"Link {SSO}").click()

    await expect(page.get_by_text(f"Linked {GENERIC}.")).to_be_visible()
    unlink = page.get_by_role("button", name=f"Unlink {GENERIC}")
    await unlink.click()
    await expect(unlink).to_have_count(0)
    await expect(page.get_by_role("button", name=f"Link {SSO}")).to_be_visible()


async def test_a_deep_link_opens_its_page(page: Page) -> None:
    await page.goto("/posts/2147483647")

    await expect(page.get_by_text("Post not found.")).to_be_visible()


async def test_a_refused_code_is_told_and_leaves_the_address_bar(page: Page) -> None:
    await page.goto("/auth/callback?code=not-a-code")

    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_role("link", name="Back to sign in")).to_be_visible()
    assert "code=" not in page.url
