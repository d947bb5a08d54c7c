"""The public v1 REST API: each route translates HTTP into one use case of `VideosService`
and its answer (or refusal) back into HTTP. Texts of the OpenAPI document: `openapi_docs`."""

from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from openv_contracts.public_video import Video
from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import TERMINAL_STATUSES, VideoStatus
from openv_gateway.adapters.command_bus import CommandUnavailable
from openv_gateway.config import Settings
from openv_gateway.domain import idempotency
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.domain.prefer import InvalidPreference, parse_wait
from openv_gateway.entrypoints import openapi_docs as docs
from openv_gateway.entrypoints.auth import CurrentPrincipal
from openv_gateway.entrypoints.dependencies import (
    LongLivedDep,
    PlaybackDep,
    Service,
    SettingsDep,
    VideoId,
    WebhookTargetsDep,
    not_found,
    parse_video_id,
)
from openv_gateway.entrypoints.presenter import (
    present,
    present_events,
    present_pending,
    present_usage,
)
from openv_gateway.entrypoints.problems import (
    COMMON,
    CONFLICT,
    NOT_FOUND,
    POLL_AFTER,
    ApiError,
    problem_response,
    unavailable,
)
from openv_gateway.entrypoints.schemas import (
    CreateVideoRequest,
    SafeText,
    Usage,
    VideoEventList,
    VideoList,
)
from openv_gateway.entrypoints.video_json import VideoJson
from openv_gateway.entrypoints.webhook_routes import checked_webhook
from openv_gateway.service_layer.videos import (
    AlreadyTerminal,
    IdempotencyConflict,
    InvalidCursor,
    NotDecidedYet,
    VideoNotFound,
    VideosService,
)

router = APIRouter(prefix="/v1", tags=["videos"])

#: Retry-After while a video is `pending` (decisions normally take milliseconds).
PENDING_RETRY_AFTER_S = 1

#: A backend did not answer: 503 `unavailable`.
BACKEND_DOWN = (CommandUnavailable, JobsUnavailable)


def _not_decided() -> ApiError:
    return ApiError(
        409,
        "conflict",
        "the video is not decided yet; try again in a moment",
        {"Retry-After": str(PENDING_RETRY_AFTER_S)},
    )


def poll_headers(status: VideoStatus, interval: int) -> dict[str, str]:
    if status is VideoStatus.PENDING:
        return {"Retry-After": str(PENDING_RETRY_AFTER_S)}
    return {} if status in TERMINAL_STATUSES else {"Retry-After": str(interval)}


def _json(body: bytes, headers: dict[str, str] | None = None) -> Response:
    """Bytes the service encoded itself (`VideoJson`), answered as they are."""
    return Response(body, media_type="application/json", headers=headers)


async def _refused(view: VideoView, service: VideosService, settings: Settings) -> ApiError:
    """A create the jobs service refused: 429 with when to try again (the quota's reset, as
    the jobs service tells it; else the configured pause)."""
    assert view.error is not None
    retry = settings.concurrency_retry_after_s
    resets_at = await service.quota_resets_at(view)
    if resets_at is not None:
        retry = max(1, int((resets_at - datetime.now(UTC)).total_seconds()))
    return ApiError(429, view.error.code, view.error.message, {"Retry-After": str(retry)})


@router.post(
    "/videos",
    operation_id="createVideo",
    status_code=202,
    response_model=Video,
    responses={**COMMON, 202: docs.VIDEO_202, 409: CONFLICT, 429: docs.REFUSED},
    summary="Request a video",
    description=docs.CREATE_DESCRIPTION,
)
async def create_video(
    body: CreateVideoRequest,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    settings: SettingsDep,
    long_lived: LongLivedDep,
    targets: WebhookTargetsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=idempotency.MAX_KEY_LENGTH,
            pattern=idempotency.KEY_PATTERN,
            description=docs.IDEMPOTENCY_DESCRIPTION,
        ),
    ] = None,
    prefer: Annotated[
        str | None, Header(alias="Prefer", max_length=256, description=docs.PREFER_DESCRIPTION)
    ] = None,
) -> JSONResponse:
    try:
        wait = parse_wait(prefer)
    except InvalidPreference as exc:
        raise ApiError(
            422,
            "invalid_parameter",
            "the request has invalid parameters",
            errors=[{"field": "Prefer", "message": str(exc)}],
        ) from None
    webhook = await checked_webhook(targets, body)
    # Only a create that waits for more than the decision is long-lived.
    holding = long_lived.held(principal.user_id) if wait else nullcontext()
    try:
        with holding:
            created = await service.create(principal, body, idempotency_key, wait, webhook)
        view = created.view
        if view is not None and view.status is VideoStatus.REJECTED and view.error:
            raise await _refused(view, service, settings)
    except IdempotencyConflict:
        raise ApiError(
            409,
            "conflict",
            "this Idempotency-Key was used with a different request body",
        ) from None
    except BACKEND_DOWN as exc:
        raise unavailable() from exc
    headers = {"Location": f"/v1/videos/{created.video_id}"}
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait}"
    video = present_pending(created.pending) if view is None else present(view, playback)
    headers.update(poll_headers(video.status, settings.poll_interval_s))
    return JSONResponse(video.model_dump(mode="json"), status_code=202, headers=headers)


