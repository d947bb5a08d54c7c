"""What the routes take from the app, as `Annotated` dependencies: the use cases (videos,
webhooks, webhook checks), playback URLs, live watches, the stream hub, the settings, and the
user's long-lived slots; and the video id path parameter. `main.create_app` puts each object
on `app.state` once."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path, Request

from openv_gateway.config import Settings
from openv_gateway.domain.long_lived import OpenRequests, TooManyOpen
from openv_gateway.entrypoints.problems import ApiError
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.stream_hub import StreamHub
from openv_gateway.service_layer.videos import VideosService
from openv_gateway.service_layer.webhook_targets import WebhookTargets
from openv_gateway.service_layer.webhooks import WebhooksService
from openv_infra.playback import Playback


class LongLived:
    """The user's long-lived requests (streams, `Prefer: wait`, `DELETE ?wait`) on this
    instance; a request over the limit is answered 429 `rate_limited`."""

    def __init__(self, opened: OpenRequests, retry_after_s: int) -> None:
        self.opened = opened
        self.retry_after_s = retry_after_s

    def acquire(self, user_id: str) -> Callable[[], None]:
        """Count one long-lived request of the user; returns its release."""
        try:
            self.opened.acquire(user_id)
        except TooManyOpen:
            raise ApiError(
                429,
                "rate_limited",
                f"too many streams and waits open at once (at most {self.opened.limit}); close one",
                {"Retry-After": str(self.retry_after_s)},
            ) from None
        return lambda: self.opened.release(user_id)

    @contextmanager
    def held(self, user_id: str) -> Iterator[None]:
        release = self.acquire(user_id)
        try:
            yield
        finally:
            release()


async def get_service(request: Request) -> VideosService:
    service: VideosService = request.app.state.videos
    return service


async def get_playback(request: Request) -> Playback:
    playback: Playback = request.app.state.playback
    return playback


async def get_live(request: Request) -> LiveVideos:
    live: LiveVideos = request.app.state.live
    return live


async def get_stream_hub(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.stream_hub
    return hub


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_long_lived(request: Request) -> LongLived:
    long_lived: LongLived = request.app.state.long_lived
    return long_lived


async def get_webhooks(request: Request) -> WebhooksService:
    webhooks: WebhooksService = request.app.state.webhooks
    return webhooks


async def get_webhook_targets(request: Request) -> WebhookTargets:
    targets: WebhookTargets = request.app.state.webhook_targets
    return targets


Service = Annotated[VideosService, Depends(get_service)]
PlaybackDep = Annotated[Playback, Depends(get_playback)]
LiveDep = Annotated[LiveVideos, Depends(get_live)]
StreamHubDep = Annotated[StreamHub, Depends(get_stream_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LongLivedDep = Annotated[LongLived, Depends(get_long_lived)]
Webhooks = Annotated[WebhooksService, Depends(get_webhooks)]
WebhookTargetsDep = Annotated[WebhookTargets, Depends(get_webhook_targets)]
VideoId = Annotated[str, Path(description="The video's id (a UUID).")]


def parse_video_id(raw: str) -> UUID:
    """The path's video id; a malformed one is a video that does not exist."""
    try:
        return UUID(raw)
    except ValueError:
        raise not_found() from None


def not_found() -> ApiError:
    return ApiError(404, "not_found", "no such video")
