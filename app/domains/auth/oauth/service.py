"""Sign-in with a provider: start a flow, finish it at the callback, hand the result to the
frontend; and the links between accounts and provider identities.

A flow lives on the server (`oauth_flows`), found by the hash of its `state` and bound to the
starting browser by the hash of a cookie. The callback consumes it before it calls the
provider, so a state works once; the account changes that follow happen in one transaction
after the provider has answered, so a failed sign-in leaves nothing half made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.domains.auth import service as auth_service
from app.domains.auth.models import OAuthAccount, OAuthExchangeCode, OAuthFlow
from app.domains.auth.oauth import repository
from app.domains.auth.oauth.errors import (
    AccountConflict,
    AccountDisabled,
    AuthorizationFailed,
    EmailRequired,
    IdentityTaken,
    InvalidExchangeCode,
    InvalidState,
    LastSignInMethod,
    OAuthAccountNotFound,
    ProviderAlreadyLinked,
)
from app.domains.auth.oauth.providers import ExternalIdentity, Provider, provider_errors
from app.domains.auth.schemas import TokenPair
from app.domains.users import repository as users_repository
from app.domains.users import service as users_service
from app.domains.users.models import User
from app.errors import ProblemError
from app.observability.metrics import OAUTH_CALLBACKS
from app.settings import Settings

# The state, the browser binding and the exchange code: 256 bits from the CSPRNG each.
TOKEN_BYTES = 32
# RFC 7636 4.1: 43 to 128 characters; 64 random bytes make 86.
CODE_VERIFIER_BYTES = 64
EXCHANGE_CODE_LIFETIME = timedelta(seconds=60)


def _digest(token: str) -> str:
    """What the database keeps of a state, binding or code: they are random, so SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Started:
    authorization_url: str
    # The binding cookie's value: the callback must come from the browser that holds it.
    browser_key: str


@dataclass(frozen=True, slots=True)
class Finished:
    """A callback's outcome. With `redirect_to`, the browser goes there carrying
    `exchange_code` (a sign-in) or the provider's name (a link); without it, the caller
    receives `tokens` or `account`."""

    # What happened: signed_in, signed_up or linked.
    result: str
    redirect_to: str | None
    exchange_code: str | None = None
    tokens: TokenPair | None = None
    account: OAuthAccount | None = None


async def start(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    *,
    redirect_uri: str,
    redirect_to: str | None,
    user: User | None = None,
) -> Started:
    """Begin a sign-in (no `user`) or a link to `user`'s account."""
    state = secrets.token_urlsafe(TOKEN_BYTES)
    browser_key = secrets.token_urlsafe(TOKEN_BYTES)
    code_verifier = secrets.token_urlsafe(CODE_VERIFIER_BYTES)
    nonce = secrets.token_urlsafe(TOKEN_BYTES)
    async with provider_errors(provider.name, settings.oauth.http_timeout_seconds):
        url = await provider.authorization_url(
            redirect_uri, state=state, code_verifier=code_verifier, nonce=nonce
        )
    now = utcnow()
    flow = OAuthFlow(
        state_hash=_digest(state),
        browser_hash=_digest(browser_key),
        provider=provider.name,
        user_id=user.id if user else None,
        code_verifier=code_verifier,
        nonce=nonce,
        redirect_to=redirect_to,
        expires_at=now + timedelta(seconds=settings.oauth.flow_ttl_seconds),
    )
    await repository.add_flow(session, flow, now=now)
    return Started(authorization_url=url, browser_key=browser_key)


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """What the provider sends back through the browser (RFC 6749 4.1.2, RFC 9207)."""

    state: str | None
    code: str | None
    error: str | None
    issuer: str | None


async def finish(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    response: AuthorizationResponse,
    *,
    redirect_uri: str,
    browser_key: str | None,
    user_agent: str | None,
) -> Finished:
    """The callback: check the flow, ask the provider who signed in, then sign them in,
    sign them up, or link the identity. Each outcome is counted in `OAUTH_CALLBACKS`."""
    try:
        finished = await _finish(
            session,
            settings,
            provider,
            response,
            redirect_uri=redirect_uri,
            browser_key=browser_key,
            user_agent=user_agent,
        )
    except ProblemError as exc:
        OAUTH_CALLBACKS.labels(provider.name, exc.code).inc()
        raise
    OAUTH_CALLBACKS.labels(provider.name, finished.result).inc()
    return finished


