"""Remove a deleted video's objects, then report it: the fact is published only once a fresh
listing shows the video's prefix empty. Idempotent: already gone counts as gone, and the fact's
id is derived from the VideoDeleted's, so a redelivery reports the same fact.

A file can land after that purge: the bridge, lagging behind (it was down), stores the output
of a job that completed after the user deleted the video. Every `RunPodJobCompleted` follows
its file into the bucket, so it is checked against the jobs service's view: a deleted video's
prefix is purged again (no fact: the deletion was reported already)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from uuid import uuid5

from openv_contracts import Envelope
from openv_contracts.events import VideoDeleted
from openv_contracts.facts import RunPodJobCompleted, StorageObjectsDeleted
from openv_contracts.queries import JobsUnavailable
from openv_contracts.storage_keys import video_prefix
from openv_contracts.video import VideoStatus
from openv_infra.failures import PermanentError, TransientError
from openv_storage.adapters.bucket import StorageUnavailable
from openv_storage.domain.keys import is_video_prefix
from openv_storage.domain.retry import RetryPolicy
from openv_storage.service_layer.imports import VideoStates
from openv_storage.service_layer.retrying import RetriesExhausted, Sleep, with_retries
from openv_storage.service_layer.stats import StorageStats

log = logging.getLogger(__name__)

PublishFact = Callable[[Envelope], Awaitable[None]]


class PrefixStore(Protocol):
    """What a deletion needs of the bucket (`adapters.bucket.Bucket`)."""

    async def keys(self, prefix: str) -> list[str]: ...

    async def remove(self, keys: list[str]) -> None: ...


class DeletionService:
    def __init__(
        self,
        bucket: PrefixStore,
        publish_fact: PublishFact,
        policy: RetryPolicy,
        videos: VideoStates,
        stats: StorageStats | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bucket = bucket
        self.publish_fact = publish_fact
        self.videos = videos
        self.policy = policy
        self.stats = stats or StorageStats()
        self.sleep = sleep

    async def on_video_event(self, envelope: Envelope) -> None:
        """Acts on VideoDeleted. RetriesExhausted when S3 kept failing (the caller
        dead-letters it); PermanentError when the event names no valid prefix."""
        message = envelope.message()
        if not isinstance(message, VideoDeleted):
            return
        prefix = message.object_prefix
        if not prefix and envelope.user_id:
            # A video rejected at once never had objects; its would-be prefix is checked anyway.
            prefix = video_prefix(envelope.user_id, message.video_id)
        if prefix and not is_video_prefix(prefix, message.video_id):
            raise PermanentError(
                f"refusing to delete under {prefix!r}: not the prefix of video {message.video_id}"
            )
        try:
            removed = await self.purge(prefix) if prefix else 0
        except RetriesExhausted:
            self.stats.deletions_given_up += 1
            raise
        log.info(
            "removed %d objects under %s", removed, prefix, extra={"video_id": message.video_id}
        )
        fact = StorageObjectsDeleted(video_id=message.video_id, objects_removed=removed)
        await self.publish_fact(envelope.follow(fact, event_id=uuid5(envelope.event_id, "purged")))
        self.stats.deletions += 1

    async def on_completion(self, envelope: Envelope) -> None:
        """Acts on RunPodJobCompleted: if the video is deleted by now, its file came too late
        for the deletion's purge; remove it. TransientError while the jobs service does not
        answer (redelivered: the file must not be left, nor removed on a guess)."""
        message = envelope.message()
        if not isinstance(message, RunPodJobCompleted) or not envelope.user_id:
            return
        try:
            view = await self.videos.video(message.video_id)
        except JobsUnavailable as exc:
            raise TransientError(f"the state of video {message.video_id}: {exc}") from exc
        if view is None or view.status is not VideoStatus.DELETED:
            return
        prefix = video_prefix(envelope.user_id, message.video_id)
        removed = await self.purge(prefix)
        log.warning(
            "removed %d objects under %s: the output of a job completed after its video was "
            "deleted",
            removed,
            prefix,
            extra={"video_id": message.video_id},
        )

    async def purge(self, prefix: str) -> int:
        """Remove every object under `prefix` and check none is left; returns how many objects
        this call found there. Retried under the policy; RetriesExhausted when it runs out."""
        seen: set[str] = set()

        async def attempt() -> int:
            keys = await self.bucket.keys(prefix)
            seen.update(keys)
            await self.bucket.remove(keys)
            left = await self.bucket.keys(prefix)
            if left:
                seen.update(left)
                raise StorageUnavailable(f"{len(left)} objects still under {prefix} after removal")
            return len(seen)

        def failed(_: Exception) -> None:
            self.stats.deletion_failures += 1

        return await with_retries(
            f"removing the objects under {prefix}",
            attempt,
            self.policy,
            (StorageUnavailable,),
            sleep=self.sleep,
            on_failure=failed,
        )
