"""The API's browsable docs, ``/docs`` (Swagger UI) and ``/redoc``, with no CDN.

FastAPI's own pages load Swagger UI and ReDoc from cdn.jsdelivr.net (and a favicon from
fastapi.tiangolo.com), which a studio network may not reach: the page stays blank.
:func:`mount_docs` replaces them with the same pages pointing at copies served by the desk
itself, under :data:`ASSETS` (``/docs/assets/``). The copies come from ``fastapi-offline``
(its package data: swagger-ui-dist's ``swagger-ui-bundle.js`` and ``swagger-ui.css``, ReDoc's
``redoc.standalone.js``, FastAPI's favicon), a maintained package that tracks both releases,
so the desk vendors no 2.8 MB of JavaScript itself. Swagger UI's online validator is turned off
(it would send the OpenAPI document to validator.swagger.io) and ReDoc's Google Fonts link is
left out. The OpenAPI document stays at ``app.openapi_url`` (``/openapi.json``).

Each page also carries a Content-Security-Policy that lets it load from the desk only (its own
inline scripts allowed by hash): ReDoc's bundle still draws Redocly's logo from
cdn.redoc.ly, and with the policy the browser does not even try; a later bundle that reached
out anywhere else would be stopped the same way.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route

__all__ = ["ASSETS", "DOCS_URL", "REDOC_URL", "mount_docs"]

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS = "/docs/assets"
_ASSETS_NAME = "docs-assets"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _local_only(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a policy that lets it load nothing from another host."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in _INLINE_SCRIPT.finditer(bytes(page.body)))
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; "
        # Swagger UI and ReDoc set styles inline; ReDoc runs its search in a blob: worker
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "worker-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'")
    return page


def _assets_dir() -> Path:
    folder = Path(str(files("fastapi_offline") / "static"))
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"fastapi-offline's files are missing from {folder}: reinstall it "
                           "(pip install -e .)")
    return folder


def _ours(route: BaseRoute, paths: set[str]) -> bool:
    if isinstance(route, Mount):
        return route.name == _ASSETS_NAME
    return isinstance(route, Route) and route.path in paths


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` from local files.

    FastAPI's own docs routes (an app made without ``docs_url=None, redoc_url=None``) are
    removed first, and so are this function's from an earlier call: calling it twice leaves
    one set.

    Raises:
        RuntimeError: fastapi-offline is installed without its files.
    """
    assets = _assets_dir()
    paths = {p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url,
                         DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL) if p}
    app.router.routes[:] = [r for r in app.router.routes if not _ours(r, paths)]
    app.docs_url, app.redoc_url = DOCS_URL, REDOC_URL
    app.swagger_ui_oauth2_redirect_url = OAUTH2_REDIRECT_URL
    openapi_url = app.openapi_url or "/openapi.json"
    parameters = {**(app.swagger_ui_parameters or {}), "validatorUrl": None}

    app.mount(ASSETS, StaticFiles(directory=assets), name=_ASSETS_NAME)

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=parameters))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return _local_only(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False))
