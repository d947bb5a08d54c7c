"""The sweeper's decisions: which stored objects are orphans. Pure: no I/O here.

An object is an orphan when its video is deleted, or unknown to the jobs service, or owned by
another user than the key says (then no deletion of that video would ever reach it), and it is
older than the grace period (a video being created right now cannot lose its upload to a lagging
view). Objects of live videos are always kept; when a video's state cannot be read, its objects
are kept too: in doubt, nothing is removed.

Circuit breaker: when most videos in the bucket look unknown, the likelier story is a jobs
service that is not ours (a wrong URL, an empty database) rather than a bucket of orphans, so
unknown videos' objects are held back that pass (deleted videos' are still removed) and an
operator is told.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus
from openv_storage.domain.keys import VideoKey, parse_video_key


class Fate(StrEnum):
    LIVE = "live"
    DELETED = "deleted"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime
    size: int = 0


@dataclass(frozen=True)
class VideoObjects:
    """The objects stored under one video's prefix."""

    video: VideoKey
    objects: tuple[StoredObject, ...]


@dataclass(frozen=True)
class Grouped:
    videos: list[VideoObjects]
    #: Objects under `videos/` whose key does not follow the scheme (left alone, reported).
    unrecognised: list[StoredObject]


def group_by_video(objects: Iterable[StoredObject]) -> Grouped:
    groups: dict[VideoKey, list[StoredObject]] = {}
    unrecognised: list[StoredObject] = []
    for obj in objects:
        parsed = parse_video_key(obj.key)
        if parsed is None:
            unrecognised.append(obj)
        else:
            groups.setdefault(parsed, []).append(obj)
    return Grouped([VideoObjects(k, tuple(v)) for k, v in groups.items()], unrecognised)


def fate_of(video: VideoKey, view: VideoView | None) -> Fate:
    """What the jobs service's view (None: it does not know the video) says about the objects."""
    if view is None or view.user_id != video.user_id:
        return Fate.UNKNOWN
    if view.status is VideoStatus.DELETED:
        return Fate.DELETED
    return Fate.LIVE


def orphans(
    objects: Iterable[StoredObject], fate: Fate, now: datetime, grace: timedelta
) -> list[StoredObject]:
    """The objects to remove: none of a live video; of the others, those older than `grace`."""
    if fate is Fate.LIVE:
        return []
    return [obj for obj in objects if now - obj.last_modified > grace]


#: Below this many unknown videos the circuit breaker never trips.
UNKNOWN_FLOOR = 10


def unknown_removal_allowed(unknown_videos: int, known_videos: int) -> bool:
    """Whether a sweep may remove unknown videos' objects (see the circuit breaker above)."""
    return unknown_videos <= UNKNOWN_FLOOR or unknown_videos <= known_videos


def missing_object(view: VideoView, present: set[str]) -> str | None:
    """The key a completed video's file should be at when that key is not in `present`."""
    if view.status is not VideoStatus.COMPLETED or not view.object_key:
        return None
    return None if view.object_key in present else view.object_key


@dataclass
class SweepReport:
    objects: int = 0
    videos: int = 0
    removed_deleted: int = 0
    removed_unknown: int = 0
    kept: int = 0
    #: Objects of videos whose state could not be read (kept).
    skipped: int = 0
    unrecognised: int = 0
    completed_checked: int = 0
    #: Completed videos whose object is gone.
    missing: int = 0
    missing_videos: list[UUID] | None = None
    #: Deleted videos the sweeper purged and reported (StorageObjectsDeleted).
    reported: int = 0
    #: Videos whose sweep failed on an unexpected error (logged; their objects kept).
    errors: int = 0
    #: Objects of unknown videos kept because the circuit breaker tripped.
    held_back: int = 0

    @property
    def removed(self) -> int:
        return self.removed_deleted + self.removed_unknown

    def summary(self) -> str:
        return (
            f"sweep: objects={self.objects} videos={self.videos} removed={self.removed} "
            f"removed_deleted={self.removed_deleted} removed_unknown={self.removed_unknown} "
            f"kept={self.kept} skipped={self.skipped} unrecognised={self.unrecognised} "
            f"completed_checked={self.completed_checked} missing={self.missing} "
            f"reported={self.reported} held_back={self.held_back} errors={self.errors}"
        )
