"""The Cluster UI at `/ui/`, and the API pages (`/docs`, `/redoc`) served without a CDN.

The UI is static files of the `caravan.ui` package (standard JavaScript modules, plain
CSS; no build step). Every path under `/ui/` that is not an asset answers the same page,
which routes in the browser: deep links and back/forward work, and the page calls the
same API with the same authentication as any other client. The routes here carry no
permission check: they hold no data, only code.

FastAPI's own `/docs` and `/redoc` load Swagger UI and ReDoc from a CDN, so they are blank
without internet; here their assets come from the installed `fastapi-offline` package.
"""

from __future__ import annotations

import pathlib
from importlib import resources

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from caravan.api.area import Area
from caravan.errors import no_such

STATIC = pathlib.Path(str(resources.files("caravan.ui") / "static"))
DOCS_STATIC = pathlib.Path(str(resources.files("fastapi_offline") / "static"))

# Explicit types: ES modules must be served as JavaScript, whatever the host's mime.types.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# The page runs only its own code and talks only to this server.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
UI_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate each load: an upgraded Caravan serves its own UI at once.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def asset_path(root: pathlib.Path, name: str) -> pathlib.Path | None:
    """The file `name` under `root`, or None: unknown type, missing, or outside `root`."""
    if not name or "\\" in name or "\0" in name:
        return None
    candidate = (root / name).resolve()
    base = root.resolve()
    if base not in candidate.parents or not candidate.is_file():
        return None
    if candidate.suffix not in TYPES:
        return None
    return candidate


def _file(root: pathlib.Path, name: str, headers: dict[str, str]) -> FileResponse:
    found = asset_path(root, name)
    if found is None:
        raise no_such("asset", name)
    return FileResponse(found, media_type=TYPES[found.suffix], headers=headers)


@router.get("/ui")
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/assets/{name:path}")
async def ui_asset(name: str) -> FileResponse:
    return _file(STATIC, name, UI_HEADERS)


@router.get("/ui/{page:path}")
async def ui_page(page: str) -> FileResponse:
    # Every page of the UI is the same document; its script reads the path.
    return _file(STATIC, "index.html", UI_HEADERS)


# ReDoc's bundle hard-codes one image from its CDN (the "API docs by Redocly" logo): the
# browser is told to load images from here only, so nothing leaves the machine.
# Nor may another site frame them (clickjacking the "Try it out" buttons).
API_PAGES_CSP = "img-src 'self' data: blob:; frame-ancestors 'none'"


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = API_PAGES_CSP
    return page


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _offline(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Caravan Cluster API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
        )
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _offline(
        get_redoc_html(
            openapi_url="/openapi.json",
            title="Caravan Cluster API",
            redoc_js_url="/docs/assets/redoc.standalone.js",
            redoc_favicon_url="/docs/assets/favicon.png",
            with_google_fonts=False,
        )
    )


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> Response:
    return _file(DOCS_STATIC, name, {"Cache-Control": "max-age=3600"})


area = Area("ui", router)
