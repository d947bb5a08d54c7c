"""Internal query API for the gateway (not exposed to the internet)."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from openv_contracts.queries import EventPage, UsageView, VideoPage, VideoView
from openv_contracts.video import VideoStatus
from openv_jobs.adapters.queries import InvalidCursor, Queries

router = APIRouter(prefix="/internal")


async def get_queries(request: Request) -> Queries:
    queries: Queries = request.app.state.queries
    return queries


QueriesDep = Annotated[Queries, Depends(get_queries)]


@router.get("/videos/{video_id}", response_model=VideoView)
async def get_video(
    video_id: UUID,
    queries: QueriesDep,
    version: Annotated[int | None, Query(ge=1, description="the state at this version")] = None,
) -> VideoView:
    view = await queries.video(video_id, version)
    if view is None:
        raise HTTPException(404, "video not found")
    return view


@router.get("/videos", response_model=VideoPage)
async def list_videos(
    queries: QueriesDep,
    user_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    status: VideoStatus | None = None,
) -> VideoPage:
    try:
        return await queries.videos(user_id, limit, cursor, status)
    except InvalidCursor:
        raise HTTPException(422, "invalid cursor") from None


@router.get("/videos/{video_id}/events", response_model=EventPage)
async def video_events(video_id: UUID, queries: QueriesDep) -> EventPage:
    return await queries.events(video_id)


@router.get("/users/{user_id}/usage", response_model=UsageView)
async def usage(user_id: str, queries: QueriesDep) -> UsageView:
    return await queries.usage(user_id, datetime.now(UTC))
