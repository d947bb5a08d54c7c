"""The jobs service's own timers: messages it sends itself when a video waited too long."""

from datetime import datetime
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from openv_contracts.base import Message

_TIMER_IDS: Final = uuid5(NAMESPACE_URL, "https://openv.dev/jobs/timers")


class QueuedTooLong(Message):
    """A video was still `queued` `limit_s` after it was accepted: its `VideoAccepted` never
    led to a RunPod job (lost, dead-lettered during a rolling deploy, or RunPod refused to
    take jobs for that long). It holds a concurrency slot and quota until it ends."""

    TYPE = "QueuedTooLong"
    VERSION = 1

    video_id: UUID
    queued_since: datetime
    limit_s: float


def queued_too_long_id(video_id: UUID) -> UUID:
    """One id per video, whichever instance or sweep sends it: its effect is appended once."""
    return uuid5(_TIMER_IDS, f"queued-too-long/{video_id}")


def queued_too_long_reason(message: QueuedTooLong) -> str:
    return (
        f"the video was not submitted to RunPod within {message.limit_s:g} s of being queued; "
        "its slot and quota are given back"
    )


class SilentTooLong(Message):
    """A video was `submitted` or `running` with no news (no report of its RunPod job) for
    `limit_s`: longer than RunPod keeps a job (its ttl plus its execution timeout). Its job's
    outcome was lost on the way (a fact dead-lettered, a bridge record lost); nothing else
    would ever end it."""

    TYPE = "SilentTooLong"
    VERSION = 1

    video_id: UUID
    silent_since: datetime
    limit_s: float


def silent_too_long_id(video_id: UUID, silent_since: datetime) -> UUID:
    """One id per video and silence: a video with news since is another silence."""
    return uuid5(_TIMER_IDS, f"silent-too-long/{video_id}/{silent_since.isoformat()}")


def silent_too_long_reason(message: SilentTooLong) -> str:
    return (
        f"no news of the video's RunPod job for {message.limit_s:g} s, longer than RunPod "
        "keeps a job; its outcome was lost, so it is timed out and its slot given back"
    )
