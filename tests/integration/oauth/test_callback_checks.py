"""What the callback refuses: a state that is not this browser's live flow for this provider,
an ID token that fails any check, and a provider that errs, talks nonsense or says nothing.
Each ends in a problem with a stable code, never a 500, and creates no account."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select, update

from app.db import Database, utcnow
from app.domains.auth.models import OAuthFlow
from app.domains.users.models import User
from tests.identity_provider import IdentityProvider, rsa_key
from tests.oauth_browser import GENERIC, Browser, Callback
from tests.support import assert_problem


async def _callback(browser: Browser, provider: str = GENERIC) -> Callback:
    return await browser.authorize(await browser.start(provider))


async def _no_user(database: Database, email: str | None) -> bool:
    async with database.sessionmaker() as session:
        return await session.scalar(select(User.id).where(User.email == email)) is None


# The state and its binding to the browser.


async def test_a_missing_state_is_refused(browser: Browser) -> None:
    callback = (await _callback(browser)).with_values(state=None)

    assert_problem(await browser.back_to_app(callback), 400, "oauth_invalid_state")


async def test_a_tampered_state_is_refused(browser: Browser) -> None:
    callback = await _callback(browser)
    tampered = callback.with_values(state=callback.values["state"][:-2] + "xx")

    assert_problem(await browser.back_to_app(tampered), 400, "oauth_invalid_state")
    # The real flow is untouched by the attempt and still completes.
    assert (await browser.back_to_app(callback)).status_code == 200


async def test_a_state_works_once(browser: Browser) -> None:
    callback = await _callback(browser)

    assert (await browser.back_to_app(callback)).status_code == 200
    assert_problem(await browser.back_to_app(callback), 400, "oauth_invalid_state")


async def test_an_expired_flow_is_refused(browser: Browser, database: Database) -> None:
    callback = await _callback(browser)
    async with database.sessionmaker() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(update(OAuthFlow).values(expires_at=past))
        await session.commit()

    assert_problem(await browser.back_to_app(callback), 400, "oauth_invalid_state")


async def test_a_callback_in_another_browser_is_refused(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    """Login CSRF: an attacker's code and state, delivered to the victim's browser."""
    callback = await _callback(browser)
    client.cookies.clear()  # another browser: without the starting browser's cookie

    assert_problem(await browser.back_to_app(callback), 400, "oauth_invalid_state")


async def test_a_callback_with_another_browsers_cookie_is_refused(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    attackers = await _callback(browser)
    await browser.start(GENERIC)  # the victim's own flow sets the victim's cookie

    assert_problem(await browser.back_to_app(attackers), 400, "oauth_invalid_state")


async def test_a_state_issued_for_another_provider_is_refused(browser: Browser) -> None:
    callback = await _callback(browser, "google")
    elsewhere = Callback("GET", callback.url.replace("/google/callback", f"/{GENERIC}/callback"))

    assert_problem(await browser.back_to_app(elsewhere), 400, "oauth_invalid_state")


async def test_a_response_naming_another_issuer_is_a_mix_up(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    """RFC 9207: a code from one provider brought to another's callback."""
    callback = await _callback(browser)

    mixed_up = callback.with_values(iss=identity_provider.issuer("google"))

    assert_problem(await browser.back_to_app(mixed_up), 400, "oauth_issuer_mismatch")
    assert await _no_user(database, identity_provider.account.email)


async def test_a_provider_that_names_itself_must(browser: Browser) -> None:
    callback = await _callback(browser)
    assert "iss" in callback.values  # the provider declares it always sends it

    response = await browser.back_to_app(callback.with_values(iss=None))

    assert_problem(response, 400, "oauth_issuer_mismatch")


async def test_a_provider_that_does_not_name_itself_need_not(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.discovery = {
        "authorization_response_iss_parameter_supported": None
    }
    callback = (await _callback(browser)).with_values(iss=None)

    assert (await browser.back_to_app(callback)).status_code == 200


async def test_a_flow_ended_by_the_provider_is_refused_and_spent(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.authorize_error = "access_denied"
    callback = await _callback(browser)

    assert callback.values["error"] == "access_denied"
    assert_problem(await browser.back_to_app(callback), 400, "oauth_authorization_failed")
    assert_problem(await browser.back_to_app(callback), 400, "oauth_invalid_state")


async def test_a_callback_without_a_code_is_refused(browser: Browser) -> None:
    callback = (await _callback(browser)).with_values(code=None)

    assert_problem(await browser.back_to_app(callback), 400, "oauth_authorization_failed")


async def test_a_code_the_provider_refuses_is_a_400(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    callback = await _callback(browser)
    identity_provider.codes.clear()  # expired at the provider

    assert_problem(await browser.back_to_app(callback), 400, "oauth_code_rejected")


# The ID token.


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"nonce": "another-flows-nonce"}, "wrong nonce"),
        ({"nonce": None}, "no nonce"),
        ({"iss": "https://evil.example.com"}, "wrong issuer"),
        ({"aud": "another-client"}, "wrong audience"),
        ({"aud": ["another-client", f"{GENERIC}-client"]}, "shared audience without azp"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"sub": None}, "no subject"),
    ],
)
async def test_an_id_token_failing_a_claim_check_is_refused(
    browser: Browser,
    identity_provider: IdentityProvider,
    database: Database,
    claims: dict[str, object],
    why: str,
) -> None:
    identity_provider.misbehaviour.id_token_claims = claims

    response = await browser.sign_in(GENERIC)

    assert_problem(response, 502, "oauth_invalid_id_token")
    assert await _no_user(database, identity_provider.account.email), why


