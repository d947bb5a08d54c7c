"""The completion check of a worker's upload: the staged object is looked at (size, MP4 magic
bytes), a good one copied to the video's final key and the staging objects removed; only then
may the bridge say the job completed. Used when a job reports COMPLETED with an upload and
when RunPod has forgotten a job (404: the worker may have uploaded while nobody listened).
"""

import logging

from openv_bridge.domain.record import Submission
from openv_bridge.domain.uploads import HEAD_BYTES, check_order, upload_problem
from openv_bridge.service_layer.ports import Objects
from openv_contracts import Message
from openv_contracts.facts import RunPodJobCompleted, RunPodJobFailed
from openv_contracts.storage_keys import video_uploads_prefix
from openv_contracts.video import ErrorCode

log = logging.getLogger(__name__)


async def upload_fact(
    objects: Objects, sub: Submission, job_id: str, max_bytes: int
) -> Message | None:
    """Settle the worker's upload of `sub` (idempotent: a repeat after a crash finds the file
    already at its final key): the fact it establishes for job `job_id`, the job completed (the
    file is at its final key) or failed (uploads were there, none acceptable: removed); None if
    there is no upload and no file."""
    staged = await objects.keys(video_uploads_prefix(sub.user_id, sub.video_id))
    problems: list[str] = []
    for key in check_order(staged, sub.attempts):
        size = await objects.size_of(key)
        if size is None:
            continue
        head = await objects.head(key, HEAD_BYTES) if 0 < size <= max_bytes else b""
        problem = upload_problem(size, head, max_bytes)
        if problem is not None:
            log.warning("video %s: upload %s refused: %s", sub.video_id, key, problem)
            problems.append(problem)
            continue
        await objects.copy(key, sub.object_key)
        await _remove_all(objects, staged)
        return _completed(sub, job_id, size)
    # No good staged upload: a repeat after the copy (the staging objects already removed),
    # or a file that reached its key another way (an import, a stored base64 output).
    final = await objects.size_of(sub.object_key)
    if final:
        await _remove_all(objects, staged)
        return _completed(sub, job_id, final)
    if problems:
        await _remove_all(objects, staged)
        return RunPodJobFailed(
            video_id=sub.video_id,
            runpod_job_id=job_id,
            code=ErrorCode.INVALID_OUTPUT.value,
            message=problems[0],
        )
    return None


async def discard_uploads(objects: Objects, sub: Submission) -> int:
    """Remove every staging upload of a video that will have no file (cancelled, deleted): a
    job that finished anyway uploaded after the video's objects were purged. How many."""
    staged = await objects.keys(video_uploads_prefix(sub.user_id, sub.video_id))
    await _remove_all(objects, staged)
    return len(staged)


async def _remove_all(objects: Objects, keys: list[str]) -> None:
    # Every attempt's staging object: once the video is settled none is ever read again.
    for key in keys:
        await objects.remove(key)


def _completed(sub: Submission, job_id: str, size: int) -> RunPodJobCompleted:
    return RunPodJobCompleted(
        video_id=sub.video_id, runpod_job_id=job_id, object_key=sub.object_key, size_bytes=size
    )
