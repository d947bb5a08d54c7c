"""Kafka subscribers: video events (act on `VideoDeleted`) and RunPod facts (act on
`RunPodJobOutputAtUrl`), each its own consumer group.

The shared `envelope_consumer` redelivers a failing message forever unless the handler raises
`PermanentError`, which it dead-letters. A deletion that spent its retry budget (S3 down too
long) is therefore turned into a PermanentError carrying the reason. envelope_consumer then
handles the message once more on its own to isolate the poison one; the budget is not spent a
second time: the reason is remembered by event id and raised again at once.
"""

from collections import OrderedDict
from typing import Final
from uuid import UUID

from faststream.kafka import KafkaBroker

from openv_shared import topics
from openv_shared.contracts import Envelope
from openv_shared.contracts.events import VideoDeleted
from openv_shared.contracts.facts import RunPodJobOutputAtUrl
from openv_shared.failures import PermanentError
from openv_shared.kafka import (
    EnvelopeHandler,
    batch_options,
    consumer_options,
    envelope_consumer,
    one_at_a_time,
)
from openv_storage.config import Settings
from openv_storage.service_layer.cleanup import DeletionService
from openv_storage.service_layer.imports import ImportService
from openv_storage.service_layer.retrying import RetriesExhausted

DELETIONS_GROUP_ID: Final = "openv-storage"
IMPORTS_GROUP_ID: Final = "openv-storage-imports"
SERVICE: Final = "storage"
_REMEMBERED: Final = 1000
#: Video events read per poll (almost all are skipped unread).
DELETIONS_BATCH: Final = 200
#: RunPod facts read per poll (almost all are skipped unread).
IMPORTS_BATCH: Final = 200
#: Room on top of a handler's worst case before the group evicts the consumer.
_POLL_MARGIN_S: Final = 60.0
_DEFAULT_MAX_POLL_S: Final = 300.0


class DeadLetterWhenExhausted:
    """Wraps a handler: RetriesExhausted becomes PermanentError (so it is dead-lettered)."""

    def __init__(self, handle: EnvelopeHandler) -> None:
        self.handle = handle
        self._exhausted: OrderedDict[UUID, str] = OrderedDict()

    async def __call__(self, envelope: Envelope) -> None:
        reason = self._exhausted.pop(envelope.event_id, None)
        if reason is not None:
            raise PermanentError(reason)
        try:
            await self.handle(envelope)
        except RetriesExhausted as exc:
            reason = f"{SERVICE}: {exc}"
            self._exhausted[envelope.event_id] = reason
            while len(self._exhausted) > _REMEMBERED:
                self._exhausted.popitem(last=False)
            raise PermanentError(reason) from exc


def _max_poll_interval_ms(handler_worst_case_s: float) -> int:
    """Kafka's limit between two polls: a consumer slower than this is evicted from its group
    (and the message redelivered elsewhere). Never below Kafka's default of 5 minutes."""
    return int(max(handler_worst_case_s + _POLL_MARGIN_S, _DEFAULT_MAX_POLL_S) * 1000)


def register(
    broker: KafkaBroker, deletions: DeletionService, imports: ImportService, settings: Settings
) -> None:
    policy = settings.retry_policy
    # One deletion attempt is three S3 calls (list, remove, list).
    deletion_budget = policy.budget_s(3 * settings.s3_timeout_s)
    # Of every video event only `VideoDeleted` matters here: read the topic in batches and
    # skip the rest by their header, instead of a decode and an offset commit per event.
    # (A batch with several deletions while S3 is down can outlast the poll interval; the
    # group then hands the partition on and the deletions are redone: they are idempotent.)
    broker.subscriber(
        topics.VIDEO_EVENTS,
        group_id=DELETIONS_GROUP_ID,
        max_poll_interval_ms=_max_poll_interval_ms(deletion_budget),
        **batch_options(settings, DELETIONS_BATCH),
        # `DELETE ?wait=N` waits on this consumer, but a deletion is rare and its answer may
        # take up to the long fetch wait more (a lone deletion does not fill a fetch's
        # minimum): on Tansu a 10 ms fetch wait cost ~0.04 cores at rest (it and the broker),
        # which every create competed with.
        **consumer_options(settings, request_path=False),
    )(
        envelope_consumer(
            broker,
            SERVICE,
            one_at_a_time(DeadLetterWhenExhausted(deletions.on_video_event)),
            types=frozenset({VideoDeleted.TYPE}),
        )
    )
    import_budget = policy.budget_s(settings.import_total_timeout_s + 3 * settings.s3_timeout_s)
    # Of the RunPod facts only `RunPodJobOutputAtUrl` matters here (a worker that kept its
    # output); the rest are skipped by their header, as above, and redone the same way.
    broker.subscriber(
        topics.RUNPOD_EVENTS,
        group_id=IMPORTS_GROUP_ID,
        max_poll_interval_ms=_max_poll_interval_ms(import_budget),
        **batch_options(settings, IMPORTS_BATCH),
        # An import follows a render of seconds to minutes: a longer fetch wait is noise there.
        **consumer_options(settings, request_path=False),
    )(
        envelope_consumer(
            broker,
            SERVICE,
            one_at_a_time(imports.on_runpod_event),
            types=frozenset({RunPodJobOutputAtUrl.TYPE}),
        )
    )
