"""The create use case against fakes: what it answers when the jobs service moved on already."""

from typing import Any, cast
from uuid import UUID

from openv_contracts.commands import RequestVideo
from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus
from openv_gateway.adapters.command_bus import CommandBus
from openv_gateway.adapters.jobs_client import JobsClient
from openv_gateway.domain.pending import PendingRequests
from openv_gateway.domain.principal import Principal
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.videos import VideoRequest, VideosService
from tests.unit.test_gateway_live import view


class FastJobs:
    """A jobs service that accepts a request and has it submitted before anyone reads it."""

    def __init__(self) -> None:
        self.history: dict[UUID, list[VideoView]] = {}
        self.live: LiveVideos | None = None

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
        history = self.history.get(video_id, [])
        if version is not None:
            return next((v for v in history if v.version == version), None)
        return history[-1] if history else None

    async def send(self, command: Any, user_id: str) -> None:
        assert isinstance(command, RequestVideo)
        vid = command.video_id
        self.history[vid] = [view(vid, 1), view(vid, 2, VideoStatus.SUBMITTED)]
        assert self.live is not None
        self.live.notify(vid, 1)  # the feed reports the decision after both happened


def service(jobs: FastJobs) -> VideosService:
    live = LiveVideos(jobs.video, fallback_s=30.0)
    jobs.live = live
    return VideosService(
        cast(JobsClient, jobs),
        cast(CommandBus, jobs),
        live,
        decision_wait_s=5.0,
        pending=PendingRequests(ttl_s=60.0),
    )


REQUEST = VideoRequest(
    prompt="fox",
    negative_prompt="",
    width=848,
    height=480,
    num_frames=31,
    seed=1,
    steps=40,
    cfg=6.0,
)


async def test_a_create_answers_the_decision_even_when_the_video_moved_on() -> None:
    jobs = FastJobs()
    created = await service(jobs).create(Principal("alice"), REQUEST)
    assert created.view is not None
    assert (created.view.status, created.view.version) == (VideoStatus.QUEUED, 1)


async def test_a_create_that_waits_answers_the_latest_state() -> None:
    jobs = FastJobs()
    created = await service(jobs).create(Principal("alice"), REQUEST, prefer_wait_s=1)
    assert created.view is not None
    assert created.view.status is VideoStatus.SUBMITTED  # Prefer: wait shows what is now
