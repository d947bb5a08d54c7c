"""Consuming envelopes: transient failures retried in place, permanent ones dead-lettered,
so a poison message never blocks a partition (docs/architecture.md, "Failures")."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import Counter

from openv_contracts import Envelope, topics
from openv_infra import telemetry
from openv_infra.failures import TransientError, is_transient
from openv_infra.kafka import Consumed

log = logging.getLogger(__name__)


EnvelopeHandler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[list[Envelope]], Awaitable[None]]


def _traced(handle: EnvelopeHandler) -> EnvelopeHandler:
    """`handle`, in the trace of the envelope it handles (see telemetry.handling)."""

    async def handle_one(envelope: Envelope) -> None:
        with telemetry.handling(envelope.type, envelope.trace_context):
            await handle(envelope)

    return handle_one


#: (deadline, worst case of one message) of the delivery being handled, when its consumer
#: must answer its poll within a time (see envelope_consumer's `time_budget_s`).
_DELIVERY_TIME: ContextVar[tuple[float, float] | None] = ContextVar("delivery_time", default=None)
_clock = time.monotonic


#: Room on top of a delivery's time before Kafka's group evicts the consumer.
POLL_MARGIN_S = 60.0
#: Kafka's own default poll interval: no consumer gets less.
_KAFKA_DEFAULT_MAX_POLL_S = 300.0


def delivery_time_s(batch_attempt_s: float, message_s: float) -> float:
    """How long one delivery (batch) may take, for envelope_consumer's `time_budget_s`: the
    batch attempt's worst case, then one message isolated on its own (so a redelivery always
    gets further); at least what Kafka's default poll interval leaves after the margin."""
    return max(batch_attempt_s + message_s, _KAFKA_DEFAULT_MAX_POLL_S - POLL_MARGIN_S)


def max_poll_interval_ms(delivery_s: float) -> int:
    """The subscriber's `max_poll_interval_ms` for deliveries of `delivery_s`: a consumer
    slower than this is evicted from its group and its batch redelivered elsewhere."""
    return int((delivery_s + POLL_MARGIN_S) * 1000)


def _fits_in_delivery(left: int) -> None:
    """Raise TransientError when one more message might outlast the delivery's time: the
    batch is then redelivered (what was handled is handled again, idempotently) instead of
    the consumer being evicted from its group mid-batch."""
    bound = _DELIVERY_TIME.get()
    if bound is not None and _clock() + bound[1] > bound[0]:
        raise TransientError(f"{left} messages left for a redelivery: out of the poll interval")


def one_at_a_time(handle: EnvelopeHandler) -> BatchHandler:
    traced = _traced(handle)

    async def handle_batch(envelopes: list[Envelope]) -> None:
        for index, envelope in enumerate(envelopes):
            _fits_in_delivery(len(envelopes) - index)
            await traced(envelope)

    return handle_batch


def _event_type(record: Any) -> str | None:
    """The `event-type` header (see kafka_headers), if the record has one."""
    for key, value in record.headers or ():
        if key == "event-type":
            return bytes(value).decode("utf-8", errors="replace")
    return None


