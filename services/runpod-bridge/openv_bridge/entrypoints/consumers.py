"""Kafka subscriber: the video events the bridge acts on (accepted, cancelled, deleted).

Read in batches; the others (most of the topic) are skipped by their header, unread. The
videos of a batch are handled side by side, each video's events in order: a RunPod call that
takes its time holds up only its own video.
"""

import math
from typing import Final

from faststream.kafka import KafkaBroker

from openv_bridge.config import Settings
from openv_bridge.service_layer.bridge import BridgeService
from openv_shared import topics
from openv_shared.contracts.events import VideoAccepted, VideoCancelled, VideoDeleted
from openv_shared.kafka import (
    batch_options,
    consumer_options,
    envelope_consumer,
    per_key_concurrently,
)

GROUP_ID: Final = "openv-runpod-bridge"
TYPES: Final = frozenset({VideoAccepted.TYPE, VideoCancelled.TYPE, VideoDeleted.TYPE})
#: Video events read per poll.
BATCH: Final = 64
#: Room on top of a batch's worst case before the group evicts the consumer.
_POLL_MARGIN_S: Final = 60.0


def register(broker: KafkaBroker, bridge: BridgeService, settings: Settings) -> None:
    # Worst case: every video of a batch runs into the submission timeout, `concurrency` at
    # a time (a video's events are its submission and at most a cancel).
    rounds = math.ceil(BATCH / settings.submit_concurrency)
    worst_s = rounds * 2 * settings.submit_timeout_s + _POLL_MARGIN_S
    broker.subscriber(
        topics.VIDEO_EVENTS,
        group_id=GROUP_ID,
        max_poll_interval_ms=int(max(worst_s, 300.0) * 1000),
        **batch_options(settings, BATCH),
        **consumer_options(settings, request_path=False),
    )(
        envelope_consumer(
            broker,
            "runpod-bridge",
            per_key_concurrently(
                bridge.on_video_event,
                key=lambda envelope: envelope.stream_id,
                limit=settings.submit_concurrency,
            ),
            types=TYPES,
        )
    )
