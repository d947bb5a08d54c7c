"""One GPU job per video when a `/run` answer is lost. Pure.

A `/run` whose answer is lost (sent, then a timeout or a gateway's 502/504: see
`domain.runpod_errors.RunPodAnswerLost`) may have created a job, and RunPod offers no way to
find it: no idempotency key, no listing of jobs, and the webhook only fires when the job ends.
Sending the video again at once paid its GPU time twice whenever the first job existed. So
the attempt is recorded as ambiguous and the video waits `OPENV_AMBIGUOUS_RUN_WAIT_S` before
its next attempt. Meanwhile a job of that attempt that reports is adopted.

How the bridge knows a reporting job is the video's: each `/run` carries in its `input` the
video id, the attempt number and a nonce derived from the webhook secret for that video and
attempt, and RunPod echoes `input` in every webhook. The webhook's URL token already proves
the caller knows the video's secret; the nonce in the body proves the body's `input` is one the
bridge sent for that video (nobody without the secret can make one up), so a job naming it is
adopted without RunPod's `/status`, which shows neither `input` nor, before the upload, the
video's key. The nonce is not a credential: it authorises nothing by itself.
"""

import hashlib
import hmac
from typing import Any
from uuid import UUID

#: The key of the bridge's marker in a job's `input` (workers ignore keys they do not know).
INPUT_KEY = "openv"


def attempt_nonce(secret: bytes, video_id: UUID, attempt: int) -> str:
    """Derived, not stored: a restarted bridge checks the nonces of every earlier attempt."""
    message = f"runpod-attempt:{video_id}:{attempt}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def attempt_marker(secret: bytes, video_id: UUID, attempt: int) -> dict[str, Any]:
    """What the bridge puts under `input[INPUT_KEY]` of an attempt's `/run`."""
    return {
        "video_id": str(video_id),
        "attempt": attempt,
        "nonce": attempt_nonce(secret, video_id, attempt),
    }


def input_names_attempt(secret: bytes, body: object, video_id: UUID, attempts: int) -> bool:
    """Whether a report's echoed `input` names one of the video's attempts so far (1 to
    `attempts`) with that attempt's nonce."""
    job_input = body.get("input") if isinstance(body, dict) else None
    marker = job_input.get(INPUT_KEY) if isinstance(job_input, dict) else None
    if not isinstance(marker, dict) or marker.get("video_id") != str(video_id):
        return False
    attempt, nonce = marker.get("attempt"), marker.get("nonce")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= attempts:
        return False
    if not isinstance(nonce, str):
        return False
    expected = attempt_nonce(secret, video_id, attempt).encode()
    return hmac.compare_digest(expected, nonce.encode("utf-8", "replace"))