def per_key_concurrently(
    handle: EnvelopeHandler, key: Callable[[Envelope], object], limit: int
) -> BatchHandler:
    """Handle a batch's envelopes with the same key one after another, in order, and
    different keys side by side (at most `limit` at once): a slow call for one video (say, a
    RunPod request) no longer holds up the others of its partition.

    Every key's envelopes are handled or have failed before the first error is raised, so a
    redelivered batch repeats only what the (idempotent) handler has seen.
    """

    traced = _traced(handle)

    async def handle_batch(envelopes: list[Envelope]) -> None:
        groups: dict[object, list[Envelope]] = {}
        for envelope in envelopes:
            groups.setdefault(key(envelope), []).append(envelope)
        slots = asyncio.Semaphore(limit)

        async def in_order(group: list[Envelope]) -> None:
            async with slots:
                for envelope in group:
                    await traced(envelope)

        results = await asyncio.gather(
            *(in_order(group) for group in groups.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    return handle_batch


class Backoff:
    """Exponential pauses between redeliveries of a failing batch, reset by a success."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.base_s * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def envelope_consumer(
    broker: KafkaBroker,
    service: str,
    handle: BatchHandler,
    retry_delay_s: float = 0.5,
    types: frozenset[str] | None = None,
    transient: tuple[type[BaseException], ...] = (),
    retry_delay_max_s: float = 30.0,
    time_budget_s: float | None = None,
    message_time_s: float = 0.0,
) -> Callable[[Consumed], Awaitable[None]]:
    """Wrap `handle` for a FastStream subscriber (single or batch) with at-least-once semantics.

    No message can hold up its partition for ever:
    - undecodable messages are dead-lettered with the reason (and acknowledged);
    - a transient failure (`openv_infra.failures.is_transient`, plus this service's
      `transient` types) is raised after a pause growing from `retry_delay_s` to
      `retry_delay_max_s`, so the batch is redelivered (subscribers use
      AckPolicy.NACK_ON_ERROR) once the dependency is back;
    - any other failure is about some message of the batch: each is handled again on its
      own, and the ones that still fail for good are dead-lettered with the reason (topic,
      partition, offset, error); the rest go on. Handlers must be idempotent.

    With `types`, only envelopes of those types reach `handle`; the others are acknowledged
    without being decoded when their `event-type` header already tells them apart.

    With `time_budget_s` (below the subscriber's `max_poll_interval_ms`), a delivery starts a
    message (in `one_at_a_time`, and while isolating) only if `message_time_s`, the worst
    case of one, still fits: the rest are redelivered. The budget is at least two messages'
    worth, so a delivery always gets through its batch attempt's first message and the
    first it isolates.
    """
    backoff = Backoff(retry_delay_s, retry_delay_max_s)
    budget_s = None if time_budget_s is None else max(time_budget_s, 2 * message_time_s)

    async def retry_later(exc: BaseException, count: int) -> None:
        delay = backoff.next_delay()
        log.warning(
            "handling %d messages failed (%s); retrying in %.1f s", count, _reason(exc), delay
        )
        await asyncio.sleep(delay)

    async def on_message(raw: Consumed) -> None:
        # What `raw_records` decoded: one record, or a batch's tuple of them.
        records: tuple[Any, ...] = raw if isinstance(raw, tuple) else (raw,)
        decoded: list[tuple[Envelope, Any]] = []
        for record in records:
            if types is not None and _event_type(record) not in (None, *types):
                continue
            try:
                envelope = Envelope.model_validate_json(record.value or b"")
                envelope.message()  # fail fast on unknown types and invalid data
            except Exception as exc:  # invalid data, unknown type, an upcaster that fails
                await dead_letter(broker, service, record, f"undecodable: {_reason(exc)}")
                continue
            if types is None or envelope.type in types:
                decoded.append((envelope, record))
        if not decoded:
            return
        bound = None if budget_s is None else (_clock() + budget_s, message_time_s)
        token = _DELIVERY_TIME.set(bound)
        try:
            await _handle_or_isolate(decoded)
        finally:
            _DELIVERY_TIME.reset(token)
        backoff.reset()

    async def _handle_or_isolate(decoded: list[tuple[Envelope, Any]]) -> None:
        try:
            await handle([envelope for envelope, _ in decoded])
        except Exception as exc:
            if is_transient(exc, transient):
                await retry_later(exc, len(decoded))
                raise
            log.warning(
                "a batch of %d failed (%s); handling its messages one by one",
                len(decoded),
                _reason(exc),
            )
            for index, (envelope, record) in enumerate(decoded):
                try:
                    _fits_in_delivery(len(decoded) - index)
                    await handle([envelope])
                except Exception as one:
                    if is_transient(one, transient):
                        await retry_later(one, len(decoded) - index)
                        raise
                    await dead_letter(broker, service, record, _reason(one))

    # The AsyncAPI document names a subscriber's channel after its function: one per service.
    on_message.__name__ = on_message.__qualname__ = f"{service.replace('-', '_')}_on_message"
    return on_message


DEAD_LETTERS = Counter(
    "openv_kafka_dead_letters_total",
    "Messages a consumer could never handle and sent to the dead-letter topic, by consuming "
    "service and the message's topic",
    ["service", "topic"],
)


async def dead_letter(broker: KafkaBroker, service: str, record: Any, reason: str) -> None:
    """Publish a message no handler can process to the dead-letter topic, with the reason."""
    log.error(
        "dead-lettering the message at %s[%s]@%s: %s",
        record.topic,
        record.partition,
        record.offset,
        reason[:500],
    )
    value: bytes = record.value or b""
    await broker.publish(
        {
            "service": service,
            "reason": reason[:2000],
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "value": value.decode("utf-8", errors="replace"),
        },
        topics.DEAD_LETTER,
        key=record.key,
    )
    DEAD_LETTERS.labels(service, str(record.topic)).inc()
