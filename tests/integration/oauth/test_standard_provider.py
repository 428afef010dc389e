"""The generic OpenID Connect provider against a standard one: panva/oidc-provider, an
OpenID Certified implementation, in a Node.js process of its own (`tests/oidc_server`).

Nothing in it was written for this app: discovery, PKCE, client authentication, the ID
token, and the email claims kept for UserInfo (OIDC Core 5.4) are all its own.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urljoin

import httpx
import pytest

from app.db import Database
from app.main import create_app
from tests.conftest import serve
from tests.factories import bearer
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import CLIENT_SECRET, OAUTH, Browser, Callback, oauth_settings
from tests.support import ROOT, make_settings

STANDARD = "standard"
APP = "http://testserver"


@pytest.fixture(scope="module")
def standard_issuer() -> Iterator[str]:
    """The provider's issuer URL; it serves until the module's tests are done."""
    callback = f"{APP}{OAUTH}/{STANDARD}/callback"
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            ["node", "server.mjs", f"{STANDARD}-client", CLIENT_SECRET, callback],  # noqa: S607 - Node.js from PATH
            cwd=ROOT / "tests" / "oidc_server",
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert process.stdout is not None
        try:
            line = process.stdout.readline().decode()  # written once it listens
            if not line.startswith("listening "):
                errors.seek(0)
                pytest.fail(f"the OIDC server did not start: {errors.read().decode()}")
            yield f"http://127.0.0.1:{line.split()[1]}"
        finally:
            process.terminate()
            process.wait(timeout=10)
            process.stdout.close()


@pytest.fixture
async def browser(
    standard_issuer: str,
    database_url: str,
    database: Database,
    identity_provider: IdentityProvider,
) -> AsyncIterator[Browser]:
    generic = {
        "name": STANDARD,
        "issuer": standard_issuer,
        "client_id": f"{STANDARD}-client",
        "client_secret": CLIENT_SECRET,
        "trust_email": True,
    }
    oauth = oauth_settings(identity_provider, oidc_providers=[generic])
    settings = make_settings(database_url, oauth=oauth)
    async with serve(create_app(settings, database=database)) as client:
        browser = Browser(client)
        yield browser
        await browser.close()


async def _sign_in_at_the_provider(web: httpx.AsyncClient, url: str, login: str) -> Callback:
    """Through the provider's development pages: sign in as `login`, consent, and follow
    the redirects until the provider sends the browser back to the app."""
    response = await web.get(url)
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(APP):
                return Callback("GET", location)
            response = await web.get(location)
            continue
        form = re.search(r'action="([^"]+)"', response.text)
        prompt = re.search(r'name="prompt" value="([^"]+)"', response.text)
        assert form is not None, response.text
        assert prompt is not None, response.text
        fields = {"prompt": prompt[1]}
        if prompt[1] == "login":
            fields |= {"login": login, "password": "any"}
        response = await web.post(urljoin(str(response.url), form[1]), data=fields)
    raise AssertionError("the provider never sent the browser back")


async def test_sign_up_and_sign_in_with_a_certified_openid_provider(browser: Browser) -> None:
    login = f"ann-{uuid.uuid4().hex[:8]}"
    url = await browser.start(STANDARD)

    callback = await _sign_in_at_the_provider(browser.web, url, login)
    first = await browser.back_to_app(callback)

    assert first.status_code == 200, first.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(first.json()["access_token"]))
    # The address came from UserInfo: this provider keeps it out of the ID token.
    assert me.json()["email"] == f"{login}@example.com"
    assert me.json()["email_verified"] is True
    # Signed in at the provider already: the second sign-in needs no pages.
    second = await browser.back_to_app(
        await _sign_in_at_the_provider(browser.web, await browser.start(STANDARD), login)
    )
    again = await browser.app.get("/api/v1/users/me", headers=bearer(second.json()["access_token"]))
    assert again.json()["id"] == me.json()["id"]


async def test_a_replayed_callback_is_refused_by_the_app(browser: Browser) -> None:
    callback = await _sign_in_at_the_provider(
        browser.web, await browser.start(STANDARD), f"bob-{uuid.uuid4().hex[:8]}"
    )

    assert (await browser.back_to_app(callback)).status_code == 200
    replayed = await browser.back_to_app(callback)
    assert replayed.status_code == 400
    assert replayed.json()["error_code"] == "oauth_invalid_state"
