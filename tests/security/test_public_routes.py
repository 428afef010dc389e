"""Every route needs a signed-in caller unless it is on the public allowlist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app import health
from app.domains import discover
from app.domains.auth.dependencies import CurrentIdentity
from app.main import API_PREFIX

# Reviewed on purpose: adding a route here makes it reachable without signing in.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", f"{API_PREFIX}/users"),
    ("POST", f"{API_PREFIX}/login"),
    ("POST", f"{API_PREFIX}/auth/refresh"),
    ("GET", f"{API_PREFIX}/auth/oauth/providers"),
    # A sign-in with a provider: the browser is not signed in yet.
    ("GET", f"{API_PREFIX}/auth/oauth/{{provider}}/start"),
    ("GET", f"{API_PREFIX}/auth/oauth/{{provider}}/callback"),
    ("POST", f"{API_PREFIX}/auth/oauth/{{provider}}/callback"),
    ("POST", f"{API_PREFIX}/auth/oauth/exchange"),
    ("POST", f"{API_PREFIX}/auth/logout"),
    ("GET", f"{API_PREFIX}/posts"),
    ("GET", f"{API_PREFIX}/posts/{{post_id}}"),
}

_REQUIRES_SIGN_IN = get_args(CurrentIdentity)[1].dependency


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _routes() -> Iterator[tuple[str, str, APIRoute]]:
    routers = [(API_PREFIX, d.router) for d in discover() if d.router is not None]
    for prefix, router in [("", health.router), ("", health.metrics_router), *routers]:
        # Flattened: a domain router may include routers of its own (auth includes OAuth).
        for context in iter_route_contexts(router.routes):
            route = context.original_route
            assert isinstance(route, APIRoute)
            assert context.path is not None
            for method in route.methods or ():
                yield method, prefix + context.path, route


def test_only_allowlisted_routes_are_public() -> None:
    public = {
        (method, path)
        for method, path, route in _routes()
        if _REQUIRES_SIGN_IN not in set(_calls(route.dependant))
    }

    assert public == PUBLIC


def test_the_walk_sees_protected_routes_too() -> None:
    protected = {
        (method, path)
        for method, path, route in _routes()
        if _REQUIRES_SIGN_IN in set(_calls(route.dependant))
    }

    assert ("GET", f"{API_PREFIX}/users/me") in protected
    assert ("DELETE", f"{API_PREFIX}/auth/sessions/{{session_id}}") in protected
