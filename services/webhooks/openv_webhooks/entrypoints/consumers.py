"""Kafka subscriber: every video event, in batches; the recorder skips videos without a
webhook after one lookup per batch. Offsets are committed after the handler returned, i.e.
after the database write (a killed instance's batch is read again; recording is idempotent)."""

from typing import Final

from faststream.kafka import KafkaBroker

from openv_contracts import topics
from openv_contracts.queries import JobsUnavailable
from openv_infra.consuming import delivery_time_s, envelope_consumer, max_poll_interval_ms
from openv_infra.kafka import batch_options, consumer_options
from openv_webhooks.config import Settings
from openv_webhooks.service_layer.recording import Recorder

GROUP_ID: Final = "openv-webhooks"
#: Video events read per poll.
BATCH: Final = 200


def register(broker: KafkaBroker, recorder: Recorder, settings: Settings) -> None:
    # A batch is a few database statements per watched event, and a jobs read after a gap.
    message_s = settings.jobs_timeout_s * 3
    delivery_s = delivery_time_s(message_s * 4, message_s)
    broker.subscriber(
        topics.VIDEO_EVENTS,
        group_id=GROUP_ID,
        max_poll_interval_ms=max_poll_interval_ms(delivery_s),
        **batch_options(settings, BATCH),
        **consumer_options(settings, request_path=False),
    )(
        envelope_consumer(
            broker,
            "webhooks",
            recorder.on_events,
            # The jobs service is back soon: the batch is read again, nothing dead-lettered.
            transient=(JobsUnavailable,),
            time_budget_s=delivery_s,
            message_time_s=message_s,
        )
    )
