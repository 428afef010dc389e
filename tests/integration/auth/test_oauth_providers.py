"""`GET /api/v1/auth/oauth/providers`: the providers configured here, and only those."""

from __future__ import annotations

import httpx

from app.db import Database
from app.main import create_app
from tests.conftest import serve
from tests.support import make_settings


async def test_no_provider_is_listed_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/oauth/providers")

    assert response.status_code == 200
    assert response.json() == {"providers": []}
    assert response.headers["cache-control"] == "no-store"


async def test_configured_providers_are_listed_built_in_first(
    database_url: str, database: Database
) -> None:
    oauth = {
        "github_client_id": "gh-id",
        "github_client_secret": "gh-secret",
        "google_client_id": "g-id",
        "google_client_secret": "g-secret",
        "oidc_providers": [
            {
                "name": "keycloak",
                "display_name": "Company SSO",
                "issuer": "https://sso.example.com/realms/staff",
                "client_id": "kc-id",
                "client_secret": "kc-secret",
            },
            {
                "name": "okta",
                "issuer": "https://example.okta.com",
                "client_id": "okta-id",
                "client_secret": "okta-secret",
            },
        ],
    }
    app = create_app(make_settings(database_url, oauth=oauth), database=database)
    async with serve(app) as client:
        response = await client.get("/api/v1/auth/oauth/providers")

    assert response.json()["providers"] == [
        {"name": "google", "display_name": "Google"},
        {"name": "github", "display_name": "GitHub"},
        {"name": "keycloak", "display_name": "Company SSO"},
        {"name": "okta", "display_name": "Okta"},
    ]
    assert "secret" not in response.text
