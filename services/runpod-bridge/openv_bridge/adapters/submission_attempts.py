"""A submission's lease and attempts, as compare-and-set steps on its record: the first attempt
claimed, a stalled one taken over, an attempt's lease renewed before it sends, its job recorded
(or adopted from a report), and the ways an attempt ends without a job (failed, not counted,
answer lost).
"""

import json
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openv_bridge.adapters.submission_table import (
    SubmissionStatements,
    after,
    lease_free,
    submitted_values,
    unnest,
)
from openv_bridge.adapters.submission_table import table as _t
from openv_bridge.domain.record import DIED_OPEN, Claim, Submission
from openv_bridge.domain.submissions import SubmissionState

_S = SubmissionState


class SubmissionAttempts(SubmissionStatements):
    async def claim_many(self, claims: list[Claim], lease_s: float) -> list[Submission]:
        """Start the first attempt of each video that has no record yet, in one statement:
        the records started (a video claimed twice in `claims` is started once)."""
        if not claims:
            return []
        return await self._many(
            _CLAIM_MANY,
            {
                "claims_video_id": [claim.video_id for claim in claims],
                "claims_user_id": [claim.user_id for claim in claims],
                "claims_object_key": [claim.object_key for claim in claims],
                "claims_job_input": [json.dumps(claim.job_input) for claim in claims],
                "claims_accepted_id": [claim.accepted_event_id for claim in claims],
                "claims_correlation_id": [claim.correlation_id for claim in claims],
                "lease": timedelta(seconds=lease_s),
            },
        )

    async def acquire(self, video_id: UUID, lease_s: float, hold_s: float) -> Submission | None:
        """Take over a `submitting` record whose lease ran out (see `take_over`); None if the
        record is not submitting or someone else's attempt still holds it."""
        return await self._one(
            take_over(lease_s, hold_s).where(
                _t.c.video_id == video_id, _t.c.state == _S.SUBMITTING.value, lease_free()
            )
        )

    async def renew(self, video_id: UUID, attempt: int, lease_s: float) -> bool:
        """Extend attempt `attempt`'s lease, marking it open (it is about to send); False if
        another attempt took the record over (or it is no longer submitting): then this
        attempt must not send anything."""
        return await self._update_attempt(
            video_id, attempt, lease_until=after(lease_s), attempt_open_since=sa.func.now()
        )

    async def record_jobs(self, jobs: list[tuple[UUID, int, str]]) -> set[UUID]:
        """Record each (video, attempt, job), unless another attempt, an adoption or a cancel
        changed the video's record since that attempt started; in one statement. Returns
        the videos whose job was recorded."""
        if not jobs:
            return set()
        video_ids, attempts, job_ids = zip(*jobs, strict=True)
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                _RECORD_JOBS,
                {
                    "given_video_id": list(video_ids),
                    "given_attempt": list(attempts),
                    "given_job_id": list(job_ids),
                },
            )
            return {row.video_id for row in rows}

    async def adopt(self, video_id: UUID, job_id: str) -> bool:
        """Record a job that reported before (or instead of) its attempt recording it."""
        row = await self._one(
            sa.update(_t)
            .where(
                _t.c.video_id == video_id,
                _t.c.state == _S.SUBMITTING.value,
                _t.c.runpod_job_id.is_(None),
            )
            .values(**submitted_values(job_id))
            .returning(*_t.c)
        )
        return row is not None

    async def attempt_failed(
        self, video_id: UUID, attempt: int, error: str, retry_in_s: float
    ) -> None:
        """Keep the record `submitting`; the next attempt may start in `retry_in_s`."""
        await self._update_attempt(
            video_id,
            attempt,
            lease_until=after(retry_in_s),
            last_error=error[:2000],
            attempt_open_since=None,
        )

    async def attempt_not_counted(
        self, video_id: UUID, attempt: int, error: str, retry_in_s: float
    ) -> None:
        """Like `attempt_failed`, and the attempt is given back: RunPod never looked at it (its
        rate limit, our key refused), so it must not bring the video closer to failing."""
        await self._update_attempt(
            video_id,
            attempt,
            attempts=attempt - 1,
            lease_until=after(retry_in_s),
            last_error=error[:2000],
            attempt_open_since=None,
        )

    async def answer_lost(self, video_id: UUID, attempt: int, error: str, wait_s: float) -> None:
        """Attempt `attempt` may have created a job whose id never came back: keep the record
        `submitting`, marked ambiguous, and start no other attempt for `wait_s` (its job may
        report meanwhile and be adopted)."""
        await self._update_attempt(
            video_id,
            attempt,
            lease_until=after(wait_s),
            answer_lost_at=sa.func.now(),
            last_error=error[:2000],
            attempt_open_since=None,
        )

    async def _update_attempt(self, video_id: UUID, attempt: int, **values: Any) -> bool:
        """Change a `submitting` record still at attempt `attempt` (compare-and-set: a later
        attempt, an adoption or a cancel wins); whether it was."""
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                sa.update(_t)
                .where(
                    _t.c.video_id == video_id,
                    _t.c.state == _S.SUBMITTING.value,
                    _t.c.attempts == attempt,
                )
                .values(**values, updated_at=sa.func.now())
                .returning(_t.c.video_id)
            )
            return changed.first() is not None


