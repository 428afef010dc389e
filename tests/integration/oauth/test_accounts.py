"""`GET /auth/oauth/accounts` and `DELETE /auth/oauth/accounts/{provider}`: the caller's
links, and never removing the last way to sign in."""

from __future__ import annotations

from tests.factories import bearer, make_account, unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, OAUTH, Browser
from tests.support import assert_problem


async def _link(browser: Browser, access_token: str, provider: str) -> None:
    url = await browser.start_link(provider, access_token)
    response = await browser.back_to_app(await browser.authorize(url))
    assert response.status_code == 200, response.text


async def test_accounts_lists_the_callers_links_only(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    ann, bob = await make_account(browser.app), await make_account(browser.app)
    await _link(browser, ann.tokens["access_token"], GENERIC)
    identity_provider.account.subject = "user-2"
    await _link(browser, ann.tokens["access_token"], "github")
    identity_provider.account.subject = "user-3"
    await _link(browser, bob.tokens["access_token"], "google")

    response = await browser.app.get(f"{OAUTH}/accounts", headers=ann.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert [a["provider"] for a in response.json()] == [GENERIC, "github"]


async def test_a_user_with_a_password_may_unlink_their_only_link(
    browser: Browser,
) -> None:
    ann = await make_account(browser.app)
    await _link(browser, ann.tokens["access_token"], GENERIC)

    response = await browser.app.delete(f"{OAUTH}/accounts/{GENERIC}", headers=ann.headers)

    assert response.status_code == 204
    assert (await browser.app.get(f"{OAUTH}/accounts", headers=ann.headers)).json() == []


async def test_the_last_way_to_sign_in_cannot_be_unlinked(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    tokens = (await browser.sign_in(GENERIC)).json()  # an account without a password
    headers = bearer(tokens["access_token"])

    refused = await browser.app.delete(f"{OAUTH}/accounts/{GENERIC}", headers=headers)

    assert_problem(refused, 409, "oauth_last_sign_in_method")
    identity_provider.account.subject = "user-2"
    await _link(browser, tokens["access_token"], "github")
    removed = await browser.app.delete(f"{OAUTH}/accounts/{GENERIC}", headers=headers)
    assert removed.status_code == 204


async def test_unlinking_a_provider_that_is_not_linked_is_404(browser: Browser) -> None:
    ann = await make_account(browser.app)

    response = await browser.app.delete(f"{OAUTH}/accounts/github", headers=ann.headers)

    assert_problem(response, 404, "oauth_account_not_found")


async def test_accounts_need_a_bearer_token(browser: Browser) -> None:
    assert_problem(await browser.app.get(f"{OAUTH}/accounts"), 401, "not_authenticated")
    assert_problem(await browser.app.delete(f"{OAUTH}/accounts/github"), 401, "not_authenticated")
