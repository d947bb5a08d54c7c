"""The recorder in memory (the `eventsourcing` library's "popo" recorder): the decision
path's guarantees without a database, for fast tests of the deciding rules.

It keeps what the Postgres recorder guarantees (tests/contract holds both to it): one
transaction at a time (the append lock); a taken (stream id, version) or event id is a
ConcurrencyConflict and loses the transaction; a transaction commits all of its appends and
usages or, if its block raises, none; positions only grow, consecutive within a transaction
and never given twice (like an identity, a rolled-back transaction's are not reused).
"""

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

from openv_contracts import Envelope
from openv_contracts.events import video_stream_id
from openv_jobs.domain.projection import fold_video
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState
from openv_jobs.service_layer.recorder import (
    ConcurrencyConflict,
    NewEvent,
    RecordedEvent,
    RecorderTransaction,
)

USAGE_CHECKPOINT = "user_usage"


def _fold(events: Iterable[RecordedEvent]) -> VideoState | None:
    """A stream's events, in order, folded as the Postgres recorder's readers fold rows."""
    state: VideoState | None = None
    for event in events:
        appended = event.appended
        if isinstance(appended, Envelope):
            message, user_id = appended.message(), appended.user_id or ""
        else:
            message, user_id = appended.message, appended.user_id
        state = fold_video(state, message, user_id, event.recorded_at)
    return state


class MemoryTransaction:
    def __init__(self, recorder: "MemoryRecorder") -> None:
        self.recorder = recorder
        self.appended: list[RecordedEvent] = []
        self.new: list[NewEvent] = []  # what `appended` holds, typed
        self.usages: dict[str, Usage] = {}
        self.checkpoint: int | None = None
        self.lost = False

    def _usable(self) -> None:
        if self.lost:
            raise RuntimeError("the transaction is lost (a conflict): leave it")

    def _stream(self, stream_id: str) -> list[RecordedEvent]:
        mine = [e for e in self.appended if e.appended.stream_id == stream_id]
        return self.recorder.streams.get(stream_id, []) + mine

    async def head(self) -> int:
        self._usable()
        log = self.recorder.log
        return log[-1].position if log else 0

    async def load_states(self, video_ids: Collection[UUID]) -> dict[UUID, VideoState]:
        self._usable()
        states = {vid: _fold(self._stream(video_stream_id(vid))) for vid in set(video_ids)}
        return {vid: state for vid, state in states.items() if state is not None}

    async def load_usages(self, user_ids: Collection[str]) -> dict[str, Usage]:
        self._usable()
        saved = self.recorder.usages | self.usages
        return {user: saved[user] for user in set(user_ids) if user in saved}

    async def append(self, events: Sequence[NewEvent], recorded_at: datetime) -> None:
        self._usable()
        taken_versions = self.recorder.versions | {
            (e.stream_id, e.stream_version) for e in self.new
        }
        taken_ids = self.recorder.event_ids | {e.event_id for e in self.new}
        for event in events:  # all or nothing, like one COPY
            key = (event.stream_id, event.stream_version)
            if key in taken_versions or event.event_id in taken_ids:
                self.lost = True
                raise ConcurrencyConflict(event.stream_id)
            taken_versions.add(key)
            taken_ids.add(event.event_id)
        for event in events:
            self.recorder.last_position += 1
            position = self.recorder.last_position
            self.appended.append(RecordedEvent._appended(position, event, recorded_at))
            self.new.append(event)

    async def numbered(
        self, written: Sequence[NewEvent], recorded_at: datetime
    ) -> list[RecordedEvent]:
        self._usable()
        if not written:
            return []
        before = self.recorder.last_position - len(written)
        return [
            RecordedEvent._appended(before + n, event, recorded_at)
            for n, event in enumerate(written, start=1)
        ]

    async def save_usages(self, usages: Sequence[Usage], position: int) -> None:
        self._usable()
        self.usages.update({usage.user_id: usage for usage in usages})
        self.checkpoint = position

    def commit(self) -> None:
        if self.lost:  # as Postgres does, a lost transaction's COMMIT rolls it back
            return
        recorder = self.recorder
        for recorded, event in zip(self.appended, self.new, strict=True):
            recorder.log.append(recorded)
            recorder.streams.setdefault(event.stream_id, []).append(recorded)
            recorder.versions.add((event.stream_id, event.stream_version))
            recorder.event_ids.add(event.event_id)
        recorder.usages.update(self.usages)
        if self.checkpoint is not None:
            recorder.checkpoints[USAGE_CHECKPOINT] = self.checkpoint


class MemoryRecorder:
    def __init__(self) -> None:
        self.log: list[RecordedEvent] = []
        self.streams: dict[str, list[RecordedEvent]] = {}
        self.versions: set[tuple[str, int]] = set()
        self.event_ids: set[UUID] = set()
        self.usages: dict[str, Usage] = {}
        self.checkpoints: dict[str, int] = {}
        #: The last position given (by committed or rolled-back transactions).
        self.last_position = 0
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RecorderTransaction]:
        async with self._lock:
            transaction = MemoryTransaction(self)
            yield transaction  # a block that raises leaves nothing behind
            transaction.commit()

    async def close(self) -> None:
        """Nothing is held between transactions."""

    def states(self) -> dict[UUID, VideoState]:
        """Every video's current state (what the `videos` projection converges to)."""
        folded = (_fold(events) for events in self.streams.values())
        return {state.video_id: state for state in folded if state is not None}
