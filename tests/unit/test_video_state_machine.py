"""The video state machine and limit decisions of the jobs service (pure domain)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from openv_contracts.base import Message
from openv_contracts.commands import CancelVideo, DeleteVideo, RequestVideo
from openv_contracts.events import (
    VideoAccepted,
    VideoCancelled,
    VideoCompleted,
    VideoDeleted,
    VideoFailed,
    VideoFileDeleted,
    VideoProgressed,
    VideoRejected,
    VideoRunning,
    VideoSubmitted,
)
from openv_contracts.facts import (
    RunPodJobCompleted,
    RunPodJobFailed,
    RunPodJobRunning,
    RunPodJobSubmitted,
    StorageImportFailed,
    StorageObjectImported,
    StorageObjectsDeleted,
)
from openv_contracts.video import VideoParams, VideoStatus
from openv_jobs.domain.decisions import decide, decide_request
from openv_jobs.domain.usage import Limits, Usage, apply, period_of
from openv_jobs.domain.video import VideoState, can_move, evolve, start

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_active_jobs=3, quota_seconds=600.0)


def request(num_frames: int = 31) -> RequestVideo:
    return RequestVideo(
        video_id=uuid4(), prompt="a cat", params=VideoParams(seed=7, num_frames=num_frames)
    )


def fresh_usage(active: int = 0, used: float = 0.0) -> Usage:
    return Usage("alice", active, period_of(T0), used)


def accepted_state() -> VideoState:
    [event] = decide_request(None, request(), "alice", fresh_usage(), LIMITS)
    return start(event, "alice", T0)


def run(state: VideoState, *facts: Message) -> tuple[VideoState, list[Message]]:
    """Feed facts through decide + evolve, as the jobs service does."""
    recorded: list[Message] = []
    for fact in facts:
        for event in decide(state, fact):
            state = evolve(state, event, T0 + timedelta(seconds=len(recorded) + 1))
            recorded.append(event)
    return state, recorded


def test_request_within_limits_is_accepted_and_queued() -> None:
    cmd = request()
    [event] = decide_request(None, cmd, "alice", fresh_usage(), LIMITS)
    assert isinstance(event, VideoAccepted)
    assert event.object_prefix == f"videos/alice/{cmd.video_id}/"
    state = start(event, "alice", T0)
    assert state.status is VideoStatus.QUEUED
    assert state.version == 1


def test_the_same_request_twice_decides_nothing() -> None:
    cmd = request()
    [event] = decide_request(None, cmd, "alice", fresh_usage(), LIMITS)
    state = start(event, "alice", T0)
    assert decide_request(state, cmd, "alice", fresh_usage(1), LIMITS) == []


def test_fourth_active_video_is_rejected_for_concurrency() -> None:
    [event] = decide_request(None, request(), "alice", fresh_usage(active=3), LIMITS)
    assert isinstance(event, VideoRejected)
    assert event.code == "concurrency_limit"
    assert event.retry_at is None  # when a video in progress ends: no time to tell
    assert start(event, "alice", T0).status is VideoStatus.REJECTED


def test_request_past_the_monthly_quota_is_rejected() -> None:
    # 127 frames / 24 fps = 5.29 s; only 5 s remain.
    [event] = decide_request(None, request(127), "alice", fresh_usage(used=595.0), LIMITS)
    assert isinstance(event, VideoRejected)
    assert event.code == "quota_exceeded"
    # The refusal says when the quota starts afresh: the next calendar month (UTC).
    assert event.retry_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_a_december_quota_resets_in_january() -> None:
    usage = Usage("alice", 0, datetime(2026, 12, 1, tzinfo=UTC).date(), 600.0)
    [event] = decide_request(None, request(), "alice", usage, LIMITS)
    assert isinstance(event, VideoRejected)
    assert event.retry_at == datetime(2027, 1, 1, tzinfo=UTC)


def test_happy_path_to_completion() -> None:
    state = accepted_state()
    vid = state.video_id
    state, events = run(
        state,
        RunPodJobSubmitted(video_id=vid, runpod_job_id="j1"),
        RunPodJobRunning(video_id=vid, runpod_job_id="j1", progress=10),
        RunPodJobRunning(video_id=vid, runpod_job_id="j1", progress=60),
        RunPodJobCompleted(video_id=vid, runpod_job_id="j1", object_key="k", size_bytes=9),
    )
    assert [type(e) for e in events] == [
        VideoSubmitted,
        VideoRunning,
        VideoProgressed,
        VideoCompleted,
    ]
    assert state.status is VideoStatus.COMPLETED
    assert state.progress == 100
    assert state.object_key == "k"
    assert state.started_at is not None
    assert state.version == 5


def test_late_and_duplicate_facts_never_move_a_video_backwards() -> None:
    state = accepted_state()
    vid = state.video_id
    done = RunPodJobCompleted(video_id=vid, runpod_job_id="j1", object_key="k", size_bytes=9)
    state, _ = run(state, RunPodJobSubmitted(video_id=vid, runpod_job_id="j1"), done)
    state, events = run(
        state,
        done,
        RunPodJobRunning(video_id=vid, runpod_job_id="j1", progress=50),
        RunPodJobSubmitted(video_id=vid, runpod_job_id="j1"),
        RunPodJobFailed(video_id=vid, runpod_job_id="j1", code="worker_failed", message="x"),
    )
    assert events == []
    assert state.status is VideoStatus.COMPLETED


def test_progress_only_grows() -> None:
    state = accepted_state()
    vid = state.video_id
    state, events = run(
        state,
        RunPodJobRunning(video_id=vid, runpod_job_id="j1", progress=40),
        RunPodJobRunning(video_id=vid, runpod_job_id="j1", progress=20),
        RunPodJobRunning(video_id=vid, runpod_job_id="j1", progress=40),
    )
    assert [type(e) for e in events] == [VideoRunning]
    assert state.progress == 40


def test_delete_follows_any_state_once_and_then_files_are_marked_deleted() -> None:
    state = accepted_state()
    vid = state.video_id
    assert decide(state, StorageObjectsDeleted(video_id=vid, objects_removed=1)) == []
    state, events = run(state, DeleteVideo(video_id=vid), DeleteVideo(video_id=vid))
    assert [type(e) for e in events] == [VideoDeleted]
    deleted = events[0]
    assert isinstance(deleted, VideoDeleted)
    assert deleted.previous_status is VideoStatus.QUEUED
    assert deleted.object_prefix == state.object_prefix
    state, events = run(
        state,
        StorageObjectsDeleted(video_id=vid, objects_removed=1),
        StorageObjectsDeleted(video_id=vid, objects_removed=0),
        RunPodJobCompleted(video_id=vid, runpod_job_id="j", object_key="k", size_bytes=1),
    )
    assert [type(e) for e in events] == [VideoFileDeleted]
    assert state.status is VideoStatus.DELETED
    assert state.file_deleted


def test_cancel_only_while_active() -> None:
    state = accepted_state()
    vid = state.video_id
    state, events = run(state, CancelVideo(video_id=vid))
    assert [type(e) for e in events] == [VideoCancelled]
    assert state.status is VideoStatus.CANCELLED
    assert decide(state, CancelVideo(video_id=vid)) == []


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (VideoStatus.QUEUED, VideoStatus.SUBMITTED, True),
        (VideoStatus.RUNNING, VideoStatus.SUBMITTED, False),
        (VideoStatus.COMPLETED, VideoStatus.FAILED, False),
        (VideoStatus.FAILED, VideoStatus.DELETED, True),
        (VideoStatus.DELETED, VideoStatus.DELETED, False),
    ],
)
def test_status_order(current: VideoStatus, target: VideoStatus, allowed: bool) -> None:
    assert can_move(current, target) is allowed


def test_usage_charges_on_acceptance_and_refunds_failures_but_not_completions() -> None:
    usage = fresh_usage()
    failed_video = accepted_state()
    accepted = VideoAccepted(
        video_id=failed_video.video_id,
        prompt="a cat",
        params=failed_video.params,
        duration_seconds=failed_video.duration_seconds,
        charged_seconds=failed_video.duration_seconds,
        object_prefix="p",
    )
    usage = apply(usage, None, accepted, T0)
    assert usage.active_jobs == 1
    assert usage.used_seconds == pytest.approx(31 / 24)
    failed = VideoFailed(video_id=failed_video.video_id, code="worker_failed", message="boom")
    usage = apply(usage, failed_video, failed, T0)
    assert usage.active_jobs == 0
    assert usage.used_seconds == pytest.approx(0.0)

    usage = apply(usage, None, accepted, T0)
    done = VideoCompleted(video_id=failed_video.video_id, object_key="k", size_bytes=1)
    usage = apply(usage, failed_video, done, T0)
    assert usage.active_jobs == 0
    assert usage.used_seconds == pytest.approx(31 / 24)


def test_cancel_after_running_is_not_refunded() -> None:
    state, _ = run(
        accepted_state(),
        RunPodJobRunning(video_id=uuid4(), runpod_job_id="j", progress=1),
    )
    assert state.status is VideoStatus.RUNNING
    assert state.charged_seconds == pytest.approx(state.duration_seconds)
    usage = fresh_usage(active=1, used=state.duration_seconds)
    cancelled = VideoCancelled(video_id=state.video_id, previous_status=VideoStatus.RUNNING)
    after = apply(usage, state, cancelled, T0)
    assert after.active_jobs == 0
    assert after.used_seconds == pytest.approx(state.duration_seconds)


def test_a_new_month_starts_with_nothing_used() -> None:
    usage = fresh_usage(active=1, used=500.0)
    next_month = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    assert usage.in_period(period_of(next_month)).used_seconds == 0.0
    assert usage.in_period(period_of(next_month)).active_jobs == 1


def test_an_imported_result_completes_and_a_failed_import_fails_the_video() -> None:
    state = accepted_state()
    vid = state.video_id
    done, events = run(
        state,
        RunPodJobRunning(video_id=vid, runpod_job_id="j", progress=90),
        StorageObjectImported(video_id=vid, object_key="k", size_bytes=5),
        StorageImportFailed(video_id=vid, reason="late"),
    )
    assert [type(e) for e in events] == [VideoRunning, VideoCompleted]
    assert done.status is VideoStatus.COMPLETED
    other = accepted_state()
    failed, events = run(other, StorageImportFailed(video_id=other.video_id, reason="not an MP4"))
    assert [type(e) for e in events] == [VideoFailed]
    assert failed.error_code == "import_failed"
    assert failed.error_message == "not an MP4"


def test_a_video_queued_too_long_times_out_and_only_while_queued() -> None:
    from openv_contracts.events import VideoTimedOut
    from openv_jobs.domain.timers import QueuedTooLong, queued_too_long_id

    state = accepted_state()
    timer = QueuedTooLong(video_id=state.video_id, queued_since=state.created_at, limit_s=3600)
    [timed_out] = decide(state, timer)
    assert isinstance(timed_out, VideoTimedOut)
    assert "within 3600 s" in timed_out.reason
    submitted, _ = run(state, RunPodJobSubmitted(video_id=state.video_id, runpod_job_id="j"))
    assert decide(submitted, timer) == []  # RunPod has it: the bridge's timeouts apply
    ended = evolve(state, timed_out, state.created_at)
    assert decide(ended, timer) == []
    # Every sweep and instance names the same message: its effect is appended once.
    assert queued_too_long_id(state.video_id) == queued_too_long_id(state.video_id)
    assert queued_too_long_id(state.video_id) != queued_too_long_id(uuid4())


def test_a_runpod_timeout_keeps_its_code_and_older_events_fold_as_timed_out() -> None:
    from openv_contracts.events import VideoTimedOut
    from openv_contracts.facts import RunPodJobTimedOut

    state = accepted_state()
    submitted, _ = run(state, RunPodJobSubmitted(video_id=state.video_id, runpod_job_id="j"))
    fact = RunPodJobTimedOut(
        video_id=state.video_id, runpod_job_id="j", reason="ran too long", code="execution_timeout"
    )
    ended, [event] = run(submitted, fact)
    assert isinstance(event, VideoTimedOut) and event.code == "execution_timeout"
    assert ended.status is VideoStatus.TIMED_OUT
    assert (ended.error_code, ended.error_message) == ("execution_timeout", "ran too long")
    # An event (or fact) written before the field existed has none: `timed_out`.
    older = VideoTimedOut.model_validate({"video_id": state.video_id, "reason": "queue expiry"})
    assert evolve(submitted, older, state.created_at).error_code == "timed_out"
    old_fact = RunPodJobTimedOut.model_validate(
        {"video_id": state.video_id, "runpod_job_id": "j", "reason": "gone"}
    )
    assert run(submitted, old_fact)[0].error_code == "timed_out"
