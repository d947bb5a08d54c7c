"""The gateway folds the video-events topic with `openv_contracts.video_views.next_view`; every
view it builds must be exactly the one the jobs service folds and serves at that version."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from openv_contracts import Envelope
from openv_contracts.base import Message
from openv_contracts.commands import RequestVideo
from openv_contracts.events import (
    VideoAccepted,
    VideoCancelled,
    VideoCompleted,
    VideoDeleted,
    VideoFailed,
    VideoFileDeleted,
    VideoPosterAdded,
    VideoProgressed,
    VideoRejected,
    VideoRunning,
    VideoSubmitted,
    VideoTimedOut,
    video_stream_id,
)
from openv_contracts.queries import VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_contracts.video_views import next_view
from openv_jobs.adapters.queries import _view
from openv_jobs.domain.projection import fold_video
from openv_jobs.service_layer.recorder import NewEvent

PARAMS = VideoParams(seed=5)
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def accepted(vid: UUID) -> VideoAccepted:
    return VideoAccepted(
        video_id=vid,
        prompt="a cat",
        params=PARAMS,
        duration_seconds=PARAMS.duration_seconds,
        charged_seconds=PARAMS.duration_seconds,
        object_prefix=f"videos/alice/{vid}/",
    )


def lives(vid: UUID) -> dict[str, list[Message]]:
    """Every path a video's stream can take, event by event."""
    done = [VideoDeleted(video_id=vid, previous_status=VideoStatus.COMPLETED, object_prefix="p/")]
    gone = [*done, VideoFileDeleted(video_id=vid, objects_removed=2)]
    return {
        "completed": [
            accepted(vid),
            VideoSubmitted(video_id=vid, runpod_job_id="job-1"),
            VideoRunning(video_id=vid),
            VideoProgressed(video_id=vid, progress=40),
            VideoRunning(video_id=vid, progress=60),
            VideoCompleted(video_id=vid, object_key=f"videos/alice/{vid}/video.mp4", size_bytes=9),
            VideoPosterAdded(video_id=vid, object_key="poster.jpg", width=16, height=16),
            *gone,
        ],
        "failed": [
            accepted(vid),
            VideoSubmitted(video_id=vid, runpod_job_id="job-2"),
            VideoRunning(video_id=vid, progress=5),
            VideoFailed(video_id=vid, code="runpod_failed", message="CUDA out of memory"),
            *gone,
        ],
        "cancelled": [
            accepted(vid),
            VideoCancelled(video_id=vid, previous_status=VideoStatus.QUEUED),
            *done,
        ],
        "timed out": [
            accepted(vid),
            VideoSubmitted(video_id=vid, runpod_job_id="job-3"),
            VideoTimedOut(video_id=vid, reason="no answer from RunPod for 1 h"),
        ],
        "rejected": [
            VideoRejected(
                video_id=vid,
                prompt="a cat",
                params=PARAMS,
                code="quota_exceeded",
                message="monthly quota used up",
                retry_at=datetime(2026, 12, 1, tzinfo=UTC),
            ),
            *done,
        ],
    }


def published(vid: UUID, event: Message, version: int, at: datetime) -> Envelope:
    """The event as the relay publishes it: its envelope, through JSON."""
    cause = Envelope.wrap(
        RequestVideo(video_id=vid, prompt="a cat", params=PARAMS), user_id="alice"
    )
    new = NewEvent(cause, event, uuid4(), "alice", video_stream_id(vid), version, at)
    return Envelope.model_validate_json(new.envelope().model_dump_json())


@pytest.mark.parametrize("life", ["completed", "failed", "cancelled", "timed out", "rejected"])
def test_every_view_the_topic_tells_is_the_jobs_services_own(life: str) -> None:
    vid = uuid4()
    state = None
    view: VideoView | None = None
    for version, event in enumerate(lives(vid)[life], start=1):
        at = START + timedelta(seconds=7 * version)
        state = fold_video(state, event, "alice", at)
        view = next_view(view, published(vid, event, version, at))
        assert view == _view(state), f"{life}: {event.TYPE} (version {version})"


def test_events_out_of_turn_tell_nothing() -> None:
    vid = uuid4()
    first = next_view(None, published(vid, accepted(vid), 1, START))
    assert first is not None
    submitted = VideoSubmitted(video_id=vid, runpod_job_id="j")
    # Held already (a repeat), after a gap, or a first event the reader missed.
    assert next_view(first, published(vid, submitted, 1, START)) is None
    assert next_view(first, published(vid, submitted, 3, START)) is None
    assert next_view(None, published(vid, submitted, 2, START)) is None
    # Another video's event, or one this release cannot read.
    other = uuid4()
    assert (
        next_view(
            first, published(other, VideoSubmitted(video_id=other, runpod_job_id="j"), 2, START)
        )
        is None
    )
    unknown = published(vid, submitted, 2, START).model_copy(update={"type": "VideoTeleported"})
    assert next_view(first, unknown) is None
    assert next_view(first, published(vid, submitted, 2, START)) is not None
