"""Domain discovery: the one way routers, models and tasks of `app/domains/*` are found.

A domain is a package here. Its `router.py` (exporting `router`) is mounted under the API
prefix; its `models.py` and `tasks.py`, when present, are imported so their tables and outbox
handlers register. A domain that fails to import stops start-up instead of vanishing.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from fastapi import APIRouter

REGISTERED_MODULES = ("models", "tasks")


class DomainLoadError(RuntimeError):
    """A domain package is broken; the message names it."""


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    router: APIRouter | None


def load_models() -> None:
    """Import every module that defines tables, so `Base.metadata` is complete."""
    importlib.import_module("app.outbox")
    discover()


def discover(package: str = __name__) -> list[Domain]:
    """Import every domain package under `package`, in name order."""
    root = importlib.import_module(package)
    return [
        _load(package, info.name)
        for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name)
        if info.ispkg
    ]


def _load(package: str, name: str) -> Domain:
    qualified = f"{package}.{name}"
    for module in REGISTERED_MODULES:
        _import_if_present(f"{qualified}.{module}")
    router_module = _import_if_present(f"{qualified}.router")
    if router_module is None:
        return Domain(name, None)
    router = getattr(router_module, "router", None)
    if not isinstance(router, APIRouter):
        raise DomainLoadError(f"{qualified}.router must define `router = APIRouter(...)`")
    return Domain(name, router)


def _import_if_present(module: str) -> ModuleType | None:
    try:
        if importlib.util.find_spec(module) is None:
            return None
        return importlib.import_module(module)
    except Exception as exc:
        raise DomainLoadError(f"cannot import {module}: {exc!r}") from exc
