"""The providers this deployment offers, and how each one says who the user is.

Authlib does the protocol: discovery, PKCE, the token request, and the ID token's signature
(against the JWKS, fetched again once for an unknown `kid`) and claims. What is written here
is each provider's own way: Google's two issuer spellings, Microsoft's per-tenant issuer,
Apple's form_post and minted client secret, GitHub's and Facebook's profile APIs, and whose
word on an email address may join an existing account (ARCHITECTURE.md, "OAuth providers
and accounts").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import httpx2
import jwt
from authlib.integrations.starlette_client import (
    OAuthError,
    StarletteIntegration,
    StarletteOAuth2App,
)
from authlib.oauth2.auth import encode_client_secret_post
from joserfc.errors import JoseError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from app.db import utcnow
from app.domains.auth.oauth.errors import (
    CodeRejected,
    InvalidIdToken,
    IssuerMismatch,
    ProviderFailed,
    ProviderTimeout,
    TenantNotAllowed,
)
from app.domains.users.schemas import Email
from app.observability.logs import get_logger
from app.settings import OAuthSettings

# Clock skew allowed on an ID token's `exp`, `iat` and `nbf`.
ID_TOKEN_LEEWAY_SECONDS = 60
# Apple accepts a client secret valid for up to six months; ours serves one token request.
APPLE_CLIENT_SECRET_LIFETIME = timedelta(minutes=5)
OIDC_SCOPES = ("openid", "email", "profile")
# How token endpoints say the code is bad: RFC 6749's word, and GitHub's own.
_CODE_REJECTED = frozenset({"invalid_grant", "bad_verification_code"})
# What is read from a discovery document (with the keys Authlib adds to it). Authlib hands the
# whole document to its HTTP client as settings: anything else in it (`code_challenge_method`,
# `response_mode`, `verify`, `proxy`...) would change how the app talks to the provider.
_DISCOVERY_KEYS = frozenset(
    {
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "id_token_signing_alg_values_supported",
        "authorization_response_iss_parameter_supported",
        "jwks",
        "_loaded_at",
    }
)
# ID tokens are verified with the provider's published keys: public-key algorithms only,
# never `none` or an HMAC (RFC 8725 3.1).
_ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_GITHUB_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

logger = get_logger(__name__)
_Model = TypeVar("_Model")


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """Who the provider says signed in. `(provider, subject)` names them, never the email."""

    subject: str
    email: str | None
    # The provider vouches that the address is this user's, by checks of its own: only then
    # may the identity join an existing account with that address.
    email_trusted: bool


class _Token(BaseModel):
    access_token: str


class _IdClaims(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    sub: str = Field(min_length=1, max_length=255)
    email: str | None = None
    # A boolean in the standard; Apple sends the strings "true" and "false".
    email_verified: bool = False


class _MicrosoftClaims(_IdClaims):
    tid: str
    # "Email domain owner verified", an optional claim: the only sign that the address in a
    # Microsoft token is proven.
    xms_edov: bool = False


class _GitHubUser(BaseModel):
    id: int


class _GitHubEmail(BaseModel):
    email: str
    primary: bool
    verified: bool


class _FacebookProfile(BaseModel):
    id: str = Field(min_length=1, max_length=255)
    email: str | None = None


_TOKEN = TypeAdapter(_Token)
_ID_CLAIMS = TypeAdapter(_IdClaims)
_MICROSOFT_CLAIMS = TypeAdapter(_MicrosoftClaims)
_GITHUB_USER = TypeAdapter(_GitHubUser)
_GITHUB_EMAILS = TypeAdapter(list[_GitHubEmail])
_FACEBOOK_PROFILE = TypeAdapter(_FacebookProfile)
_EMAIL = TypeAdapter(Email)


def _parse(adapter: TypeAdapter[_Model], data: Any) -> _Model:
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ProviderFailed("The provider's answer is not what its API documents.") from exc


def _address(raw: str | None) -> str | None:
    """The provider's address in its stored form; None when it is no usable address."""
    try:
        return None if raw is None else _EMAIL.validate_python(raw)
    except ValidationError:
        return None


