"""The one envelope every command, event and fact travels in (Kafka value and event-log row)."""

from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_OID, UUID, SafeUUID, uuid4, uuid5

from opentelemetry import propagate
from pydantic import BaseModel, ConfigDict, Field

from openv_contracts.base import Message, message_class
from openv_contracts.upcasting import upcast


def current_trace_context() -> dict[str, str]:
    """The active trace context as W3C headers (`traceparent`, `tracestate`): an envelope
    carries its request's trace across Kafka and the event log."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def utcnow() -> datetime:
    return datetime.now(UTC)


# Per-index salts for derived ids (fixed forever: derived ids must not change across releases).
_SALTS = [uuid5(NAMESPACE_OID, f"openv.derived-event-id.{i}").int for i in range(8)]
_KEEP = ~(0xF << 76) & ~(0x3 << 62) & (2**128 - 1)  # all but the version and variant bits
_VERSION_8 = (0x8 << 76) | (0x2 << 62)  # version 8, RFC 9562 variant


def derived_event_id(cause: UUID, index: int) -> UUID:
    """The id of the `index`-th event caused by message `cause`: the same inputs always give
    the same id, different ones different ids (for random-looking causes).

    The cause XOR a fixed salt per index, stamped as an RFC 9562 version 8 (custom) UUID:
    as unique as the cause's own id and four times cheaper than uuid5's SHA-1, which matters
    once per appended event.
    """
    salt = _SALTS[index] if index < len(_SALTS) else uuid5(NAMESPACE_OID, str(index)).int
    derived = object.__new__(UUID)  # UUID(int=...) re-checks the range: half of the cost
    object.__setattr__(derived, "int", (cause.int ^ salt) & _KEEP | _VERSION_8)
    object.__setattr__(derived, "is_safe", SafeUUID.unknown)
    return derived


class Envelope(BaseModel):
    """Metadata plus the message data.

    `event_id` is the message's identity: for a command it is the command id, for an event or
    fact the event id. Consumers deduplicate on it, so redelivery never repeats an effect.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    schema_version: int = Field(ge=1)
    stream_id: str | None = None
    stream_version: int | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    user_id: str | None = None
    trace_context: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        message: Message,
        *,
        user_id: str | None,
        event_id: UUID | None = None,
        stream_id: str | None = None,
        stream_version: int | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        trace_context: dict[str, str] | None = None,
        occurred_at: datetime | None = None,
    ) -> "Envelope":
        eid = event_id or uuid4()
        if trace_context is None:
            trace_context = current_trace_context()
        return cls._typed(
            {
                "event_id": eid,
                "type": message.TYPE,
                "schema_version": message.VERSION,
                "stream_id": stream_id,
                "stream_version": stream_version,
                "occurred_at": occurred_at or utcnow(),
                "correlation_id": correlation_id or eid,
                "causation_id": causation_id,
                "user_id": user_id,
                "trace_context": trace_context,
                "data": message.model_dump(mode="json"),
            }
        )

    @classmethod
    def _typed(cls, fields: dict[str, Any]) -> "Envelope":
        """An envelope from every field, already of its declared type (the signatures above
        guarantee it, mypy checks them): validation would only copy them. This runs once
        per decided event; validating cost three times as much, `model_construct` five.
        tests/unit/test_contracts.py proves it equal to the validated envelope."""
        envelope = cls.__new__(cls)
        object.__setattr__(envelope, "__dict__", fields)
        object.__setattr__(envelope, "__pydantic_fields_set__", set(fields))
        object.__setattr__(envelope, "__pydantic_extra__", None)
        object.__setattr__(envelope, "__pydantic_private__", None)
        return envelope

    def follow(
        self,
        message: Message,
        *,
        event_id: UUID | None = None,
        user_id: str | None = None,
        stream_id: str | None = None,
        stream_version: int | None = None,
        occurred_at: datetime | None = None,
    ) -> "Envelope":
        """Wrap a message caused by this one: same correlation and trace, and same user
        unless `user_id` names another."""
        return Envelope.wrap(
            message,
            user_id=self.user_id if user_id is None else user_id,
            event_id=event_id,
            stream_id=stream_id,
            stream_version=stream_version,
            correlation_id=self.correlation_id or self.event_id,
            causation_id=self.event_id,
            trace_context=self.trace_context,
            occurred_at=occurred_at,
        )

    def message(self) -> Message:
        """The typed message, upcast from an older schema version if needed."""
        cls = message_class(self.type)
        if self.schema_version >= cls.VERSION:  # nothing to upcast (newer fields are ignored)
            # model_validate's own body, minus its argument checks: once per consumed message.
            message: Message = cls.__pydantic_validator__.validate_python(self.data)
            return message
        data = upcast(self.type, self.schema_version, cls.VERSION, dict(self.data))
        return cls.model_validate(data)