async def test_an_id_token_signed_with_an_unpublished_key_is_refused(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.misbehaviour.signing_key = rsa_key()  # a kid no JWKS has

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_invalid_id_token")
    assert await _no_user(database, identity_provider.account.email)


async def test_an_id_token_with_a_forged_signature_is_refused(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    published = identity_provider.keys[-1]
    forger = rsa_key()
    # A key of the attacker's own under the published key's id.
    identity_provider.misbehaviour.signing_key = RSAKey.import_key(
        forger.as_pem(private=True), parameters={"kid": str(published.kid)}
    )

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_invalid_id_token")


async def test_a_new_signing_key_is_fetched_once_after_a_rotation(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    assert (await browser.sign_in(GENERIC)).status_code == 200  # the JWKS is now cached
    fetched = identity_provider.jwks_requests
    identity_provider.rotate_keys()

    assert (await browser.sign_in(GENERIC)).status_code == 200
    assert identity_provider.jwks_requests == fetched + 1
    assert (await browser.sign_in(GENERIC)).status_code == 200
    assert identity_provider.jwks_requests == fetched + 1  # cached again


async def test_a_token_response_without_an_id_token_is_a_502(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.answers["token"] = {"access_token": "x", "token_type": "Bearer"}

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_provider_failed")


async def test_a_token_response_without_an_access_token_is_a_502(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.answers["token"] = {"token_type": "Bearer"}

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_provider_failed")


async def test_an_unsigned_id_token_is_refused_even_if_the_provider_offers_none(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    identity_provider.misbehaviour.discovery = {
        "id_token_signing_alg_values_supported": ["none", "HS256", "RS256"]
    }
    identity_provider.misbehaviour.unsigned = True

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_invalid_id_token")
    assert await _no_user(database, identity_provider.account.email)


async def test_a_provider_offering_no_public_key_algorithm_cannot_start_a_flow(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.discovery = {
        "id_token_signing_alg_values_supported": ["none", "HS256"]
    }

    response = await client.get(f"/api/v1/auth/oauth/{GENERIC}/start")

    assert_problem(response, 502, "oauth_provider_failed")


async def test_a_discovery_document_cannot_weaken_the_authorization_request(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    # Authlib would take these from the document as its client's settings.
    identity_provider.misbehaviour.discovery = {
        "code_challenge_method": "plain",
        "response_mode": "fragment",
        "prompt": "none",
    }

    url = await browser.start(GENERIC)

    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "response_mode" not in query
    assert "prompt" not in query
    assert (await browser.back_to_app(await browser.authorize(url))).status_code == 200


# A provider that fails.


@pytest.mark.parametrize(
    ("endpoint", "answer"),
    [
        ("jwks", {}),
        ("jwks", []),
        ("token", {"error": ["invalid_grant"]}),
        ("token", {"access_token": "x", "token_type": "Bearer", "expires_in": [1]}),
        ("token", ["access_token"]),
        ("profile", ["not", "an", "object"]),
    ],
)
async def test_an_answer_that_is_not_what_the_protocol_says_is_a_502(
    browser: Browser,
    identity_provider: IdentityProvider,
    database: Database,
    endpoint: str,
    answer: object,
) -> None:
    identity_provider.misbehaviour.id_token_claims = {"email": None}  # so UserInfo is asked
    identity_provider.misbehaviour.answers[endpoint] = answer

    assert_problem(await browser.sign_in(GENERIC), 502, "oauth_provider_failed")
    assert await _no_user(database, identity_provider.account.email)


@pytest.mark.parametrize("document", [[], None, "issuer", {"issuer": 1}])
async def test_a_discovery_document_that_is_not_one_is_a_502(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, document: object
) -> None:
    identity_provider.misbehaviour.answers["discovery"] = document

    response = await client.get(f"/api/v1/auth/oauth/{GENERIC}/start")

    assert_problem(response, 502, "oauth_provider_failed")


async def test_a_provider_answering_a_byte_at_a_time_is_cut_off(
    browser: Browser, identity_provider: IdentityProvider
) -> None:
    callback = await _callback(browser)
    # Each read comes quickly; only a deadline for the whole exchange ends it.
    identity_provider.misbehaviour.endpoints["token"] = "drip"

    assert_problem(await browser.back_to_app(callback), 504, "oauth_provider_timeout")


@pytest.mark.parametrize("endpoint", ["token", "jwks"])
async def test_a_provider_answering_500_is_a_502(
    browser: Browser, identity_provider: IdentityProvider, database: Database, endpoint: str
) -> None:
    callback = await _callback(browser)
    identity_provider.misbehaviour.endpoints[endpoint] = 500

    assert_problem(await browser.back_to_app(callback), 502, "oauth_provider_failed")
    assert await _no_user(database, identity_provider.account.email)


async def test_a_provider_whose_discovery_fails_cannot_start_a_flow(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    identity_provider.misbehaviour.endpoints["discovery"] = 503

    assert_problem(
        await client.get(f"/api/v1/auth/oauth/{GENERIC}/start"), 502, "oauth_provider_failed"
    )


async def test_a_provider_that_never_answers_is_a_504_within_the_timeout(
    browser: Browser, identity_provider: IdentityProvider, database: Database
) -> None:
    callback = await _callback(browser)
    identity_provider.misbehaviour.endpoints["token"] = "hang"

    # Without the timeout (OAUTH_HTTP_TIMEOUT_SECONDS), this request would never end.
    response = await browser.back_to_app(callback)

    assert_problem(response, 504, "oauth_provider_timeout")
    assert await _no_user(database, identity_provider.account.email)
