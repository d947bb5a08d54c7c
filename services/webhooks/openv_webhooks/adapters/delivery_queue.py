"""Postgres deliveries (`DeliveryQueue`): claims with leases (`FOR UPDATE SKIP LOCKED`, so
instances never take the same one and a dead instance's claims come back when the lease
ends), a video's oldest pending delivery only, attempts, replays and the backlog."""

from collections.abc import Collection
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_contracts.queries import VideoView
from openv_contracts.webhooks import WebhookDeliveryPage, WebhookEvent
from openv_webhooks.adapters.delivery_pages import delivery_page
from openv_webhooks.adapters.tables import AttemptRow, DeliveryRow
from openv_webhooks.domain.deliveries import AttemptResult, DeliveryState, Outcome
from openv_webhooks.service_layer.ports import Due, Pick

_D = DeliveryRow.__table__  # type: ignore[attr-defined]
_A = AttemptRow.__table__  # type: ignore[attr-defined]
#: Candidates read per free slot (the picker drops those over their receiver's bound).
_CANDIDATES_PER_SLOT = 4

_CLAIM = sa.text(
    """
    SELECT d.* FROM webhook_deliveries d
    WHERE d.state = 'pending'
      AND d.next_attempt_at <= :now
      AND (d.lease_until IS NULL OR d.lease_until <= :now)
      AND NOT (d.origin = ANY(:skip))
      AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries e
        WHERE e.video_id = d.video_id AND e.state = 'pending' AND e.version < d.version
      )
    ORDER BY d.next_attempt_at, d.created_at
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


class PostgresDeliveries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int, skip: Collection[str], pick: Pick
    ) -> list[Due]:
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                _CLAIM,
                {"now": now, "skip": list(skip), "limit": limit * _CANDIDATES_PER_SLOT},
            )
            picked = pick([_due(row) for row in rows])
            if picked:
                await conn.execute(
                    sa.update(_D)
                    .where(_D.c.id.in_([d.id for d in picked]))
                    .values(lease_until=lease_until)
                )
        return picked

    async def finish(self, due: Due, result: AttemptResult, outcome: Outcome) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(_A).values(
                    delivery_id=due.id,
                    at=result.at,
                    status_code=result.status_code,
                    latency_ms=result.latency_ms,
                    error=result.error,
                )
            )
            finished = outcome.state is not DeliveryState.PENDING
            await conn.execute(
                sa.update(_D)
                .where(_D.c.id == due.id, _D.c.state == DeliveryState.PENDING.value)
                .values(
                    state=outcome.state.value,
                    next_attempt_at=outcome.next_attempt_at,
                    lease_until=None,
                    finished_at=result.at if finished else None,
                    failed_attempts=_D.c.failed_attempts + (0 if result.delivered else 1),
                )
            )

    async def backlog(self, now: datetime) -> tuple[int, float]:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(_D.c.created_at)).where(
                        _D.c.state == DeliveryState.PENDING.value
                    )
                )
            ).one()
        count, oldest = row
        return int(count), 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())

    async def deliveries(self, video_id: UUID) -> WebhookDeliveryPage:
        async with self.engine.connect() as conn:
            deliveries = (
                await conn.execute(
                    sa.select(_D).where(_D.c.video_id == video_id).order_by(_D.c.version)
                )
            ).all()
            attempts = (
                await conn.execute(
                    sa.select(_A)
                    .where(_A.c.delivery_id.in_([d.id for d in deliveries]))
                    .order_by(_A.c.at, _A.c.id)
                )
            ).all()
        return delivery_page(deliveries, attempts)

    async def replay(
        self, video_id: UUID | None, failed_since: datetime | None, now: datetime, window_s: float
    ) -> int:
        which = [_D.c.state == DeliveryState.FAILED.value]
        if video_id is not None:
            which.append(_D.c.video_id == video_id)
        if failed_since is not None:
            which.append(_D.c.finished_at >= failed_since)
        async with self.engine.begin() as conn:
            done = await conn.execute(
                sa.update(_D)
                .where(*which)
                .values(
                    state=DeliveryState.PENDING.value,
                    next_attempt_at=now,
                    give_up_at=now + timedelta(seconds=window_s),
                    lease_until=None,
                    finished_at=None,
                    failed_attempts=0,
                )
            )
        return int(done.rowcount)


def _due(row: sa.Row) -> Due:  # type: ignore[type-arg]
    return Due(
        id=row.id,
        video_id=row.video_id,
        user_id=row.user_id,
        version=row.version,
        event=WebhookEvent(row.event),
        url=row.url,
        origin=row.origin,
        occurred_at=row.occurred_at,
        view=VideoView.model_validate(row.view),
        give_up_at=row.give_up_at,
        failed_attempts=row.failed_attempts,
    )
