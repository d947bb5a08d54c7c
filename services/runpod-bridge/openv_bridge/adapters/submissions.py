"""The bridge's record of RunPod submissions (its Postgres database).

One row per video. The state machine and why it is safe against crashes are described in
`openv_bridge.domain.submissions`; this module does its compare-and-set steps atomically in SQL,
with the database's clock (`now()`), so several bridge instances agree on leases and quiet times.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from openv_bridge.domain.submissions import SubmissionState


def _tz(nullable: bool, server_now: bool = False) -> Any:
    return sa.Column(
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if server_now else None,
    )


class SubmissionRow(SQLModel, table=True):
    __tablename__ = "runpod_submissions"
    __table_args__ = (
        # One RunPod job belongs to one video: a report naming another video's job is foreign.
        sa.Index("runpod_submissions_job_id", "runpod_job_id", unique=True),
        # The reconciler's scans: records in a state, oldest news first.
        sa.Index("runpod_submissions_state_news", "state", "last_news_at"),
    )

    video_id: UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    object_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    runpod_job_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    #: see `SubmissionState`
    state: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=_tz(False, server_now=True))
    updated_at: datetime = Field(sa_column=_tz(False, server_now=True))
    #: The worker input without the output URL (presigned afresh per attempt).
    job_input: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    #: The VideoAccepted event and its correlation id, for the facts' envelopes.
    accepted_event_id: UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    correlation_id: UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    #: Submission attempts started; recording a job checks it (compare-and-set).
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    #: `submitting`/`cancelling`: nobody else may act on the record before this time.
    lease_until: datetime | None = Field(default=None, sa_column=_tz(True))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    submitted_at: datetime | None = Field(default=None, sa_column=_tz(True))
    #: Last time RunPod said anything about the job (webhook or poll answer).
    last_news_at: datetime = Field(sa_column=_tz(False, server_now=True))
    #: Last time the reconciler asked /status (answered or not).
    polled_at: datetime | None = Field(default=None, sa_column=_tz(True))
    last_status: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    last_progress: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    #: When the last `/run` answer of this record was lost (its job may exist): the next
    #: attempt waits for it (`domain.ambiguity`). Kept once a job is recorded, for the record.
    answer_lost_at: datetime | None = Field(default=None, sa_column=_tz(True))
    #: Set while an attempt may be sending `/run` and has recorded no outcome (job, failure,
    #: lost answer): if its lease runs out with this still set, the attempt died (a crash, a
    #: database outage) perhaps after RunPod took the job, so the takeover waits like a lost
    #: answer instead of sending the video again.
    attempt_open_since: datetime | None = Field(default=None, sa_column=_tz(True))


_t = SubmissionRow.__table__  # type: ignore[attr-defined]
_S = SubmissionState


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
        /run, rather than holding the record for a dead attempt's job (see `_TAKE_OVER`)."""
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


def _submission(row: Any) -> Submission:
    return Submission(
        video_id=row.video_id,
        user_id=row.user_id,
        object_key=row.object_key,
        runpod_job_id=row.runpod_job_id,
        state=SubmissionState(row.state),
        attempts=row.attempts,
        job_input=row.job_input,
        accepted_event_id=row.accepted_event_id,
        correlation_id=row.correlation_id,
        last_error=row.last_error,
        last_status=row.last_status,
        last_progress=row.last_progress,
        answer_lost_at=row.answer_lost_at,
        lease_until=row.lease_until,
        attempt_open_since=row.attempt_open_since,
    )


def _after(seconds: float) -> Any:
    return sa.func.now() + timedelta(seconds=seconds)


def _before(seconds: float) -> Any:
    return sa.func.now() - timedelta(seconds=seconds)


def _lease_free() -> Any:
    return sa.or_(_t.c.lease_until.is_(None), _t.c.lease_until <= sa.func.now())


