"""Kafka subscriber: video events (the storage service acts on `VideoDeleted`)."""

from faststream.kafka import KafkaBroker

from openv_shared import topics
from openv_shared.kafka import consumer_options, envelope_consumer, one_at_a_time
from openv_shared.settings import KafkaSettings
from openv_storage.service_layer.cleanup import StorageService

GROUP_ID = "openv-storage"


def register(broker: KafkaBroker, service: StorageService, settings: KafkaSettings) -> None:
    broker.subscriber(topics.VIDEO_EVENTS, group_id=GROUP_ID, **consumer_options(settings))(
        envelope_consumer(broker, "storage", one_at_a_time(service.on_video_event))
    )
