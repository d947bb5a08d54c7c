"""Give every completed video a poster: a still extracted from its file, stored inside the
video's prefix (`openv_contracts.storage_keys.video_poster_key`), reported as
`VideoPosterStored` for the jobs service to record on the video.

Acts on `VideoCompleted` (video-events): the one event both ways a file arrives lead to (a
worker's upload the bridge checked, or an import from a worker's URL), and only for videos
the jobs service took as completed. Idempotent: a redelivery extracts the poster again,
writes the same key and reports the same fact (its id derives from the event's), which the
jobs service records once. Never fails the video: a file that cannot be decoded, or is larger
than the cap, gets no poster (logged). S3 errors are retried under the policy; the caller
redelivers an outage that outlasts it (see entrypoints/consumers.py).

A deletion racing the extraction leaves nothing: the poster is written first and the video's
state read after; a video deleted by then has its poster removed (the deletion's own purge
removes one written before it was recorded).
"""

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar
from uuid import UUID, uuid5

from openv_contracts import Envelope
from openv_contracts.events import VideoCompleted
from openv_contracts.facts import VideoPosterStored
from openv_contracts.queries import JobsUnavailable
from openv_contracts.storage_keys import video_poster_key
from openv_contracts.video import VideoStatus
from openv_infra.failures import TransientError
from openv_storage.adapters.bucket import ObjectTooLarge, StorageUnavailable
from openv_storage.domain.keys import key_belongs_to
from openv_storage.domain.retry import RetryPolicy
from openv_storage.service_layer.deletions import PublishFact
from openv_storage.service_layer.imports import VideoStates
from openv_storage.service_layer.retrying import Sleep, with_retries
from openv_storage.service_layer.stats import StorageStats

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Still:
    """An encoded poster frame (what an `Extract` returns)."""

    data: bytes
    width: int
    height: int
    content_type: str


#: Blocking: the still of the video file at a path, or None if it cannot be decoded.
Extract = Callable[[Path], Still | None]


class PosterStore(Protocol):
    """What posters need of the bucket (`adapters.bucket.Bucket`)."""

    async def download(self, key: str, path: Path, max_bytes: int) -> int | None:
        """The object's size once it is in the file `path`; None if it does not exist;
        ObjectTooLarge past `max_bytes`."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def remove(self, keys: list[str]) -> None: ...


def poster_event_id(envelope: Envelope) -> UUID:
    return uuid5(envelope.event_id, "poster")


class PosterService:
    def __init__(
        self,
        bucket: PosterStore,
        extract: Extract,
        videos: VideoStates,
        publish_fact: PublishFact,
        policy: RetryPolicy,
        max_bytes: int,
        stats: StorageStats | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bucket = bucket
        self.extract = extract
        self.videos = videos
        self.publish_fact = publish_fact
        self.policy = policy
        self.max_bytes = max_bytes
        self.stats = stats or StorageStats()
        self.sleep = sleep

    async def on_video_event(self, envelope: Envelope) -> None:
        """Acts on VideoCompleted; RetriesExhausted when S3 kept failing."""
        message = envelope.message()
        if not isinstance(message, VideoCompleted) or not envelope.user_id:
            return
        video_id = message.video_id
        if not key_belongs_to(message.object_key, video_id, envelope.user_id):
            log.warning("no poster: %s is outside the video's prefix", message.object_key)
            return
        still = await self._still(message.object_key, video_id)
        if still is None:
            self.stats.posters_skipped += 1
            return
        key = video_poster_key(envelope.user_id, video_id)
        await self._retried(
            f"storing the poster {key}",
            lambda: self.bucket.put_bytes(key, still.data, still.content_type),
        )
        if await self._deleted(video_id):
            await self._retried(f"removing the poster {key}", lambda: self.bucket.remove([key]))
            log.info("poster discarded: the video was deleted", extra={"video_id": video_id})
            return
        fact = VideoPosterStored(
            video_id=video_id, object_key=key, width=still.width, height=still.height
        )
        await self.publish_fact(envelope.follow(fact, event_id=poster_event_id(envelope)))
        self.stats.posters += 1
        log.info("poster stored at %s", key, extra={"video_id": video_id})

    async def _still(self, video_key: str, video_id: UUID) -> Still | None:
        with tempfile.TemporaryDirectory(prefix="openv-poster-") as folder:
            path = Path(folder) / "video"
            try:
                size = await self._retried(
                    f"downloading {video_key}",
                    lambda: self.bucket.download(video_key, path, self.max_bytes),
                )
            except ObjectTooLarge as exc:
                log.warning("no poster: %s", exc, extra={"video_id": video_id})
                return None
            if size is None:
                log.info("no poster: %s is gone", video_key, extra={"video_id": video_id})
                return None
            # PyAV decodes in a thread: the event loop (and the other consumers) go on.
            still = await asyncio.to_thread(self.extract, path)
        if still is None:
            log.warning("no poster: %s is not decodable", video_key, extra={"video_id": video_id})
        return still

    async def _deleted(self, video_id: UUID) -> bool:
        try:
            view = await self.videos.video(video_id)
        except JobsUnavailable as exc:
            raise TransientError(f"the state of video {video_id}: {exc}") from exc
        return view is not None and view.status is VideoStatus.DELETED

    async def _retried(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(
            what, operation, self.policy, (StorageUnavailable,), sleep=self.sleep
        )
