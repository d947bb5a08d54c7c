"""Replay: failed deliveries back to pending (same webhook-id), with a fresh window; for a
video (the internal API) or every one that failed since a time (ops, after an outage)."""

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from openv_contracts.webhooks import WebhookReplayed
from openv_webhooks.service_layer.ports import DeliveryQueue


class Replayer:
    def __init__(
        self,
        queue: DeliveryQueue,
        window_s: float,
        clock: Callable[[], datetime],
        replayed: Callable[[], None] = lambda: None,
    ) -> None:
        self.queue = queue
        self.window_s = window_s
        self.clock = clock
        self.replayed = replayed

    async def video(self, video_id: UUID) -> WebhookReplayed:
        return await self._replay(video_id, None)

    async def failed_since(self, since: datetime) -> WebhookReplayed:
        return await self._replay(None, since)

    async def _replay(self, video_id: UUID | None, since: datetime | None) -> WebhookReplayed:
        count = await self.queue.replay(video_id, since, self.clock(), self.window_s)
        if count:
            self.replayed()
        return WebhookReplayed(replayed=count)
