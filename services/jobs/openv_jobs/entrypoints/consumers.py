"""Kafka subscribers: commands from the gateway, facts from the bridge and storage."""

from faststream.kafka import KafkaBroker
from openv_shared import topics
from openv_shared.contracts import Envelope
from openv_shared.kafka import consumer_options, envelope_consumer
from openv_shared.settings import KafkaSettings

from openv_jobs.service_layer.handlers import JobsService

GROUP_ID = "openv-jobs"


def register(broker: KafkaBroker, service: JobsService, settings: KafkaSettings) -> None:
    async def handle(envelope: Envelope) -> None:
        await service.handle(envelope)

    broker.subscriber(
        topics.COMMANDS,
        topics.RUNPOD_EVENTS,
        topics.STORAGE_EVENTS,
        group_id=GROUP_ID,
        **consumer_options(settings),
    )(envelope_consumer(broker, "jobs", handle))
