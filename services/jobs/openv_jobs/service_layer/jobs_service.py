"""JobsService: commands and facts handled in batches: decide, append, update usage, in one
transaction of the recorder (service_layer/recorder.py).

A batch is what one poll of the consumer returns; deciding it in one transaction costs one
lock and a few statements instead of a few per message.

Exactly-once effects on at-least-once delivery: the state machine decides nothing for a
message whose effect is already in the state (statuses only move forward; a video id exists
once), and an event's id is derived from the message that caused it, so even a second
decision for the same message could not be appended (the log's unique event id).
"""

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from openv_contracts import Envelope, Message
from openv_contracts.commands import RequestVideo
from openv_contracts.envelope import derived_event_id
from openv_contracts.events import video_stream_id
from openv_infra.failures import PermanentError
from openv_jobs.adapters import metrics
from openv_jobs.domain.decisions import decide, decide_request
from openv_jobs.domain.projection import apply_event
from openv_jobs.domain.usage import Limits, Usage, period_of
from openv_jobs.domain.video import VideoState
from openv_jobs.service_layer.recorder import (
    ConcurrencyConflict,
    NewEvent,
    RecordedEvent,
    Recorder,
    RecorderTransaction,
)
from openv_jobs.service_layer.state_cache import StateCache

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A conflict means another writer got in first; reload and decide again, a bounded number of times.
MAX_ATTEMPTS = 5
#: Messages decided per appended chunk (see _decide_and_append); up to TAIL are not split.
CHUNK = 125
TAIL = 40
#: Messages decided between two turns of the event loop, while a chunk is being written.
SLICE = 16


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(todo: list[T]) -> Iterator[list[T]]:
    """CHUNK-sized chunks, halving towards the end: nothing overlaps the last chunk's insert,
    so it should be short (500 messages: 125, 125, 125, 62, 31, 32)."""
    start = 0
    while start < len(todo):
        left = len(todo) - start
        size = CHUNK if left >= 2 * CHUNK else left if left <= TAIL else left // 2
        yield todo[start : start + size]
        start += size


def _video_id(envelope: Envelope, message: Message) -> UUID:
    video_id = getattr(message, "video_id", None)
    if not isinstance(video_id, UUID):
        raise PermanentError(f"{envelope.type} carries no video_id")
    if isinstance(message, RequestVideo) and not envelope.user_id:
        raise PermanentError("RequestVideo without a user id")
    return video_id


