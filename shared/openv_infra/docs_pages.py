"""Swagger UI and ReDoc pages whose assets the service serves itself (fastapi-offline's copies,
pinned in requirements.lock) instead of a public CDN: the docs work offline, and a
Content-Security-Policy that allows only 'self' for scripts and styles does not blank them.

Used by the gateway's public `/docs` and by every service's admin port (admin.py)."""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

#: fastapi-offline's copies of the Swagger UI and ReDoc bundles.
ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
#: Not content-hashed: cached a day, then revalidated (they change only with the lock file).
ASSET_CACHE = "public, max-age=86400"


def docs_router(
    openapi_url: str, title: str, docs_url: str = "/docs", redoc_url: str = "/redoc"
) -> APIRouter:
    """`docs_url` (Swagger UI), `redoc_url` and their assets under `{docs_url}/assets/`."""
    assets = f"{docs_url}/assets"
    router = APIRouter(include_in_schema=False)

    @router.get(docs_url)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )

    @router.get(redoc_url)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(assets + "/{name}")
    async def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, "no such asset")
        return FileResponse(
            ASSET_DIR / name, media_type=media_type, headers={"Cache-Control": ASSET_CACHE}
        )

    return router
