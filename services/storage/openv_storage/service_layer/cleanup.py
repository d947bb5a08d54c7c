"""Remove a deleted video's objects, then report it: the fact is published only once the
objects are really gone."""

import logging
from collections.abc import Awaitable, Callable
from uuid import uuid5

from openv_shared.contracts import Envelope
from openv_shared.contracts.events import VideoDeleted
from openv_shared.contracts.facts import StorageObjectsDeleted
from openv_storage.adapters.bucket import Bucket

log = logging.getLogger(__name__)

PublishFact = Callable[[Envelope], Awaitable[None]]


class StorageService:
    def __init__(self, bucket: Bucket, publish_fact: PublishFact) -> None:
        self.bucket = bucket
        self.publish_fact = publish_fact

    async def on_video_event(self, envelope: Envelope) -> None:
        message = envelope.message()
        if not isinstance(message, VideoDeleted):
            return
        prefix = message.object_prefix
        removed = await self.bucket.remove_prefix(prefix) if prefix else 0
        log.info(
            "removed %d objects under %s", removed, prefix, extra={"video_id": message.video_id}
        )
        fact = StorageObjectsDeleted(video_id=message.video_id, objects_removed=removed)
        await self.publish_fact(envelope.follow(fact, event_id=uuid5(envelope.event_id, "purged")))
