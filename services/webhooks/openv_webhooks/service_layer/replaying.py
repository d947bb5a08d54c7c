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
        count = await self.queue.replay(video_id, None, self.clock(), self.window_s)
        if count:
            self.replayed()
        return WebhookReplayed(replayed=count)

    async def failed_since(self, since: datetime) -> WebhookReplayed:
        count = await self.queue.replay(None, since, self.clock(), self.window_s)
        if count:
            self.replayed()
        return WebhookReplayed(replayed=count)
