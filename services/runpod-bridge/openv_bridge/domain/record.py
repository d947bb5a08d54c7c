"""What the bridge knows about one video's submission (a row of its table, as the service
layer sees it), and what a first submission attempt records. Pure data; the table and its
compare-and-set steps are in `adapters.submissions`.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from openv_bridge.domain.submissions import SubmissionState

#: Why a takeover held a record instead of starting an attempt.
DIED_OPEN: Final = (
    "an attempt ended without recording an answer (a crash or a database outage), perhaps "
    "after RunPod took its job; waiting for that job to report"
)


@dataclass(frozen=True)
class Submission:
    video_id: UUID
    user_id: str
    object_key: str
    runpod_job_id: str | None
    state: SubmissionState
    attempts: int = 0
    job_input: dict[str, Any] | None = None
    accepted_event_id: UUID | None = None
    correlation_id: UUID | None = None
    last_error: str | None = None
    last_status: str | None = None
    last_progress: int | None = None
    answer_lost_at: datetime | None = None
    #: Until when this attempt holds the record (the database's clock).
    lease_until: datetime | None = None
    attempt_open_since: datetime | None = None

    @property
    def attempt_started(self) -> bool:
        """Whether a takeover (`acquire`, `acquire_stalled`) started an attempt that may call
        /run, rather than holding the record for a dead attempt's job (see
        `adapters.submission_attempts.take_over`)."""
        return self.state is SubmissionState.SUBMITTING and self.attempt_open_since is not None


@dataclass(frozen=True)
class Claim:
    """What a first submission attempt records (see `Submissions.claim_many`)."""

    video_id: UUID
    user_id: str
    object_key: str
    job_input: dict[str, Any]
    accepted_event_id: UUID
    correlation_id: UUID | None