def take_over(lease_s: float, hold_s: float) -> Any:
    """The update that takes over a stalled `submitting` record (filtered by the caller).

    If its last attempt recorded an outcome (a failure to retry, a lost answer whose wait is
    over), the next attempt starts: counted, leased for `lease_s`, open. If the attempt is
    still open, it died between claiming and recording, maybe after RunPod took its job, which
    then reports only at its end: the record is held like a lost answer (`answer_lost_at`,
    `hold_s`; the job is adopted if it reports), and a later takeover starts the next attempt.
    A held record comes back with `attempt_open_since` None (`Submission.attempt_started`).
    """
    died_open = _t.c.attempt_open_since.is_not(None)
    now = sa.func.now()
    return (
        sa.update(_t)
        .values(
            attempts=sa.case((died_open, _t.c.attempts), else_=_t.c.attempts + 1),
            lease_until=sa.case((died_open, after(hold_s)), else_=after(lease_s)),
            answer_lost_at=sa.case((died_open, now), else_=_t.c.answer_lost_at),
            last_error=sa.case((died_open, DIED_OPEN), else_=_t.c.last_error),
            attempt_open_since=sa.case((died_open, sa.null()), else_=now),
            updated_at=now,
        )
        .returning(*_t.c)
    )


_claims = unnest(
    "claims",
    video_id=sa.Uuid,
    user_id=sa.Text,
    object_key=sa.Text,
    job_input=sa.Text,
    accepted_id=sa.Uuid,
    correlation_id=sa.Uuid,
)
_CLAIM_MANY: Final = (
    pg_insert(_t)
    .from_select(
        [
            "video_id",
            "user_id",
            "object_key",
            "state",
            "job_input",
            "accepted_event_id",
            "correlation_id",
            "attempts",
            "lease_until",
            "attempt_open_since",
        ],
        sa.select(
            _claims.c.video_id,
            _claims.c.user_id,
            _claims.c.object_key,
            sa.literal(_S.SUBMITTING.value),
            sa.cast(_claims.c.job_input, JSONB),
            _claims.c.accepted_id,
            _claims.c.correlation_id,
            sa.literal(1),
            sa.func.now() + sa.bindparam("lease", type_=sa.Interval),
            sa.func.now(),
        ),
    )
    .on_conflict_do_nothing()
    .returning(*_t.c)
)

_given = unnest("given", video_id=sa.Uuid, attempt=sa.Integer, job_id=sa.Text)
_RECORD_JOBS: Final = (
    sa.update(_t)
    .where(
        _t.c.video_id == _given.c.video_id,
        _t.c.state == _S.SUBMITTING.value,
        _t.c.attempts == _given.c.attempt,
        _t.c.runpod_job_id.is_(None),
    )
    .values(**submitted_values(_given.c.job_id))
    .returning(_t.c.video_id)
)