@asynccontextmanager
async def provider_errors(provider: str, deadline_seconds: float) -> AsyncIterator[None]:
    """Bound the calls to a provider made inside, all together, by `deadline_seconds` (the
    client's own timeout bounds each read, and a provider could answer a byte at a time),
    and turn whatever they raise into the problem it means for the browser."""
    try:
        async with asyncio.timeout(deadline_seconds):
            yield
    except (TimeoutError, httpx2.TimeoutException) as exc:
        logger.warning("oauth provider timed out", provider=provider, error=type(exc).__name__)
        raise ProviderTimeout from exc
    except OAuthError as exc:
        logger.warning("oauth provider refused", provider=provider, error=repr(exc.error))
        rejected = isinstance(exc.error, str) and exc.error in _CODE_REJECTED
        raise (CodeRejected if rejected else ProviderFailed)() from exc
    except JoseError as exc:
        logger.warning("oauth id token rejected", provider=provider, error=repr(exc))
        raise InvalidIdToken from exc
    except (
        httpx2.HTTPError,
        httpx2.InvalidURL,
        ValueError,
        LookupError,
        TypeError,
        RuntimeError,
    ) as exc:
        # Transport errors, error statuses, bodies that are not JSON or not the JSON the
        # protocol says (Authlib and joserfc index into them as they come), bad endpoint
        # URLs, and Authlib's complaint about a document without an endpoint it needs.
        logger.warning("oauth provider failed", provider=provider, error=repr(exc))
        raise ProviderFailed from exc


