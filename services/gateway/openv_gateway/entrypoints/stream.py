"""`GET /v1/videos/{id}/stream`: the video's status as Server-Sent Events."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import TERMINAL_STATUSES
from openv_gateway.adapters.playback import Playback
from openv_gateway.domain import sse
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.entrypoints.dependencies import (
    LiveDep,
    LongLivedDep,
    PlaybackDep,
    Service,
    SettingsDep,
    VideoId,
    not_found,
    parse_video_id,
)
from openv_gateway.entrypoints.openapi_docs import STREAM_DESCRIPTION
from openv_gateway.entrypoints.presenter import present, present_pending
from openv_gateway.entrypoints.problems import COMMON, NOT_FOUND, unavailable
from openv_gateway.entrypoints.stream_auth import StreamPrincipal
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.videos import VideoNotFound

router = APIRouter(prefix="/v1", tags=["videos"])

#: Reconnection delay suggested to EventSource clients (ms).
RECONNECT_MS = 2000

_EVENT_STREAM_DOC = {
    "description": "The event stream.",
    "content": {
        "text/event-stream": {
            "schema": {"type": "string"},
            "example": 'event: status\nid: 2\ndata: {"id": "...", "status": "submitted", ...}\n\n'
            ": keep-alive\n\n",
        }
    },
}


@router.get(
    "/videos/{video_id}/stream",
    operation_id="streamVideo",
    response_class=StreamingResponse,
    responses={
        **COMMON,
        200: _EVENT_STREAM_DOC,
        204: {"description": "Resumed after the terminal event: nothing more will come."},
        404: NOT_FOUND,
    },
    summary="Stream a video's status (Server-Sent Events)",
    description=STREAM_DESCRIPTION,
)
async def stream_video(
    video_id: VideoId,
    principal: StreamPrincipal,
    service: Service,
    playback: PlaybackDep,
    live: LiveDep,
    settings: SettingsDep,
    long_lived: LongLivedDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=64,
            description="The `id` of the last event received, to resume after it.",
        ),
    ] = None,
) -> Response:
    vid = parse_video_id(video_id)
    try:
        found = await service.find(principal, vid)
    except VideoNotFound:
        raise not_found() from None
    except JobsUnavailable as exc:
        raise unavailable() from exc
    after = sse.last_event_id(last_event_id)
    if (
        isinstance(found, VideoView)
        and found.status in TERMINAL_STATUSES
        and after is not None
        and after >= found.version
    ):
        return Response(status_code=204)
    release = long_lived.acquire(principal.user_id)
    return _HeldStream(
        release,
        _events(live, found, after, playback, settings.sse_keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _HeldStream(StreamingResponse):
    """Gives the user's long-lived slot back however the stream ends (also when the client
    is gone before the first byte, when the events generator never even starts)."""

    def __init__(
        self, release: Callable[[], None], content: AsyncIterator[bytes], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _events(
    live: LiveVideos,
    found: VideoView | PendingVideo,
    after: int | None,
    playback: Playback,
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    yield sse.retry(RECONNECT_MS)
    known = found if isinstance(found, VideoView) else None
    sent = after if after is not None else -1
    async with live.watch(
        found.video_id if isinstance(found, PendingVideo) else found.id, known=known
    ) as watch:
        if isinstance(found, PendingVideo) and sent < 0:
            yield sse.event("status", 0, present_pending(found).model_dump_json())
            sent = 0
        while True:
            view = await watch.next_change(sent, keepalive_s)
            if view is None:
                yield sse.KEEPALIVE
                continue
            yield sse.event("status", view.version, present(view, playback).model_dump_json())
            sent = view.version
            if view.status in TERMINAL_STATUSES:
                return
