"""A user's browser between the app and an identity provider, for the OAuth tests.

It does what a browser does during a sign-in and nothing more: follows the app's redirect to
the provider, follows the provider's redirect (or submits its auto-posting form) back to the
app, and keeps the app's cookies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from tests.identity_provider import APPLE_KEY_ID, APPLE_TEAM_ID, IdentityProvider

OAUTH = "/api/v1/auth/oauth"
CLIENT_SECRET = "client-secret"
BUILT_IN = ("google", "microsoft", "apple", "facebook", "github")
GENERIC = "company"


@dataclass(frozen=True)
class Callback:
    """What the provider sends the browser back to the app with."""

    method: str
    url: str
    fields: dict[str, str] = field(default_factory=dict)

    def with_values(self, **values: str | None) -> Callback:
        """The same callback with some values changed (None: left out)."""
        if self.method == "POST":
            fields = {**self.fields, **values}
            return replace(self, fields={k: v for k, v in fields.items() if v is not None})
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query)) | values
        kept = {k: v for k, v in query.items() if v is not None}
        return replace(self, url=urlunsplit(parts._replace(query=urlencode(kept))))

    @property
    def values(self) -> dict[str, str]:
        return self.fields if self.method == "POST" else dict(parse_qsl(urlsplit(self.url).query))


class Browser:
    def __init__(self, app: httpx.AsyncClient) -> None:
        self.app = app
        self.web = httpx.AsyncClient(timeout=10)

    async def close(self) -> None:
        await self.web.aclose()

    async def start(self, provider: str, **params: str) -> str:
        """Click "Sign in with ...": the provider's authorization URL."""
        response = await self.app.get(f"{OAUTH}/{provider}/start", params=params)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    async def start_link(self, provider: str, access_token: str, **params: str) -> str:
        response = await self.app.post(
            f"{OAUTH}/{provider}/link/start",
            params=params,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["authorization_url"])

    async def authorize(self, authorization_url: str) -> Callback:
        """Sign in at the provider, which sends the browser back."""
        response = await self.web.get(authorization_url)
        if response.status_code == 302:
            return Callback("GET", response.headers["location"])
        assert response.status_code == 200, response.text
        action = re.search(r'action="([^"]+)"', response.text)
        assert action is not None, response.text
        fields = re.findall(r'name="([^"]+)" value="([^"]*)"', response.text)
        return Callback("POST", unescape(action[1]), {k: unescape(v) for k, v in fields})

    async def back_to_app(self, callback: Callback) -> httpx.Response:
        if callback.method == "POST":
            return await self.app.post(callback.url, data=callback.fields)
        return await self.app.get(callback.url)

    async def sign_in(self, provider: str, **params: str) -> httpx.Response:
        return await self.back_to_app(await self.authorize(await self.start(provider, **params)))


def oauth_settings(provider: IdentityProvider, **overrides: Any) -> dict[str, Any]:
    """`OAUTH_*` settings with every provider pointed at the loopback provider."""
    base = provider.base_url
    return {
        "google_client_id": "google-client",
        "google_client_secret": CLIENT_SECRET,
        "google_issuer": f"{base}/google",
        "microsoft_client_id": "microsoft-client",
        "microsoft_client_secret": CLIENT_SECRET,
        "microsoft_authority": f"{base}/ms",
        "apple_client_id": "apple-client",
        "apple_team_id": APPLE_TEAM_ID,
        "apple_key_id": APPLE_KEY_ID,
        "apple_private_key": provider.apple_private_key_pem(),
        "apple_issuer": f"{base}/apple",
        "facebook_client_id": "facebook-client",
        "facebook_client_secret": CLIENT_SECRET,
        "facebook_url": f"{base}/facebook",
        "facebook_graph_url": f"{base}/graph",
        "github_client_id": "github-client",
        "github_client_secret": CLIENT_SECRET,
        "github_url": f"{base}/github",
        "github_api_url": f"{base}/github-api",
        "oidc_providers": [
            {
                "name": GENERIC,
                "display_name": "Company SSO",
                "issuer": f"{base}/oidc",
                "client_id": f"{GENERIC}-client",
                "client_secret": CLIENT_SECRET,
                "trust_email": True,
            }
        ],
        "http_timeout_seconds": 2,
        **overrides,
    }


def register_clients(provider: IdentityProvider, app_origin: str) -> None:
    """Register the app at the provider under each name, with its callback URL."""
    for name in (*BUILT_IN, GENERIC):
        provider.register(f"{name}-client", CLIENT_SECRET, f"{app_origin}{OAUTH}/{name}/callback")
