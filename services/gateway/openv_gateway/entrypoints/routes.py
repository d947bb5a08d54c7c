"""The public v1 REST API."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from openv_contracts.video import TERMINAL_STATUSES, ErrorCode, VideoStatus
from openv_gateway.adapters.command_bus import CommandUnavailable
from openv_gateway.adapters.jobs_client import JobsUnavailable
from openv_gateway.adapters.playback import Playback
from openv_gateway.domain import idempotency
from openv_gateway.domain.long_lived import OpenRequests, TooManyOpen
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.domain.prefer import MAX_WAIT_S, InvalidPreference, parse_wait
from openv_gateway.entrypoints.auth import CurrentPrincipal
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
    RETRY_AFTER,
    ApiError,
    header_doc,
    problem_response,
    unavailable,
)
from openv_gateway.entrypoints.schemas import (
    CreateVideoRequest,
    SafeText,
    Usage,
    Video,
    VideoEventList,
    VideoList,
)
from openv_gateway.service_layer.videos import (
    AlreadyTerminal,
    IdempotencyConflict,
    NotDecidedYet,
    VideoNotFound,
    VideoRequest,
    VideosService,
)

router = APIRouter(prefix="/v1", tags=["videos"])

#: Retry-After while a video is `pending` (decisions normally take milliseconds).
PENDING_RETRY_AFTER_S = 1

IDEMPOTENCY_DESCRIPTION = f"""\
Makes the create safe to retry (e.g. after a timeout or a dropped connection), at most
{idempotency.MAX_KEY_LENGTH} printable ASCII characters; use a fresh UUID per intended video.

* The same key with the same body returns the same video and makes exactly one job, also when
  retries arrive concurrently (on any gateway instance).
* The same key with a different body is answered `409 conflict`.
* Without a `seed` in the body, the seed is derived from the key, so a retry's body is the same.
* Retention: the key is bound to the video it created for as long as that video's record
  exists (at least the 24 h the contract promises; records are kept after deletion), so a key
  must never be reused for another video. A request refused by a limit is remembered too:
  retrying its key replays the 429; send a new key to try again.
* Keys are scoped per user: two users' identical keys never collide."""

PREFER_DESCRIPTION = f"""\
RFC 7240 preferences. `wait=N` (0 <= N <= {MAX_WAIT_S}) holds the answer until the video is
terminal (completed, failed, cancelled, timed_out, rejected, deleted) or N seconds have passed,
whichever comes first; the answer then carries `Preference-Applied: wait=N`. Other preferences
are ignored; a `wait` that is not a whole number within bounds is a 422."""

CREATE_DESCRIPTION = """\
Publishes the request to the jobs service and waits a bounded time (the gateway's decision
budget, a few seconds) for its decision:

* `202` with status `queued` (or later) and `Location`: accepted.
* `429` `concurrency_limit` / `quota_exceeded` with `Retry-After`: refused by a limit.
* `202` with status `pending`: no decision arrived in time. The request was published and will
  be decided; poll `Location` (this instance answers `pending` until the decision, other
  instances may answer 404 for that short while) or use an Idempotency-Key to retry safely."""


async def get_service(request: Request) -> VideosService:
    service: VideosService = request.app.state.videos
    return service


async def get_playback(request: Request) -> Playback:
    playback: Playback = request.app.state.playback
    return playback


Service = Annotated[VideosService, Depends(get_service)]
PlaybackDep = Annotated[Playback, Depends(get_playback)]
VideoId = Annotated[str, Path(description="The video's id (a UUID).")]


def parse_video_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise _not_found() from None


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such video")


def _not_decided() -> ApiError:
    return ApiError(
        409,
        "conflict",
        "the video is not decided yet; try again in a moment",
        {"Retry-After": str(PENDING_RETRY_AFTER_S)},
    )