class Provider(ABC):
    """One configured provider: its Authlib client and how a finished flow names the user."""

    # Extra authorization request parameters (Apple's `response_mode`).
    authorize_params: ClassVar[Mapping[str, str]] = {}

    def __init__(self, name: str, display_name: str, client: StarletteOAuth2App) -> None:
        self.name = name
        self.display_name = display_name
        self.client = client

    async def authorization_url(
        self, redirect_uri: str, *, state: str, code_verifier: str, nonce: str
    ) -> str:
        """Where to send the browser; PKCE's S256 challenge is derived from the verifier."""
        await self._metadata()
        result = await self.client.create_authorization_url(
            redirect_uri, state=state, code_verifier=code_verifier, **self._extra_params(nonce)
        )
        return str(result["url"])

    async def identify(
        self, redirect_uri: str, *, code: str, code_verifier: str, nonce: str
    ) -> ExternalIdentity:
        """Exchange the code with its PKCE verifier, and read who signed in."""
        await self._metadata()
        token = await self.client.fetch_access_token(
            redirect_uri=redirect_uri, code=code, code_verifier=code_verifier
        )
        _parse(_TOKEN, token)
        return await self._identity(token, nonce)

    async def check_response_issuer(self, issuer: str | None) -> None:
        """RFC 9207's `iss` in the authorization response: only OpenID Connect providers
        have an issuer to compare it with."""
        return

    def _extra_params(self, nonce: str) -> dict[str, str]:
        return dict(self.authorize_params)

    async def _metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once), cut to what is read from it."""
        metadata: dict[str, Any] = await self.client.load_server_metadata()
        for key in metadata.keys() - _DISCOVERY_KEYS:
            del metadata[key]
        algorithms = metadata.get("id_token_signing_alg_values_supported")
        if algorithms is not None:
            allowed = [alg for alg in algorithms if alg in _ID_TOKEN_ALGORITHMS]
            if not allowed:
                raise ProviderFailed("The provider signs ID tokens with no public-key algorithm.")
            metadata["id_token_signing_alg_values_supported"] = allowed
        return metadata

    @abstractmethod
    async def _identity(self, token: dict[str, Any], nonce: str) -> ExternalIdentity:
        """Who signed in, from the token response (and the provider's APIs)."""

    async def _get_json(self, url: str, token: dict[str, Any], **kwargs: Any) -> Any:
        response = await self.client.get(url, token=token, **kwargs)
        response.raise_for_status()
        return response.json()


class OidcProvider(Provider):
    """An OpenID Connect provider: the user is the validated ID token's `sub`."""

    def __init__(
        self,
        name: str,
        display_name: str,
        client: StarletteOAuth2App,
        *,
        issuer: str,
        trust_email: bool,
    ) -> None:
        super().__init__(name, display_name, client)
        self.issuer = issuer
        self.trust_email = trust_email

    async def authorization_url(
        self, redirect_uri: str, *, state: str, code_verifier: str, nonce: str
    ) -> str:
        # A discovery document for another issuer is refused before anyone signs in.
        self._issuer_rule(await self._metadata())
        return await super().authorization_url(
            redirect_uri, state=state, code_verifier=code_verifier, nonce=nonce
        )

    async def check_response_issuer(self, issuer: str | None) -> None:
        """A response naming another issuer is a mix-up (RFC 9700 4.4, RFC 9207): a code
        from one provider brought to another's callback. A provider that declares it always
        names itself must."""
        if issuer is None:
            if (await self._metadata()).get("authorization_response_iss_parameter_supported"):
                raise IssuerMismatch
        elif issuer != self.issuer:
            raise IssuerMismatch

    def _extra_params(self, nonce: str) -> dict[str, str]:
        return super()._extra_params(nonce) | {"nonce": nonce}

    async def _identity(self, token: dict[str, Any], nonce: str) -> ExternalIdentity:
        claims = await self._claims(token, nonce)
        if "email" not in claims:
            claims = {**claims, **await self._userinfo_email(token, claims["sub"])}
        parsed = _parse(_ID_CLAIMS, claims)
        return ExternalIdentity(
            subject=parsed.sub,
            email=_address(parsed.email),
            email_trusted=self.trust_email and parsed.email_verified,
        )

    async def _userinfo_email(self, token: dict[str, Any], subject: str) -> dict[str, Any]:
        """The email claims from the UserInfo endpoint: a provider that issues an access
        token may keep them out of the ID token (OIDC Core 5.4)."""
        endpoint = (await self._metadata()).get("userinfo_endpoint")
        if not endpoint:
            return {}
        info = await self._get_json(endpoint, token)
        if not isinstance(info, dict) or info.get("sub") != subject:  # OIDC Core 5.3.2
            raise ProviderFailed("The provider's UserInfo answer is not about this user.")
        return {name: info[name] for name in ("email", "email_verified") if name in info}

    async def _claims(self, token: dict[str, Any], nonce: str) -> Mapping[str, Any]:
        """The ID token's claims once its signature, `iss`, `aud`, `exp` and `nonce` hold."""
        if "id_token" not in token:
            raise ProviderFailed("The provider sent no ID token.")
        metadata = await self._metadata()
        options = {
            "iss": {"essential": True, **self._issuer_rule(metadata)},
            "aud": {"essential": True, "values": [self.client.client_id]},
        }
        claims: Mapping[str, Any] = await self.client.parse_id_token(
            token, nonce, claims_options=options, leeway=ID_TOKEN_LEEWAY_SECONDS
        )
        return claims

    def _issuer_rule(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        # OIDC Discovery 4.3: the document must name the issuer it was fetched for.
        if metadata.get("issuer") != self.issuer:
            raise ProviderFailed("The provider's discovery document names another issuer.")
        return {"values": [self.issuer]}


class GoogleProvider(OidcProvider):
    def _issuer_rule(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        # Google's ID tokens name their issuer with or without the scheme.
        rule = super()._issuer_rule(metadata)
        return {"values": [*rule["values"], self.issuer.split("://", 1)[-1]]}


class MicrosoftProvider(OidcProvider):
    """Microsoft Entra ID. For `common`, `organizations` and `consumers`, the discovery
    document's issuer is a template, `.../{tenantid}/v2.0`: each token must match it with
    its own `tid` filled in (Microsoft identity platform, "Validate the issuer")."""

    def __init__(
        self,
        name: str,
        display_name: str,
        client: StarletteOAuth2App,
        *,
        issuer: str,
        allowed_tenants: list[str],
    ) -> None:
        super().__init__(name, display_name, client, issuer=issuer, trust_email=False)
        self.allowed_tenants = {tenant.lower() for tenant in allowed_tenants}

    async def check_response_issuer(self, issuer: str | None) -> None:
        # Entra ID does not name itself in authorization responses, and its issuer is a
        # per-tenant template: the ID token's check covers it.
        return

    def _issuer_rule(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        template = str(metadata.get("issuer", ""))

        def matches_own_tenant(claims: Mapping[str, Any], issuer: object) -> bool:
            return issuer == template.replace("{tenantid}", str(claims.get("tid")))

        return {"validate": matches_own_tenant}

    async def _identity(self, token: dict[str, Any], nonce: str) -> ExternalIdentity:
        claims = _parse(_MICROSOFT_CLAIMS, await self._claims(token, nonce))
        if self.allowed_tenants and claims.tid.lower() not in self.allowed_tenants:
            raise TenantNotAllowed
        return ExternalIdentity(
            subject=claims.sub, email=_address(claims.email), email_trusted=claims.xms_edov
        )


class AppleProvider(OidcProvider):
    # Apple posts the result back (a form_post) whenever email or name is asked for.
    authorize_params: ClassVar[Mapping[str, str]] = {"response_mode": "form_post"}


class GitHubProvider(Provider):
    """GitHub's OAuth apps: no ID token; the user is `/user`, the address the primary one of
    `/user/emails`, trusted only when GitHub has verified it."""

    def __init__(
        self, name: str, display_name: str, client: StarletteOAuth2App, *, api_url: str
    ) -> None:
        super().__init__(name, display_name, client)
        self.api_url = api_url

    async def _identity(self, token: dict[str, Any], nonce: str) -> ExternalIdentity:
        user_data = await self._get_json(f"{self.api_url}/user", token, headers=_GITHUB_HEADERS)
        user = _parse(_GITHUB_USER, user_data)
        emails_data = await self._get_json(
            f"{self.api_url}/user/emails", token, headers=_GITHUB_HEADERS
        )
        primary = next((e for e in _parse(_GITHUB_EMAILS, emails_data) if e.primary), None)
        return ExternalIdentity(
            subject=str(user.id),
            email=_address(primary.email) if primary else None,
            email_trusted=primary is not None and primary.verified,
        )


class FacebookProvider(Provider):
    """Facebook Login: no ID token on the web; the user is the Graph API's `/me`. Facebook
    does not say whether an address is verified, so it never joins an existing account."""

    def __init__(
        self,
        name: str,
        display_name: str,
        client: StarletteOAuth2App,
        *,
        graph_url: str,
        app_secret: str,
    ) -> None:
        super().__init__(name, display_name, client)
        self.graph_url = graph_url
        self.app_secret = app_secret.encode()

    async def _identity(self, token: dict[str, Any], nonce: str) -> ExternalIdentity:
        # appsecret_proof: Graph calls made with a stolen token fail without the app secret.
        proof = hmac.new(self.app_secret, token["access_token"].encode(), hashlib.sha256)
        params = {"fields": "id,email", "appsecret_proof": proof.hexdigest()}
        data = await self._get_json(f"{self.graph_url}/me", token, params=params)
        profile = _parse(_FACEBOOK_PROFILE, data)
        return ExternalIdentity(
            subject=profile.id, email=_address(profile.email), email_trusted=False
        )


ClientAuthMethod = tuple[str, Callable[..., tuple[Any, Any, Any]]]


def _client(
    name: str,
    settings: OAuthSettings,
    *,
    client_id: str,
    client_secret: str | None,
    scopes: tuple[str, ...] | list[str],
    metadata_url: str | None = None,
    authorize_url: str | None = None,
    token_url: str | None = None,
    auth_method: str = "client_secret_basic",
    auth_methods: list[ClientAuthMethod] | None = None,
) -> StarletteOAuth2App:
    """Authlib's client for one provider. It caches the discovery document and the JWKS."""
    return StarletteOAuth2App(
        StarletteIntegration(name),
        name=name,
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=metadata_url,
        authorize_url=authorize_url,
        access_token_url=token_url,
        client_auth_methods=auth_methods,
        client_kwargs={
            "scope": " ".join(scopes),
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": auth_method,
            "timeout": settings.http_timeout_seconds,
        },
    )


def _apple_client_auth(settings: OAuthSettings) -> ClientAuthMethod:
    """Apple's client authentication: client_secret_post, with an ES256 JWT as the secret,
    signed by the team's key ("Creating a client secret", Sign in with Apple REST API)."""
    private_key = _secret(settings.apple_private_key)

    def sign(auth: Any, method: str, uri: str, headers: Any, body: str) -> tuple[Any, Any, Any]:
        now = utcnow()
        claims = {
            "iss": settings.apple_team_id,
            "sub": settings.apple_client_id,
            "aud": settings.apple_issuer,
            "iat": now,
            "exp": now + APPLE_CLIENT_SECRET_LIFETIME,
        }
        auth.client_secret = jwt.encode(
            claims, private_key, algorithm="ES256", headers={"kid": settings.apple_key_id}
        )
        signed: tuple[Any, Any, Any] = encode_client_secret_post(auth, method, uri, headers, body)
        return signed

    return ("apple_client_secret_jwt", sign)


def _secret(value: SecretStr | None) -> str:
    """A secret the settings require whenever its provider is configured."""
    return value.get_secret_value() if value else ""


def build_providers(settings: OAuthSettings) -> dict[str, Provider]:
    """Every configured provider by name: the built-in ones, then the generic ones."""
    providers: list[Provider] = []
    if settings.google_client_id:
        issuer = settings.google_issuer
        providers.append(
            GoogleProvider(
                "google",
                "Google",
                _client(
                    "google",
                    settings,
                    client_id=settings.google_client_id,
                    client_secret=_secret(settings.google_client_secret),
                    scopes=OIDC_SCOPES,
                    metadata_url=f"{issuer}/.well-known/openid-configuration",
                ),
                issuer=issuer,
                trust_email=True,
            )
        )
    if settings.microsoft_client_id:
        base = f"{settings.microsoft_authority}/{settings.microsoft_tenant}/v2.0"
        providers.append(
            MicrosoftProvider(
                "microsoft",
                "Microsoft",
                _client(
                    "microsoft",
                    settings,
                    client_id=settings.microsoft_client_id,
                    client_secret=_secret(settings.microsoft_client_secret),
                    scopes=OIDC_SCOPES,
                    metadata_url=f"{base}/.well-known/openid-configuration",
                ),
                issuer=base,
                allowed_tenants=settings.microsoft_allowed_tenants,
            )
        )
    if settings.apple_client_id:
        issuer = settings.apple_issuer
        providers.append(
            AppleProvider(
                "apple",
                "Apple",
                _client(
                    "apple",
                    settings,
                    client_id=settings.apple_client_id,
                    client_secret=None,
                    scopes=("openid", "email"),
                    metadata_url=f"{issuer}/.well-known/openid-configuration",
                    auth_method="apple_client_secret_jwt",
                    auth_methods=[_apple_client_auth(settings)],
                ),
                issuer=issuer,
                trust_email=True,
            )
        )
    if settings.facebook_client_id:
        secret = _secret(settings.facebook_client_secret)
        providers.append(
            FacebookProvider(
                "facebook",
                "Facebook",
                _client(
                    "facebook",
                    settings,
                    client_id=settings.facebook_client_id,
                    client_secret=secret,
                    scopes=("email", "public_profile"),
                    authorize_url=f"{settings.facebook_url}/dialog/oauth",
                    token_url=f"{settings.facebook_graph_url}/oauth/access_token",
                    auth_method="client_secret_post",
                ),
                graph_url=settings.facebook_graph_url,
                app_secret=secret,
            )
        )
    if settings.github_client_id:
        providers.append(
            GitHubProvider(
                "github",
                "GitHub",
                _client(
                    "github",
                    settings,
                    client_id=settings.github_client_id,
                    client_secret=_secret(settings.github_client_secret),
                    scopes=("read:user", "user:email"),
                    authorize_url=f"{settings.github_url}/login/oauth/authorize",
                    token_url=f"{settings.github_url}/login/oauth/access_token",
                    auth_method="client_secret_post",
                ),
                api_url=settings.github_api_url,
            )
        )
    for oidc in settings.oidc_providers:
        providers.append(
            OidcProvider(
                oidc.name,
                oidc.display_name or oidc.name.capitalize(),
                _client(
                    oidc.name,
                    settings,
                    client_id=oidc.client_id,
                    client_secret=oidc.client_secret.get_secret_value(),
                    scopes=oidc.scopes,
                    metadata_url=f"{oidc.issuer.rstrip('/')}/.well-known/openid-configuration",
                    auth_method=oidc.token_endpoint_auth_method,
                ),
                issuer=oidc.issuer,
                trust_email=oidc.trust_email,
            )
        )
    return {provider.name: provider for provider in providers}
