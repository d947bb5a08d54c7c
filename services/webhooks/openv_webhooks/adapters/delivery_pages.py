"""Delivery rows and their attempt rows as the internal API's `WebhookDeliveryPage`."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from openv_contracts.webhooks import (
    WebhookAttemptView,
    WebhookDeliveryPage,
    WebhookDeliveryView,
    WebhookEvent,
)
from openv_webhooks.domain.deliveries import DeliveryState, webhook_id


def delivery_page(deliveries: Sequence[Any], attempts: Sequence[Any]) -> WebhookDeliveryPage:
    by_delivery: dict[UUID, list[WebhookAttemptView]] = defaultdict(list)
    for a in attempts:
        by_delivery[a.delivery_id].append(
            WebhookAttemptView(
                at=a.at, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error
            )
        )
    return WebhookDeliveryPage(
        data=[
            WebhookDeliveryView(
                id=webhook_id(d.id),
                event=WebhookEvent(d.event),
                version=d.version,
                url=d.url,
                state=d.state,
                created_at=d.created_at,
                next_attempt_at=d.next_attempt_at if d.state == DeliveryState.PENDING else None,
                delivered_at=d.finished_at if d.state == DeliveryState.DELIVERED else None,
                attempts=by_delivery[d.id],
            )
            for d in deliveries
        ]
    )