class JobsService:
    """Decides what commands and facts lead to, and records it through a Recorder."""

    def __init__(
        self,
        recorder: Recorder,
        limits: Limits,
        clock: Callable[[], datetime] = _utcnow,
        cache_size: int = 20_000,
    ) -> None:
        self.recorder = recorder
        self.limits = limits
        self.clock = clock
        self.cache = StateCache(cache_size)

    async def close(self) -> None:
        """Release what the recorder holds between batches (its appending connection)."""
        await self.recorder.close()

    async def handle(self, envelope: Envelope) -> list[RecordedEvent]:
        return await self.handle_batch([envelope])

    async def handle_batch(self, envelopes: list[Envelope]) -> list[RecordedEvent]:
        """Record the events the messages lead to; duplicates and no-ops record nothing."""
        batch: dict[UUID, tuple[Envelope, Message, UUID]] = {}
        for envelope in envelopes:
            message = envelope.message()
            batch.setdefault(envelope.event_id, (envelope, message, _video_id(envelope, message)))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                # First time round, requests are taken to name new videos (see _states).
                recorded = await self._handle_once(list(batch.values()), trust_new=attempt == 1)
                metrics.count(recorded)
                return recorded
            except ConcurrencyConflict as exc:
                log.info("append conflict on %s, attempt %d", exc, attempt)
                self.cache.clear()
            except BaseException:
                self.cache.clear()  # whatever was in flight is unknown now
                raise
        raise ConcurrencyConflict("gave up after repeated conflicts")

    async def _handle_once(
        self, batch: list[tuple[Envelope, Message, UUID]], trust_new: bool
    ) -> list[RecordedEvent]:
        now = self.clock()
        async with self.recorder.transaction() as log:
            head = await log.head()
            self.cache.check(head)
            states = await self._states(log, batch, trust_new)
            users = {env.user_id or "" for env, msg, _ in batch if isinstance(msg, RequestVideo)}
            users |= {s.user_id for s in states.values()}
            usages = await self._usages(log, users, now)
            before = dict(usages)
            recorded = await self._decide_and_append(log, batch, states, usages, now)
            if recorded:
                head = recorded[-1].position
                await log.save_usages(
                    # Usage rules return the same object when nothing changed: write only changes.
                    [u for user, u in usages.items() if u is not before[user]],
                    recorded[-1].position,
                )
        self.cache.committed(head, states, usages)
        return recorded

    async def _decide_and_append(
        self,
        log: RecorderTransaction,
        todo: list[tuple[Envelope, Message, UUID]],
        states: dict[UUID, VideoState],
        usages: dict[str, Usage],
        now: datetime,
    ) -> list[RecordedEvent]:
        """Decide in chunks, each appended while the next is decided: the recorder (Postgres)
        works on one chunk while Python decides the next, on the other core."""
        written: list[NewEvent] = []
        writing: asyncio.Task[None] | None = None
        try:
            for chunk in _chunks(todo):
                pending: list[NewEvent] = []
                for start in range(0, len(chunk), SLICE):
                    pending += self._decide(chunk[start : start + SLICE], states, usages, now)
                    await asyncio.sleep(0)  # the append converses with Postgres: let it go on
                if not pending:
                    continue
                if writing is not None:
                    await writing
                writing = asyncio.create_task(log.append(pending, now))
                written += pending
            if writing is not None:
                await writing
                writing = None
        finally:
            if writing is not None:  # deciding failed: the transaction is lost, but the
                await asyncio.wait([writing])  # connection must be idle before it rolls back
        return await log.numbered(written, now)

    async def _states(
        self,
        log: RecorderTransaction,
        batch: list[tuple[Envelope, Message, UUID]],
        trust_new: bool,
    ) -> dict[UUID, VideoState]:
        """The states of the batch's videos.

        With `trust_new`, a request's video that is not cached is taken to be new without
        reading it: a request names a fresh id (the gateway publishes a retry's only when the
        video is not there yet), so the read almost always finds nothing, and costs a tenth
        of the decision. If the video does exist, appending its first event again conflicts
        with the log's unique (stream, version) (ConcurrencyConflict); the batch is then
        decided again, reading all.
        """
        read: set[UUID] = set()
        new: set[UUID] = set()
        for _, msg, vid in batch:
            (new if trust_new and isinstance(msg, RequestVideo) else read).add(vid)
        states, missing = self.cache.videos(read)
        if missing:
            states.update(await log.load_states(missing))
        if new:
            cached, _ = self.cache.videos(new - states.keys())
            states.update(cached)
        return states

    async def _usages(
        self, log: RecorderTransaction, users: set[str], now: datetime
    ) -> dict[str, Usage]:
        usages, missing = self.cache.usages(users)
        if missing:
            found = await log.load_usages(missing)
            period = period_of(now)
            usages.update({u: found.get(u) or Usage(u, 0, period, 0.0) for u in missing})
        return usages

    def _decide(
        self,
        todo: list[tuple[Envelope, Message, UUID]],
        states: dict[UUID, VideoState],
        usages: dict[str, Usage],
        now: datetime,
    ) -> list[NewEvent]:
        """Decide each message in order against the states as the batch changes them."""
        pending: list[NewEvent] = []
        period = period_of(now)
        for envelope, message, video_id in todo:
            state = states.get(video_id)
            if isinstance(message, RequestVideo):
                user_id = envelope.user_id or ""
                usage = usages[user_id].in_period(period)
                events = decide_request(state, message, user_id, usage, self.limits)
            elif state is None:
                log.warning("%s for unknown video %s ignored", envelope.type, video_id)
                continue
            else:
                user_id = state.user_id
                events = decide(state, message)
            stream_id = video_stream_id(video_id)
            for index, event in enumerate(events):
                pending.append(
                    NewEvent(
                        cause=envelope,
                        message=event,
                        # Derived from the message: its effect can be appended only once.
                        event_id=derived_event_id(envelope.event_id, index),
                        user_id=user_id,
                        stream_id=stream_id,
                        stream_version=state.version + 1 if state else 1,
                        occurred_at=now,
                    )
                )
                state, usages[user_id] = apply_event(state, usages[user_id], event, user_id, now)
            if events and state is not None:
                states[video_id] = state
        return pending
