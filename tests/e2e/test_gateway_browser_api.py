"""A page on another origin, over real sockets against the local stack (issue #22): a listed
origin can create and stream (its preflight allowed, the answers readable), an unlisted one
gets no `Access-Control-Allow-Origin`; a browser's EventSource opens the stream with a
short-lived stream token, which works for that video and user only and never shows up in
the services' logs."""

import uuid
from collections.abc import Callable

import httpx
import pytest

from openv_localstack.stack import LocalStack
from tests.e2e.conftest import FRONTEND_ORIGIN
from tests.e2e.test_gateway_live import SMALL, TERMINAL, read_stream

pytestmark = pytest.mark.e2e

Auth = Callable[[str], dict[str, str]]


def test_a_listed_origin_can_create_and_stream_with_a_stream_token(
    api: httpx.Client, auth: Auth, stack: LocalStack
) -> None:
    user = f"cors-{uuid.uuid4().hex[:8]}"
    origin = {"Origin": FRONTEND_ORIGIN}
    preflight = api.options(
        "/v1/videos",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()

    created = api.post(
        "/v1/videos",
        json={"prompt": "a page on another origin", **SMALL},
        headers={**auth(user), **origin, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 202, created.text
    assert created.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    assert "Location" in created.headers["access-control-expose-headers"]
    vid = created.json()["id"]

    issued = api.post(f"/v1/videos/{vid}/stream-tokens", headers={**auth(user), **origin})
    assert issued.status_code == 201, issued.text
    assert issued.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    assert issued.headers["cache-control"] == "no-store"
    token = issued.json()
    assert token["url"].startswith(f"/v1/videos/{vid}/stream?stream_token=")

    # What EventSource sends: no Authorization header, the token in the URL.
    stream = read_stream(api, token["url"], origin)
    assert stream.status_code == 200
    assert stream.ended and stream.events[-1]["video"]["status"] in TERMINAL
    assert {e["video"]["id"] for e in stream.events} == {vid}

    logs = "".join(
        path.read_text(errors="replace")
        for path in (stack.root / "logs").glob("**/*")
        if path.is_file()
    )
    assert token["token"] not in logs


def test_stream_tokens_belong_to_one_video_and_one_user(api: httpx.Client, auth: Auth) -> None:
    owner, other = f"owner-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    videos = [
        api.post("/v1/videos", json={"prompt": f"video {i}", **SMALL}, headers=auth(owner))
        for i in range(2)
    ]
    first, second = (v.json()["id"] for v in videos)
    # Another user cannot get a token for the owner's video: 404, as for everything of it.
    foreign = api.post(f"/v1/videos/{first}/stream-tokens", headers=auth(other))
    assert foreign.status_code == 404
    token = api.post(f"/v1/videos/{first}/stream-tokens", headers=auth(owner)).json()["token"]
    wrong_video = api.get(f"/v1/videos/{second}/stream", params={"stream_token": token})
    assert wrong_video.status_code == 401
    assert wrong_video.headers["content-type"] == "application/problem+json"
    # A long-lived access token is never accepted in the query string.
    bearer = auth(owner)["Authorization"].removeprefix("Bearer ")
    for name in ("stream_token", "access_token", "token"):
        refused = api.get(f"/v1/videos/{first}/stream", params={name: bearer})
        assert refused.status_code == 401, name


def test_an_unlisted_origin_gets_no_allow_origin(api: httpx.Client, auth: Auth) -> None:
    evil = {"Origin": "http://evil.test"}
    listed = api.get("/v1/videos", headers={**auth("cors-unlisted"), **evil})
    assert listed.status_code == 200
    assert "access-control-allow-origin" not in listed.headers
    preflight = api.options("/v1/videos", headers={**evil, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
