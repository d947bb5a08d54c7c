"""The web app: `/` (the page, never cached), `/assets/<name>.<hash>.<ext>` (cached for a
year: a changed file gets a new name) and `/app/config.json` (what the page needs to sign in:
public values only, so the bundle holds no configuration, let alone a secret). Every answer
carries the page's security headers (domain/page_policy.py)."""

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from openv_gateway.config import Settings
from openv_gateway.domain.asset_catalog import AssetCatalog
from openv_gateway.domain.page_policy import origin_of, security_headers
from openv_gateway.entrypoints.problems import ApiError

IMMUTABLE = "public, max-age=31536000, immutable"


def page_headers(settings: Settings) -> dict[str, str]:
    scheme = "https" if settings.s3_secure else "http"
    s3 = f"{scheme}://{settings.s3_public_endpoint or settings.s3_endpoint}"
    supabase = origin_of(settings.supabase_url or "")
    return security_headers(connect=[supabase], media=[s3])


def install(app: FastAPI, settings: Settings, catalog: AssetCatalog) -> None:
    headers = page_headers(settings)
    config = {
        "supabase_url": (settings.supabase_url or "").rstrip("/") or None,
        "supabase_anon_key": settings.supabase_anon_key or None,
        "local_sign_in": settings.is_local and settings.local_sign_in,
    }

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(
            catalog.page,
            media_type="text/html; charset=utf-8",
            headers={**headers, "Cache-Control": "no-cache"},
        )

    @app.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        found = catalog.assets.get(name)
        if found is None:
            raise ApiError(404, "not_found", "no such asset (the page may be out of date)")
        return Response(
            found.body,
            media_type=found.content_type,
            headers={**headers, "Cache-Control": IMMUTABLE},
        )

    @app.get("/app/config.json", include_in_schema=False)
    async def app_config() -> JSONResponse:
        return JSONResponse(config, headers={**headers, "Cache-Control": "no-cache"})
