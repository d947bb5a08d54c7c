"""Import a result a worker left at an external URL into the bucket, and report the outcome.

For each `RunPodJobOutputAtUrl` exactly one outcome is reported, `StorageObjectImported` or
`StorageImportFailed`, under one event id derived from the fact's: a redelivery that ends
differently (say, after the video was deleted) is a duplicate the jobs service ignores.

Order of work: check the key and the video's state (no download for a deleted, cancelled or
unknown video), download through the SSRF guard with a size cap and a deadline, check the first
bytes are an MP4 before anything is written, stream into the bucket (the object appears only
when complete), check its size, then read the video's state again: a video deleted or ended
meanwhile gets its file discarded, so an import racing a deletion leaves nothing behind.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol
from uuid import UUID, uuid5

from openv_contracts import Envelope
from openv_contracts.facts import (
    RunPodJobOutputAtUrl,
    StorageImportFailed,
    StorageObjectImported,
)
from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import ACTIVE_STATUSES, VideoStatus
from openv_infra.mp4 import MP4_HEAD_BYTES, looks_like_mp4
from openv_storage.adapters.bucket import Bucket, StorageUnavailable
from openv_storage.adapters.source import CappedBody, SourceUnavailable, UrlSource
from openv_storage.domain.imports import ImportRefused
from openv_storage.domain.keys import key_belongs_to
from openv_storage.domain.retry import RetryPolicy
from openv_storage.service_layer.retrying import RetriesExhausted, Sleep, with_retries
from openv_storage.service_layer.stats import StorageStats

log = logging.getLogger(__name__)

PublishFact = Callable[[Envelope], Awaitable[None]]
CONTENT_TYPE = "video/mp4"


class VideoStates(Protocol):
    async def video(self, video_id: UUID) -> VideoView | None: ...


class _Unreadable(Enum):
    STATE = "unreadable"


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    total_timeout_s: float
    #: Added to the download deadline for the upload's last S3 calls.
    s3_timeout_s: float


def outcome_event_id(envelope: Envelope) -> UUID:
    return uuid5(envelope.event_id, "import-outcome")


class ImportService:
    def __init__(
        self,
        bucket: Bucket,
        source: UrlSource,
        videos: VideoStates,
        publish_fact: PublishFact,
        limits: ImportLimits,
        policy: RetryPolicy,
        stats: StorageStats | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bucket = bucket
        self.source = source
        self.videos = videos
        self.publish_fact = publish_fact
        self.limits = limits
        self.policy = policy
        self.stats = stats or StorageStats()
        self.sleep = sleep

    async def on_runpod_event(self, envelope: Envelope) -> None:
        message = envelope.message()
        if not isinstance(message, RunPodJobOutputAtUrl):
            return
        outcome = await self.import_result(envelope, message)
        if outcome is None:
            return
        if isinstance(outcome, StorageObjectImported):
            self.stats.imports += 1
        else:
            self.stats.import_failures += 1
            log.warning("import failed: %s", outcome.reason, extra={"video_id": message.video_id})
        await self.publish_fact(envelope.follow(outcome, event_id=outcome_event_id(envelope)))

    async def import_result(
        self, envelope: Envelope, fact: RunPodJobOutputAtUrl
    ) -> StorageObjectImported | StorageImportFailed | None:
        """The outcome to report (None: already reported, nothing to do)."""
        video_id, key = fact.video_id, fact.object_key

        def failed(reason: str) -> StorageImportFailed:
            return StorageImportFailed(video_id=video_id, reason=reason[:2000])

        if not key_belongs_to(key, video_id, envelope.user_id):
            return failed(f"object key {key!r} is outside the video's prefix")
        before = await self._state(video_id)
        if before is None:
            return failed("the video is unknown to the jobs service")
        if isinstance(before, VideoView):
            if self._holds(before, key):
                log.info("result already imported", extra={"video_id": video_id})
                return None
            if before.status not in ACTIVE_STATUSES:
                return failed(f"the video is {before.status.value}; the result was not imported")
        try:
            size = await with_retries(
                f"importing the result of video {video_id}",
                lambda: self._import_once(fact.url, key),
                self.policy,
                (SourceUnavailable, StorageUnavailable),
                sleep=self.sleep,
                on_failure=self._count_retry,
            )
        except ImportRefused as exc:
            return failed(str(exc))
        except RetriesExhausted as exc:
            if isinstance(exc.__cause__, StorageUnavailable):
                # The reason reaches the user: S3 details (hosts, keys) stay in our logs.
                log.error("%s", exc, extra={"video_id": video_id})
                return failed(
                    f"our storage was unavailable; the import was tried {self.policy.attempts} "
                    "times"
                )
            return failed(str(exc))
        after = await self._state(video_id)
        if (
            isinstance(after, VideoView)
            and after.status not in ACTIVE_STATUSES
            and not self._holds(after, key)
        ):
            await self._discard(key, video_id)
            return failed(
                f"the video became {after.status.value} during the import; the file was discarded"
            )
        return StorageObjectImported(
            video_id=video_id, object_key=key, size_bytes=size, content_type=CONTENT_TYPE
        )

    @staticmethod
    def _holds(view: VideoView, key: str) -> bool:
        return view.status is VideoStatus.COMPLETED and view.object_key == key

    def _count_retry(self, _: Exception) -> None:
        self.stats.import_retries += 1

    async def _state(self, video_id: UUID) -> VideoView | _Unreadable | None:
        try:
            return await self.videos.video(video_id)
        except JobsUnavailable as exc:
            # Not a reason to fail the video: the sweeper removes what a deletion missed.
            log.warning("video state unavailable (%s); importing regardless", exc)
            return _Unreadable.STATE

    async def _import_once(self, url: str, key: str) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.total_timeout_s
        async with self.source.open(url, deadline) as response:
            body = CappedBody(response, self.limits.max_bytes, deadline)
            if not looks_like_mp4(await body.peek(MP4_HEAD_BYTES)):
                raise ImportRefused("the result is not an MP4 file (no ftyp box at its start)")
            written = await self.bucket.put_stream(
                key,
                body,
                CONTENT_TYPE,
                timeout_s=self.limits.total_timeout_s + self.limits.s3_timeout_s,
            )
        stored = await self.bucket.size_of(key)
        if stored != written:
            raise StorageUnavailable(f"{key} holds {stored} bytes after writing {written}")
        return written

    async def _discard(self, key: str, video_id: UUID) -> None:
        try:
            await with_retries(
                f"discarding {key}",
                lambda: self.bucket.remove([key]),
                self.policy,
                (StorageUnavailable,),
                sleep=self.sleep,
            )
        except RetriesExhausted as exc:
            # The video is deleted or over; the sweeper removes the file after its grace period.
            log.error("%s", exc, extra={"video_id": video_id})
