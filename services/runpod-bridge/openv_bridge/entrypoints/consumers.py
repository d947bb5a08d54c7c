"""Kafka subscriber: the video events the bridge acts on (accepted, cancelled, deleted, timed
out).

Read in batches; the others (most of the topic) are skipped by their header, unread. A batch's
new submissions are claimed and recorded together; its videos are handled side by side, each
video's events in order: a RunPod call that takes its time holds up only its own video (and
the batch's cancels, at most for the submit timeout).
"""

import math
from typing import Final

from faststream.kafka import KafkaBroker

from openv_bridge.config import Settings
from openv_bridge.service_layer.bridge import BridgeService
from openv_contracts import Envelope, topics
from openv_contracts.events import (
    VideoAccepted,
    VideoCancelled,
    VideoDeleted,
    VideoTimedOut,
)
from openv_infra.consuming import (
    BatchHandler,
    delivery_time_s,
    envelope_consumer,
    max_poll_interval_ms,
    per_key_concurrently,
)
from openv_infra.kafka import batch_options, consumer_options

GROUP_ID: Final = "openv-runpod-bridge"
TYPES: Final = frozenset(
    {VideoAccepted.TYPE, VideoCancelled.TYPE, VideoDeleted.TYPE, VideoTimedOut.TYPE}
)
#: Video events read per poll.
BATCH: Final = 64


def register(broker: KafkaBroker, bridge: BridgeService, settings: Settings) -> None:
    # Worst case: every RunPod call of a batch runs into the submission timeout,
    # `concurrency` at a time: the new submissions, then (a video's events being its
    # submission and at most a cancel) a redelivered submission and a cancel per video.
    rounds = math.ceil(BATCH / settings.submit_concurrency)
    message_s = 3 * settings.submit_timeout_s
    delivery_s = delivery_time_s(rounds * message_s, message_s)
    broker.subscriber(
        topics.VIDEO_EVENTS,
        group_id=GROUP_ID,
        max_poll_interval_ms=max_poll_interval_ms(delivery_s),
        **batch_options(settings, BATCH),
        **consumer_options(settings, request_path=False),
    )(
        envelope_consumer(
            broker,
            "runpod-bridge",
            _batch_handler(bridge, settings),
            types=TYPES,
            # Isolating a poison message handles the batch one by one: it too must end
            # within the poll interval (the rest is redelivered), see envelope_consumer.
            time_budget_s=delivery_s,
            message_time_s=message_s,
        )
    )


def _batch_handler(bridge: BridgeService, settings: Settings) -> BatchHandler:
    """New submissions first, all together (see `BridgeService.submit_new`); then the other
    events, each video's in order, different videos side by side. A video's later events
    (a cancel) thus follow its submission."""
    one_by_one = per_key_concurrently(
        bridge.on_video_event,
        key=lambda envelope: envelope.stream_id,
        limit=settings.submit_concurrency,
    )

    async def handle(envelopes: list[Envelope]) -> None:
        submitted = await bridge.submit_new(envelopes)
        await one_by_one([e for e in envelopes if e.event_id not in submitted])

    return handle
