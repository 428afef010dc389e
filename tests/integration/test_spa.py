"""The built frontend served by the API: its files, index.html for navigations, the API's
own answers untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.db import Database
from app.main import create_app
from app.middleware import API_CSP
from app.settings import Settings
from app.spa import IMMUTABLE, REVALIDATE, SPA_CSP
from tests.conftest import serve
from tests.support import assert_problem

INDEX = "<!doctype html><title>Starter</title><script type=module src=/assets/app-1a2b.js></script>"
SCRIPT = "console.log('app')"
PAGE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A frontend build as Vite lays it out, beside a file that must stay unreachable."""
    (tmp_path / "secret.txt").write_text("not for the web")
    build = tmp_path / "build"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text(INDEX)
    (build / "assets" / "app-1a2b.js").write_text(SCRIPT)
    (build / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return build


@pytest.fixture
async def frontend(
    settings: Settings, database: Database, build: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"frontend_dir": build}), database=database)
    async with serve(app) as client:
        yield client


def _assert_page(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == REVALIDATE
    assert response.headers["content-security-policy"] == SPA_CSP
    assert response.headers["vary"] == "Accept"


@pytest.mark.parametrize("path", ["/", "/posts/42", "/auth/callback?code=x", "/account/"])
async def test_a_navigation_gets_the_frontends_page(frontend: httpx.AsyncClient, path: str) -> None:
    _assert_page(await frontend.get(path, headers=PAGE))


async def test_a_hashed_asset_is_cached_for_good(frontend: httpx.AsyncClient) -> None:
    response = await frontend.get("/assets/app-1a2b.js")

    assert response.status_code == 200
    assert response.text == SCRIPT
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-security-policy"] == SPA_CSP


async def test_other_files_of_the_build_are_checked_again_before_use(
    frontend: httpx.AsyncClient,
) -> None:
    response = await frontend.get("/favicon.svg")
    again = await frontend.get("/favicon.svg", headers={"if-none-match": response.headers["etag"]})

    assert response.status_code == 200
    assert response.headers["cache-control"] == REVALIDATE
    assert again.status_code == 304


async def test_head_answers_without_a_body(frontend: httpx.AsyncClient) -> None:
    response = await frontend.head("/posts/42", headers=PAGE)

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(INDEX)


@pytest.mark.parametrize(
    "path",
    [
        "/assets/gone-9f8e.js",  # a script of an older build
        "/metrics-typo",
        "/robots.txt",
    ],
)
async def test_what_is_not_a_navigation_and_not_a_file_is_a_404(
    frontend: httpx.AsyncClient, path: str
) -> None:
    response = await frontend.get(path, headers={"accept": "*/*"})

    assert_problem(response, 404, "not_found")
    assert response.headers["content-security-policy"] == API_CSP
    assert response.headers["vary"] == "Accept"  # a browser gets the page there


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v1", "/api/v1/nowhere", "/api/v2/posts"])
async def test_the_apis_paths_stay_problems_even_for_a_browser(
    frontend: httpx.AsyncClient, path: str
) -> None:
    response = await frontend.get(path, headers=PAGE)

    assert_problem(response, 404, "not_found")
    assert response.headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_the_frontend_only_reads(frontend: httpx.AsyncClient, method: str) -> None:
    response = await frontend.request(method, "/posts/42", headers=PAGE)

    assert_problem(response, 404, "not_found")


async def test_a_route_with_other_methods_still_answers_405(frontend: httpx.AsyncClient) -> None:
    response = await frontend.request("PUT", "/api/v1/posts", headers=PAGE)

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


async def test_the_api_keeps_its_own_policy(frontend: httpx.AsyncClient) -> None:
    response = await frontend.get("/health", headers=PAGE)

    assert response.json() == {"status": "ok"}
    assert response.headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize(
    "path", ["/assets/..%2F..%2Fsecret.txt", "/..%2Fsecret.txt", "/assets/%2E%2E/%2E%2E/secret.txt"]
)
async def test_nothing_outside_the_build_is_served(frontend: httpx.AsyncClient, path: str) -> None:
    plain = await frontend.get(path)
    page = await frontend.get(path, headers=PAGE)

    assert_problem(plain, 404, "not_found")
    _assert_page(page)


async def test_without_a_build_nothing_is_served(client: httpx.AsyncClient) -> None:
    # The default test settings point at a folder with no index.html.
    response = await client.get("/", headers=PAGE)

    assert_problem(response, 404, "not_found")
