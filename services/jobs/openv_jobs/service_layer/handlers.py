"""Handle one command or fact: dedupe, decide, append, project, all in one transaction."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from openv_shared.contracts import Envelope
from openv_shared.contracts.commands import RequestVideo
from openv_shared.contracts.events import video_stream_id
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters import projections
from openv_jobs.adapters.event_store import ConcurrencyConflict, EventStore, RecordedEvent
from openv_jobs.domain.decisions import decide, decide_request
from openv_jobs.domain.usage import Limits

log = logging.getLogger(__name__)

#: A conflict means another writer got in first; reload and decide again, a bounded number of times.
MAX_ATTEMPTS = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


class JobsService:
    def __init__(
        self, engine: AsyncEngine, limits: Limits, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.clock = clock

    async def handle(self, envelope: Envelope) -> list[RecordedEvent]:
        """Record the events `envelope` leads to; [] for a duplicate or a no-op."""
        message = envelope.message()
        video_id: UUID | None = getattr(message, "video_id", None)
        if video_id is None:
            raise ValueError(f"{envelope.type} carries no video_id")
        stream_id = video_stream_id(video_id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await self._handle_once(envelope, message, stream_id)
            except ConcurrencyConflict:
                log.info("conflict on %s, attempt %d", stream_id, attempt)
        raise ConcurrencyConflict(stream_id)

    async def _handle_once(
        self, envelope: Envelope, message: object, stream_id: str
    ) -> list[RecordedEvent]:
        async with self.engine.begin() as conn:
            store = EventStore(conn)
            await store.lock_appends()
            if not await store.mark_processed(envelope.event_id, envelope.type):
                log.info("duplicate %s %s ignored", envelope.type, envelope.event_id)
                return []
            history = await store.load(stream_id)
            state = projections.fold(history)
            if isinstance(message, RequestVideo):
                user_id = envelope.user_id
                if not user_id:
                    raise ValueError("RequestVideo without a user id")
                usage = await projections.lock_usage(conn, user_id, self.clock())
                new = decide_request(state, message, user_id, usage, self.limits)
            elif state is None:
                log.warning("%s for unknown stream %s ignored", envelope.type, stream_id)
                return []
            else:
                new = decide(state, message)  # type: ignore[arg-type]
            if not new:
                return []
            version = state.version if state else 0
            envelopes = [
                envelope.follow(
                    msg,
                    user_id=state.user_id if state else envelope.user_id,
                    stream_id=stream_id,
                    stream_version=version + i,
                )
                for i, msg in enumerate(new, start=1)
            ]
            recorded = await store.append(stream_id, version, envelopes)
            await projections.apply(conn, state, recorded)
            await store.notify()
            return recorded
