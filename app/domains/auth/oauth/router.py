"""The OAuth endpoints, under /auth/oauth: the providers, a flow's start and callback, the
exchange of the frontend's one-time code, and the caller's linked accounts."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Cookie, Depends, Form, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import StringConstraints

from app.db import DbSession
from app.domains.auth.dependencies import CurrentUser
from app.domains.auth.errors import InvalidToken, NotAuthenticated
from app.domains.auth.oauth import service
from app.domains.auth.oauth.errors import (
    AccountConflict,
    AccountDisabled,
    AuthorizationFailed,
    CodeRejected,
    EmailRequired,
    IdentityTaken,
    InvalidExchangeCode,
    InvalidIdToken,
    InvalidState,
    LastSignInMethod,
    OAuthAccountNotFound,
    ProviderAlreadyLinked,
    ProviderFailed,
    ProviderTimeout,
    RedirectNotAllowed,
    TenantNotAllowed,
    UnknownProvider,
)
from app.domains.auth.oauth.providers import Provider, build_providers
from app.domains.auth.oauth.redirects import redirect_target, with_query
from app.domains.auth.oauth.schemas import (
    AuthorizationUrl,
    ExchangeRequest,
    OAuthAccountRead,
    ProviderList,
    ProviderRead,
)
from app.domains.auth.schemas import TokenPair
from app.domains.users.errors import EmailTaken
from app.errors import problem_responses
from app.rate_limit import RateLimit
from app.settings import AppSettings

router = APIRouter(prefix="/auth/oauth", tags=["oauth"])
_oauth_class = [RateLimit("oauth")]

# The cookie that binds a flow to the browser that started it.
BROWSER_COOKIE = "oauth_browser"
CALLBACK_ROUTE = "oauth_callback"

_authenticated = problem_responses(NotAuthenticated, InvalidToken)
_provider_failures = problem_responses(ProviderFailed, ProviderTimeout)
_callback_failures = problem_responses(
    InvalidState,
    AuthorizationFailed,
    CodeRejected,
    InvalidIdToken,
    ProviderFailed,
    ProviderTimeout,
    TenantNotAllowed,
    AccountConflict,
    AccountDisabled,
    EmailRequired,
    EmailTaken,
    IdentityTaken,
    ProviderAlreadyLinked,
)
RedirectTo = Annotated[
    str | None,
    Query(max_length=2048, description="Where the browser goes at the end: an allowed origin."),
]
CallbackValue = Annotated[str, StringConstraints(max_length=2048)]
UserAgent = Annotated[str | None, Header(include_in_schema=False)]
BrowserKey = Annotated[str | None, Cookie(alias=BROWSER_COOKIE, include_in_schema=False)]


def _providers(request: Request, settings: AppSettings) -> dict[str, Provider]:
    # Built once per application: each provider's client caches its discovery document
    # and signing keys.
    providers = getattr(request.app.state, "oauth_providers", None)
    if providers is None:
        providers = request.app.state.oauth_providers = build_providers(settings.oauth)
    return cast(dict[str, Provider], providers)


Providers = Annotated[dict[str, Provider], Depends(_providers)]


def _provider(provider: str, providers: Providers) -> Provider:
    found = providers.get(provider)
    if found is None:
        raise UnknownProvider
    return found


ChosenProvider = Annotated[Provider, Depends(_provider)]


def _callback_url(request: Request, settings: AppSettings, provider: ChosenProvider) -> str:
    """The redirect URI registered with the provider; the same at the start and the end."""
    base = settings.oauth.redirect_base_url
    if base is None:
        return str(request.url_for(CALLBACK_ROUTE, provider=provider.name))
    path = request.app.url_path_for(CALLBACK_ROUTE, provider=provider.name)
    return f"{base.rstrip('/')}{path}"


CallbackUrl = Annotated[str, Depends(_callback_url)]


def _bind_browser(response: Response, callback_url: str, browser_key: str, max_age: int) -> None:
    """Set the binding cookie, sent back only to the callback. Over HTTPS it is
    `SameSite=None; Secure`, so that it still comes with Apple's cross-site form_post."""
    secure = callback_url.startswith("https://")
    response.set_cookie(
        BROWSER_COOKIE,
        browser_key,
        max_age=max_age,
        path=_cookie_path(callback_url),
        secure=secure,
        httponly=True,
        samesite="none" if secure else "lax",
    )


def _cookie_path(callback_url: str) -> str:
    # /api/v1/auth/oauth/{provider}/callback -> /api/v1/auth/oauth
    path = callback_url.split("://", 1)[-1].partition("/")[2]
    return "/" + path.rsplit("/", 2)[0]


@router.get("/providers", response_model=ProviderList, dependencies=_oauth_class)
async def list_oauth_providers(providers: Providers) -> ProviderList:
    """The providers a user can sign in with here; none unless configured."""
    return ProviderList(
        providers=[
            ProviderRead(name=provider.name, display_name=provider.display_name)
            for provider in providers.values()
        ]
    )


@router.get(
    "/{provider}/start",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses=problem_responses(UnknownProvider, RedirectNotAllowed) | _provider_failures,
    dependencies=_oauth_class,
)
async def start_oauth_sign_in(
    provider: ChosenProvider,
    callback_url: CallbackUrl,
    session: DbSession,
    settings: AppSettings,
    redirect_to: RedirectTo = None,
) -> RedirectResponse:
    """Send the browser to the provider to sign in or sign up (PKCE, state and nonce)."""
    target = redirect_target(redirect_to, settings.oauth)
    started = await service.start(
        session, settings, provider, redirect_uri=callback_url, redirect_to=target
    )
    response = RedirectResponse(started.authorization_url, status_code=status.HTTP_302_FOUND)
    _bind_browser(response, callback_url, started.browser_key, settings.oauth.flow_ttl_seconds)
    return response


