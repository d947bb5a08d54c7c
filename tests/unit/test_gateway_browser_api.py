"""The browser-ready and SDK-friendly API (issue #22): CORS for configured origins only,
short-lived stream tokens for EventSource, short operationIds, and API docs whose assets the
service serves itself.

The app-level tests run the real app in-process without its lifespan: every answer here is
decided before Kafka or the jobs service would be reached."""

import re
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from openv_gateway.config import Settings
from openv_gateway.domain.principal import Principal
from openv_gateway.domain.stream_token import InvalidStreamToken, StreamTokens
from openv_gateway.main import create_app
from openv_infra.admin import INTERNAL_DOCS, create_admin_app
from openv_infra.redact import redact
from openv_localstack.tokens import make_token

SECRET = "unit-test-browser-secret-0123456789abcdef"
ALLOWED = "https://app.example.com"
VIDEO = uuid.uuid4()


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        jwt_secret=SECRET,
        cors_origins=f"{ALLOWED}, http://localhost:5173",
        rate_limit_burst=1,
        rate_limit_per_s=0.01,
    )
    async with _client(create_app(settings)) as http:
        yield http


def _auth(user: str = "browser-user") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(user, SECRET)}"}


# --- CORS -----------------------------------------------------------------------------------


async def test_a_preflight_from_a_listed_origin_allows_what_the_api_needs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v1/videos",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key,prefer",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key", "prefer", "last-event-id"):
        assert header in allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers


async def test_a_preflight_with_a_body_limit_sized_request_is_not_refused_by_the_limit(
    client: httpx.AsyncClient,
) -> None:
    """The preflight of a big create is answered by CORS, not by the body limit."""
    response = await client.options(
        "/v1/videos/x/cancel",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Content-Length": "0",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_errors_carry_the_cors_headers_an_allowed_page_needs_to_read_them(
    client: httpx.AsyncClient,
) -> None:
    origin = {"Origin": ALLOWED}
    unauthorized = await client.get("/v1/videos", headers=origin)
    too_large = await client.post("/v1/videos", content=b"x" * 20000, headers={**origin, **_auth()})
    await client.get("/v1/videos?limit=0", headers={**origin, **_auth("rate")})
    limited = await client.get("/v1/videos?limit=0", headers={**origin, **_auth("rate")})
    invalid = await client.get("/v1/videos?limit=0", headers={**origin, **_auth()})
    for response, status in [(unauthorized, 401), (too_large, 413), (limited, 429), (invalid, 422)]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["access-control-allow-origin"] == ALLOWED
        exposed = response.headers["access-control-expose-headers"]
        for header in ("Location", "Retry-After", "Preference-Applied", "WWW-Authenticate"):
            assert header in exposed


async def test_an_unlisted_origin_gets_no_allow_origin_and_its_preflight_a_problem(
    client: httpx.AsyncClient,
) -> None:
    evil = {"Origin": "https://evil.example"}
    response = await client.get("/v1/videos", headers=evil)
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/v1/videos", headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 403
    assert preflight.headers["content-type"] == "application/problem+json"
    assert preflight.json()["code"] == "cors_refused"
    assert "access-control-allow-origin" not in preflight.headers


async def test_without_configured_origins_no_origin_is_allowed() -> None:
    async with _client(create_app(Settings(jwt_secret=SECRET))) as http:
        response = await http.get("/v1/videos", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "bad", ["*", "https://app.example.com/", "app.example.com", "https://*.example.com",
            "https://app.example.com/path"],
)  # fmt: skip
def test_only_exact_origins_are_accepted_as_settings(bad: str) -> None:
    with pytest.raises(ValidationError, match="not an exact origin"):
        Settings(cors_origins=f"{ALLOWED},{bad}")


# --- stream tokens --------------------------------------------------------------------------


def test_a_stream_token_opens_its_video_for_its_user_until_it_expires() -> None:
    tokens = StreamTokens(SECRET, ttl_s=120)
    issued = tokens.issue(Principal("alice"), VIDEO, now=1000.0)
    assert issued.expires_at == 1120.0
    assert tokens.verify(issued.token, VIDEO, now=1119.0) == Principal("alice")
    with pytest.raises(InvalidStreamToken, match="expired"):
        tokens.verify(issued.token, VIDEO, now=1120.0)
    with pytest.raises(InvalidStreamToken, match="another video"):
        tokens.verify(issued.token, uuid.uuid4(), now=1001.0)
    admin = tokens.issue(Principal("root", is_admin=True), VIDEO, now=1000.0)
    assert tokens.verify(admin.token, VIDEO, now=1001.0).is_admin


def test_forged_tokens_and_access_tokens_are_not_stream_tokens() -> None:
    tokens = StreamTokens(SECRET, ttl_s=120)
    issued = tokens.issue(Principal("alice"), VIDEO, now=1000.0)
    prefix, payload, signature = issued.token.split(".")
    other_key = StreamTokens(SECRET + "x", ttl_s=120).issue(Principal("bob"), VIDEO, 1000.0)
    for forged in [
        f"{prefix}.{payload}.{signature[:-2]}AA",
        other_key.token,
        make_token("alice", SECRET),  # an access token, even one signed with the same key
        "st1..",
        "",
    ]:
        with pytest.raises(InvalidStreamToken):
            tokens.verify(forged, VIDEO, now=1001.0)


