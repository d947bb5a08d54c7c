"""Deciders: (state, message) -> new events. Pure; duplicates and late facts decide nothing."""

from datetime import datetime

from openv_contracts.base import Message
from openv_contracts.commands import CancelVideo, DeleteVideo, RequestVideo
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
)
from openv_contracts.facts import (
    RunPodJobCancelled,
    RunPodJobCompleted,
    RunPodJobFailed,
    RunPodJobRunning,
    RunPodJobSubmitted,
    RunPodJobTimedOut,
    StorageImportFailed,
    StorageObjectImported,
    StorageObjectsDeleted,
    VideoPosterStored,
)
from openv_contracts.storage_keys import video_prefix
from openv_contracts.video import ErrorCode, VideoStatus
from openv_jobs.domain.timers import (
    QueuedTooLong,
    SilentTooLong,
    queued_too_long_reason,
    silent_too_long_reason,
)
from openv_jobs.domain.usage import Limits, Usage, quota_resets_at
from openv_jobs.domain.video import VideoState, can_move


def decide_request(
    state: VideoState | None, command: RequestVideo, user_id: str, usage: Usage, limits: Limits
) -> list[Message]:
    if state is not None:
        return []  # the same video id again: already decided
    duration = command.params.duration_seconds
    if usage.active_jobs >= limits.max_active_jobs:
        return [
            _rejected(
                command,
                ErrorCode.CONCURRENCY_LIMIT,
                f"at most {limits.max_active_jobs} videos may be in progress at once",
            )
        ]
    if usage.used_seconds + duration > limits.quota_seconds + 1e-9:
        left = max(0.0, limits.quota_seconds - usage.used_seconds)
        return [
            _rejected(
                command,
                ErrorCode.QUOTA_EXCEEDED,
                f"this video needs {duration:.2f} s; {left:.2f} s of the monthly "
                f"{limits.quota_seconds:.0f} s remain",
                retry_at=quota_resets_at(usage.period_start),
            )
        ]
    return [
        VideoAccepted(
            video_id=command.video_id,
            prompt=command.prompt,
            params=command.params,
            duration_seconds=duration,
            charged_seconds=duration,
            object_prefix=video_prefix(user_id, command.video_id),
            webhook=command.webhook,
        )
    ]


def _rejected(
    command: RequestVideo, code: ErrorCode, message: str, retry_at: datetime | None = None
) -> VideoRejected:
    return VideoRejected(
        video_id=command.video_id,
        prompt=command.prompt,
        params=command.params,
        code=code.value,
        message=message,
        retry_at=retry_at,
        webhook=command.webhook,
    )


def decide(state: VideoState, message: Message) -> list[Message]:
    """Every message about an existing video other than its request."""
    status = state.status
    match message:
        case CancelVideo():
            if state.active:
                return [
                    VideoCancelled(
                        video_id=state.video_id,
                        previous_status=status,
                        runpod_job_id=state.runpod_job_id,
                    )
                ]
        case DeleteVideo():
            if status is not VideoStatus.DELETED:
                return [
                    VideoDeleted(
                        video_id=state.video_id,
                        previous_status=status,
                        object_prefix=state.object_prefix,
                        runpod_job_id=state.runpod_job_id,
                    )
                ]
        case RunPodJobSubmitted():
            if can_move(status, VideoStatus.SUBMITTED):
                return [
                    VideoSubmitted(video_id=state.video_id, runpod_job_id=message.runpod_job_id)
                ]
        case RunPodJobRunning():
            if can_move(status, VideoStatus.RUNNING):
                return [VideoRunning(video_id=state.video_id, progress=message.progress)]
            if (
                status is VideoStatus.RUNNING
                and message.progress is not None
                and message.progress > (state.progress or 0)
            ):
                return [VideoProgressed(video_id=state.video_id, progress=message.progress)]
        case RunPodJobCompleted() | StorageObjectImported():
            # Uploaded by the worker, or imported from its URL: either way the file is ours.
            if state.active:
                return [
                    VideoCompleted(
                        video_id=state.video_id,
                        object_key=message.object_key,
                        size_bytes=message.size_bytes,
                        content_type=message.content_type,
                    )
                ]
        case RunPodJobFailed():
            if state.active:
                return [
                    VideoFailed(video_id=state.video_id, code=message.code, message=message.message)
                ]
        case RunPodJobCancelled():
            if state.active:
                return [
                    VideoCancelled(
                        video_id=state.video_id,
                        previous_status=status,
                        runpod_job_id=message.runpod_job_id,
                    )
                ]
        case RunPodJobTimedOut():
            if state.active:
                return [
                    VideoTimedOut(video_id=state.video_id, reason=message.reason, code=message.code)
                ]
        case StorageImportFailed():
            if state.active:
                return [
                    VideoFailed(
                        video_id=state.video_id,
                        code=ErrorCode.IMPORT_FAILED.value,
                        message=message.reason,
                    )
                ]
        case QueuedTooLong():
            if status is VideoStatus.QUEUED:
                return [
                    VideoTimedOut(video_id=state.video_id, reason=queued_too_long_reason(message))
                ]
        case SilentTooLong():
            # Only the silence it was sent for: news since (a newer `updated_at`) ends it.
            if status in (VideoStatus.SUBMITTED, VideoStatus.RUNNING) and (
                state.updated_at <= message.silent_since
            ):
                return [
                    VideoTimedOut(video_id=state.video_id, reason=silent_too_long_reason(message))
                ]
        case StorageObjectsDeleted():
            if status is VideoStatus.DELETED and not state.file_deleted:
                return [
                    VideoFileDeleted(
                        video_id=state.video_id, objects_removed=message.objects_removed
                    )
                ]
        case VideoPosterStored():
            # Only a completed video's poster counts (not one written while the video was
            # deleted), only inside its prefix, and only once: a redelivery changes nothing.
            if (
                status is VideoStatus.COMPLETED
                and state.poster_key != message.object_key
                and state.object_prefix
                and message.object_key.startswith(state.object_prefix)
            ):
                return [
                    VideoPosterAdded(
                        video_id=state.video_id,
                        object_key=message.object_key,
                        width=message.width,
                        height=message.height,
                    )
                ]
    return []
