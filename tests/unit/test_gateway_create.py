"""The gateway's use cases against fakes of its ports (service_layer/ports.py): what a create
answers when the jobs service moved on already, and the reads that go through the service."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from openv_contracts.base import Message
from openv_contracts.commands import RequestVideo
from openv_contracts.queries import (
    EventPage,
    EventView,
    UsageView,
    VideoErrorView,
    VideoPage,
    VideoView,
)
from openv_contracts.video import VideoStatus
from openv_gateway.domain import idempotency
from openv_gateway.domain.pending import PendingRequests
from openv_gateway.domain.principal import Principal
from openv_gateway.entrypoints.schemas import CreateVideoRequest
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.videos import InvalidCursor, VideosService
from tests.unit.test_gateway_live import view

PERIOD_END = datetime(2031, 1, 1, tzinfo=UTC)


class FastJobs:
    """A jobs service (reads and commands) that accepts a request and has it submitted
    before anyone reads it."""

    def __init__(self) -> None:
        self.history: dict[UUID, list[VideoView]] = {}
        self.live: LiveVideos | None = None
        self.pages: list[tuple[str | None, int, str | None, VideoStatus | None]] = []

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None:
        history = self.history.get(video_id, [])
        if version is not None:
            return next((v for v in history if v.version == version), None)
        return history[-1] if history else None

    async def videos_page(
        self, user_id: str | None, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage | None:
        self.pages.append((user_id, limit, cursor, status))
        if cursor == "forged":
            return None
        return VideoPage(data=[v[-1] for v in self.history.values()], next_cursor=None)

    async def events(self, video_id: UUID) -> EventPage:
        return EventPage(
            data=[
                EventView(type="VideoAccepted", occurred_at=v.created_at, data={}, version=1)
                for v in self.history.get(video_id, [])[:1]
            ]
        )

    async def usage(self, user_id: str) -> UsageView:
        start = datetime(2030, 12, 1, tzinfo=UTC)
        return UsageView(
            active_jobs=0,
            max_active_jobs=3,
            used_seconds=600.0,
            quota_seconds=600.0,
            period_start=start,
            period_end=PERIOD_END,
        )

    async def healthy(self) -> bool:
        return True

    async def send(self, command: Message, user_id: str) -> None:
        assert isinstance(command, RequestVideo)
        vid = command.video_id
        asked = {"prompt": command.prompt, "params": command.params}
        self.history[vid] = [
            view(vid, 1).model_copy(update=asked),
            view(vid, 2, VideoStatus.SUBMITTED).model_copy(update=asked),
        ]
        assert self.live is not None
        self.live.notify(vid, 1)  # the feed reports the decision after both happened


def service(jobs: FastJobs) -> VideosService:
    live = LiveVideos(jobs.video, fallback_s=30.0)
    jobs.live = live
    return VideosService(jobs, jobs, live, decision_wait_s=5.0, pending=PendingRequests(ttl_s=60.0))


REQUEST = CreateVideoRequest(prompt="fox", seed=1)


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


async def test_the_request_body_is_converted_once_with_the_default_seed() -> None:
    unseeded = CreateVideoRequest(prompt="fox", width=384, steps=20)
    derived = await service(FastJobs()).create(Principal("alice"), unseeded, "k-1")
    explicit = await service(FastJobs()).create(Principal("alice"), REQUEST, "k-1")
    params = derived.pending.params
    assert (params.width, params.steps, params.height) == (384, 20, 480)
    assert params.seed == idempotency.seed_for("alice", "k-1")  # chosen from the key
    assert explicit.pending.params.seed == 1  # the client's own is kept


async def test_a_list_is_the_users_own_and_an_admins_everyones() -> None:
    jobs = FastJobs()
    videos = service(jobs)
    await videos.list_videos(Principal("alice"), 20, None, VideoStatus.QUEUED)
    await videos.list_videos(Principal("root", is_admin=True), 5, "c", None)
    assert jobs.pages == [("alice", 20, None, VideoStatus.QUEUED), (None, 5, "c", None)]
    with pytest.raises(InvalidCursor):
        await videos.list_videos(Principal("alice"), 20, "forged", None)


async def test_events_of_a_video_are_read_through_the_service() -> None:
    jobs = FastJobs()
    videos = service(jobs)
    created = await videos.create(Principal("alice"), REQUEST)
    page = await videos.events(Principal("alice"), created.video_id)
    assert [e.type for e in page.data] == ["VideoAccepted"]


async def test_a_quota_refusal_tells_when_the_quota_resets() -> None:
    videos = service(FastJobs())
    refused = view(uuid4(), 1, VideoStatus.REJECTED)
    said = datetime(2030, 12, 1, tzinfo=UTC)
    with_time = refused.model_copy(
        update={"error": VideoErrorView(code="quota_exceeded", message="m", retry_at=said)}
    )
    older = refused.model_copy(update={"error": VideoErrorView(code="quota_exceeded", message="m")})
    busy = refused.model_copy(
        update={"error": VideoErrorView(code="concurrency_limit", message="m")}
    )
    assert await videos.quota_resets_at(with_time) == said  # as the refusal says
    assert await videos.quota_resets_at(older) == PERIOD_END  # recorded before it said
    assert await videos.quota_resets_at(busy) is None
