"""`GET /v1/videos/{id}/stream`: the video's status as Server-Sent Events."""

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import TERMINAL_STATUSES
from openv_gateway.domain import sse
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.entrypoints.dependencies import (
    LongLivedDep,
    Service,
    StreamHubDep,
    VideoId,
    not_found,
    parse_video_id,
)
from openv_gateway.entrypoints.openapi_docs import STREAM_DESCRIPTION
from openv_gateway.entrypoints.presenter import present_pending
from openv_gateway.entrypoints.problems import COMMON, NOT_FOUND, unavailable
from openv_gateway.entrypoints.stream_auth import StreamPrincipal
from openv_gateway.entrypoints.video_json import VideoJson
from openv_gateway.service_layer.stream_hub import Encode, Slot, StreamHub
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
    hub: StreamHubDep,
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
    return EventStream(hub, found, after, release)


def status_frames(video_json: VideoJson) -> Encode:
    """How the hub encodes a view: the whole SSE frame around the JSON a GET answers (one
    encoding per state for both)."""

    def encode(view: VideoView) -> bytes:
        return sse.event("status", view.version, video_json.encode(view).decode())

    return encode


class EventStream(Response):
    """The stream's answer: a plain ASGI response (no task group, no generator) whose one
    coroutine writes what its hub slot hands it. A disconnect is noticed by one waiting
    `receive()`, and the user's long-lived slot is given back however the stream ends (also
    when the client is gone before the first byte)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        hub: StreamHub,
        found: VideoView | PendingVideo,
        after: int | None,
        release: Callable[[], None],
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(_HEADERS)
        self._hub = hub
        self._release = release
        self._sent = -1 if after is None else after
        self._first = sse.retry(RECONNECT_MS)
        self._known: VideoView | None = None
        if isinstance(found, PendingVideo):
            self._video_id = found.video_id
            if self._sent < 0:
                pending = present_pending(found).model_dump_json()
                self._first += sse.event("status", 0, pending)
                self._sent = 0
        else:
            self._video_id, self._known = found.id, found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slot: Slot | None = None
        gone: asyncio.Future[None] | None = None
        try:
            slot = await self._hub.join(self._video_id, self._known, self._sent)
            self._known = None  # the hub has it: nothing per stream beyond the slot
            gone = asyncio.ensure_future(_disconnect(receive))
            gone.add_done_callback(slot.client_gone)
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self._first, "more_body": True})
            while (frame := await slot.take()) is not None:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if gone is not None:
                gone.cancel()
            try:
                if slot is not None:
                    await self._hub.leave(slot)
            finally:
                self._release()


_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _disconnect(receive: Receive) -> None:
    """Returns once the client is gone (or the server considers the response complete)."""
    while (await receive())["type"] != "http.disconnect":
        pass
