"""`publish_many` against a real broker: what a published record carries, its span, its count."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from faststream.exceptions import IncorrectState
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from openv_contracts import Envelope
from openv_contracts.commands import CancelVideo
from openv_infra import kafka as shared_kafka
from openv_infra import publishing
from openv_infra.settings import KafkaSettings
from openv_localstack.servers import TansuBroker

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def topic(kafka: TansuBroker) -> str:
    """A topic of the test's own: what it reads back and counts is only its own."""
    name = f"openv.test-publish-{uuid.uuid4().hex[:8]}"
    kafka.create_topics({name: 3})
    return name


@pytest.fixture
async def broker(kafka: TansuBroker) -> AsyncIterator[KafkaBroker]:
    broker = shared_kafka.make_broker(
        KafkaSettings(kafka_bootstrap=kafka.bootstrap), "openv-publish-test"
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(publishing, "_tracer", provider.get_tracer("test"))
    return exporter


def envelope(trace_context: dict[str, str] | None = None) -> Envelope:
    return Envelope.wrap(
        CancelVideo(video_id=uuid.uuid4()),
        user_id="alice",
        trace_context=trace_context or {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    )


def counted(metric: str, topic: str) -> float:
    value = REGISTRY.get_sample_value(metric, {"service": "openv-publish-test", "topic": topic})
    return value or 0.0


async def read_all(bootstrap: str, topic: str, expected: int) -> list[object]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        records: list[object] = []
        async with asyncio.timeout(15):
            while len(records) < expected:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_published_records_carry_the_envelope_its_headers_and_the_span_context(
    broker: KafkaBroker, kafka: TansuBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    before = counted("openv_kafka_published_messages_total", topic)
    sent = [envelope() for _ in range(5)]
    # One key: one partition, so the broker's order is the order given.
    await publishing.publish_many(broker, topic, [(e, "one-key") for e in sent])

    records = await read_all(kafka.bootstrap, topic, 5)
    assert [Envelope.model_validate_json(r.value).event_id for r in records] == [  # type: ignore[attr-defined]
        e.event_id for e in sent
    ]
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == [f"{topic} publish"] * 5
    assert all(s.kind == trace.SpanKind.PRODUCER for s in finished)
    # Each span continues its envelope's trace, and its record's traceparent names it.
    for record, sent_envelope, span in zip(records, sent, finished, strict=True):
        headers = dict(record.headers)  # type: ignore[attr-defined]
        assert headers["event-type"] == b"CancelVideo"
        assert headers["event-id"] == str(sent_envelope.event_id).encode()
        assert headers["content-type"] == b"application/json"
        assert record.key == b"one-key"  # type: ignore[attr-defined]
        assert span.context is not None
        assert f"{span.context.trace_id:032x}" == TRACE_ID
        assert headers["traceparent"].decode() == (f"00-{TRACE_ID}-{span.context.span_id:016x}-01")
    assert counted("openv_kafka_published_messages_total", topic) == before + 5


async def test_a_message_the_producer_refuses_is_raised_counted_and_its_span_failed(
    broker: KafkaBroker, topic: str, spans: InMemorySpanExporter
) -> None:
    errors_before = counted("openv_kafka_publish_errors_total", topic)
    published_before = counted("openv_kafka_published_messages_total", topic)
    # Over the producer's max_request_size (1 MiB): refused before anything is sent.
    too_big = envelope({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x": "a" * 2**21})
    with pytest.raises(MessageSizeTooLargeError):
        await publishing.publish_many(broker, topic, [(envelope(), "k"), (too_big, "k")])
    # The first was handed to the producer and delivered; the refused one is the error.
    assert counted("openv_kafka_publish_errors_total", topic) == errors_before + 1
    assert counted("openv_kafka_published_messages_total", topic) == published_before + 1
    finished = spans.get_finished_spans()
    assert [s.status.status_code for s in finished] == [
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
    ]


async def test_an_unconnected_broker_is_a_clear_error(kafka: TansuBroker, topic: str) -> None:
    broker = shared_kafka.make_broker(
        KafkaSettings(kafka_bootstrap=kafka.bootstrap), "openv-publish-test"
    )
    # FastStream's own error, as broker.publish gave before the broker connects.
    with pytest.raises(IncorrectState, match="connect broker first"):
        await publishing.publish(broker, topic, envelope(), "k")
