"""The reconciler's batches of records, each taken in one statement with `FOR UPDATE SKIP
LOCKED`, so several bridge instances share the work without doubling it: stalled submissions
(taken over), stalled cancels (leased again) and quiet jobs (marked polled).
"""

import sqlalchemy as sa

from openv_bridge.adapters.submission_attempts import take_over
from openv_bridge.adapters.submission_table import SubmissionStatements, after, before, lease_free
from openv_bridge.adapters.submission_table import table as _t
from openv_bridge.domain.record import Submission
from openv_bridge.domain.submissions import SubmissionState

_S = SubmissionState


class ReconcilerScans(SubmissionStatements):
    async def acquire_stalled(self, lease_s: float, hold_s: float, limit: int) -> list[Submission]:
        """Take over up to `limit` `submitting` records whose lease ran out (`take_over`)."""
        stalled = (
            sa.select(_t.c.video_id)
            .where(_t.c.state == _S.SUBMITTING.value, lease_free())
            .order_by(_t.c.lease_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._many(
            take_over(lease_s, hold_s).where(_t.c.video_id.in_(stalled.scalar_subquery()))
        )

    async def acquire_stalled_cancels(self, lease_s: float, limit: int) -> list[Submission]:
        """Lease again up to `limit` `cancelling` records whose lease ran out."""
        stalled = (
            sa.select(_t.c.video_id)
            .where(_t.c.state == _S.CANCELLING.value, lease_free())
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._many(
            sa.update(_t)
            .where(_t.c.video_id.in_(stalled.scalar_subquery()))
            .values(lease_until=after(lease_s))
            .returning(*_t.c)
        )

    async def claim_quiet(self, quiet_s: float, limit: int) -> list[Submission]:
        """Up to `limit` submitted jobs with no news and no poll for `quiet_s`, marked polled
        (so another reconciler skips them)."""
        quiet = (
            sa.select(_t.c.video_id)
            .where(
                _t.c.state == _S.SUBMITTED.value,
                _t.c.last_news_at <= before(quiet_s),
                sa.or_(_t.c.polled_at.is_(None), _t.c.polled_at <= before(quiet_s)),
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
