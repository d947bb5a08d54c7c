"""Client of the jobs service's internal query API."""

from uuid import UUID

import httpx

from openv_contracts.queries import EventPage, UsageView, VideoPage, VideoView
from openv_contracts.segments import path_segment
from openv_contracts.video import VideoStatus
from openv_infra.http import async_client


class JobsUnavailable(Exception):
    """The jobs service did not answer usefully."""


class JobsClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._http = async_client(internal=True, base_url=base_url, timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, str | int] | None = None) -> httpx.Response:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise JobsUnavailable(f"{type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise JobsUnavailable(f"jobs answered {response.status_code}")
        return response

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
        """The video now, or as it was at `version`; None if there is none (yet)."""
        params: dict[str, str | int] | None = None if version is None else {"version": version}
        response = await self._get(f"/internal/videos/{video_id}", params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return VideoView.model_validate_json(response.content)

    async def videos(
        self, user_id: str | None, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage | None:
        """A page, or None when the cursor is not one the jobs service issued."""
        params: dict[str, str | int] = {"limit": limit}
        if user_id is not None:
            params["user_id"] = user_id
        if cursor:
            params["cursor"] = cursor
        if status:
            params["status"] = status.value
        response = await self._get("/internal/videos", params)
        if response.status_code == 422:
            return None
        response.raise_for_status()
        return VideoPage.model_validate_json(response.content)

    async def events(self, video_id: UUID) -> EventPage:
        response = await self._get(f"/internal/videos/{video_id}/events")
        response.raise_for_status()
        return EventPage.model_validate_json(response.content)

    async def usage(self, user_id: str) -> UsageView:
        response = await self._get(f"/internal/users/{path_segment(user_id)}/usage")
        response.raise_for_status()
        return UsageView.model_validate_json(response.content)

    async def healthy(self) -> bool:
        try:
            return (await self._get("/healthz")).status_code == 200
        except JobsUnavailable:
            return False
