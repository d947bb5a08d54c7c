"""The one client of the jobs service's internal query API (the gateway's reads, storage's).

Answers are typed by `openv_contracts.queries`. One rule for everything that is not an
answer: a transport failure, a status the route does not define, or a body that is not the
contract's shape raises `JobsUnavailable`, so a caller never guesses from a half answer.
"""

from collections.abc import AsyncIterator
from typing import TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from openv_contracts.queries import EventPage, JobsUnavailable, UsageView, VideoPage, VideoView
from openv_contracts.segments import path_segment
from openv_contracts.video import VideoStatus
from openv_infra.http import async_client

#: Calls in flight at once per client (the others wait for one of these connections).
CONNECTIONS = 100
#: Page size when walking every video of a status.
PAGE_SIZE = 100

Answer = TypeVar("Answer", bound=BaseModel)


class JobsApi:
    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        queue_s: float | None = None,
        connections: int = CONNECTIONS,
    ) -> None:
        """`timeout_s` bounds each step of a call (connect, send, each read). At most
        `connections` calls are in flight; the others wait in line for one, up to `queue_s`
        (default `timeout_s`). So a burst of reads queues here instead of opening thousands
        of connections to the jobs service at once, each waiting its turn there until they
        time out together (the 503s of a burst of stream opens, issue #23)."""
        self.base_url = base_url
        timeout = httpx.Timeout(timeout_s, pool=timeout_s if queue_s is None else queue_s)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = async_client(
            internal=True, base_url=base_url, timeout=timeout, limits=limits, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(
        self,
        path: str,
        answer: type[Answer],
        params: dict[str, str | int] | None = None,
        absent: int | None = None,
    ) -> Answer | None:
        """The answer at `path`; None when the status is `absent` (the route's "no such
        thing"); JobsUnavailable for anything else that is not a 200 with the right shape."""
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise JobsUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc
        if absent is not None and response.status_code == absent:
            return None
        if response.status_code != 200:
            raise JobsUnavailable(f"{path}: jobs answered {response.status_code}")
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            raise JobsUnavailable(f"{path}: unexpected {answer.__name__}: {exc}") from exc

    async def _must(
        self, path: str, answer: type[Answer], params: dict[str, str | int] | None = None
    ) -> Answer:
        found = await self._get(path, answer, params)
        assert found is not None  # no `absent` status: never None
        return found

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
        """The video now, or as it was at `version`; None if there is none (yet)."""
        params: dict[str, str | int] | None = None if version is None else {"version": version}
        return await self._get(f"/internal/videos/{video_id}", VideoView, params, absent=404)

    async def videos_page(
        self, user_id: str | None, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage | None:
        """One page, newest first (every user's when `user_id` is None); None when the cursor
        is not one the jobs service issued."""
        params: dict[str, str | int] = {"limit": limit}
        if user_id is not None:
            params["user_id"] = user_id
        if cursor:
            params["cursor"] = cursor
        if status:
            params["status"] = status.value
        return await self._get("/internal/videos", VideoPage, params, absent=422)

    async def videos(self, status: VideoStatus) -> AsyncIterator[VideoView]:
        """Every user's videos with `status`, newest first, page by page."""
        cursor: str | None = None
        while True:
            page = await self.videos_page(None, PAGE_SIZE, cursor, status)
            if page is None:
                raise JobsUnavailable(f"/internal/videos: jobs refused its own cursor {cursor}")
            for view in page.data:
                yield view
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def events(self, video_id: UUID) -> EventPage:
        return await self._must(f"/internal/videos/{video_id}/events", EventPage)

    async def usage(self, user_id: str) -> UsageView:
        return await self._must(f"/internal/users/{path_segment(user_id)}/usage", UsageView)

    async def healthy(self) -> bool:
        try:
            response = await self._http.get("/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
