"""The `openv.video-events` topic as a stream of "video X changed" hints.

Every gateway instance reads the whole topic on its own (no consumer group, so no group
joins and no committed offsets), starting at the end: it only wakes up in-memory waiters, so
history is of no use to it. Records are keyed by video id, so a record about a video nobody
here watches costs a dictionary lookup and no JSON parsing.

On Tansu (local stack) "latest" sometimes resolves to an earlier offset, so a starting instance
may read some old records: harmless, a hint about an unwatched video is dropped.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer

from openv_contracts import Envelope, topics
from openv_contracts.queries import VideoView, decided_view
from openv_infra.kafka import fetch_max_wait_ms
from openv_infra.settings import KafkaSettings

log = logging.getLogger(__name__)

#: (video id) -> is anybody here watching it?
IsWatched = Callable[[UUID], bool]
#: (video id, stream version or None, the video as the event leaves it if the event tells
#: all of it) -> wake its waiters.
Notify = Callable[[UUID, int | None, VideoView | None], None]


def _video_id(key: bytes | None) -> UUID | None:
    if not key:
        return None
    try:
        return UUID(key.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def _read(value: bytes | None) -> tuple[int | None, VideoView | None]:
    """The event's stream version, and the video if the event is its decision (the first
    event: everything the view holds is in it, so nobody needs to ask the jobs service)."""
    try:
        record = json.loads(value or b"")
        version = record.get("stream_version")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(version, int):
        return None, None
    if version != 1:
        return version, None
    try:
        return version, decided_view(Envelope.model_validate(record))
    except (ValueError, LookupError):  # not an envelope this release understands
        return version, None


class VideoFeed:
    def __init__(
        self,
        settings: KafkaSettings,
        client_id: str,
        is_watched: IsWatched,
        notify: Notify,
        retry_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.is_watched = is_watched
        self.notify = notify
        self.retry_s = retry_s
        self.connected = False
        self.records = 0
        self.skipped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="video-feed")

    async def stop(self, timeout_s: float = 5.0) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=timeout_s)
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and self.connected

    def _consumer(self) -> Any:
        return AIOKafkaConsumer(
            topics.VIDEO_EVENTS,
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=fetch_max_wait_ms(self.settings, request_path=True),
        )

    async def _run(self) -> None:
        """Consume until cancelled; reconnect after any failure."""
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
                self.connected = True
                log.info("live video feed connected")
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
                    for records in batches.values():
                        self.handle(records)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live video feed failed (%s); reconnecting", exc)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(self.retry_s)

    def handle(self, records: list[Any]) -> None:
        self.records += len(records)
        for record in records:
            video_id = _video_id(record.key)
            if video_id is None or not self.is_watched(video_id):
                continue
            try:
                self.notify(video_id, *_read(record.value))
            except Exception:
                # A record this release cannot read is only a hint lost (the waiters' slow
                # re-read covers it); raising would restart the feed at the topic's end and
                # lose every hint after it, again on every instance, for ever.
                self.skipped += 1
                log.exception(
                    "live video feed skipped the record at %s[%s]@%s",
                    record.topic,
                    record.partition,
                    record.offset,
                )
