"""Client of the jobs service's internal query API: the video states the storage service needs."""

from collections.abc import AsyncIterator
from uuid import UUID

import httpx
from pydantic import ValidationError

from openv_contracts.queries import VideoPage, VideoView
from openv_contracts.video import VideoStatus
from openv_infra.http import async_client

PAGE_SIZE = 100


class JobsUnavailable(Exception):
    """The jobs service did not answer usefully; the caller must not guess."""


class JobsApi:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url
        self._http = async_client(
            internal=True, base_url=base_url, timeout=timeout_s, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, str | int] | None = None) -> httpx.Response:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise JobsUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in (200, 404):
            raise JobsUnavailable(f"{path}: jobs answered {response.status_code}")
        return response

    async def video(self, video_id: UUID) -> VideoView | None:
        """The video's view, or None if the jobs service does not know it (404)."""
        response = await self._get(f"/internal/videos/{video_id}")
        if response.status_code == 404:
            return None
        try:
            return VideoView.model_validate_json(response.content)
        except ValidationError as exc:
            raise JobsUnavailable(f"unexpected video view: {exc}") from exc

    async def videos(self, status: VideoStatus) -> AsyncIterator[VideoView]:
        """Every user's videos with `status`, newest first, page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"status": status.value, "limit": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            response = await self._get("/internal/videos", params)
            if response.status_code == 404:
                raise JobsUnavailable("/internal/videos: jobs answered 404")
            try:
                page = VideoPage.model_validate_json(response.content)
            except ValidationError as exc:
                raise JobsUnavailable(f"unexpected video page: {exc}") from exc
            for view in page.data:
                yield view
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def healthy(self) -> bool:
        try:
            return (await self._get("/healthz")).status_code == 200
        except JobsUnavailable:
            return False
