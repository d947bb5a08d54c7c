"""Building a Kafka broker and the options its subscribers share (FastStream on aiokafka).

Publishing envelopes is `publishing.py`; consuming them (failures, retries, dead letters) is
`consuming.py`.
"""

import logging
from typing import Annotated, Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from opentelemetry import trace
from pydantic import WithJsonSchema

from openv_contracts import Envelope
from openv_infra import metrics
from openv_infra.settings import KafkaSettings

log = logging.getLogger(__name__)


#: Every broker this process made, for the AsyncAPI document (scripts/asyncapi.py).
CREATED_BROKERS: list[KafkaBroker] = []


def make_broker(
    settings: KafkaSettings, client_id: str, publishes: tuple[str, ...] = ()
) -> KafkaBroker:
    """A broker whose every publish and consume is traced and counted.

    `publishes` names the topics this service writes, declared so the AsyncAPI document shows
    them (messages are sent with `publishing.publish_many`, always as an `Envelope`, past the
    broker's publish middlewares: see `publishing._producer`).
    """
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=trace.get_tracer_provider()),
            KafkaPrometheusMiddleware(registry=metrics.registry(), app_name=client_id),
        ),
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        # Topics are created by ops (compose init, local stack); a typo must not invent one.
        allow_auto_create_topics=False,
        # Handlers take the raw records (see `raw_records`), so no dependency injection: it
        # resolved the message through a sync Context lookup run in a worker thread, a
        # thread hand-off per consumed batch.
        apply_types=False,
        graceful_timeout=10.0,
        # FastStream logs every consumed batch ("Received", "Processed"); at DEBUG those stay
        # out of production's INFO logs, and its errors go through the services' JSON handler.
        logger=logging.getLogger("openv.kafka"),
        log_level=logging.DEBUG,
        description=f"OpenV service {client_id}",
    )
    for topic in publishes:
        broker.publisher(topic, title=f"{client_id}:{topic}", schema=Envelope)
    CREATED_BROKERS.append(broker)
    return broker


def fetch_max_wait_ms(settings: KafkaSettings, request_path: bool) -> int:
    """How long this consumer's fetches wait: short where a request waits on what it reads."""
    if request_path:
        return settings.kafka_request_path_fetch_max_wait_ms
    return settings.kafka_fetch_max_wait_ms


def consumer_options(settings: KafkaSettings, *, request_path: bool) -> dict[str, Any]:
    """Subscriber keyword arguments every consumer group uses."""
    return {
        "fetch_max_wait_ms": fetch_max_wait_ms(settings, request_path),
        "fetch_min_bytes": 1 if request_path else settings.kafka_fetch_min_bytes,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "decoder": raw_records,
    }


#: What a subscriber's handler is given: a record, or a batch's tuple of records (`Any` to
#: the code). The AsyncAPI document shows each record's value: an Envelope.
Consumed = Annotated[Any, WithJsonSchema(Envelope.model_json_schema())]


async def raw_records(message: StreamMessage[Any]) -> Any:
    """The subscriber's decoder: the record (or a batch's tuple of records) as consumed.
    `envelope_consumer` decodes what it needs itself; FastStream's own decoder parsed every
    record's JSON only for that to be thrown away."""
    return message.raw_message


def batch_options(settings: KafkaSettings, max_records: int) -> dict[str, Any]:
    """Subscriber keyword arguments of a batch consumer, on top of consumer_options."""
    return {
        "batch": True,
        "max_records": max_records,
        "batch_timeout_ms": settings.kafka_batch_wait_ms,
    }