def acquire_open(request: Request, user_id: str) -> Callable[[], None]:
    """Counts one long-lived request (stream, wait) of the user on this instance; returns its
    release. 429 `rate_limited` when the user already holds the limit open."""
    opened: OpenRequests = request.app.state.open_requests
    try:
        opened.acquire(user_id)
    except TooManyOpen:
        retry: int = request.app.state.open_retry_after_s
        raise ApiError(
            429,
            "rate_limited",
            f"too many streams and waits open at once (at most {opened.limit}); close one",
            {"Retry-After": str(retry)},
        ) from None
    return lambda: opened.release(user_id)


@contextmanager
def held_open(request: Request, user_id: str) -> Iterator[None]:
    release = acquire_open(request, user_id)
    try:
        yield
    finally:
        release()


def poll_headers(video: Video, interval: int) -> dict[str, str]:
    if video.status is VideoStatus.PENDING:
        return {"Retry-After": str(PENDING_RETRY_AFTER_S)}
    return {} if video.status in TERMINAL_STATUSES else {"Retry-After": str(interval)}


def _seconds_to_next_month(now: datetime) -> int:
    nxt = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return max(1, int((nxt - now).total_seconds()))


def _refusal_retry_after(code: str, request: Request) -> int:
    if code == ErrorCode.QUOTA_EXCEEDED.value:
        return _seconds_to_next_month(datetime.now(UTC))
    retry: int = request.app.state.concurrency_retry_after_s
    return retry


_VIDEO_202 = {
    "model": Video,
    "description": "Accepted (status `queued` or later), or `pending` when no decision came "
    "in time.",
    "headers": {
        "Location": header_doc("The video's URL.", {"type": "string"}, True),
        "Retry-After": POLL_AFTER,
        "Preference-Applied": header_doc(
            "`wait=N` when `Prefer: wait=N` was honoured.", {"type": "string"}, False
        ),
    },
}
_REFUSED = problem_response(
    "`concurrency_limit` or `quota_exceeded` (refused by the jobs service), or `rate_limited`.",
    {"Retry-After": RETRY_AFTER},
)


@router.post(
    "/videos",
    status_code=202,
    response_model=Video,
    responses={**COMMON, 202: _VIDEO_202, 409: CONFLICT, 429: _REFUSED},
    summary="Request a video",
    description=CREATE_DESCRIPTION,
)
async def create_video(
    body: CreateVideoRequest,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=idempotency.MAX_KEY_LENGTH,
            pattern=idempotency.KEY_PATTERN,
            description=IDEMPOTENCY_DESCRIPTION,
        ),
    ] = None,
    prefer: Annotated[
        str | None, Header(alias="Prefer", max_length=256, description=PREFER_DESCRIPTION)
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
    video_request = VideoRequest(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        width=body.width,
        height=body.height,
        num_frames=body.num_frames,
        seed=body.seed,
        steps=body.steps,
        cfg=body.cfg,
    )
    # Only a create that waits for more than the decision is long-lived.
    holding = held_open(request, principal.user_id) if wait else nullcontext()
    try:
        with holding:
            created = await service.create(principal, video_request, idempotency_key, wait)
    except IdempotencyConflict:
        raise ApiError(
            409,
            "conflict",
            "this Idempotency-Key was used with a different request body",
        ) from None
    except (CommandUnavailable, JobsUnavailable) as exc:
        raise unavailable() from exc
    headers = {"Location": f"/v1/videos/{created.video_id}"}
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait}"
    view = created.view
    if view is None:
        video = present_pending(created.pending)
    elif view.status is VideoStatus.REJECTED and view.error:
        retry = _refusal_retry_after(view.error.code, request)
        raise ApiError(429, view.error.code, view.error.message, {"Retry-After": str(retry)})
    else:
        video = present(view, playback)
    headers.update(poll_headers(video, request.app.state.poll_interval_s))
    return JSONResponse(video.model_dump(mode="json"), status_code=202, headers=headers)


