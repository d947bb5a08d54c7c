"""The bridge's table of RunPod submissions (one row per video, in its Postgres database) and
the SQL pieces every statement on it shares: the row as a `domain.record.Submission`, times on
the database's clock (`now()`), and one transaction per statement.

The state machine and why it is safe against crashes are described in
`openv_bridge.domain.submissions`; the statements are in `submission_attempts` (a submission's
lease and attempts), `reconciler_scans` (the reconciler's batches) and `submissions` (reads,
news, finishing and cancelling).
"""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from openv_bridge.domain.record import Submission
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


table = SubmissionRow.__table__  # type: ignore[attr-defined]
_S = SubmissionState


def to_submission(row: Any) -> Submission:
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


def after(seconds: float) -> Any:
    return sa.func.now() + timedelta(seconds=seconds)


def before(seconds: float) -> Any:
    return sa.func.now() - timedelta(seconds=seconds)


def lease_free() -> Any:
    return sa.or_(table.c.lease_until.is_(None), table.c.lease_until <= sa.func.now())


def submitted_values(job_id: str | sa.ColumnElement[str]) -> dict[str, Any]:
    """The columns of a record that now has its RunPod job (recorded or adopted)."""
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


def unnest(name: str, **columns: Any) -> Any:
    """Rows from parallel array parameters `{name}_{column}`: a statement over any number of
    rows whose compiled form SQLAlchemy caches (a multi-row VALUES compiles anew per count,
    a tenth of the bridge's CPU per create)."""
    return (
        sa.func.unnest(*(sa.bindparam(f"{name}_{c}", type_=ARRAY(t)) for c, t in columns.items()))
        .table_valued(*(sa.column(c, t) for c, t in columns.items()))
        .render_derived(name=name)
    )


class SubmissionStatements:
    """Runs statements on the table, each in its own transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _one(self, statement: Any) -> Submission | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else to_submission(row)

    async def _many(self, statement: Any, params: dict[str, Any] | None = None) -> list[Submission]:
        async with self.engine.begin() as conn:
            rows = (await conn.execute(statement, params)).all()
        return [to_submission(row) for row in rows]

    async def _execute(self, statement: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(statement)
