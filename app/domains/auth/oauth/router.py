"""The OAuth endpoints, under /auth/oauth: the providers, a flow's start and callback, the
exchange of the frontend's one-time code, and the caller's linked accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

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
    IssuerMismatch,
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
from app.settings import AppSettings, Settings

router = APIRouter(prefix="/auth/oauth", tags=["oauth"])
_oauth_class = [RateLimit("oauth")]

CALLBACK_ROUTE = "oauth_callback"

_authenticated = problem_responses(NotAuthenticated, InvalidToken)
_provider_failures = problem_responses(ProviderFailed, ProviderTimeout)
_callback_failures = problem_responses(
    InvalidState,
    IssuerMismatch,
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


async def _providers(request: Request, settings: AppSettings) -> dict[str, Provider]:
    # Built once per application: each provider's client caches its discovery document
    # and signing keys.
    providers = getattr(request.app.state, "oauth_providers", None)
    if providers is None:
        providers = request.app.state.oauth_providers = build_providers(settings.oauth)
    return cast(dict[str, Provider], providers)


Providers = Annotated[dict[str, Provider], Depends(_providers)]


async def _provider(provider: str, providers: Providers) -> Provider:
    found = providers.get(provider)
    if found is None:
        raise UnknownProvider
    return found


ChosenProvider = Annotated[Provider, Depends(_provider)]


async def _callback_url(request: Request, settings: AppSettings, provider: ChosenProvider) -> str:
    """The redirect URI registered with the provider; the same at the start and the end."""
    base = settings.oauth.redirect_base_url
    if base is None:
        return str(request.url_for(CALLBACK_ROUTE, provider=provider.name))
    path = request.app.url_path_for(CALLBACK_ROUTE, provider=provider.name)
    return f"{base.rstrip('/')}{path}"


CallbackUrl = Annotated[str, Depends(_callback_url)]


@dataclass(frozen=True, slots=True)
class BrowserCookie:
    """The cookie that binds a flow to the browser that started it.

    Over HTTPS it is `__Host-oauth_browser`: browsers accept a cookie of that name only from
    this very host, over HTTPS, for the whole site, so neither a sibling subdomain nor a
    plain-HTTP answer can plant one (RFC 6265bis 4.1.3.2); and it is `SameSite=None`, so it
    still comes with Apple's cross-site form_post. Over plain HTTP (local development) it is
    `oauth_browser`, `SameSite=Lax`, sent only to the OAuth endpoints.
    """

    name: str
    path: str
    secure: bool

    @classmethod
    def for_callback(cls, callback_url: str) -> BrowserCookie:
        if callback_url.startswith("https://"):
            return cls("__Host-oauth_browser", "/", secure=True)
        # /api/v1/auth/oauth/{provider}/callback -> /api/v1/auth/oauth
        path = "/" + callback_url.split("://", 1)[-1].partition("/")[2].rsplit("/", 2)[0]
        return cls("oauth_browser", path, secure=False)

    def set(self, response: Response, value: str, max_age: int) -> None:
        response.set_cookie(
            self.name,
            value,
            max_age=max_age,
            path=self.path,
            secure=self.secure,
            httponly=True,
            samesite="none" if self.secure else "lax",
        )

    def delete(self, response: Response) -> None:
        response.delete_cookie(
            self.name,
            path=self.path,
            secure=self.secure,
            httponly=True,
            samesite="none" if self.secure else "lax",
        )


@dataclass(frozen=True, slots=True)
class Flow:
    """What each endpoint of a flow needs: the provider, the redirect URI registered with it
    (the same at the start and the end), and the binding cookie that goes with that URI."""

    provider: Provider
    callback_url: str
    cookie: BrowserCookie


async def _flow(provider: ChosenProvider, callback_url: CallbackUrl) -> Flow:
    return Flow(provider, callback_url, BrowserCookie.for_callback(callback_url))


FlowContext = Annotated[Flow, Depends(_flow)]


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
    flow: FlowContext,
    session: DbSession,
    settings: AppSettings,
    redirect_to: RedirectTo = None,
) -> RedirectResponse:
    """Send the browser to the provider to sign in or sign up (PKCE, state and nonce)."""
    target = redirect_target(redirect_to, settings.oauth)
    started = await service.start(
        session, settings, flow.provider, redirect_uri=flow.callback_url, redirect_to=target
    )
    response = RedirectResponse(started.authorization_url, status_code=status.HTTP_302_FOUND)
    flow.cookie.set(response, started.browser_key, settings.oauth.flow_ttl_seconds)
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
    flow: FlowContext,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    redirect_to: RedirectTo = None,
) -> AuthorizationUrl:
    """Begin adding a provider identity to the caller's account. The binding cookie comes
    with this answer: a frontend on another origin calls with credentials, then sends the
    browser to `authorization_url`."""
    target = redirect_target(redirect_to, settings.oauth)
    started = await service.start(
        session,
        settings,
        flow.provider,
        redirect_uri=flow.callback_url,
        redirect_to=target,
        user=user,
    )
    flow.cookie.set(response, started.browser_key, settings.oauth.flow_ttl_seconds)
    return AuthorizationUrl(authorization_url=started.authorization_url)


async def _finish(
    flow: Flow,
    sent: service.AuthorizationResponse,
    request: Request,
    response: Response,
    session: AsyncSession,
    settings: Settings,
) -> TokenPair | OAuthAccountRead | RedirectResponse:
    finished = await service.finish(
        session,
        settings,
        flow.provider,
        sent,
        redirect_uri=flow.callback_url,
        browser_key=request.cookies.get(flow.cookie.name),
        user_agent=request.headers.get("user-agent"),
    )
    if finished.redirect_to is None:
        flow.cookie.delete(response)
        return finished.tokens or OAuthAccountRead.model_validate(finished.account)
    # Tokens never travel in a URL: a sign-in hands over a one-time code instead.
    if finished.exchange_code is not None:
        location = with_query(finished.redirect_to, code=finished.exchange_code)
    else:
        location = with_query(finished.redirect_to, linked=flow.provider.name)
    redirect = RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
    flow.cookie.delete(redirect)
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
    flow: FlowContext,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    state: Annotated[CallbackValue | None, Query()] = None,
    code: Annotated[CallbackValue | None, Query()] = None,
    error: Annotated[CallbackValue | None, Query()] = None,
    iss: Annotated[CallbackValue | None, Query()] = None,
) -> TokenPair | OAuthAccountRead | RedirectResponse:
    """Where the provider sends the browser back. Answers 303 to the frontend when one is
    configured, else the token pair (a sign-in) or the linked account (a link)."""
    sent = service.AuthorizationResponse(state=state, code=code, error=error, issuer=iss)
    return await _finish(flow, sent, request, response, session, settings)


@router.post(
    "/{provider}/callback",
    response_model=TokenPair | OAuthAccountRead,
    responses=_callback_responses,
    dependencies=_oauth_class,
)
async def oauth_form_post_callback(
    flow: FlowContext,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    state: Annotated[CallbackValue | None, Form()] = None,
    code: Annotated[CallbackValue | None, Form()] = None,
    error: Annotated[CallbackValue | None, Form()] = None,
    iss: Annotated[CallbackValue | None, Form()] = None,
) -> TokenPair | OAuthAccountRead | RedirectResponse:
    """The same, for a provider that posts the result (`response_mode=form_post`: Apple)."""
    sent = service.AuthorizationResponse(state=state, code=code, error=error, issuer=iss)
    return await _finish(flow, sent, request, response, session, settings)


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
