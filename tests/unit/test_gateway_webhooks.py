"""The gateway's side of webhooks: a create's webhook is checked at the door (422
`invalid_webhook`, never a 500), travels in `RequestVideo`, and takes part in the idempotency
check; the secret and delivery routes go to the webhooks service (a fake here), show a video's
deliveries only to who may see the video, and answer 503 when that service is down."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from openv_contracts.base import Message
from openv_contracts.commands import RequestVideo
from openv_contracts.queries import EventPage, EventView
from openv_contracts.webhooks import (
    WebhookDeliveryPage,
    WebhookEvent,
    WebhookReplayed,
    WebhookSecretView,
    WebhookTarget,
)
from openv_gateway.config import Settings
from openv_gateway.domain.principal import Principal
from openv_gateway.main import create_app
from openv_gateway.service_layer.videos import IdempotencyConflict, VideosService
from openv_gateway.service_layer.webhooks import WebhooksService
from openv_infra.webhooks_api import WebhooksUnavailable
from openv_localstack.tokens import make_token
from tests.unit.test_gateway_create import REQUEST, FastJobs, service

SECRET = "unit-test-webhooks-secret-0123456789abcdef"
HOOK = WebhookTarget(url="https://hooks.example.com/h", events=frozenset({WebhookEvent.QUEUED}))


class RecordingJobs(FastJobs):
    """FastJobs that records the request's webhook in the first event, as the jobs service
    does (VideoAccepted.webhook)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[RequestVideo] = []

    async def send(self, command: Message, user_id: str) -> None:
        assert isinstance(command, RequestVideo)
        self.sent.append(command)
        await super().send(command, user_id)

    async def events(self, video_id: UUID) -> EventPage:
        first = next(c for c in self.sent if c.video_id == video_id)
        hook = None if first.webhook is None else first.webhook.model_dump(mode="json")
        at = self.history[video_id][0].created_at
        return EventPage(
            data=[
                EventView(type="VideoAccepted", occurred_at=at, data={"webhook": hook}, version=1)
            ]
        )


async def test_the_checked_webhook_travels_in_the_request() -> None:
    jobs = RecordingJobs()
    await service(jobs).create(Principal("alice"), REQUEST, webhook=HOOK)
    assert [c.webhook for c in jobs.sent] == [HOOK]


async def test_a_retry_with_another_webhook_is_a_conflict() -> None:
    jobs = RecordingJobs()
    videos = service(jobs)
    first = await videos.create(Principal("alice"), REQUEST, "key-1", webhook=HOOK)
    again = await videos.create(Principal("alice"), REQUEST, "key-1", webhook=HOOK)
    assert again.video_id == first.video_id
    other = HOOK.model_copy(update={"url": "https://other.example.com/h"})
    for webhook in (other, None):
        with pytest.raises(IdempotencyConflict):
            await videos.create(Principal("alice"), REQUEST, "key-1", webhook=webhook)
    assert len(jobs.sent) == 1


# --- the routes, on the real app with fakes behind them -----------------------------------


class FakeWebhooksApi:
    def __init__(self) -> None:
        self.down = False
        self.calls: list[tuple[str, object]] = []

    def _check(self, call: str, arg: object) -> None:
        if self.down:
            raise WebhooksUnavailable("down")
        self.calls.append((call, arg))

    async def secret(self, user_id: str) -> WebhookSecretView:
        self._check("secret", user_id)
        return WebhookSecretView(secret="whsec_c2VjcmV0", created_at="2030-01-01T00:00:00Z")

    async def rotate_secret(self, user_id: str) -> WebhookSecretView:
        self._check("rotate", user_id)
        return WebhookSecretView(
            secret="whsec_bmV3",
            created_at="2030-01-02T00:00:00Z",
            previous_expires_at="2030-01-03T00:00:00Z",
        )

    async def deliveries(self, video_id: UUID) -> WebhookDeliveryPage:
        self._check("deliveries", video_id)
        return WebhookDeliveryPage(data=[])

    async def replay(self, video_id: UUID) -> WebhookReplayed:
        self._check("replay", video_id)
        return WebhookReplayed(replayed=2)


class App:
    def __init__(self, http: httpx.AsyncClient, api: FakeWebhooksApi, videos: VideosService):
        self.http, self.api, self.videos = http, api, videos


