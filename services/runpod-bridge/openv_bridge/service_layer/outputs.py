"""Results a worker hands back itself instead of uploading them (ComfyUI's base64 videos), and
webhook bodies too large to read, whose report is read from RunPod's `/status` instead.

RunPod retries a webhook that is not answered 200 only twice, 10 s apart, then gives up, so
refusing a large body (413) would leave the video to the reconciler's next poll at best.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

from openv_bridge.domain import worker_outputs
from openv_bridge.domain.record import Submission
from openv_bridge.domain.runpod_errors import AnswerTooLarge
from openv_bridge.domain.submissions import SubmissionState
from openv_bridge.service_layer.ports import Objects
from openv_contracts import Message
from openv_contracts.facts import RunPodJobCompleted, RunPodJobFailed
from openv_contracts.video import ErrorCode

log = logging.getLogger(__name__)


async def inline_video_fact(
    objects: Objects, sub: Submission, job_id: str, data: str, max_bytes: int
) -> Message:
    """Decode and check an inline (base64) result, store it at the video's key: the fact."""
    try:
        # Decoding tens of MB takes a while: not on the event loop.
        video = await asyncio.to_thread(worker_outputs.decode_video, data, max_bytes)
    except worker_outputs.InvalidVideo as exc:
        return RunPodJobFailed(
            video_id=sub.video_id,
            runpod_job_id=job_id,
            code=ErrorCode.INVALID_OUTPUT.value,
            message=str(exc),
        )
    await objects.put_video(sub.object_key, video)
    return RunPodJobCompleted(
        video_id=sub.video_id,
        runpod_job_id=job_id,
        object_key=sub.object_key,
        size_bytes=len(video),
    )


def too_large_fact(sub: Submission, job_id: str, exc: AnswerTooLarge) -> Message:
    """A job whose /status answer is over the bridge's cap: its output cannot be used."""
    log.warning("video %s: %s", sub.video_id, exc)
    return RunPodJobFailed(
        video_id=sub.video_id,
        runpod_job_id=job_id,
        code=ErrorCode.INVALID_OUTPUT.value,
        message="the job's output is larger than the bridge accepts",
    )


class NoSubmission(Exception):
    """The video was never submitted here: the body cannot be any job's report of it."""


def waits_for_its_job(sub: Submission | None) -> bool:
    """Whether the video's record does not know its job yet: its /run is in flight, its answer
    not yet recorded (a batch records its jobs once its slowest /run returns), or lost
    (domain.ambiguity). Then /status cannot be read in the body's place: only the body (its
    job id, its echoed input) tells which job it reports, as for any webhook that comes
    before the record."""
    return sub is not None and sub.state is SubmissionState.SUBMITTING


def job_to_read(sub: Submission | None, video_id: UUID) -> Submission | None:
    """For a webhook body too large to read (token already checked), given the video's record
    (one that knows its job, see `waits_for_its_job`): the submission whose job's report must
    be read from /status, or None if the record is settled (nothing to do). Raises
    NoSubmission for a video never submitted."""
    if sub is None:
        raise NoSubmission(f"video {video_id} has no submission")
    if sub.state is SubmissionState.SUBMITTED and sub.runpod_job_id is not None:
        return sub
    return None


#: Large /status reads at once: each may hold an inline video several times over (its
#: base64 text, the parsed JSON, the decoded bytes), so a burst of them must not add up.
LARGE_READS_AT_ONCE = 2
_large_reads = asyncio.Semaphore(LARGE_READS_AT_ONCE)
#: Videos whose large report is being read: RunPod's retries of the same webhook wait for
#: none of them (the read in progress settles it).
_reading: set[UUID] = set()


async def read_from_status(
    poll: Callable[[Submission], Awaitable[object]], sub: Submission
) -> None:
    """Apply the recorded job's report as /status gives it (after the webhook was answered:
    a failure here is logged, and the reconciler's poll of the quiet job tries again). At most
    LARGE_READS_AT_ONCE at a time, and one per video."""
    if sub.video_id in _reading:
        return
    _reading.add(sub.video_id)
    try:
        async with _large_reads:
            await poll(sub)
    except Exception:
        log.exception("video %s: reading the job's report from /status failed", sub.video_id)
    finally:
        _reading.discard(sub.video_id)
