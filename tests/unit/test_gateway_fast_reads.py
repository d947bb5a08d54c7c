"""The polls' fast lane answers exactly what the route answers, and only when it can: a
remembered token, a video kept here that the principal may see, within the user's rate.
Everything else (and every refusal) reaches the route. The real app, in-process, no lifespan:
the video is handed to the live view as the feed would."""

from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus
from openv_gateway.config import Settings
from openv_gateway.entrypoints.fast_reads import FastReads
from openv_gateway.main import create_app
from openv_localstack.tokens import make_token
from tests.unit.test_gateway_live import view

SECRET = "unit-test-fast-reads-secret-0123456789abcdef"


def lane(app: FastAPI) -> FastReads:
    """The app's FastReads instance (built on the first request)."""
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, FastReads):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, FastReads)
    return layer


@pytest.fixture
def app() -> Iterator[FastAPI]:
    settings = Settings(jwt_secret=SECRET, rate_limit_per_s=1.0, rate_limit_burst=3)
    built = create_app(settings)
    built.state.live.feed_following()  # as if the feed followed the topic
    yield built


def keep(app: FastAPI, video: VideoView) -> None:
    app.state.live.remember(video)


async def get(app: FastAPI, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.get(path, headers=headers)


def same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert {k: v for k, v in a.headers.items() if k != "date"} == {
        k: v for k, v in b.headers.items() if k != "date"
    }


@pytest.mark.parametrize("status", [VideoStatus.RUNNING, VideoStatus.CANCELLED])
async def test_a_poll_of_a_kept_video_is_answered_as_the_route_answers_it(
    app: FastAPI, status: VideoStatus
) -> None:
    video = view(uuid4(), 3, status)
    keep(app, video)
    token = make_token("alice", secret=SECRET)
    path = f"/v1/videos/{video.id}"
    by_route = await get(app, path, token)  # a first token: verified by the route
    assert lane(app).answered == 0
    by_lane = await get(app, path, token)
    assert lane(app).answered == 1
    same(by_route, by_lane)
    assert by_lane.json()["status"] == status.value
    assert ("retry-after" in by_lane.headers) is (status is VideoStatus.RUNNING)


async def test_everything_else_reaches_the_route(app: FastAPI) -> None:
    video = view(uuid4(), 2, VideoStatus.RUNNING)  # alice's
    keep(app, video)
    alice, bob = make_token("alice", secret=SECRET), make_token("bob", secret=SECRET)
    path = f"/v1/videos/{video.id}"
    await get(app, path, alice)
    await get(app, path, bob)
    answered = lane(app).answered
    assert (await get(app, path, bob)).status_code == 404  # another user's video
    assert (await get(app, path, None)).status_code == 401
    assert (await get(app, path, "not-a-token")).status_code == 401
    assert (await get(app, f"/v1/videos/{video.id}".upper(), alice)).status_code == 404
    assert lane(app).answered == answered
    # Over the user's rate (a burst of 3: the route's first read, then two polls answered
    # here): the route's 429.
    assert (await get(app, path, alice)).status_code == 200
    assert (await get(app, path, alice)).status_code == 200
    refused = await get(app, path, alice)
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert lane(app).answered == answered + 2


async def test_the_lane_counts_under_the_routes_metrics_label(app: FastAPI) -> None:
    from openv_infra.metrics import install_metrics, registry

    install_metrics(app, "gateway-fast-reads-test")
    video = view(uuid4(), 2, VideoStatus.RUNNING)
    keep(app, video)
    token = make_token("alice", secret=SECRET)
    for _ in range(2):
        assert (await get(app, f"/v1/videos/{video.id}", token)).status_code == 200
    assert lane(app).answered == 1
    labels = {
        "service": "gateway-fast-reads-test",
        "method": "GET",
        "route": "/v1/videos/{video_id}",
        "status": "200",
    }
    assert registry().get_sample_value("openv_http_requests_total", labels) == 2
