"""The public v1 REST API."""

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from openv_gateway.adapters.command_bus import CommandUnavailable
from openv_gateway.adapters.jobs_client import JobsUnavailable
from openv_gateway.adapters.playback import Playback
from openv_gateway.entrypoints.auth import CurrentPrincipal
from openv_gateway.entrypoints.presenter import present
from openv_gateway.entrypoints.problems import ApiError
from openv_gateway.entrypoints.schemas import CreateVideoRequest, Problem, Video, VideoList
from openv_gateway.service_layer.videos import AlreadyTerminal, VideoNotFound, VideosService
from openv_shared.contracts.queries import EventPage, UsageView
from openv_shared.contracts.video import TERMINAL_STATUSES, VideoStatus

router = APIRouter(prefix="/v1")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 404, 422, 503)
}


def get_service(request: Request) -> VideosService:
    service: VideosService = request.app.state.videos
    return service


def get_playback(request: Request) -> Playback:
    playback: Playback = request.app.state.playback
    return playback


Service = Annotated[VideosService, Depends(get_service)]
PlaybackDep = Annotated[Playback, Depends(get_playback)]


def _video_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ApiError(404, "not_found", "no such video") from None


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such video")


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(
        503, "unavailable", "a backend service is unavailable; try again", {"Retry-After": "2"}
    )


def _poll_headers(video: Video, interval: int) -> dict[str, str]:
    return {} if video.status in TERMINAL_STATUSES else {"Retry-After": str(interval)}


@router.post(
    "/videos",
    status_code=202,
    response_model=Video,
    responses={**_ERRORS, 429: _ERRORS[401]},
    summary="Request a video",
)
async def create_video(
    body: CreateVideoRequest,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    request: Request,
) -> JSONResponse:
    try:
        video_id, command, view = await service.create(principal, body)
    except (CommandUnavailable, JobsUnavailable) as exc:
        raise _unavailable(exc) from exc
    location = {"Location": f"/v1/videos/{video_id}"}
    if view is None:
        # No decision in time: say so honestly; the client polls Location.
        now = datetime.now(UTC).isoformat()
        pending = {
            "id": str(video_id),
            "status": VideoStatus.PENDING.value,
            "progress": None,
            "queue_position": None,
            "prompt": command.prompt,
            "params": command.params.model_dump(mode="json"),
            "duration_seconds": round(command.params.duration_seconds, 3),
            "created_at": now,
            "updated_at": now,
            "video": None,
            "error": None,
            "file_deleted": False,
        }
        return JSONResponse(pending, status_code=202, headers={**location, "Retry-After": "1"})
    if view.status is VideoStatus.REJECTED and view.error:
        raise ApiError(429, view.error.code, view.error.message, {"Retry-After": "60"})
    video = present(view, playback)
    return JSONResponse(
        video.model_dump(mode="json"),
        status_code=202,
        headers={**location, **_poll_headers(video, request.app.state.poll_interval_s)},
    )


@router.get("/videos", response_model=VideoList, responses=_ERRORS, summary="List my videos")
async def list_videos(
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: VideoStatus | None = None,
) -> VideoList:
    user = None if principal.is_admin else principal.user_id
    try:
        page = await service.jobs.videos(user, limit, cursor, status)
    except JobsUnavailable as exc:
        raise _unavailable(exc) from exc
    if page is None:
        raise ApiError(
            422,
            "invalid_parameter",
            "the cursor is not valid",
            errors=[{"field": "cursor", "message": "not a cursor this API issued"}],
        )
    return VideoList(data=[present(v, playback) for v in page.data], next_cursor=page.next_cursor)


@router.get("/videos/{video_id}", response_model=Video, responses=_ERRORS, summary="Get a video")
async def get_video(
    video_id: str,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    request: Request,
    response: Response,
) -> Video:
    try:
        view = await service.get(principal, _video_id(video_id))
    except VideoNotFound:
        raise _not_found() from None
    except JobsUnavailable as exc:
        raise _unavailable(exc) from exc
    video = present(view, playback)
    response.headers.update(_poll_headers(video, request.app.state.poll_interval_s))
    return video


@router.get(
    "/videos/{video_id}/events",
    response_model=EventPage,
    responses=_ERRORS,
    summary="A video's event history",
)
async def video_events(video_id: str, principal: CurrentPrincipal, service: Service) -> EventPage:
    vid = _video_id(video_id)
    try:
        await service.get(principal, vid)
        return await service.jobs.events(vid)
    except VideoNotFound:
        raise _not_found() from None
    except JobsUnavailable as exc:
        raise _unavailable(exc) from exc


@router.post(
    "/videos/{video_id}/cancel",
    status_code=202,
    response_model=Video,
    responses={**_ERRORS, 409: _ERRORS[401]},
    summary="Cancel a video in progress",
)
async def cancel_video(
    video_id: str, principal: CurrentPrincipal, service: Service, playback: PlaybackDep
) -> Video:
    try:
        view = await service.cancel(principal, _video_id(video_id))
    except VideoNotFound:
        raise _not_found() from None
    except AlreadyTerminal as exc:
        raise ApiError(409, "conflict", f"the video is already {exc.view.status.value}") from None
    except (CommandUnavailable, JobsUnavailable) as exc:
        raise _unavailable(exc) from exc
    return present(view, playback)


@router.delete(
    "/videos/{video_id}",
    status_code=202,
    response_model=Video,
    responses={**_ERRORS, 200: {"model": Video, "description": "files confirmed deleted"}},
    summary="Delete a video and its files",
)
async def delete_video(
    video_id: str,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    wait: Annotated[int, Query(ge=0, le=30)] = 0,
) -> JSONResponse:
    try:
        view = await service.delete(principal, _video_id(video_id), wait)
    except VideoNotFound:
        raise _not_found() from None
    except (CommandUnavailable, JobsUnavailable) as exc:
        raise _unavailable(exc) from exc
    video = present(view, playback)
    return JSONResponse(
        video.model_dump(mode="json"), status_code=200 if video.file_deleted else 202
    )


@router.get("/usage", response_model=UsageView, responses=_ERRORS, summary="My limits and usage")
async def usage(principal: CurrentPrincipal, service: Service) -> UsageView:
    try:
        return await service.jobs.usage(principal.user_id)
    except JobsUnavailable as exc:
        raise _unavailable(exc) from exc