class Submissions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _one(self, statement: Any) -> Submission | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _submission(row)

    async def _many(self, statement: Any, params: dict[str, Any] | None = None) -> list[Submission]:
        async with self.engine.begin() as conn:
            rows = (await conn.execute(statement, params)).all()
        return [_submission(row) for row in rows]

    async def get(self, video_id: UUID) -> Submission | None:
        return await self._one(sa.select(_t).where(_t.c.video_id == video_id))

    async def owner_of_job(self, job_id: str) -> UUID | None:
        async with self.engine.connect() as conn:
            owner = await conn.scalar(sa.select(_t.c.video_id).where(_t.c.runpod_job_id == job_id))
        return owner if isinstance(owner, UUID) else None

    # ---------------------------------------------------------------- submitting

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
        """Take over a `submitting` record whose lease ran out (see `_take_over`); None if the
        record is not submitting or someone else's attempt still holds it."""
        return await self._one(
            _take_over(lease_s, hold_s).where(
                _t.c.video_id == video_id, _t.c.state == _S.SUBMITTING.value, _lease_free()
            )
        )

    async def renew(self, video_id: UUID, attempt: int, lease_s: float) -> bool:
        """Extend attempt `attempt`'s lease, marking it open (it is about to send); False if
        another attempt took the record over (or it is no longer submitting): then this
        attempt must not send anything."""
        return await self._update_attempt(
            video_id, attempt, lease_until=_after(lease_s), attempt_open_since=sa.func.now()
        )

    async def acquire_stalled(self, lease_s: float, hold_s: float, limit: int) -> list[Submission]:
        """Take over up to `limit` `submitting` records whose lease ran out (`_take_over`)."""
        stalled = (
            sa.select(_t.c.video_id)
            .where(_t.c.state == _S.SUBMITTING.value, _lease_free())
            .order_by(_t.c.lease_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._many(
            _take_over(lease_s, hold_s).where(_t.c.video_id.in_(stalled.scalar_subquery()))
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
            .values(**self._submitted(job_id))
            .returning(*_t.c)
        )
        return row is not None

    @staticmethod
    def _submitted(job_id: str | sa.ColumnElement[str]) -> dict[str, Any]:
        now = sa.func.now()
        return {
            "state": _S.SUBMITTED.value,
            "runpod_job_id": job_id,
            "lease_until": None,
            "attempt_open_since": None,
            "last_error": None,
            "submitted_at": now,
            "last_news_at": now,
            "last_status": "IN_QUEUE",
            "updated_at": now,
        }

    async def attempt_failed(
        self, video_id: UUID, attempt: int, error: str, retry_in_s: float
    ) -> None:
        """Keep the record `submitting`; the next attempt may start in `retry_in_s`."""
        await self._update_attempt(
            video_id,
            attempt,
            lease_until=_after(retry_in_s),
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
            lease_until=_after(retry_in_s),
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
            lease_until=_after(wait_s),
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

    # ---------------------------------------------------------------- in flight

    async def record_news(
        self, video_id: UUID, job_id: str, status: str, progress: int | None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(_t)
                .where(_t.c.video_id == video_id, _t.c.runpod_job_id == job_id)
                .values(
                    last_news_at=sa.func.now(),
                    last_status=status,
                    last_progress=progress,
                    updated_at=sa.func.now(),
                )
            )

    async def finish(
        self,
        video_id: UUID,
        from_states: frozenset[SubmissionState],
        status: str | None = None,
        error: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "state": _S.FINISHED.value,
            "lease_until": None,
            "attempt_open_since": None,
            "updated_at": sa.func.now(),
        }
        if status is not None:
            values.update(last_status=status, last_news_at=sa.func.now())
        if error is not None:
            values["last_error"] = error[:2000]
        row = await self._one(
            sa.update(_t)
            .where(_t.c.video_id == video_id, _t.c.state.in_([s.value for s in from_states]))
            .values(**values)
            .returning(*_t.c)
        )
        return row is not None

    async def claim_quiet(self, quiet_s: float, limit: int) -> list[Submission]:
        """Up to `limit` submitted jobs with no news and no poll for `quiet_s`, marked polled
        (so another reconciler skips them)."""
        quiet = (
            sa.select(_t.c.video_id)
            .where(
                _t.c.state == _S.SUBMITTED.value,
                _t.c.last_news_at <= _before(quiet_s),
                sa.or_(_t.c.polled_at.is_(None), _t.c.polled_at <= _before(quiet_s)),
            )
            .order_by(_t.c.last_news_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._many(
            sa.update(_t)
            .where(_t.c.video_id.in_(quiet.scalar_subquery()))
            .values(polled_at=sa.func.now())
            .returning(*_t.c)
        )

    # ---------------------------------------------------------------- cancelling

    async def start_cancel(self, video_id: UUID, lease_s: float) -> Submission | None:
        """Mark a submission in flight as cancelled: `cancelled` at once if it has no job yet
        (an attempt in flight then fails to record its job and cancels it), else `cancelling`
        until RunPod confirms. None if there was nothing in flight."""
        has_job = _t.c.runpod_job_id.is_not(None)
        return await self._one(
            sa.update(_t)
            .where(
                _t.c.video_id == video_id,
                _t.c.state.in_([_S.SUBMITTING.value, _S.SUBMITTED.value]),
            )
            .values(
                state=sa.case((has_job, _S.CANCELLING.value), else_=_S.CANCELLED.value),
                lease_until=sa.case((has_job, _after(lease_s)), else_=None),
                updated_at=sa.func.now(),
            )
            .returning(*_t.c)
        )

    async def tombstone(self, video_id: UUID, user_id: str, object_key: str) -> None:
        """A cancelled video the bridge never saw accepted: no later delivery may submit it."""
        async with self.engine.begin() as conn:
            await conn.execute(
                pg_insert(_t)
                .values(
                    video_id=video_id,
                    user_id=user_id,
                    object_key=object_key,
                    state=_S.CANCELLED.value,
                )
                .on_conflict_do_nothing()
            )

    async def acquire_stalled_cancels(self, lease_s: float, limit: int) -> list[Submission]:
        stalled = (
            sa.select(_t.c.video_id)
            .where(_t.c.state == _S.CANCELLING.value, _lease_free())
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._many(
            sa.update(_t)
            .where(_t.c.video_id.in_(stalled.scalar_subquery()))
            .values(lease_until=_after(lease_s))
            .returning(*_t.c)
        )

    async def cancel_done(self, video_id: UUID) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(_t)
                .where(_t.c.video_id == video_id, _t.c.state == _S.CANCELLING.value)
                .values(state=_S.CANCELLED.value, lease_until=None, updated_at=sa.func.now())
            )

    async def cancel_failed(self, video_id: UUID, error: str, retry_in_s: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(_t)
                .where(_t.c.video_id == video_id, _t.c.state == _S.CANCELLING.value)
                .values(
                    lease_until=_after(retry_in_s),
                    last_error=error[:2000],
                    updated_at=sa.func.now(),
                )
            )


#: Why a takeover held a record instead of starting an attempt.
DIED_OPEN: Final = (
    "an attempt ended without recording an answer (a crash or a database outage), perhaps "
    "after RunPod took its job; waiting for that job to report"
)


def _take_over(lease_s: float, hold_s: float) -> Any:
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
            lease_until=sa.case((died_open, _after(hold_s)), else_=_after(lease_s)),
            answer_lost_at=sa.case((died_open, now), else_=_t.c.answer_lost_at),
            last_error=sa.case((died_open, DIED_OPEN), else_=_t.c.last_error),
            attempt_open_since=sa.case((died_open, sa.null()), else_=now),
            updated_at=now,
        )
        .returning(*_t.c)
    )


def _unnest(name: str, **columns: Any) -> Any:
    """Rows from parallel array parameters `{name}_{column}`: a statement over any number of
    rows whose compiled form SQLAlchemy caches (a multi-row VALUES compiles anew per count,
    a tenth of the bridge's CPU per create)."""
    return (
        sa.func.unnest(*(sa.bindparam(f"{name}_{c}", type_=ARRAY(t)) for c, t in columns.items()))
        .table_valued(*(sa.column(c, t) for c, t in columns.items()))
        .render_derived(name=name)
    )


_claims = _unnest(
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

_given = _unnest("given", video_id=sa.Uuid, attempt=sa.Integer, job_id=sa.Text)
_RECORD_JOBS: Final = (
    sa.update(_t)
    .where(
        _t.c.video_id == _given.c.video_id,
        _t.c.state == _S.SUBMITTING.value,
        _t.c.attempts == _given.c.attempt,
        _t.c.runpod_job_id.is_(None),
    )
    .values(**Submissions._submitted(_given.c.job_id))
    .returning(_t.c.video_id)
)