async def _finish(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    response: AuthorizationResponse,
    *,
    redirect_uri: str,
    browser_key: str | None,
    user_agent: str | None,
) -> Finished:
    flow = await _take_flow(session, provider, state=response.state, browser_key=browser_key)
    async with provider_errors(provider.name, settings.oauth.http_timeout_seconds):
        await provider.check_response_issuer(response.issuer)
        if response.error is not None or not response.code:  # declined, or the provider failed
            raise AuthorizationFailed
        identity = await provider.identify(
            redirect_uri, code=response.code, code_verifier=flow.code_verifier, nonce=flow.nonce
        )
    if flow.user_id is not None:
        account = await _link(session, flow.user_id, provider.name, identity)
        return Finished("linked", redirect_to=flow.redirect_to, account=account)
    user, result = await _resolve_user(session, provider.name, identity)
    if flow.redirect_to is None:
        tokens = await auth_service.start_session(
            session, settings, user_id=user.id, user_agent=user_agent
        )
        return Finished(result, redirect_to=None, tokens=tokens)
    exchange_code = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    await repository.add_exchange_code(
        session,
        OAuthExchangeCode(
            code_hash=_digest(exchange_code),
            user_id=user.id,
            expires_at=now + EXCHANGE_CODE_LIFETIME,
        ),
        now=now,
    )
    return Finished(result, redirect_to=flow.redirect_to, exchange_code=exchange_code)


async def _take_flow(
    session: AsyncSession, provider: Provider, *, state: str | None, browser_key: str | None
) -> OAuthFlow:
    if not state or not browser_key:
        raise InvalidState
    flow = await repository.take_flow(
        session,
        state_hash=_digest(state),
        browser_hash=_digest(browser_key),
        provider=provider.name,
    )
    # Committed now, before the provider is called: the state is spent whatever follows.
    await session.commit()
    if flow is None or flow.expires_at <= utcnow():
        raise InvalidState
    return flow


async def _locked_active_user(session: AsyncSession, user_id: int) -> User:
    user = await users_repository.lock(session, user_id)
    if user is None or not user.is_active:
        raise AccountDisabled
    return user


async def _resolve_user(
    session: AsyncSession, provider: str, identity: ExternalIdentity
) -> tuple[User, str]:
    """The account this identity signs in to: the linked one; else an existing account with
    the same address, when both sides have verified it; else a new account (`signed_up`)."""
    now = utcnow()
    account = await repository.find_account(session, provider, identity.subject)
    if account is not None:
        user = await _locked_active_user(session, account.user_id)
        account.email, account.last_login_at = identity.email, now
        return user, "signed_in"
    if identity.email is None:
        raise EmailRequired
    existing = await users_repository.get_by_email(session, identity.email)
    if existing is not None:
        if not (identity.email_trusted and existing.email_verified):
            raise AccountConflict
        user, result = await _locked_active_user(session, existing.id), "signed_in"
    else:
        # Two sign-ups racing with one address: the unique constraint lets one through and
        # answers the other 409 `email_taken`.
        user = await users_service.create_user(session, email=identity.email, password_hash=None)
        user.email_verified, result = identity.email_trusted, "signed_up"
    await _add_link(session, user, provider, identity)
    return user, result


async def _link(
    session: AsyncSession, user_id: int, provider: str, identity: ExternalIdentity
) -> OAuthAccount:
    user = await _locked_active_user(session, user_id)
    account = await repository.find_account(session, provider, identity.subject)
    if account is not None:
        if account.user_id != user.id:
            raise IdentityTaken
        account.email, account.last_login_at = identity.email, utcnow()
        return account
    return await _add_link(session, user, provider, identity)


async def _add_link(
    session: AsyncSession, user: User, provider: str, identity: ExternalIdentity
) -> OAuthAccount:
    accounts = await repository.user_accounts(session, user.id)
    if any(account.provider == provider for account in accounts):
        raise ProviderAlreadyLinked
    return await repository.add_account(
        session,
        OAuthAccount(
            user_id=user.id,
            provider=provider,
            subject=identity.subject,
            email=identity.email,
            last_login_at=utcnow(),
        ),
    )


async def exchange(
    session: AsyncSession, settings: Settings, *, code: str, user_agent: str | None
) -> TokenPair:
    """Trade the one-time code the frontend received for the session it stands for."""
    taken = await repository.take_exchange_code(session, _digest(code))
    if taken is None or taken.expires_at <= utcnow():
        raise InvalidExchangeCode
    user = await users_repository.lock(session, taken.user_id)
    if user is None or not user.is_active:
        raise InvalidExchangeCode
    return await auth_service.start_session(
        session, settings, user_id=user.id, user_agent=user_agent
    )


async def accounts(session: AsyncSession, user: User) -> list[OAuthAccount]:
    return await repository.user_accounts(session, user.id)


async def unlink(session: AsyncSession, user: User, provider: str) -> None:
    """Remove a link, unless it is the last way left to sign in."""
    locked = await _locked_active_user(session, user.id)
    linked = await repository.user_accounts(session, locked.id)
    account = next((a for a in linked if a.provider == provider), None)
    if account is None:
        raise OAuthAccountNotFound
    if locked.password_hash is None and len(linked) == 1:
        raise LastSignInMethod
    await session.delete(account)