@router.post(
    "/{provider}/link/start",
    response_model=AuthorizationUrl,
    responses=_authenticated
    | problem_responses(UnknownProvider, RedirectNotAllowed)
    | _provider_failures,
    dependencies=_oauth_class,
)
async def start_oauth_link(
    provider: ChosenProvider,
    callback_url: CallbackUrl,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    redirect_to: RedirectTo = None,
) -> AuthorizationUrl:
    """Begin adding a provider identity to the caller's account. The frontend sends the
    browser to `authorization_url`, from the page that made this call."""
    target = redirect_target(redirect_to, settings.oauth)
    started = await service.start(
        session, settings, provider, redirect_uri=callback_url, redirect_to=target, user=user
    )
    _bind_browser(response, callback_url, started.browser_key, settings.oauth.flow_ttl_seconds)
    return AuthorizationUrl(authorization_url=started.authorization_url)


async def _finish(
    provider: Provider,
    callback_url: str,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    *,
    state: str | None,
    browser_key: str | None,
    code: str | None,
    error: str | None,
    user_agent: str | None,
) -> TokenPair | OAuthAccountRead | RedirectResponse:
    finished = await service.finish(
        session,
        settings,
        provider,
        redirect_uri=callback_url,
        state=state,
        browser_key=browser_key,
        code=code,
        error=error,
        user_agent=user_agent,
    )
    if finished.redirect_to is None:
        response.delete_cookie(BROWSER_COOKIE, path=_cookie_path(callback_url))
        return finished.tokens or OAuthAccountRead.model_validate(finished.account)
    # Tokens never travel in a URL: a sign-in hands over a one-time code instead.
    if finished.exchange_code is not None:
        location = with_query(finished.redirect_to, code=finished.exchange_code)
    else:
        location = with_query(finished.redirect_to, linked=provider.name)
    redirect = RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
    redirect.delete_cookie(BROWSER_COOKIE, path=_cookie_path(callback_url))
    return redirect


_callback_responses = (
    {303: {"description": "To the frontend, with `code` (a sign-in) or `linked` (a link)."}}
    | problem_responses(UnknownProvider)
    | _callback_failures
)


@router.get(
    "/{provider}/callback",
    name=CALLBACK_ROUTE,
    response_model=TokenPair | OAuthAccountRead,
    responses=_callback_responses,
    dependencies=_oauth_class,
)
async def oauth_callback(
    provider: ChosenProvider,
    callback_url: CallbackUrl,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    browser_key: BrowserKey = None,
    state: Annotated[CallbackValue | None, Query()] = None,
    code: Annotated[CallbackValue | None, Query()] = None,
    error: Annotated[CallbackValue | None, Query()] = None,
    user_agent: UserAgent = None,
) -> TokenPair | OAuthAccountRead | RedirectResponse:
    """Where the provider sends the browser back. Answers 303 to the frontend when one is
    configured, else the token pair (a sign-in) or the linked account (a link)."""
    return await _finish(
        provider,
        callback_url,
        session,
        settings,
        response,
        state=state,
        browser_key=browser_key,
        code=code,
        error=error,
        user_agent=user_agent,
    )


@router.post(
    "/{provider}/callback",
    response_model=TokenPair | OAuthAccountRead,
    responses=_callback_responses,
    dependencies=_oauth_class,
)
async def oauth_form_post_callback(
    provider: ChosenProvider,
    callback_url: CallbackUrl,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    browser_key: BrowserKey = None,
    state: Annotated[CallbackValue | None, Form()] = None,
    code: Annotated[CallbackValue | None, Form()] = None,
    error: Annotated[CallbackValue | None, Form()] = None,
    user_agent: UserAgent = None,
) -> TokenPair | OAuthAccountRead | RedirectResponse:
    """The same, for a provider that posts the result (`response_mode=form_post`: Apple)."""
    return await _finish(
        provider,
        callback_url,
        session,
        settings,
        response,
        state=state,
        browser_key=browser_key,
        code=code,
        error=error,
        user_agent=user_agent,
    )


@router.post(
    "/exchange",
    response_model=TokenPair,
    responses=problem_responses(InvalidExchangeCode),
    dependencies=_oauth_class,
)
async def exchange_oauth_code(
    body: ExchangeRequest, session: DbSession, settings: AppSettings, user_agent: UserAgent = None
) -> TokenPair:
    """Trade the one-time `code` the frontend received (valid 60 seconds) for tokens."""
    return await service.exchange(session, settings, code=body.code, user_agent=user_agent)


@router.get(
    "/accounts",
    response_model=list[OAuthAccountRead],
    responses=_authenticated,
    dependencies=[RateLimit("read")],
)
async def list_oauth_accounts(user: CurrentUser, session: DbSession) -> list[OAuthAccountRead]:
    """The provider identities linked to the caller's account."""
    return [
        OAuthAccountRead.model_validate(account)
        for account in await service.accounts(session, user)
    ]


@router.delete(
    "/accounts/{provider}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_authenticated | problem_responses(OAuthAccountNotFound, LastSignInMethod),
    dependencies=[RateLimit("write")],
)
async def unlink_oauth_account(provider: str, user: CurrentUser, session: DbSession) -> None:
    """Remove a linked identity; refused when it is the last way to sign in."""
    await service.unlink(session, user, provider)
