"""Facts observed outside the jobs service, which records them as video events.

RunPod bridge -> `openv.runpod-events`; storage -> `openv.storage-events`. Keyed by video id.
"""

from uuid import UUID

from pydantic import Field

from openv_contracts.base import Message
from openv_contracts.video import ErrorCode

#: Longest result URL a fact carries; the bridge fails a video whose worker returned a longer one.
MAX_URL = 4096


class RunPodJobSubmitted(Message):
    TYPE = "RunPodJobSubmitted"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str


class RunPodJobRunning(Message):
    TYPE = "RunPodJobRunning"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str
    progress: int | None = Field(default=None, ge=0, le=100)


class RunPodJobCompleted(Message):
    """The output object is in our bucket (checked: exists and is non-empty)."""

    TYPE = "RunPodJobCompleted"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str
    object_key: str
    size_bytes: int = Field(ge=1)
    content_type: str = "video/mp4"


class RunPodJobFailed(Message):
    TYPE = "RunPodJobFailed"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str | None
    code: str
    message: str = Field(max_length=2000)


class RunPodJobCancelled(Message):
    TYPE = "RunPodJobCancelled"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str


class RunPodJobTimedOut(Message):
    TYPE = "RunPodJobTimedOut"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str | None
    reason: str
    #: The video's public error code: `timed_out`, or `execution_timeout` when the job ran
    #: past its execution timeout. Absent in older facts.
    code: str = ErrorCode.TIMED_OUT.value


class StorageObjectsDeleted(Message):
    """Every object of the video is gone from the bucket (already-gone counts as gone)."""

    TYPE = "StorageObjectsDeleted"
    VERSION = 1

    video_id: UUID
    objects_removed: int = Field(ge=0)


class RunPodJobOutputAtUrl(Message):
    """The worker finished but left its file at an external URL (OpenV-style workers);
    storage imports it into the bucket and reports the outcome."""

    TYPE = "RunPodJobOutputAtUrl"
    VERSION = 1

    video_id: UUID
    runpod_job_id: str
    url: str = Field(max_length=MAX_URL)
    object_key: str


class StorageObjectImported(Message):
    """An external result is now in our bucket (checked: an MP4, within the size cap)."""

    TYPE = "StorageObjectImported"
    VERSION = 1

    video_id: UUID
    object_key: str
    size_bytes: int = Field(ge=1)
    content_type: str = "video/mp4"


class StorageImportFailed(Message):
    TYPE = "StorageImportFailed"
    VERSION = 1

    video_id: UUID
    reason: str = Field(max_length=2000)


class VideoPosterStored(Message):
    """A still of the completed video is in our bucket at `object_key` (a JPEG, extracted by
    storage from the video's file); the jobs service records it on the video."""

    TYPE = "VideoPosterStored"
    VERSION = 1

    video_id: UUID
    object_key: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
