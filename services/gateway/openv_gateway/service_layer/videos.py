"""The gateway's use cases: request a video and wait for the decision, read, cancel, delete."""

import asyncio
import secrets
import time
from collections.abc import Callable
from uuid import UUID, uuid4

from openv_gateway.adapters.command_bus import CommandBus
from openv_gateway.adapters.jobs_client import JobsClient
from openv_gateway.domain.principal import Principal
from openv_gateway.entrypoints.schemas import CreateVideoRequest
from openv_shared.contracts.commands import CancelVideo, DeleteVideo, RequestVideo
from openv_shared.contracts.queries import VideoView
from openv_shared.contracts.video import TERMINAL_STATUSES, VideoParams, VideoStatus

#: How often a waiting request re-reads the jobs service.
POLL_S = 0.05


class VideoNotFound(Exception):
    pass


class AlreadyTerminal(Exception):
    def __init__(self, view: VideoView) -> None:
        super().__init__(view.status)
        self.view = view


class VideosService:
    def __init__(self, jobs: JobsClient, commands: CommandBus, decision_wait_s: float) -> None:
        self.jobs = jobs
        self.commands = commands
        self.decision_wait_s = decision_wait_s

    async def create(
        self, principal: Principal, body: CreateVideoRequest
    ) -> tuple[UUID, RequestVideo, VideoView | None]:
        """Publish the request; return the decided video, or None if no decision came in time."""
        params = VideoParams(
            negative_prompt=body.negative_prompt,
            width=body.width,
            height=body.height,
            num_frames=body.num_frames,
            seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
            steps=body.steps,
            cfg=body.cfg,
        )
        video_id = uuid4()
        command = RequestVideo(video_id=video_id, prompt=body.prompt, params=params)
        await self.commands.send(command, principal.user_id)
        view = await self.wait_for(video_id, self.decision_wait_s, lambda v: True)
        return video_id, command, view

    async def wait_for(
        self, video_id: UUID, budget_s: float, done: Callable[[VideoView], bool]
    ) -> VideoView | None:
        """Re-read the video until `done` holds or the budget is spent; the last view seen."""
        deadline = time.monotonic() + budget_s
        view = await self.jobs.video(video_id)
        while (view is None or not done(view)) and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            view = await self.jobs.video(video_id)
        return view

    async def get(self, principal: Principal, video_id: UUID) -> VideoView:
        view = await self.jobs.video(video_id)
        if view is None or not principal.may_see(view.user_id):
            raise VideoNotFound(video_id)  # another user's video looks exactly like a missing one
        return view

    async def cancel(self, principal: Principal, video_id: UUID) -> VideoView:
        view = await self.get(principal, video_id)
        if view.status in TERMINAL_STATUSES:
            raise AlreadyTerminal(view)
        await self.commands.send(CancelVideo(video_id=video_id), view.user_id)
        decided = await self.wait_for(
            video_id, self.decision_wait_s, lambda v: v.status in TERMINAL_STATUSES
        )
        return decided or view

    async def delete(self, principal: Principal, video_id: UUID, wait_s: float) -> VideoView:
        view = await self.get(principal, video_id)
        if view.status is not VideoStatus.DELETED:
            await self.commands.send(DeleteVideo(video_id=video_id), view.user_id)
            view = (
                await self.wait_for(
                    video_id, self.decision_wait_s, lambda v: v.status is VideoStatus.DELETED
                )
                or view
            )
        if wait_s > 0 and not view.file_deleted:
            view = await self.wait_for(video_id, wait_s, lambda v: v.file_deleted) or view
        return view
