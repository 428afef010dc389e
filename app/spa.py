"""The single-page frontend, served by the API from the files `make frontend` builds.

Only what no route answers reaches it: it is the router's default handler, so the API's own
404 and 405 answers are untouched. A file of the build is served as it is; a browser
navigating to any other path outside the API (a deep link such as `/posts/42`) gets
`index.html`, and the frontend's router shows the page.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import route_path

# Everything from the frontend's own origin, nothing inline, nothing from elsewhere, never
# framed: a bundled app needs no more (the build has no inline script or style, no eval).
SPA_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Vite names the files under assets/ by a hash of their content: a new build makes new names.
ASSETS = "assets"
IMMUTABLE = "public, max-age=31536000, immutable"
# index.html names the current assets, so a browser checks it again (ETag) before each use.
REVALIDATE = "no-cache"
INDEX = "index.html"
VARY_ACCEPT = {"Vary": "Accept"}


def install_frontend(app: FastAPI, directory: Path, *, api_root: str) -> None:
    """Serve the frontend built into `directory`; without its index.html, serve nothing.
    Nothing at `api_root` or under it is the frontend's, whatever the version in the path."""
    if (directory / INDEX).is_file():
        app.router.default = FrontendFiles(
            directory, not_found=app.router.default, api_root=api_root
        )


class FrontendFiles(StaticFiles):
    """The build's files, and index.html for a browser's navigation to any other page."""

    def __init__(self, directory: Path, *, not_found: ASGIApp, api_root: str) -> None:
        super().__init__(directory=directory)
        self.not_found = not_found
        self.api_root = api_root.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The frontend only reads, and the API's paths stay problem+json, whoever asks.
        path = route_path(scope)
        api = path == self.api_root or path.startswith(f"{self.api_root}/")
        if scope["method"] in {"GET", "HEAD"} and not api:
            await super().__call__(scope, receive, send)
        else:
            await self.not_found(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as error:
            # Only a browser navigating gets the page; a missing script, image or scrape
            # target stays a 404. Either answer depends on Accept, which caches must know.
            if error.status_code != 404 or not _navigation(scope):
                error.headers = {**(error.headers or {}), **VARY_ACCEPT}
                raise
            path = INDEX
            response = await super().get_response(path, scope)
            response.headers.update(VARY_ACCEPT)
        response.headers["Cache-Control"] = (
            IMMUTABLE if PurePath(path).parts[0] == ASSETS else REVALIDATE
        )
        response.headers["Content-Security-Policy"] = SPA_CSP
        return response


def _navigation(scope: Scope) -> bool:
    """Whether the request asks for a page (browsers send `Accept: text/html,...`)."""
    return "text/html" in Headers(scope=scope).get("accept", "")
