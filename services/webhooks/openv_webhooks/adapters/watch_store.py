"""Postgres watches: the videos with a webhook, their folded view, and the delivery each
event records, written in one transaction (`WatchStore`)."""

from collections.abc import Collection, Mapping
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_contracts.queries import VideoView
from openv_contracts.webhooks import WebhookEvent
from openv_webhooks.adapters.tables import DeliveryRow, WatchRow
from openv_webhooks.domain.deliveries import DeliveryState
from openv_webhooks.service_layer.ports import NewDelivery, Watch

_W = WatchRow.__table__  # type: ignore[attr-defined]
_D = DeliveryRow.__table__  # type: ignore[attr-defined]


class PostgresWatches:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def watches(self, video_ids: Collection[UUID]) -> Mapping[UUID, Watch]:
        if not video_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(_W).where(_W.c.video_id.in_(list(video_ids))))
            return {row.video_id: _watch(row) for row in rows}

    async def record(
        self, watch: Watch, held_version: int | None, delivery: NewDelivery | None
    ) -> bool:
        values = {
            "user_id": watch.user_id,
            "url": watch.url,
            "events": sorted(e.value for e in watch.events),
            "view": watch.view.model_dump(mode="json"),
            "version": watch.view.version,
            "updated_at": sa.func.now(),
        }
        async with self.engine.begin() as conn:
            if held_version is None:
                written = await conn.execute(
                    insert(_W)
                    .values(video_id=watch.video_id, **values)
                    .on_conflict_do_nothing(index_elements=["video_id"])
                )
            else:
                written = await conn.execute(
                    sa.update(_W)
                    .where(_W.c.video_id == watch.video_id, _W.c.version == held_version)
                    .values(**values)
                )
            if written.rowcount != 1:
                return False  # rolled back with the block (nothing was written)
            if delivery is not None:
                await conn.execute(
                    insert(_D)
                    .values(
                        id=delivery.id,
                        video_id=delivery.video_id,
                        user_id=delivery.user_id,
                        version=delivery.version,
                        event=delivery.event.value,
                        url=delivery.url,
                        origin=delivery.origin,
                        occurred_at=delivery.occurred_at,
                        view=delivery.view.model_dump(mode="json"),
                        state=DeliveryState.PENDING.value,
                        created_at=delivery.created_at,
                        give_up_at=delivery.give_up_at,
                        next_attempt_at=delivery.created_at,
                        failed_attempts=0,
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                )
        return True


def _watch(row: sa.Row) -> Watch:  # type: ignore[type-arg]
    return Watch(
        video_id=row.video_id,
        user_id=row.user_id,
        url=row.url,
        events=frozenset(WebhookEvent(e) for e in row.events),
        view=VideoView.model_validate(row.view),
    )
