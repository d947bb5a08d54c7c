"""Whether RunPod accepts our credentials and endpoint at all. Pure.

A 401/403, or a 404 for the endpoint (on `/run` or `/health`, never a job's `/status` or
`/cancel`), says nothing about the video being submitted: the API key is wrong or being
rotated, or the endpoint id is mistyped. That is an outage of the whole bridge, not a verdict on
one video: the videos wait, and the first call RunPod answers successfully ends it.
"""

from dataclasses import dataclass
from enum import Enum

#: Answers about the request in flight that a later try may not get (not the job's input).
TRANSIENT_4XX = frozenset({408, 425, 429})
MISCONFIGURED_4XX = frozenset({401, 403})


class Verdict(Enum):
    OK = "ok"
    #: Try again later: 5xx, 408, 429.
    TRANSIENT = "transient"
    #: Our key or endpoint is wrong: every call fails until an operator fixes it.
    MISCONFIGURED = "misconfigured"
    #: The job (its id) is unknown to RunPod.
    JOB_NOT_FOUND = "job_not_found"
    #: RunPod refused this request for its content (400, 413, 422, ...): asking again is useless.
    REFUSED = "refused"


def classify(status_code: int, job_call: bool) -> Verdict:
    """What an HTTP answer from RunPod means. `job_call`: the path names one job."""
    if status_code < 400:
        return Verdict.OK
    if status_code >= 500 or status_code in TRANSIENT_4XX:
        return Verdict.TRANSIENT
    if status_code in MISCONFIGURED_4XX:
        return Verdict.MISCONFIGURED
    if status_code == 404:
        return Verdict.JOB_NOT_FOUND if job_call else Verdict.MISCONFIGURED
    return Verdict.REFUSED


@dataclass
class AccessState:
    """Misconfigured or not; each method returns whether the state changed (to log once)."""

    misconfigured: bool = False
    reason: str = ""

    def refused(self, reason: str) -> bool:
        changed = not self.misconfigured
        self.misconfigured, self.reason = True, reason
        return changed

    def answered(self) -> bool:
        changed = self.misconfigured
        self.misconfigured, self.reason = False, ""
        return changed