@router.get(
    "/videos",
    response_model=VideoList,
    responses=COMMON,
    summary="List my videos, newest first",
    description="Cursor pagination, stable under concurrent inserts: a page never repeats or "
    "skips a video because others were created meanwhile. Admins see every user's videos.",
)
async def list_videos(
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[
        SafeText | None,
        Query(max_length=512, description="`next_cursor` of the previous page."),
    ] = None,
    status: Annotated[VideoStatus | None, Query(description="Only videos in this status.")] = None,
) -> VideoList:
    user = None if principal.is_admin else principal.user_id
    try:
        page = await service.jobs.videos(user, limit, cursor, status)
    except JobsUnavailable as exc:
        raise unavailable() from exc
    if page is None:
        raise ApiError(
            422,
            "invalid_parameter",
            "the cursor is not valid",
            errors=[{"field": "cursor", "message": "not a cursor this API issued"}],
        )
    return VideoList(data=[present(v, playback) for v in page.data], next_cursor=page.next_cursor)


@router.get(
    "/videos/{video_id}",
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
async def get_video(
    video_id: VideoId,
    principal: CurrentPrincipal,
    service: Service,
    playback: PlaybackDep,
    request: Request,
    response: Response,
) -> Video:
    try:
        found = await service.find(principal, parse_video_id(video_id))
    except VideoNotFound:
        raise _not_found() from None
    except JobsUnavailable as exc:
        raise unavailable() from exc
    video = present_pending(found) if isinstance(found, PendingVideo) else present(found, playback)
    response.headers.update(poll_headers(video, request.app.state.poll_interval_s))
    return video


@router.get(
    "/videos/{video_id}/events",
    response_model=VideoEventList,
    responses={**COMMON, 404: NOT_FOUND},
    summary="A video's event history, oldest first",
)
async def video_events(
    video_id: VideoId, principal: CurrentPrincipal, service: Service
) -> VideoEventList:
    vid = parse_video_id(video_id)
    try:
        found = await service.find(principal, vid)
        if isinstance(found, PendingVideo):
            return VideoEventList(data=[])
        return present_events(await service.jobs.events(vid))
    except VideoNotFound:
        raise _not_found() from None
    except JobsUnavailable as exc:
        raise unavailable() from exc


_CANCEL_CONFLICT = problem_response(
    "`conflict`: the video is already terminal (or not decided yet: then with `Retry-After`)."
)


@router.post(
    "/videos/{video_id}/cancel",
    status_code=202,
    response_model=Video,
    responses={**COMMON, 404: NOT_FOUND, 409: _CANCEL_CONFLICT},
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
        raise _not_found() from None
    except NotDecidedYet:
        raise _not_decided() from None
    except AlreadyTerminal as exc:
        raise ApiError(409, "conflict", f"the video is already {exc.view.status.value}") from None
    except (CommandUnavailable, JobsUnavailable) as exc:
        raise unavailable() from exc
    return present(view, playback)


@router.delete(
    "/videos/{video_id}",
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
    request: Request,
    wait: Annotated[
        int, Query(ge=0, le=30, description="Seconds to wait for the files' removal.")
    ] = 0,
) -> JSONResponse:
    vid = parse_video_id(video_id)
    try:
        with held_open(request, principal.user_id) if wait else nullcontext():
            view = await service.delete(principal, vid, wait)
    except VideoNotFound:
        raise _not_found() from None
    except NotDecidedYet:
        raise _not_decided() from None
    except (CommandUnavailable, JobsUnavailable) as exc:
        raise unavailable() from exc
    video = present(view, playback)
    return JSONResponse(
        video.model_dump(mode="json"), status_code=200 if video.file_deleted else 202
    )


@router.get("/usage", response_model=Usage, responses=COMMON, summary="My limits and usage")
async def usage(principal: CurrentPrincipal, service: Service) -> Usage:
    try:
        return present_usage(await service.jobs.usage(principal.user_id))
    except JobsUnavailable as exc:
        raise unavailable() from exc
