"""/docs and /redoc work with no way out of the studio: every script, style sheet and icon is
served by the desk itself (checked in the HTML and, in Debian's Chromium, by refusing every
request to another host while Swagger UI and ReDoc render the desk's OpenAPI document)."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import Route, expect, sync_playwright

from stagectl.desk.config import DeskConfig
from stagectl.desk.docs import ASSETS, mount_docs
from stagectl.desk.server import DeskServer
from tests.conftest import require_tool
from tests.desk.conftest import FLAGS, SEED

TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Refs(HTMLParser):
    """Every URL a page makes the browser load: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        want = {"script": "src", "link": "href", "img": "src", "iframe": "src"}.get(tag)
        for name, value in attrs:
            if name == want and value:
                self.urls.append(value)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DeskServer]:
    db = tmp_path / "booking.sqlite"
    server = DeskServer(DeskConfig(db=db, seed=SEED, port=0)).start()
    assert server.app is not None
    mount_docs(server.app)  # idempotent: harmless once create_app calls it too
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_files(desk: DeskServer, page: str) -> None:
    with httpx.Client(base_url=desk.url, timeout=30.0) as client:
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "cdn.jsdelivr.net" not in r.text and "fonts.googleapis" not in r.text
        refs = _Refs()
        refs.feed(r.text)
        assert refs.urls, r.text
        kinds = set()
        for url in refs.urls:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
            assert parts.path.startswith(ASSETS + "/"), url
            asset = client.get(urljoin(desk.url + page, url))
            suffix = Path(parts.path).suffix
            assert asset.status_code == 200, url
            assert TYPES[suffix] in asset.headers["content-type"], (url, asset.headers)
            assert len(asset.content) > 1000, url
            kinds.add(suffix)
        assert ".js" in kinds
        if page == "/docs":
            assert ".css" in kinds
            assert "'/openapi.json'" in r.text and '"validatorUrl": null' in r.text
        else:
            assert 'spec-url="/openapi.json"' in r.text
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp.split(";")[1]
        assert client.get("/openapi.json").json()["info"]["title"] == "stagectl producer desk"


def test_mount_docs_twice_leaves_one_set(desk: DeskServer) -> None:
    assert desk.app is not None
    mount_docs(desk.app)
    paths = [getattr(r, "path", None) for r in desk.app.router.routes]
    for p in ("/docs", "/redoc", "/docs/oauth2-redirect", ASSETS):
        assert paths.count(p) == 1, paths
    r = httpx.get(desk.url + "/docs/oauth2-redirect", timeout=30.0)
    assert r.status_code == 200 and "oauth2" in r.text.lower() and "http" not in r.text


def test_swagger_ui_and_redoc_render_with_every_other_host_refused(desk: DeskServer) -> None:
    chromium = require_tool("chromium", ("/usr/bin",))
    own = urlsplit(desk.url).netloc
    elsewhere: list[str] = []

    def only_the_desk(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        try:
            context = browser.new_context()
            context.route("**/*", only_the_desk)
            page = context.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # what the pages' Content-Security-Policy stopped (Redocly's logo on cdn.redoc.ly)
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text)
                    if "Content Security Policy" in m.text else None)
            page.goto(desk.url + "/docs")
            expect(page.locator(".opblock").first).to_be_visible()
            expect(page.locator(".opblock-summary-path", has_text="/api/v1/bookings").first
                   ).to_be_visible()
            page.goto(desk.url + "/redoc")
            expect(page.locator("h1", has_text="stagectl producer desk").first).to_be_visible()
            expect(page.get_by_text("/api/v1/bookings").first).to_be_attached()
            assert not errors, errors
            # only images from elsewhere were refused: nothing the pages need
            assert all("img-src" in b for b in blocked), blocked
        finally:
            browser.close()
    assert elsewhere == []
