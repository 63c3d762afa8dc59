"""``GET /docs``: the API reference page, with Swagger UI's files served by the gateway itself.

An operator opens it without a token, behind a firewall or offline: every file the page loads
comes from the gateway, and the page points Swagger UI at the gateway's own ``/openapi.json``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from gateway.docs_page import STATIC_PREFIX, swagger_ui_version
from meshkit.server_info import package_version
from tests.gateway.conftest import Harness


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


def _is_local(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


async def test_docs_page_needs_no_token_and_references_only_local_urls(harness: Harness) -> None:
    response = await harness.client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    links = _Links()
    links.feed(html)
    assert links.urls, "the page loads Swagger UI's files"
    assert all(_is_local(url) for url in links.urls), links.urls
    assert not re.search(r"https?://", html), "no absolute URL in the page"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    # Every file the page names is served by the gateway, without a token.
    for url in links.urls:
        asset = await harness.client.get(url)
        assert asset.status == 200, url
        assert len(await asset.read()) > 0, url


async def test_the_page_renders_the_gateways_own_openapi_document(harness: Harness) -> None:
    html = await (await harness.client.get("/docs")).text()
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts[0] == f"{STATIC_PREFIX}swagger-ui-bundle.js"
    initializer = await (await harness.client.get(scripts[-1])).text()
    assert 'url: "/openapi.json"' in initializer
    assert "validatorUrl: null" in initializer  # no badge fetched from validator.swagger.io
    assert not re.search(r"https?://", initializer)
    bundle = await harness.client.get(scripts[0])
    assert bundle.headers["Content-Type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in await bundle.read()
    spec = await harness.client.get("/openapi.json")
    assert spec.status == 200 and (await spec.json())["openapi"].startswith("3.")
    assert swagger_ui_version().count(".") == 2


async def test_only_swagger_uis_files_are_served_under_static(harness: Harness) -> None:
    for name in ("index.html", "oauth2-redirect.html", "..%2F__init__.py", "swagger-ui.js"):
        status, body, _headers = await harness.call("GET", f"{STATIC_PREFIX}{name}", token=None)
        assert status == 404, name
        assert body["code"] == 5


async def test_version_needs_no_token(harness: Harness) -> None:
    status, body, _headers = await harness.call("GET", "/version", token=None)
    assert status == 200
    assert body == {"component": "gateway", "version": package_version()}
