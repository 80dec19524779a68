"""The API docs pages with their assets served from the installed fastapi-offline package, so /docs
works without reaching a CDN (FastAPI's own pages load Swagger UI from one)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PREFIX = "/static/apidocs"
SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{prefix}/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{prefix}/swagger-ui-bundle.js"></script>
<script src="/static/swagger_init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Needs the app created with docs_url=None and redoc_url=None."""
    app.mount(PREFIX, StaticFiles(directory=str(ASSETS)), name="apidocs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        # FastAPI's own page starts Swagger UI from an inline script, which the CSP refuses.
        return HTMLResponse(SWAGGER_PAGE.format(title=f"{app.title} — docs", prefix=PREFIX))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} — reference",
                              redoc_js_url=f"{PREFIX}/redoc.standalone.js",
                              redoc_favicon_url="/static/favicon.svg", with_google_fonts=False)
