"""The sweeper: removes orphaned objects and reports completed videos whose file is gone.

One pass lists every object under `videos/`, asks the jobs service about each video found,
removes the orphans (see `domain.sweep`) and, for a deleted video it emptied and whose
deletion was never reported (its VideoDeleted was dead-lettered, say), publishes
`StorageObjectsDeleted` so the video shows as purged. Then it pages through every completed
video and reports those whose object is missing (logged, counted; nothing can restore them).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar
from uuid import UUID, uuid5

from openv_contracts import Envelope
from openv_contracts.facts import StorageObjectsDeleted
from openv_contracts.queries import JobsUnavailable, VideoView
from openv_contracts.video import VideoStatus
from openv_storage.adapters.bucket import Bucket, StorageUnavailable
from openv_storage.domain.keys import ROOT
from openv_storage.domain.retry import RetryPolicy
from openv_storage.domain.sweep import (
    Fate,
    SweepReport,
    VideoObjects,
    fate_of,
    group_by_video,
    missing_object,
    orphans,
    unknown_removal_allowed,
)
from openv_storage.service_layer.retrying import RetriesExhausted, Sleep, with_retries
from openv_storage.service_layer.stats import StorageStats

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

PublishFact = Callable[[Envelope], Awaitable[None]]
#: Jobs API lookups in flight at once during a sweep.
LOOKUP_CONCURRENCY = 8


class VideoDirectory(Protocol):
    async def video(self, video_id: UUID) -> VideoView | None: ...

    def videos(self, status: VideoStatus) -> AsyncIterator[VideoView]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Judged:
    """A video's objects with what the jobs service says about the video."""

    group: VideoObjects
    view: VideoView | None
    fate: Fate


def swept_event_id(video_id: UUID) -> UUID:
    return uuid5(video_id, "storage-swept")


class Sweeper:
    def __init__(
        self,
        bucket: Bucket,
        videos: VideoDirectory,
        publish_fact: PublishFact | None,
        grace: timedelta,
        policy: RetryPolicy,
        stats: StorageStats | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bucket = bucket
        self.videos = videos
        self.publish_fact = publish_fact
        self.grace = grace
        self.policy = policy
        self.stats = stats or StorageStats()
        self.clock = clock
        self.sleep = sleep

    async def sweep(self) -> SweepReport:
        """One pass. StorageUnavailable if the bucket cannot be listed (nothing was removed)."""
        now = self.clock()
        report = SweepReport(missing_videos=[])
        objects = await self.bucket.list_objects(ROOT)
        report.objects = len(objects)
        grouped = group_by_video(objects)
        report.videos = len(grouped.videos)
        report.unrecognised = len(grouped.unrecognised)
        for obj in grouped.unrecognised:
            log.warning("object %s does not follow the key scheme; left alone", obj.key)

        async def judge(group: VideoObjects) -> Judged | None:
            return await self._judge(group, report)

        judged = [j for j in await self._bounded(judge, grouped.videos, report) if j is not None]
        unknown = sum(1 for j in judged if j.fate is Fate.UNKNOWN)
        allow_unknown = unknown_removal_allowed(unknown, len(judged) - unknown)
        if not allow_unknown:
            log.error(
                "%d of %d videos in the bucket are unknown to the jobs service at %s: is it the "
                "right one? Their objects are kept this time.",
                unknown,
                len(judged),
                getattr(self.videos, "base_url", "?"),
            )
        plans: list[tuple[Judged, list[str]]] = []
        for j in judged:
            doomed = orphans(j.group.objects, j.fate, now, self.grace)
            if j.fate is Fate.UNKNOWN and not allow_unknown:
                report.held_back += len(doomed)
                doomed = []
            report.kept += len(j.group.objects) - len(doomed)
            if doomed:
                plans.append((j, [obj.key for obj in doomed]))

        async def remove(plan: tuple[Judged, list[str]]) -> None:
            await self._remove(plan[0], plan[1], report)

        await self._bounded(remove, plans, report)
        await self._find_missing({obj.key for obj in objects}, report)
        self.stats.sweeps += 1
        self.stats.swept_objects += report.removed
        log.info("%s", report.summary())
        return report

    async def _bounded(
        self,
        work: Callable[[T], Awaitable[R]],
        items: Sequence[T],
        report: SweepReport,
    ) -> list[R | None]:
        """`work` on every item, a few at a time; an unexpected error is logged and counted."""
        limit = asyncio.Semaphore(LOOKUP_CONCURRENCY)

        async def one(item: T) -> R | None:
            async with limit:
                try:
                    return await work(item)
                except Exception:
                    log.exception("sweeping %s failed", item)
                    report.errors += 1
                    return None

        return await asyncio.gather(*(one(item) for item in items))

    async def _judge(self, group: VideoObjects, report: SweepReport) -> Judged | None:
        try:
            view = await self.videos.video(group.video.video_id)
        except JobsUnavailable as exc:
            log.warning(
                "state of video %s unavailable (%s); its objects are kept",
                group.video.video_id,
                exc,
            )
            report.skipped += len(group.objects)
            return None
        return Judged(group, view, fate_of(group.video, view))

    async def _remove(self, judged: Judged, keys: list[str], report: SweepReport) -> None:
        video_id = judged.group.video.video_id
        try:
            await with_retries(
                f"sweeping {len(keys)} objects of video {video_id}",
                lambda: self.bucket.remove(keys),
                self.policy,
                (StorageUnavailable,),
                sleep=self.sleep,
            )
        except RetriesExhausted as exc:
            log.error("%s", exc, extra={"video_id": video_id})
            report.skipped += len(keys)
            return
        if judged.fate is Fate.DELETED:
            report.removed_deleted += len(keys)
        else:
            report.removed_unknown += len(keys)
        log.info(
            "swept %d objects of a %s video: %s",
            len(keys),
            judged.fate.value,
            ", ".join(keys[:5]),
            extra={"video_id": video_id},
        )
        view = judged.view
        if judged.fate is Fate.DELETED and view is not None and not view.file_deleted:
            await self._report_purged(judged.group, view, len(keys), report)

    async def _report_purged(
        self, group: VideoObjects, view: VideoView, removed: int, report: SweepReport
    ) -> None:
        if self.publish_fact is None:
            return
        try:
            if await self.bucket.keys(group.video.prefix):
                return  # objects younger than the grace period remain: a later sweep reports
        except StorageUnavailable as exc:
            log.warning("not reporting video %s purged: %s", view.id, exc)
            return
        fact = StorageObjectsDeleted(video_id=view.id, objects_removed=removed)
        envelope = Envelope.wrap(fact, user_id=view.user_id, event_id=swept_event_id(view.id))
        await self.publish_fact(envelope)
        report.reported += 1

    async def _find_missing(self, present: set[str], report: SweepReport) -> None:
        try:
            async for view in self.videos.videos(VideoStatus.COMPLETED):
                report.completed_checked += 1
                key = missing_object(view, present)
                # Not in the listing: written since, or really gone? Ask for the object itself.
                if key is None or await self.bucket.size_of(key) is not None:
                    continue
                report.missing += 1
                if report.missing_videos is not None:
                    report.missing_videos.append(view.id)
                log.error(
                    "completed video's object %s is missing from the bucket",
                    key,
                    extra={"video_id": view.id},
                )
        except JobsUnavailable as exc:
            log.warning("completed videos could not be listed (%s); missing check incomplete", exc)
