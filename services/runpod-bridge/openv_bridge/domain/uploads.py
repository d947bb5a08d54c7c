"""Worker uploads: where each submission attempt's presigned PUT may write, and whether what
it wrote is a video we accept. Pure.

Each attempt gets its own staging key under the video's `uploads/` prefix; nothing reads a
staging key except the bridge's completion check, which copies a good upload to the video's
final key (`video.mp4`). A presigned URL (which RunPod echoes in every webhook and stores with
the request) can therefore never overwrite the file users play.
"""

import hashlib
import hmac
from uuid import UUID

from openv_contracts.storage_keys import video_uploads_prefix
from openv_infra.mp4 import MP4_HEAD_BYTES, looks_like_mp4

#: Bytes read from the start of an upload to recognise an MP4.
HEAD_BYTES = MP4_HEAD_BYTES


def staging_key(secret: bytes, user_id: str, video_id: UUID, attempt: int) -> str:
    """The staging key of one submission attempt: the attempt number (to prefer the recorded
    attempt's upload) and a nonce, so no two attempts (nor two videos) ever share one."""
    nonce = hmac.new(secret, f"upload:{video_id}:{attempt}".encode(), hashlib.sha256)
    return f"{video_uploads_prefix(user_id, video_id)}{attempt}-{nonce.hexdigest()[:16]}.mp4"


def attempt_of(key: str) -> int | None:
    """The attempt number a staging key was made for (None if the key is not one of ours)."""
    name = key.rsplit("/", 1)[-1]
    number = name.split("-", 1)[0]
    return int(number) if number.isdigit() else None


def upload_problem(size: int, head: bytes, max_bytes: int) -> str | None:
    """Why an upload is not acceptable as the video's file (None if it is)."""
    if size <= 0:
        return "the worker's upload is empty"
    if size > max_bytes:
        return f"the worker's upload is {size} bytes, more than the {max_bytes} accepted"
    if not looks_like_mp4(head):
        return "the worker's upload is not an MP4 file (no `ftyp` box at its start)"
    return None


def check_order(keys: list[str], preferred_attempt: int) -> list[str]:
    """Staged keys in the order to try them: the recorded attempt's first, then the newest
    attempts (every attempt rendered the same request, so any good one is the video)."""

    def rank(key: str) -> tuple[int, int]:
        attempt = attempt_of(key) or 0
        return (0 if attempt == preferred_attempt else 1, -attempt)

    return sorted(keys, key=rank)
