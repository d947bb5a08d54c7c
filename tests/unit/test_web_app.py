"""The gateway serves the web app: the page never cached, assets cached for a year under
their content hash (a wrong hash is a 404), strict security headers, public config only, and
the local "sign in as" endpoint only in local mode (production refuses to start with it)."""

from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from openv_gateway.config import Settings
from openv_gateway.main import create_app
from openv_infra.settings import DevelopmentDefaultsRefused, refuse_development_defaults

SECRET = "a-unit-test-secret-of-more-than-32-bytes-0123"


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_app(settings), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def local() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        env="local",
        jwt_secret=SECRET,
        local_sign_in=True,
        s3_public_endpoint="videos.example.com:9000",
        supabase_url="https://proj.supabase.co/",
        supabase_anon_key="anon-public-key",
    )
    async for http in _client(settings):
        yield http


@pytest.fixture
async def production() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(env="production", jwt_secret=SECRET, local_sign_in=True)
    async for http in _client(settings):
        yield http


async def test_the_page_is_never_cached_and_carries_a_strict_policy(
    local: httpx.AsyncClient,
) -> None:
    page = await local.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "connect-src 'self' https://proj.supabase.co;" in csp
    assert "media-src 'self' http://videos.example.com:9000;" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_assets_are_immutable_under_their_hash_and_a_wrong_hash_is_404(
    local: httpx.AsyncClient,
) -> None:
    page = (await local.get("/")).text
    name = page.split('src="/assets/', 1)[1].split('"', 1)[0]
    assert name.startswith("app.") and name.endswith(".js")
    asset = await local.get(f"/assets/{name}")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in asset.headers
    wrong = name.replace(name.split(".")[1], "0000000000")
    missing = await local.get(f"/assets/{wrong}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await local.get("/assets/app.js")).status_code == 404


async def test_the_config_is_public_values_only(local: httpx.AsyncClient) -> None:
    config = (await local.get("/app/config.json")).json()
    assert config == {
        "supabase_url": "https://proj.supabase.co",
        "supabase_anon_key": "anon-public-key",
        "local_sign_in": True,
    }


async def test_local_sign_in_mints_a_token_the_api_accepts(local: httpx.AsyncClient) -> None:
    minted = await local.post("/app/local-token", json={"user_id": "alice"})
    assert minted.status_code == 200, minted.text
    token = minted.json()["access_token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == "alice"
    bad = await local.post("/app/local-token", json={"user_id": "a/b"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "user_id"


async def test_outside_local_mode_there_is_no_local_sign_in(
    production: httpx.AsyncClient,
) -> None:
    assert (await production.post("/app/local-token", json={"user_id": "x"})).status_code in (
        404,
        405,
    )
    assert (await production.get("/app/config.json")).json()["local_sign_in"] is False


def test_production_refuses_to_start_with_local_sign_in_on() -> None:
    def production(local_sign_in: bool) -> Settings:
        return Settings.model_validate(
            {
                "env": "production",
                "jwt_secret": SECRET,
                "s3_access_key": "svc",
                "s3_secret_key": "s" * 24,
                "stream_token_secret": "t" * 40,
                "local_sign_in": local_sign_in,
            }
        )

    refuse_development_defaults("gateway", production(False))
    with pytest.raises(DevelopmentDefaultsRefused, match="OPENV_LOCAL_SIGN_IN"):
        refuse_development_defaults("gateway", production(True))
    refuse_development_defaults("gateway", Settings(env="local", local_sign_in=True))
