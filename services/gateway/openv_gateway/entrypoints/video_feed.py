"""The `openv.video-events` topic, folded into the views of the videos this instance knows.

Every gateway instance reads the whole topic on its own (no consumer group, so no group
joins and no committed offsets), starting at the end: it keeps current only the videos its
clients look at, so history is of no use to it. Records are keyed by video id, so a record
about a video nobody here looks at costs a dictionary lookup and no JSON parsing.

Once its position at the end is set (on every (re)connection), the feed tells `following`:
from then on every event of a known video reaches the views. When it fails it tells `lost`.

On Tansu (local stack) "latest" sometimes resolves to an earlier offset, so a starting instance
may read some old records: harmless, their versions are older than the views hold.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer

from openv_contracts import Envelope, topics
from openv_infra.kafka import fetch_max_wait_ms
from openv_infra.settings import KafkaSettings

log = logging.getLogger(__name__)

#: (video id) -> does anybody here look at it?
Follows = Callable[[UUID], bool]
#: (video id, stream version or None, the event or None if unreadable) -> fold it.
Notify = Callable[[UUID, int | None, Envelope | None], None]


def _video_id(key: bytes | None) -> UUID | None:
    if not key:
        return None
    try:
        return UUID(key.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def _read(value: bytes | None) -> tuple[int | None, Envelope | None]:
    """The event and its stream version; (version or None, None) if it is not an envelope
    this release understands."""
    try:
        envelope = Envelope.model_validate_json(value or b"")
    except ValueError:
        pass
    else:
        return envelope.stream_version, envelope
    try:
        version = json.loads(value or b"").get("stream_version")
    except (ValueError, AttributeError):
        return None, None
    return (version if isinstance(version, int) else None), None


class VideoFeed:
    def __init__(
        self,
        settings: KafkaSettings,
        client_id: str,
        follows: Follows,
        notify: Notify,
        following: Callable[[], None] = lambda: None,
        lost: Callable[[], None] = lambda: None,
        retry_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.follows = follows
        self.notify = notify
        self.following = following
        self.lost = lost
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
                await _positioned(consumer)
                self.connected = True
                self.following()
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
                if self.connected:
                    self.lost()
                self.connected = False
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(self.retry_s)

    def handle(self, records: list[Any]) -> None:
        self.records += len(records)
        for record in records:
            video_id = _video_id(record.key)
            if video_id is None or not self.follows(video_id):
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


async def _positioned(consumer: Any, timeout_s: float = 30.0) -> None:
    """Wait until the consumer has every partition of the topic and its position at the end:
    an event recorded after this returns is one the feed will read."""
    deadline = time.monotonic() + timeout_s
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError("no partition of the video-events topic assigned")
        await asyncio.sleep(0.05)
    for partition in consumer.assignment():
        await consumer.position(partition)
