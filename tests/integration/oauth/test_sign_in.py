"""Signing in, signing up and linking with an OpenID Connect provider, over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select, update

from app.db import Database
from app.domains.auth.models import OAuthAccount, OAuthFlow
from app.domains.users.models import User
from tests.factories import bearer, make_account, unique_email
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, OAUTH, Browser, Callback
from tests.support import assert_problem, counted_since, counters


async def _user(database: Database, email: str) -> User | None:
    async with database.sessionmaker() as session:
        return await session.scalar(select(User).where(User.email == email))


async def _verify_email(database: Database, email: str) -> None:
    async with database.sessionmaker() as session:
        await session.execute(update(User).where(User.email == email).values(email_verified=True))
        await session.commit()


async def test_a_new_identity_signs_up_and_gets_a_session(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = unique_email()
    identity_provider.account.email = email

    response = await browser.sign_in(GENERIC)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "bearer"
    me = await browser.app.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.json()["email"] == email
    user = await _user(database, email)
    assert user is not None
    assert user.password_hash is None
    assert user.email_verified  # the provider verified it, and is trusted to say so
    accounts = await browser.app.get(f"{OAUTH}/accounts", headers=bearer(tokens["access_token"]))
    [account] = accounts.json()
    assert account["provider"] == GENERIC
    assert account["email"] == email
    assert account["last_login_at"] is not None


async def test_the_same_identity_signs_in_to_the_same_account(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    first = (await browser.sign_in(GENERIC)).json()
    # The address at the provider changes: the identity is (provider, subject), not the email.
    identity_provider.account.email = unique_email()
    second = (await browser.sign_in(GENERIC)).json()

    me = [
        (await browser.app.get("/api/v1/users/me", headers=bearer(t["access_token"]))).json()
        for t in (first, second)
    ]
    assert me[0]["id"] == me[1]["id"]
    sessions = await browser.app.get(
        "/api/v1/auth/sessions", headers=bearer(second["access_token"])
    )
    assert len(sessions.json()) == 2  # each sign-in starts a session of its own


async def test_the_authorization_request_uses_pkce_state_and_nonce(
    browser: Browser, database: Database
) -> None:
    url = await browser.start(GENERIC)

    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 43
    assert len(query["nonce"][0]) >= 43
    assert query["redirect_uri"] == [f"http://testserver{OAUTH}/{GENERIC}/callback"]
    async with database.sessionmaker() as session:
        flows = (await session.scalars(select(OAuthFlow))).all()
    [flow] = [f for f in flows if f.nonce == query["nonce"][0]]
    # The verifier stays on the server: neither it nor the state itself is stored in the URL
    # or, for the state, in the database.
    assert flow.code_verifier not in url
    assert flow.state_hash != query["state"][0]


async def test_the_binding_cookie_is_http_only_and_scoped_to_the_callbacks(
    browser: Browser,
) -> None:
    response = await browser.app.get(f"{OAUTH}/{GENERIC}/start")

    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Path=/api/v1/auth/oauth" in cookie
    assert "Max-Age=600" in cookie


async def test_a_trusted_verified_address_joins_the_verified_local_account(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    local = await make_account(browser.app)
    await _verify_email(database, local.email)
    identity_provider.account.email = local.email

    response = await browser.sign_in(GENERIC)

    assert response.status_code == 200, response.text
    me = await browser.app.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["id"] == local.id


async def test_an_unverified_local_account_is_not_joined(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    local = await make_account(browser.app)  # its address was never verified
    identity_provider.account.email = local.email

    response = await browser.sign_in(GENERIC)

    assert_problem(response, 409, "oauth_account_conflict")
    async with database.sessionmaker() as session:
        links = await session.scalars(select(OAuthAccount).where(OAuthAccount.user_id == local.id))
        assert links.all() == []


async def test_an_address_the_provider_did_not_verify_is_not_joined(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    local = await make_account(browser.app)
    await _verify_email(database, local.email)
    identity_provider.account.email = local.email
    identity_provider.account.email_verified = False

    assert_problem(await browser.sign_in(GENERIC), 409, "oauth_account_conflict")


async def test_a_signed_in_user_links_an_identity_and_then_signs_in_with_it(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    local = await make_account(browser.app)
    identity_provider.account.email = unique_email()  # another address entirely

    url = await browser.start_link(GENERIC, local.tokens["access_token"])
    linked = await browser.back_to_app(await browser.authorize(url))

    assert linked.status_code == 200, linked.text
    assert linked.json()["provider"] == GENERIC
    signed_in = await browser.sign_in(GENERIC)
    me = await browser.app.get("/api/v1/users/me", headers=bearer(signed_in.json()["access_token"]))
    assert me.json()["id"] == local.id


async def test_an_identity_linked_to_someone_else_cannot_be_linked(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    await browser.sign_in(GENERIC)  # the identity now has an account of its own
    other = await make_account(browser.app)

    url = await browser.start_link(GENERIC, other.tokens["access_token"])
    response = await browser.back_to_app(await browser.authorize(url))

    assert_problem(response, 409, "oauth_identity_taken")


async def test_a_second_identity_of_the_same_provider_cannot_be_linked(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    local = await make_account(browser.app)
    url = await browser.start_link(GENERIC, local.tokens["access_token"])
    await browser.back_to_app(await browser.authorize(url))
    identity_provider.account.subject = "someone-else"

    url = await browser.start_link(GENERIC, local.tokens["access_token"])
    response = await browser.back_to_app(await browser.authorize(url))

    assert_problem(response, 409, "oauth_provider_already_linked")


async def test_relinking_the_same_identity_is_harmless(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    local = await make_account(browser.app)
    for _ in range(2):
        url = await browser.start_link(GENERIC, local.tokens["access_token"])
        response = await browser.back_to_app(await browser.authorize(url))
        assert response.status_code == 200, response.text

    accounts = await browser.app.get(f"{OAUTH}/accounts", headers=local.headers)
    assert len(accounts.json()) == 1


async def test_linking_needs_a_bearer_token(browser: Browser) -> None:
    response = await browser.app.post(f"{OAUTH}/{GENERIC}/link/start")

    assert_problem(response, 401, "not_authenticated")


async def test_an_identity_without_an_address_cannot_sign_up(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = None

    assert_problem(await browser.sign_in(GENERIC), 403, "oauth_email_required")


async def test_a_disabled_account_cannot_sign_in(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = unique_email()
    identity_provider.account.email = email
    await browser.sign_in(GENERIC)
    async with database.sessionmaker() as session:
        await session.execute(update(User).where(User.email == email).values(is_active=False))
        await session.commit()

    assert_problem(await browser.sign_in(GENERIC), 403, "oauth_account_disabled")


async def test_an_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{OAUTH}/myspace/start")

    assert_problem(response, 404, "oauth_provider_not_found")


async def test_each_callback_is_counted_by_provider_and_result(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.account.email = unique_email()
    before = counters("auth_oauth_callbacks")

    await browser.sign_in(GENERIC)
    await browser.sign_in(GENERIC)
    local = await make_account(browser.app)
    await browser.back_to_app(
        await browser.authorize(await browser.start_link(GENERIC, local.tokens["access_token"]))
    )
    await browser.back_to_app(Callback("GET", f"http://testserver{OAUTH}/{GENERIC}/callback"))

    assert counted_since(before, "auth_oauth_callbacks") == {
        f"{GENERIC}:signed_up": 1,
        f"{GENERIC}:signed_in": 1,
        f"{GENERIC}:oauth_identity_taken": 1,
        f"{GENERIC}:oauth_invalid_state": 1,
    }


async def test_an_address_kept_out_of_the_id_token_is_read_from_userinfo(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    email = identity_provider.account.email = unique_email()
    identity_provider.misbehaviour.id_token_claims = {"email": None, "email_verified": None}

    response = await browser.sign_in(GENERIC)

    assert response.status_code == 200, response.text
    user = await _user(database, email)
    assert user is not None
    assert user.email_verified


async def test_userinfo_about_another_user_is_refused(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.id_token_claims = {"email": None}
    identity_provider.misbehaviour.answers["profile"] = {"sub": "someone-else", "email": "x@y.z"}

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_provider_failed")


async def test_without_userinfo_an_id_token_without_an_address_cannot_sign_up(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.id_token_claims = {"email": None}
    identity_provider.misbehaviour.discovery = {"userinfo_endpoint": None}

    assert_problem(await browser.sign_in(GENERIC), 403, "oauth_email_required")