async def test_the_stream_refuses_an_access_token_and_bad_stream_tokens_in_the_query(
    client: httpx.AsyncClient,
) -> None:
    path = f"/v1/videos/{VIDEO}/stream"
    expired = StreamTokens("unit-test-browser-default", 120).issue(Principal("u"), VIDEO, 0.0)
    for query in [
        {"stream_token": make_token("browser-user", SECRET)},
        {"stream_token": "st1.e30.AAAA"},
        {"stream_token": expired.token},
        {"access_token": make_token("browser-user", SECRET)},
        {"token": make_token("browser-user", SECRET)},
    ]:
        response = await client.get(path, params=query, headers={"Origin": ALLOWED})
        assert response.status_code == 401, query
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_a_stream_token_for_another_video_is_refused_on_this_one() -> None:
    settings = Settings(jwt_secret=SECRET, stream_token_secret=SECRET + "-stream")
    app = create_app(settings)
    other = app.state.stream_tokens.issue(Principal("alice"), uuid.uuid4(), time.time())
    async with _client(app) as http:
        response = await http.get(
            f"/v1/videos/{VIDEO}/stream", params={"stream_token": other.token}
        )
    assert response.status_code == 401
    assert "another video" in response.json()["detail"]


def test_stream_tokens_are_redacted_from_logged_urls() -> None:
    line = "GET /v1/videos/1/stream?stream_token=st1.eyJh.c2ln&x=1 HTTP/1.1"
    assert redact(line) == "GET /v1/videos/1/stream?stream_token=REDACTED&x=1 HTTP/1.1"


# --- the OpenAPI document and docs ----------------------------------------------------------

OPERATIONS = {
    ("post", "/v1/videos"): "createVideo",
    ("get", "/v1/videos"): "listVideos",
    ("get", "/v1/videos/{video_id}"): "getVideo",
    ("delete", "/v1/videos/{video_id}"): "deleteVideo",
    ("get", "/v1/videos/{video_id}/events"): "getVideoEvents",
    ("post", "/v1/videos/{video_id}/cancel"): "cancelVideo",
    ("get", "/v1/videos/{video_id}/stream"): "streamVideo",
    ("post", "/v1/videos/{video_id}/stream-tokens"): "createStreamToken",
    ("get", "/v1/usage"): "getUsage",
    ("get", "/v1/webhooks/secret"): "getWebhookSecret",
    ("post", "/v1/webhooks/secret/rotate"): "rotateWebhookSecret",
    ("get", "/v1/videos/{video_id}/webhook-deliveries"): "getWebhookDeliveries",
    ("post", "/v1/videos/{video_id}/webhook-deliveries/replay"): "replayWebhookDeliveries",
    ("get", "/healthz"): "getHealth",
}


async def test_every_operation_has_a_short_unique_operation_id(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    ids = {
        (method, path): operation.get("operationId")
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert ids == OPERATIONS
    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z][A-Za-z]{2,30}", i) for i in ids.values() if i)
    stream = document["paths"]["/v1/videos/{video_id}/stream"]["get"]
    assert stream["security"] == [{"HTTPBearer": []}, {"StreamToken": []}]


def _external_hosts(html: str) -> list[str]:
    return re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", html)


async def _docs_are_local(http: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        response = await http.get(page)
        assert response.status_code == 200
        assert _external_hosts(response.text) == [], page
        assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', response.text)
        assert assets, page
        for asset in assets:
            loaded = await http.get(asset)
            assert loaded.status_code == 200, asset
            assert len(loaded.content) > 100
    assert (await http.get("/docs/assets/../../etc/passwd")).status_code == 404
    assert (await http.get("/docs/assets/nothing.js")).status_code == 404


async def test_the_public_docs_load_their_assets_from_the_gateway(
    client: httpx.AsyncClient,
) -> None:
    await _docs_are_local(client)


async def test_the_admin_ports_internal_docs_load_their_assets_locally() -> None:
    service = FastAPI(title="svc", **INTERNAL_DOCS)
    async with _client(create_admin_app(service)) as http:
        await _docs_are_local(http)


@pytest.mark.parametrize("vary", [None, "Accept-Encoding"])
@pytest.mark.parametrize("origin", [None, ALLOWED, "https://evil.example"])
async def test_the_cors_headers_are_starlettes_with_or_without_an_origin(
    vary: str | None, origin: str | None
) -> None:
    """The short way through for requests without an Origin answers what Starlette's own
    CORS middleware answers (`Vary: Origin`, merged with a Vary of the route's)."""
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import PlainTextResponse

    from openv_gateway.entrypoints import cors

    def app_with(middleware: type[CORSMiddleware]) -> FastAPI:
        app = FastAPI()

        @app.get("/thing")
        async def thing() -> PlainTextResponse:
            return PlainTextResponse("ok", headers={"Vary": vary} if vary else None)

        app.add_middleware(middleware, allow_origins=[ALLOWED], allow_methods=["GET"])
        return app

    headers = {"Origin": origin} if origin else {}
    answers = []
    for middleware in (cors._ProblemCORSMiddleware, CORSMiddleware):
        async with _client(app_with(middleware)) as http:
            response = await http.get("/thing", headers=headers)
        answers.append(sorted(response.headers.multi_items()))
    assert answers[0] == answers[1]
    assert ("vary", f"{vary}, Origin" if vary else "Origin") in answers[0]
