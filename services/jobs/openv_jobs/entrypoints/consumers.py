"""Kafka subscriber: commands from the gateway, facts from the bridge and storage, in batches."""

from faststream.kafka import KafkaBroker

from openv_contracts import Envelope, topics
from openv_infra.consuming import envelope_consumer
from openv_infra.kafka import batch_options, consumer_options
from openv_infra.settings import KafkaSettings
from openv_jobs.service_layer.jobs_service import JobsService

GROUP_ID = "openv-jobs"


def register(
    broker: KafkaBroker, service: JobsService, settings: KafkaSettings, max_batch: int
) -> None:
    async def handle(envelopes: list[Envelope]) -> None:
        await service.handle_batch(envelopes)

    broker.subscriber(
        topics.COMMANDS,
        topics.RUNPOD_EVENTS,
        topics.STORAGE_EVENTS,
        group_id=GROUP_ID,
        **batch_options(settings, max_batch),
        **consumer_options(settings, request_path=True),
    )(envelope_consumer(broker, "jobs", handle))
