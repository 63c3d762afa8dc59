"""``GET /docs``: the REST API's reference page, rendered by Swagger UI from ``/openapi.json``.

Swagger UI's files come from the pinned ``swagger-ui-bundle`` package (its ``vendor/``
folder) and are served by the gateway itself under ``/docs/static/``: the page loads nothing
from another origin (its Content-Security-Policy says so too), so it works offline and leaks
no visit to a CDN. Swagger UI's online validator badge is off (``validatorUrl: null``).

The page, its files and ``GET /version`` (the gateway's package version, for
``copytrade status``) need no token: they describe the API, never a user's data. "Try it
out" calls the API on the same origin with the token typed into "Authorize".
"""

from __future__ import annotations

import importlib.resources
import pathlib

from aiohttp import web

from gateway import server as gateway_server
from meshkit.server_info import package_version

PATH = "/docs"
STATIC_PREFIX = "/docs/static/"
VERSION_PATH = "/version"
INITIALIZER = "copytrade-docs.js"
# The Swagger UI files the page uses (and their source maps, which a browser's developer tools
# ask for); nothing else of the package is served.
ASSETS = (
    "swagger-ui.css",
    "swagger-ui.css.map",
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.map",
    "favicon-32x32.png",
    "favicon-16x16.png",
)
ASSET_CACHE = "public, max-age=3600"
# Fixed here, not guessed from the system's tables: browsers run a script only under a script type
# (the gateway sends nosniff).
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".png": "image/png",
}

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>copytrade REST API</title>
<link rel="stylesheet" href="{STATIC_PREFIX}swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="{STATIC_PREFIX}favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{STATIC_PREFIX}favicon-16x16.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{STATIC_PREFIX}swagger-ui-bundle.js"></script>
<script src="{STATIC_PREFIX}{INITIALIZER}"></script>
</body>
</html>
"""

INITIALIZER_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Everything from this origin only; Swagger UI sets inline styles (its SVG icons)."""


def swagger_ui_directory() -> pathlib.Path:
    """Return the folder of Swagger UI's files in the installed ``swagger-ui-bundle``."""
    vendor = importlib.resources.files("swagger_ui_bundle").joinpath("vendor")
    folders = sorted(
        pathlib.Path(str(entry))
        for entry in vendor.iterdir()
        if entry.is_dir() and entry.name.startswith("swagger-ui-")
    )
    if not folders:
        raise RuntimeError("swagger-ui-bundle ships no vendor/swagger-ui-* folder")
    return folders[-1]


def swagger_ui_version() -> str:
    """Return the version of the Swagger UI files served (``4.15.5``)."""
    return swagger_ui_directory().name.removeprefix("swagger-ui-")


class DocsPage:
    """Serves the page, Swagger UI's files (read once, at start) and the version."""

    def __init__(self) -> None:
        directory = swagger_ui_directory()
        self.assets = {name: (directory / name).read_bytes() for name in ASSETS}
        self.assets[INITIALIZER] = INITIALIZER_JS.encode("utf-8")
        self.version = package_version()

    def install(self, app: web.Application) -> None:
        """Add the routes (before the API's catch-all)."""
        app.router.add_get(PATH, self.page)
        app.router.add_get(STATIC_PREFIX + "{name}", self.asset)
        app.router.add_get(VERSION_PATH, self.version_json)

    async def page(self, request: web.Request) -> web.Response:
        """Serve the page (no token: it holds no data)."""
        request[gateway_server.ROUTE_LABEL_KEY] = PATH
        return web.Response(
            text=PAGE,
            content_type="text/html",
            headers={
                "Content-Security-Policy": POLICY,
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def asset(self, request: web.Request) -> web.Response:
        """Serve one of Swagger UI's files, or 404 for any other name."""
        request[gateway_server.ROUTE_LABEL_KEY] = STATIC_PREFIX + "{name}"
        name = request.match_info["name"]
        body = self.assets.get(name)
        if body is None:
            raise web.HTTPNotFound()
        suffix = pathlib.PurePath(name).suffix
        return web.Response(
            body=body,
            content_type=CONTENT_TYPES[suffix],
            charset=None if suffix == ".png" else "utf-8",
            headers={"Cache-Control": ASSET_CACHE},
        )

    async def version_json(self, request: web.Request) -> web.Response:
        """Serve ``{"component": "gateway", "version": ...}`` (no token)."""
        request[gateway_server.ROUTE_LABEL_KEY] = VERSION_PATH
        return web.json_response({"component": "gateway", "version": self.version})


def install(app: web.Application) -> DocsPage:
    """Serve ``/docs``, its files and ``/version`` on ``app`` (one line in ``build_app``)."""
    docs = DocsPage()
    docs.install(app)
    return docs


__all__ = ["PATH", "STATIC_PREFIX", "VERSION_PATH", "DocsPage", "install", "swagger_ui_version"]