@router.get(
    "/videos",
    operation_id="listVideos",
    response_model=VideoList,
    responses=COMMON,
    summary="List my videos, newest first",
    description="Cursor pagination, stable under concurrent inserts: a page never repeats or "
    "skips a video because others were created meanwhile. Admins see every user's videos.",
)
async def list_videos(
    principal: CurrentPrincipal,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[
        SafeText | None,
        Query(max_length=512, description="`next_cursor` of the previous page."),
    ] = None,
    status: Annotated[VideoStatus | None, Query(description="Only videos in this status.")] = None,
) -> Response:
    # The app's objects straight from its state: a dependency each costs more than the read.
    state = request.app.state
    service: VideosService = state.videos
    try:
        page = await service.list_videos(principal, limit, cursor, status)
    except InvalidCursor:
        raise ApiError(
            422,
            "invalid_parameter",
            "the cursor is not valid",
            errors=[{"field": "cursor", "message": "not a cursor this API issued"}],
        ) from None
    except JobsUnavailable as exc:
        raise unavailable() from exc
    encoder: VideoJson = state.video_json
    return _json(encoder.encode_page(page))


@router.get(
    "/videos/{video_id}",
    operation_id="getVideo",
    response_model=Video,
    responses={
        **COMMON,
        200: {
            "description": "The video (also when deleted).",
            "headers": {"Retry-After": POLL_AFTER},
        },
        404: NOT_FOUND,
    },
    summary="Get a video",
)
async def get_video(video_id: VideoId, principal: CurrentPrincipal, request: Request) -> Response:
    state = request.app.state  # (see list_videos)
    service: VideosService = state.videos
    settings: Settings = state.settings
    try:
        found = await service.find(principal, parse_video_id(video_id))
    except VideoNotFound:
        raise not_found() from None
    except JobsUnavailable as exc:
        raise unavailable() from exc
    if isinstance(found, PendingVideo):
        pending = present_pending(found)
        body, status = pending.__pydantic_serializer__.to_json(pending), VideoStatus.PENDING
    else:
        encoder: VideoJson = state.video_json
        body, status = encoder.encode(found), found.status
    return _json(body, poll_headers(status, settings.poll_interval_s))


@router.get(
    "/videos/{video_id}/events",
    operation_id="getVideoEvents",
    response_model=VideoEventList,
    responses={**COMMON, 404: NOT_FOUND},
    summary="A video's event history, oldest first",
)
async def video_events(
    video_id: VideoId, principal: CurrentPrincipal, service: Service
) -> VideoEventList:
    try:
        return present_events(await service.events(principal, parse_video_id(video_id)))
    except VideoNotFound:
        raise not_found() from None
    except JobsUnavailable as exc:
        raise unavailable() from exc


@router.post(
    "/videos/{video_id}/cancel",
    operation_id="cancelVideo",
    status_code=202,
    response_model=Video,
    responses={**COMMON, 404: NOT_FOUND, 409: docs.CANCEL_CONFLICT},
    summary="Cancel a video in progress",
    description="Cancels a queued, submitted or running video (also on RunPod) and answers "
    "the video once the cancellation is recorded (or after the decision budget).",
)
async def cancel_video(
    video_id: VideoId, principal: CurrentPrincipal, service: Service, playback: PlaybackDep
) -> Video:
    try:
        view = await service.cancel(principal, parse_video_id(video_id))
    except VideoNotFound:
        raise not_found() from None
    except NotDecidedYet:
        raise _not_decided() from None
    except AlreadyTerminal as exc:
        raise ApiError(409, "conflict", f"the video is already {exc.view.status.value}") from None
    except BACKEND_DOWN as exc:
        raise unavailable() from exc
    return present(view, playback)


@router.delete(
    "/videos/{video_id}",
    operation_id="deleteVideo",
    status_code=202,
    response_model=Video,
    responses={
        **COMMON,
        200: {"model": Video, "description": "Deleted and its files confirmed removed."},
        202: {"description": "Marked deleted; its files are being removed."},
        404: NOT_FOUND,
        409: problem_response("`conflict`: the video is not decided yet; retry shortly."),
    },
    summary="Delete a video and its files",
    description="Idempotent. Marks the video deleted, cancels it if in flight and removes its "
    "files. `wait=N` holds the answer until the files are confirmed removed (then 200) or N "
    "seconds pass (then 202).",
)
async def delete_video(
    video_id: VideoId,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    long_lived: LongLivedDep,
    wait: Annotated[
        int, Query(ge=0, le=30, description="Seconds to wait for the files' removal.")
    ] = 0,
) -> JSONResponse:
    vid = parse_video_id(video_id)
    try:
        with long_lived.held(principal.user_id) if wait else nullcontext():
            view = await service.delete(principal, vid, wait)
    except VideoNotFound:
        raise not_found() from None
    except NotDecidedYet:
        raise _not_decided() from None
    except BACKEND_DOWN as exc:
        raise unavailable() from exc
    video = present(view, playback)
    return JSONResponse(
        video.model_dump(mode="json"), status_code=200 if video.file_deleted else 202
    )


@router.get(
    "/usage",
    operation_id="getUsage",
    response_model=Usage,
    responses=COMMON,
    summary="My limits and usage",
)
async def usage(principal: CurrentPrincipal, service: Service) -> Usage:
    try:
        return present_usage(await service.usage(principal))
    except JobsUnavailable as exc:
        raise unavailable() from exc