@pytest.fixture
async def app() -> AsyncIterator[App]:
    application = create_app(Settings(jwt_secret=SECRET))
    videos = service(FastJobs())
    api = FakeWebhooksApi()
    application.state.webhooks = WebhooksService(videos, api)
    transport = httpx.ASGITransport(application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield App(http, api, videos)


def _auth(user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(user, SECRET)}"}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"webhook": "http://hooks.example.com/h"}, "invalid_webhook", "webhook"),
        ({"webhook": "https://169.254.169.254/latest"}, "invalid_webhook", "webhook"),
        ({"webhook": "https://localhost:8000/h"}, "invalid_webhook", "webhook"),
        ({"webhook": "https://u:p@hooks.example.com/h"}, "invalid_webhook", "webhook"),
        ({"webhook": "https://hooks.example.com:70000/h"}, "invalid_webhook", "webhook"),
        ({"webhook_events_filter": ["queued"]}, "invalid_webhook", "webhook_events_filter"),
        ({"webhook": "https://x.example/" + "a" * 2048}, "invalid_parameter", "webhook"),
        ({"webhook": 42}, "invalid_parameter", "webhook"),
        (
            {"webhook": "https://8.8.8.8/h", "webhook_events_filter": []},
            "invalid_parameter",
            "webhook_events_filter",
        ),
        (
            {"webhook": "https://8.8.8.8/h", "webhook_events_filter": ["queued", "queued"]},
            "invalid_parameter",
            "webhook_events_filter",
        ),
        (
            {"webhook": "https://8.8.8.8/h", "webhook_events_filter": ["finished"]},
            "invalid_parameter",
            "webhook_events_filter.0",
        ),
    ],
)
async def test_an_unusable_webhook_is_a_422_naming_the_field(
    app: App, extra: dict[str, Any], code: str, field: str
) -> None:
    response = await app.http.post("/v1/videos", json={"prompt": "fox", **extra}, headers=_auth())
    body = _problem(response, 422, code)
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["detail"]


async def test_the_secret_is_the_callers_and_never_cached(app: App) -> None:
    read = await app.http.get("/v1/webhooks/secret", headers=_auth("alice"))
    rotated = await app.http.post("/v1/webhooks/secret/rotate", headers=_auth("bob"))
    assert read.status_code == 200 and rotated.status_code == 200
    assert read.json()["secret"] == "whsec_c2VjcmV0"
    assert rotated.json()["previous_expires_at"] == "2030-01-03T00:00:00Z"
    assert read.headers["cache-control"] == rotated.headers["cache-control"] == "no-store"
    assert app.api.calls == [("secret", "alice"), ("rotate", "bob")]
    assert (await app.http.get("/v1/webhooks/secret")).status_code == 401


async def test_deliveries_are_shown_and_replayed_only_to_who_may_see_the_video(app: App) -> None:
    created = await app.videos.create(Principal("alice"), REQUEST)
    vid = created.video_id
    mine = await app.http.get(f"/v1/videos/{vid}/webhook-deliveries", headers=_auth("alice"))
    assert (mine.status_code, mine.json()) == (200, {"data": []})
    replayed = await app.http.post(
        f"/v1/videos/{vid}/webhook-deliveries/replay", headers=_auth("alice")
    )
    assert (replayed.status_code, replayed.json()) == (202, {"replayed": 2})
    assert app.api.calls == [("deliveries", vid), ("replay", vid)]
    for path in (f"/v1/videos/{vid}", f"/v1/videos/{uuid4()}", "/v1/videos/not-a-uuid"):
        foreign = await app.http.get(f"{path}/webhook-deliveries", headers=_auth("bob"))
        again = await app.http.post(f"{path}/webhook-deliveries/replay", headers=_auth("bob"))
        assert _problem(foreign, 404, "not_found") == _problem(again, 404, "not_found")
    assert len(app.api.calls) == 2  # nothing asked of the webhooks service for bob


async def test_the_webhooks_service_down_is_a_503(app: App) -> None:
    app.api.down = True
    created = await app.videos.create(Principal("alice"), REQUEST)
    for response in (
        await app.http.get("/v1/webhooks/secret", headers=_auth()),
        await app.http.post("/v1/webhooks/secret/rotate", headers=_auth()),
        await app.http.get(f"/v1/videos/{created.video_id}/webhook-deliveries", headers=_auth()),
    ):
        problem = _problem(response, 503, "unavailable")
        assert response.headers["retry-after"] and "whsec" not in str(problem)
        assert problem["detail"] == "a backend service is unavailable; try again"  # not a crash
