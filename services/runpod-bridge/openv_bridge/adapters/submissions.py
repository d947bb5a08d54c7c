"""The bridge's record of RunPod submissions (its Postgres database), as one object: reads,
a job's news, finishing and cancelling here; a submission's lease and attempts in
`submission_attempts`, the reconciler's batches in `reconciler_scans`, the table in
`submission_table`.

Every step is a compare-and-set done atomically in SQL, with the database's clock (`now()`),
so several bridge instances agree on leases and quiet times.
"""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openv_bridge.adapters.reconciler_scans import ReconcilerScans
from openv_bridge.adapters.submission_attempts import SubmissionAttempts
from openv_bridge.adapters.submission_table import after
from openv_bridge.adapters.submission_table import table as _t
from openv_bridge.domain.record import Submission
from openv_bridge.domain.submissions import SubmissionState

_S = SubmissionState


class Submissions(SubmissionAttempts, ReconcilerScans):
    async def get(self, video_id: UUID) -> Submission | None:
        return await self._one(sa.select(_t).where(_t.c.video_id == video_id))

    async def owner_of_job(self, job_id: str) -> UUID | None:
        async with self.engine.connect() as conn:
            owner = await conn.scalar(sa.select(_t.c.video_id).where(_t.c.runpod_job_id == job_id))
        return owner if isinstance(owner, UUID) else None

    # ---------------------------------------------------------------- in flight

    async def record_news(
        self, video_id: UUID, job_id: str, status: str, progress: int | None
    ) -> None:
        await self._execute(
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
                lease_until=sa.case((has_job, after(lease_s)), else_=None),
                updated_at=sa.func.now(),
            )
            .returning(*_t.c)
        )

    async def tombstone(self, video_id: UUID, user_id: str, object_key: str) -> None:
        """A cancelled video the bridge never saw accepted: no later delivery may submit it."""
        await self._execute(
            pg_insert(_t)
            .values(
                video_id=video_id,
                user_id=user_id,
                object_key=object_key,
                state=_S.CANCELLED.value,
            )
            .on_conflict_do_nothing()
        )

    async def cancel_done(self, video_id: UUID) -> None:
        await self._execute(
            sa.update(_t)
            .where(_t.c.video_id == video_id, _t.c.state == _S.CANCELLING.value)
            .values(state=_S.CANCELLED.value, lease_until=None, updated_at=sa.func.now())
        )

    async def cancel_failed(self, video_id: UUID, error: str, retry_in_s: float) -> None:
        await self._execute(
            sa.update(_t)
            .where(_t.c.video_id == video_id, _t.c.state == _S.CANCELLING.value)
            .values(
                lease_until=after(retry_in_s),
                last_error=error[:2000],
                updated_at=sa.func.now(),
            )
        )
