"""Every API route declares a rate-limit class; nothing under /api/v1 is unmetered."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.routing import APIRoute, iter_route_contexts

from app.domains import discover
from app.main import API_PREFIX
from app.rate_limit import PolicyCheck

# The class each route was given, reviewed: changing one changes what an attacker gets.
EXPECTED = {
    ("POST", "/users"): ["register"],
    ("GET", "/users/me"): ["read"],
    ("PATCH", "/users/me"): ["login"],  # it checks a password
    ("DELETE", "/users/me"): ["write"],
    ("POST", "/login"): ["login", "login_account"],
    ("POST", "/auth/refresh"): ["refresh"],
    ("GET", "/auth/oauth/providers"): ["oauth"],
    ("GET", "/auth/oauth/{provider}/start"): ["oauth"],
    ("POST", "/auth/oauth/{provider}/link/start"): ["oauth"],
    ("GET", "/auth/oauth/{provider}/callback"): ["oauth"],
    ("POST", "/auth/oauth/{provider}/callback"): ["oauth"],
    ("POST", "/auth/oauth/exchange"): ["oauth"],
    ("GET", "/auth/oauth/accounts"): ["read"],
    ("DELETE", "/auth/oauth/accounts/{provider}"): ["write"],
    ("POST", "/auth/logout"): ["refresh"],
    ("POST", "/auth/logout-all"): ["write"],
    ("GET", "/auth/sessions"): ["read"],
    ("DELETE", "/auth/sessions/{session_id}"): ["write"],
    ("GET", "/posts"): ["read"],
    ("POST", "/posts"): ["write"],
    ("GET", "/posts/{post_id}"): ["read"],
    ("PATCH", "/posts/{post_id}"): ["write"],
    ("DELETE", "/posts/{post_id}"): ["write"],
    ("PUT", "/posts/{post_id}/vote"): ["write"],
    ("DELETE", "/posts/{post_id}/vote"): ["write"],
}


def _routes() -> Iterator[tuple[str, str, APIRoute]]:
    for domain in discover():
        # Flattened: a domain router may include routers of its own (auth includes OAuth).
        for context in iter_route_contexts(domain.router.routes if domain.router else []):
            route = context.original_route
            assert isinstance(route, APIRoute)
            assert context.path is not None
            for method in route.methods or ():
                yield method, context.path, route


def test_every_api_route_has_its_rate_limit_class() -> None:
    classes = {
        (method, path): [
            d.dependency.policy for d in route.dependencies if isinstance(d.dependency, PolicyCheck)
        ]
        for method, path, route in _routes()
    }

    assert classes == EXPECTED
    assert API_PREFIX == "/api/v1"
