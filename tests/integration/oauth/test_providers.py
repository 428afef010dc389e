"""Each built-in provider's own ways, against the loopback provider speaking its protocol:
Google's issuer spellings, Microsoft's tenants, Apple's form_post and client secret,
GitHub's email list and Facebook's Graph profile."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update

from app.db import Database
from app.domains.users.models import User
from tests.factories import bearer, make_account, unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, OAUTH, Browser, oauth_settings
from tests.support import assert_problem

BrowserWith = Callable[..., AbstractAsyncContextManager[Browser]]


async def _verified_local_account(browser: Browser, database: Database) -> str:
    local = await make_account(browser.app)
    async with database.sessionmaker() as session:
        await session.execute(update(User).where(User.id == local.id).values(email_verified=True))
        await session.commit()
    return local.email


async def _user_id(browser: Browser, response_json: dict[str, str]) -> int:
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response_json["access_token"]))
    return int(me.json()["id"])


# Google.


async def test_google_signs_in_and_its_verified_address_joins_an_account(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.account.email = await _verified_local_account(browser, database)

    response = await browser.sign_in("google")

    assert response.status_code == 200, response.text


async def test_google_id_tokens_may_name_the_issuer_without_its_scheme(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    bare = identity_provider.issuer("google").split("://", 1)[1]
    identity_provider.misbehaviour.id_token_claims = {"iss": bare}
    identity_provider.account.email = unique_email()

    assert (await browser.sign_in("google")).status_code == 200


async def test_a_discovery_document_for_another_issuer_is_refused(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    # OIDC Discovery 4.3: the document must name the issuer it was fetched for; here the
    # configured issuer has a trailing slash the document's lacks.
    generic = oauth_settings(identity_provider)["oidc_providers"][0]
    misconfigured = generic | {"issuer": generic["issuer"] + "/"}

    async with browser_with(oidc_providers=[misconfigured]) as browser:
        response = await browser.app.get(f"{OAUTH}/{GENERIC}/start")

    # Refused at the start, before the user signs in at the provider.
    assert_problem(response, 502, "oauth_provider_failed")


async def test_a_generic_provider_may_take_the_client_secret_in_the_body(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    generic = oauth_settings(identity_provider)["oidc_providers"][0]
    identity_provider.account.email = unique_email()

    async with browser_with(oidc_providers=[generic]) as browser:
        assert (await browser.sign_in(GENERIC)).status_code == 200
    post = generic | {"token_endpoint_auth_method": "client_secret_post"}
    async with browser_with(oidc_providers=[post]) as browser:
        assert (await browser.sign_in(GENERIC)).status_code == 200

    assert identity_provider.client_auth == ["basic", "post"]


# Microsoft.


async def test_microsoft_checks_the_issuer_against_the_tokens_own_tenant(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    identity_provider.account.claims = {"tid": "tenant-a"}

    assert (await browser.sign_in("microsoft")).status_code == 200


async def test_a_microsoft_token_issued_by_another_tenant_is_refused(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.account.email = unique_email()
    identity_provider.account.claims = {"tid": "tenant-a"}
    identity_provider.misbehaviour.id_token_claims = {
        "iss": identity_provider.issuer("ms", "tenant-b")
    }

    assert_problem(await browser.sign_in("microsoft"), 502, "oauth_invalid_id_token")


async def test_microsoft_tenants_outside_the_allowlist_may_not_sign_in(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    identity_provider.account.claims = {"tid": "tenant-a"}

    async with browser_with(microsoft_allowed_tenants="tenant-b,TENANT-C") as browser:
        assert_problem(await browser.sign_in("microsoft"), 403, "oauth_tenant_not_allowed")
        identity_provider.account.claims = {"tid": "tenant-c"}
        assert (await browser.sign_in("microsoft")).status_code == 200


async def test_a_single_tenant_app_accepts_its_tenant_only(
    browser_with: BrowserWith, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    identity_provider.account.claims = {"tid": "tenant-a"}

    async with browser_with(microsoft_tenant="tenant-a") as browser:
        assert (await browser.sign_in("microsoft")).status_code == 200
        identity_provider.account.claims = {"tid": "tenant-b"}
        assert_problem(await browser.sign_in("microsoft"), 502, "oauth_invalid_id_token")


async def test_a_microsoft_address_joins_an_account_only_with_a_verified_domain(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.account.email = await _verified_local_account(browser, database)
    identity_provider.account.claims = {"tid": "tenant-a"}  # email_verified means nothing here

    assert_problem(await browser.sign_in("microsoft"), 409, "oauth_account_conflict")
    identity_provider.account.claims = {"tid": "tenant-a", "xms_edov": True}
    assert (await browser.sign_in("microsoft")).status_code == 200


# Apple.


async def test_apple_posts_the_result_back_and_gets_a_minted_client_secret(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()

    authorization_url = await browser.start("apple")
    callback = await browser.authorize(authorization_url)

    assert "response_mode=form_post" in authorization_url
    assert callback.method == "POST"
    # The provider accepted the ES256 client secret: the token exchange succeeded.
    response = await browser.back_to_app(callback)
    assert response.status_code == 200, response.text


async def test_apples_string_email_verified_is_understood(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.account.email = await _verified_local_account(browser, database)
    identity_provider.account.email_verified = "false"

    assert_problem(await browser.sign_in("apple"), 409, "oauth_account_conflict")
    identity_provider.account.email_verified = "true"
    assert (await browser.sign_in("apple")).status_code == 200


async def test_apples_binding_cookie_survives_a_cross_site_post_over_https(
    browser_with: BrowserWith,
) -> None:
    async with browser_with(redirect_base_url="https://api.example.com") as browser:
        response = await browser.app.get(f"{OAUTH}/apple/start")

    # __Host-: only this host may set it, over HTTPS, so no sibling domain can plant one.
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-oauth_browser=")
    assert "Path=/;" in cookie
    assert "Secure" in cookie
    assert "SameSite=none" in cookie
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["redirect_uri"] == [f"https://api.example.com{OAUTH}/apple/callback"]


# GitHub.


async def test_github_signs_up_with_the_primary_verified_address(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = unique_email()
    identity_provider.account.github_emails = [
        {"email": unique_email(), "primary": False, "verified": True},
        {"email": email, "primary": True, "verified": True},
    ]

    response = await browser.sign_in("github")

    assert response.status_code == 200, response.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["email"] == email


async def test_an_unverified_github_address_joins_no_account(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = await _verified_local_account(browser, database)
    identity_provider.account.github_emails = [
        {"email": email, "primary": True, "verified": False},
    ]

    assert_problem(await browser.sign_in("github"), 409, "oauth_account_conflict")


async def test_a_verified_secondary_github_address_joins_no_account(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = await _verified_local_account(browser, database)
    identity_provider.account.github_emails = [
        {"email": unique_email(), "primary": True, "verified": True},
        {"email": email, "primary": False, "verified": True},
    ]

    response = await browser.sign_in("github")

    # A new account under the primary address, not the local one.
    assert response.status_code == 200, response.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["email"] != email


async def test_a_github_account_without_addresses_cannot_sign_up(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.github_emails = []

    assert_problem(await browser.sign_in("github"), 403, "oauth_email_required")


async def test_githubs_errors_in_a_200_are_errors(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    callback = await browser.authorize(await browser.start("github"))
    identity_provider.codes.clear()  # GitHub answers 200 {"error": "bad_verification_code"}

    assert_problem(await browser.back_to_app(callback), 400, "oauth_code_rejected")


async def test_a_failing_or_malformed_github_profile_is_a_502(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.endpoints["profile"] = 500
    assert_problem(await browser.sign_in("github"), 502, "oauth_provider_failed")

    identity_provider.misbehaviour.endpoints.clear()
    identity_provider.misbehaviour.answers["profile"] = {"login": "ann"}  # no id
    assert_problem(await browser.sign_in("github"), 502, "oauth_provider_failed")


# Facebook.


async def test_facebook_signs_up_through_the_graph_profile(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = unique_email()
    identity_provider.account.email = email

    response = await browser.sign_in("facebook")

    assert response.status_code == 200, response.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["email"] == email
    assert me.json()["email_verified"] is False  # Facebook does not say


async def test_a_facebook_address_never_joins_an_account(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.account.email = await _verified_local_account(browser, database)

    assert_problem(await browser.sign_in("facebook"), 409, "oauth_account_conflict")


async def test_a_provider_address_that_is_no_address_is_ignored(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = "not an address"

    assert_problem(await browser.sign_in("facebook"), 403, "oauth_email_required")
