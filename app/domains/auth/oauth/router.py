"""The OAuth endpoints, under /auth/oauth."""

from __future__ import annotations

from fastapi import APIRouter

from app.domains.auth.oauth.providers import configured_providers
from app.domains.auth.oauth.schemas import ProviderList, ProviderRead
from app.rate_limit import RateLimit
from app.settings import AppSettings

router = APIRouter(prefix="/auth/oauth", tags=["oauth"])


@router.get("/providers", response_model=ProviderList, dependencies=[RateLimit("oauth")])
async def list_oauth_providers(settings: AppSettings) -> ProviderList:
    """The providers a user can sign in with here; none unless configured."""
    return ProviderList(
        providers=[
            ProviderRead(name=provider.name, display_name=provider.display_name)
            for provider in configured_providers(settings.oauth)
        ]
    )
