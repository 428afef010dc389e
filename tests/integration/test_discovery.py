"""Domains are found by discovery, mounted under /api/v1, and a broken one stops start-up."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app import main
from app.domains import DomainLoadError, discover
from app.settings import Settings

ROUTER = """
from fastapi import APIRouter
router = APIRouter(prefix="/widgets")

@router.get("")
async def list_widgets() -> list[str]:
    return ["sprocket"]
"""


class AddDomain(Protocol):
    def __call__(self, name: str, **modules: str) -> str: ...


@pytest.fixture
def add_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AddDomain]:
    """Builds a throwaway domains package; each call adds a domain and returns the package."""
    package = "fake_domains"
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "shared.py").write_text("")  # a plain module beside the domains is not a domain
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(name: str, **modules: str) -> str:
        domain = root / name
        domain.mkdir()
        (domain / "__init__.py").write_text("")
        for module, source in modules.items():
            (domain / f"{module}.py").write_text(textwrap.dedent(source))
        return package

    yield add
    for module in [m for m in sys.modules if m.split(".")[0] == package]:
        del sys.modules[module]


def test_discover_loads_routers_models_and_tasks_in_name_order(add_domain: AddDomain) -> None:
    add_domain("widgets", router=ROUTER, models="LOADED = True", tasks="LOADED = True")
    package = add_domain("accounts")

    domains = discover(package)

    assert [d.name for d in domains] == ["accounts", "widgets"]
    assert domains[0].router is None
    assert domains[1].router is not None
    assert sys.modules[f"{package}.widgets.models"].LOADED
    assert sys.modules[f"{package}.widgets.tasks"].LOADED


def test_a_domain_that_fails_to_import_stops_discovery(add_domain: AddDomain) -> None:
    package = add_domain("broken", router="raise ImportError('missing dependency xyz')")

    with pytest.raises(DomainLoadError, match=r"broken\.router.*missing dependency xyz"):
        discover(package)


def test_a_router_module_without_a_router_is_an_error(add_domain: AddDomain) -> None:
    package = add_domain("odd", router="router = 'not a router'")

    with pytest.raises(DomainLoadError, match=r"odd\.router must define"):
        discover(package)


async def test_discovered_routers_are_mounted_under_the_api_prefix(
    add_domain: AddDomain, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    add_domain("widgets", router=ROUTER)
    package = add_domain("ledger", models="")  # a domain with no routes of its own
    monkeypatch.setattr(main, "discover", lambda: discover(package))
    app = main.create_app(settings)

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/api/v1/widgets")

    assert response.status_code == 200
    assert response.json() == ["sprocket"]
