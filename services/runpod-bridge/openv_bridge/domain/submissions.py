"""The bridge's record of one video's RunPod submission, and the decisions around it. Pure.

Life of a record (`runpod_submissions.state`):

    submitting --/run answered, job recorded--> submitted --terminal report--> finished
        |  \\--RunPod refused / attempts exhausted (failure published)--------> finished
        |--cancel/delete (no job yet)--> cancelled
    submitted --cancel/delete--> cancelling --/cancel answered (or 404)--> cancelled

`submitting` carries a lease (`lease_until`) and an attempt counter. Whoever holds the lease
may call /run; a crash leaves the lease to expire, after which the reconciler (or a redelivered
"accepted" event) takes over: an attempt that died open (no outcome recorded, perhaps after
RunPod took its job) first holds the record for that job to report, then a new attempt starts.
Recording the job is a compare-and-set on the attempt number, so of two attempts that both
reached RunPod exactly one is recorded and the other job is cancelled. A job that reached
RunPod but was never recorded (a crash in between) shows up when it reports: its webhook
carries the video's valid token but a job id that is not the recorded one. Webhooks are
unsigned and anyone holding the token can name any job id, so such a job is adopted (or
cancelled as extra) only when RunPod's own /status answer shows it is this video's job
(`runpod_says_ours`), or its echoed `input` carries the attempt marker only the bridge can make
(`domain.ambiguity`, which also explains why an attempt whose /run answer was lost waits before
the next one).
"""

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID, uuid5

from openv_contracts.events import VideoAccepted
from openv_contracts.render_job import RenderJobInput


class SubmissionState(StrEnum):
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    FINISHED = "finished"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class Route(Enum):
    """What to do with a report (webhook body) for a video, given its record."""

    #: The recorded job of a submission in flight: turn it into a fact.
    APPLY = "apply"
    #: The recorded job, but the record is settled (finished/cancelled): acknowledge, no fact.
    SETTLED = "settled"
    #: A job reporting while the record is still `submitting` with no job: the job of an
    #: attempt whose answer was lost (crash, timeout)? Adopt it if RunPod confirms it is ours.
    ADOPT = "adopt"
    #: Not the recorded job and nobody else's: an extra job of this video? Cancel it on RunPod
    #: if RunPod confirms it is ours; never adopted.
    ORPHAN = "orphan"
    #: The recorded job of another video: refuse, and never cancel it from here.
    FOREIGN = "foreign"


def route_report(
    state: SubmissionState,
    recorded_job_id: str | None,
    reported_job_id: str,
    owner_of_reported_job: UUID | None,
    video_id: UUID,
) -> Route:
    if recorded_job_id is not None and reported_job_id == recorded_job_id:
        if state is SubmissionState.SUBMITTED:
            return Route.APPLY
        return Route.SETTLED
    if owner_of_reported_job is not None and owner_of_reported_job != video_id:
        return Route.FOREIGN
    if state is SubmissionState.SUBMITTING and recorded_job_id is None:
        return Route.ADOPT
    return Route.ORPHAN


def runpod_says_ours(status_answer: object, job_id: str, object_key: str) -> bool:
    """Whether RunPod's /status answer for `job_id` shows it is the job of the video whose
    output goes to `object_key` (unique per video): its `input` names that key (where RunPod
    shows `input`), or its worker reports having uploaded there. A webhook body proves nothing:
    whoever holds the token writes it."""
    if not isinstance(status_answer, dict) or status_answer.get("id") != job_id:
        return False
    for part, field in (("input", "output_key"), ("output", "key")):
        section = status_answer.get(part)
        if isinstance(section, dict) and section.get(field) == object_key:
            return True
    return False


def retry_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Wait before submission attempt `attempt + 1`: doubles per attempt, capped."""
    return float(min(cap_s, base_s * 2 ** max(0, attempt - 1)))


def progress_is_news(
    last_status: str | None, last_progress: int | None, status: str, progress: int | None
) -> bool:
    """Whether a running report says something the last one did not (worth a fact)."""
    if last_status not in {"IN_PROGRESS", "RUNNING"}:
        return True
    return progress is not None and progress != last_progress


def job_input(accepted: VideoAccepted) -> dict[str, Any]:
    """The render job's input (`openv_contracts.render_job`) without the upload target, which
    is presigned per attempt."""
    params = accepted.params
    job = RenderJobInput(
        positive_prompt=accepted.prompt,
        negative_prompt=params.negative_prompt,
        width=params.width,
        height=params.height,
        seed=params.seed,
        steps=params.steps,
        cfg=params.cfg,
        num_frames=params.num_frames,
    )
    return job.model_dump(exclude={"output_put_url", "output_key"})


@dataclass(frozen=True)
class FactIds:
    """Deterministic event ids for a video's facts: the same fact published twice (a webhook
    and a poll, a retry after a crash) has one id, so the jobs service dedupes it exactly."""

    video_id: UUID

    def of(self, kind: str, job_id: str | None = None, detail: object = None) -> UUID:
        extra = "" if detail is None else detail
        return uuid5(self.video_id, f"runpod-bridge:{kind}:{job_id or ''}:{extra}")
