"""A webhook's body: the event type, when it happened, and the public video resource. Pure."""

import json
from datetime import datetime

from openv_contracts.public_video import Video
from openv_contracts.webhooks import WebhookEvent
from openv_webhooks.domain.events import webhook_type


def render_body(event: WebhookEvent, occurred_at: datetime, video: Video) -> bytes:
    """`{"type": "video.<event>", "timestamp": <ISO 8601>, "data": <Video>}` as UTF-8 JSON."""
    document = {
        "type": webhook_type(event),
        "timestamp": occurred_at.isoformat(),
        "data": video.model_dump(mode="json"),
    }
    return json.dumps(document, separators=(",", ":")).encode()
