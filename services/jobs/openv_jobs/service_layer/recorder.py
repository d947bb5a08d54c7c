"""The recorder: what the decision path needs of the event log, and what it hands it.

`JobsService` decides in transactions of a `Recorder` (the `eventsourcing` library's
recorder, cosmicpython's unit of work): each holds the append lock, so decisions are
serialized across every writer; it reads the states and usages a batch decides from, appends
the events decided, saves the usages they changed, and commits all of it or nothing.
adapters/postgres_recorder.py records into Postgres, adapters/memory_recorder.py into memory
(fast unit tests); tests/contract holds both to the same guarantees.
"""

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import NamedTuple, Protocol
from uuid import UUID

from openv_contracts import Envelope, Message
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream since it was read (its (stream id, version) is
    taken), or the event was appended already (its id, derived from its cause, is taken)."""


class NewEvent(NamedTuple):
    """An event just decided: its message, where it goes, and the message that caused it.

    The decision path appends these rather than envelopes: building each event's envelope
    (dumping the message into its `data`, then serializing that) cost a tenth of the path,
    and nothing on it reads the envelope. `envelope()` builds it when someone does. A named
    tuple, immutable like a frozen dataclass, builds in half the time (one per event).
    """

    cause: Envelope
    message: Message
    event_id: UUID
    user_id: str
    stream_id: str
    stream_version: int
    occurred_at: datetime

    @property
    def type(self) -> str:
        return self.message.TYPE

    def envelope(self) -> Envelope:
        return self.cause.follow(
            self.message,
            event_id=self.event_id,
            user_id=self.user_id,
            stream_id=self.stream_id,
            stream_version=self.stream_version,
            occurred_at=self.occurred_at,
        )


@dataclass(frozen=True)
class RecordedEvent:
    """An event at its position in the log: as read back (an envelope), or as just appended."""

    position: int
    appended: Envelope | NewEvent
    recorded_at: datetime

    @classmethod
    def _appended(
        cls, position: int, appended: Envelope | NewEvent, recorded_at: datetime
    ) -> "RecordedEvent":
        """Built like video._updated: a frozen dataclass's __init__ costs a microsecond per
        event of a batch, on the decision path."""
        new = object.__new__(cls)
        new.__dict__.update(position=position, appended=appended, recorded_at=recorded_at)
        return new

    @cached_property
    def envelope(self) -> Envelope:
        appended = self.appended
        return appended if isinstance(appended, Envelope) else appended.envelope()

    @property
    def type(self) -> str:
        return self.appended.type


class RecorderTransaction(Protocol):
    """One appending transaction, the append lock held: nobody else appends until it ends."""

    async def head(self) -> int:
        """The log's last position (0: empty). Unchanged since a transaction ended means
        nobody appended since (what the decision path's cache relies on)."""

    async def load_states(self, video_ids: Collection[UUID]) -> dict[UUID, VideoState]:
        """The videos' current states, their whole streams folded; unknown ids are absent."""

    async def load_usages(self, user_ids: Collection[str]) -> dict[str, Usage]:
        """The users' saved usages; users never saved are absent."""

    async def append(self, events: Sequence[NewEvent], recorded_at: datetime) -> None:
        """Append events that carry their stream id and version, in order.

        A taken (stream id, version) or event id raises ConcurrencyConflict; the transaction
        is lost then (the caller leaves it, and it rolls back)."""

    async def numbered(
        self, written: Sequence[NewEvent], recorded_at: datetime
    ) -> list[RecordedEvent]:
        """`written`, everything this transaction appended since it last asked, in order,
        with the consecutive positions the log gave them."""

    async def save_usages(self, usages: Sequence[Usage], position: int) -> None:
        """Save the usages (each replaces the user's) as of the log's `position`."""


class Recorder(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[RecorderTransaction]:
        """Take the append lock and open a transaction; commits when the block ends, rolls
        back (nothing appended or saved) if it raises."""

    async def close(self) -> None:
        """Release what the recorder holds between transactions."""
