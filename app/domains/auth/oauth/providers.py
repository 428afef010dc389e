"""The providers this deployment offers: those whose settings are present."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.settings import OAuthSettings

# How a provider says who the user is: an OpenID Connect ID token, or its own profile API.
Protocol = Literal["oidc", "github", "facebook"]

_BUILT_IN: dict[str, tuple[str, Protocol]] = {
    "google": ("Google", "oidc"),
    "microsoft": ("Microsoft", "oidc"),
    "apple": ("Apple", "oidc"),
    "facebook": ("Facebook", "facebook"),
    "github": ("GitHub", "github"),
}


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    display_name: str
    protocol: Protocol


def configured_providers(settings: OAuthSettings) -> list[Provider]:
    """The built-in providers with a client id, then the generic OpenID Connect ones."""
    built_in = [
        Provider(name, display_name, protocol)
        for name, (display_name, protocol) in _BUILT_IN.items()
        if getattr(settings, f"{name}_client_id") is not None
    ]
    generic = [
        Provider(oidc.name, oidc.display_name or oidc.name.capitalize(), "oidc")
        for oidc in settings.oidc_providers
    ]
    return built_in + generic
