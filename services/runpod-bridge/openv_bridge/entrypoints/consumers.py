"""Kafka subscriber: the video events the bridge acts on (accepted, cancelled, deleted)."""

from faststream.kafka import KafkaBroker

from openv_bridge.service_layer.bridge import BridgeService
from openv_shared import topics
from openv_shared.kafka import consumer_options, envelope_consumer, one_at_a_time
from openv_shared.settings import KafkaSettings

GROUP_ID = "openv-runpod-bridge"


def register(broker: KafkaBroker, bridge: BridgeService, settings: KafkaSettings) -> None:
    broker.subscriber(topics.VIDEO_EVENTS, group_id=GROUP_ID, **consumer_options(settings))(
        envelope_consumer(broker, "runpod-bridge", one_at_a_time(bridge.on_video_event))
    )
