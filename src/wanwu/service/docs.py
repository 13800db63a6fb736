"""``/docs`` (Swagger UI) and ``/redoc`` served from local files, so they work on a machine with no internet.

FastAPI's own pages load their JavaScript and CSS from a CDN (blank offline). The assets come from
the ``fastapi-offline`` package (MIT; it vendors Swagger UI, Apache-2.0, and ReDoc, MIT), mounted
under ``/docs-assets``; the pages are FastAPI's, pointed at them.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
FAVICON = "/static/favicon.svg"


def add_offline_docs(app: FastAPI) -> None:
    """Adds ``/docs`` and ``/redoc`` to an app created with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=str(resources.files("fastapi_offline") / "static")), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    # the pages do not change: built once, not per request
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{app.title} - Swagger UI", oauth2_redirect_url=oauth2_redirect,
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS}/swagger-ui.css", swagger_favicon_url=FAVICON,
        swagger_ui_parameters={"validatorUrl": None},  # the validator badge is an image from the internet
    )
    redoc = get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc", redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                           redoc_favicon_url=FAVICON, with_google_fonts=False)
    redirect = get_swagger_ui_oauth2_redirect_html()
    for path, page in (("/docs", swagger), (oauth2_redirect, redirect), ("/redoc", redoc)):
        app.add_api_route(path, _constant(page), methods=["GET"], include_in_schema=False)


def _constant(page: HTMLResponse):  # type: ignore[no-untyped-def]
    async def serve() -> HTMLResponse:
        return page

    return serve
