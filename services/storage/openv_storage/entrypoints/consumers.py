"""Kafka subscribers: video events (act on `VideoDeleted`; and, in a group of their own, on
`VideoCompleted`: its poster) and RunPod facts (act on `RunPodJobOutputAtUrl`, and on
`RunPodJobCompleted` of a video deleted meanwhile), each its own consumer group.

The shared `envelope_consumer` redelivers a batch whose failure is transient and dead-letters
a message that fails for good. A deletion that spent its retry budget (S3 down too long) is
therefore turned into a PermanentError carrying the reason. envelope_consumer then handles
the message once more on its own to isolate it; the budget is not spent a second time (nor on
a redelivery): the reason is remembered by event id and raised again at once.

Batches fit their poll interval by construction: each delivery may take `2 x` one message's
worst case (its retry budget) plus a margin, the subscriber's `max_poll_interval_ms` is set
from that, and a delivery starts a message only if its worst case still fits (the rest are
redelivered): the group never evicts a consumer that is working through a batch.
"""

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final
from uuid import UUID

from faststream.kafka import KafkaBroker

from openv_contracts import Envelope, topics
from openv_contracts.events import VideoCompleted, VideoDeleted
from openv_contracts.facts import RunPodJobCompleted, RunPodJobOutputAtUrl
from openv_infra.consuming import (
    EnvelopeHandler,
    delivery_time_s,
    envelope_consumer,
    max_poll_interval_ms,
    one_at_a_time,
)
from openv_infra.failures import PermanentError, TransientError
from openv_infra.kafka import batch_options, consumer_options
from openv_storage.adapters.bucket import S3Unreachable
from openv_storage.config import Settings
from openv_storage.service_layer.deletions import DeletionService
from openv_storage.service_layer.imports import ImportService
from openv_storage.service_layer.posters import PosterService
from openv_storage.service_layer.retrying import RetriesExhausted

DELETIONS_GROUP_ID: Final = "openv-storage"
IMPORTS_GROUP_ID: Final = "openv-storage-imports"
POSTERS_GROUP_ID: Final = "openv-storage-posters"
SERVICE: Final = "storage"
_REMEMBERED: Final = 1000
#: Video events read per poll (almost all are skipped unread).
DELETIONS_BATCH: Final = 200
#: RunPod facts read per poll (almost all are skipped unread).
IMPORTS_BATCH: Final = 200


class DeadLetterWhenExhausted:
    """Wraps a handler: RetriesExhausted becomes PermanentError (so it is dead-lettered),
    unless S3 gave no answer at all (an outage: TransientError, redelivered until it passes).

    The reason is remembered for `remember_s`, so neither the isolation nor a redelivery of
    the batch (see delivery_time_s) spends the retry budget on that message again: each
    delivery gets further. Later, say a replay from the dead-letter topic once S3 is back,
    the message is tried again.
    """

    def __init__(
        self,
        handle: EnvelopeHandler,
        remember_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handle = handle
        self.remember_s = remember_s
        self.clock = clock
        self._exhausted: OrderedDict[UUID, tuple[str, float]] = OrderedDict()

    async def __call__(self, envelope: Envelope) -> None:
        remembered = self._exhausted.get(envelope.event_id)
        if remembered is not None:
            reason, until = remembered
            if self.clock() < until:
                raise PermanentError(reason)
            del self._exhausted[envelope.event_id]
        try:
            await self.handle(envelope)
        except RetriesExhausted as exc:
            if isinstance(exc.__cause__, S3Unreachable):
                # An outage longer than the budget: the message is fine, S3 is not. Hold the
                # partition and redeliver after a growing pause (every message behind it
                # needs S3 too), instead of leaving the video's files for an operator.
                raise TransientError(f"{SERVICE}: {exc}") from exc
            reason = f"{SERVICE}: {exc}"
            self._exhausted[envelope.event_id] = (reason, self.clock() + self.remember_s)
            while len(self._exhausted) > _REMEMBERED:
                self._exhausted.popitem(last=False)
            raise PermanentError(reason) from exc


def _subscribe(
    broker: KafkaBroker,
    settings: Settings,
    topic: str,
    group_id: str,
    batch: int,
    handle: EnvelopeHandler,
    types: frozenset[str],
    budget_s: float,
) -> None:
    """One consumer group of this service: batches read from `topic`, the types it does not
    act on skipped by their header (no decode, no offset commit each), and the rest handled
    one at a time, so a batch attempt stops at a message that no longer fits its budget.
    None is on a request's path: a longer fetch wait is noise here (on Tansu a 10 ms wait cost
    ~0.04 cores at rest, which every create competed with)."""
    delivery_s = delivery_time_s(budget_s, budget_s)
    broker.subscriber(
        topic,
        group_id=group_id,
        max_poll_interval_ms=max_poll_interval_ms(delivery_s),
        **batch_options(settings, batch),
        **consumer_options(settings, request_path=False),
    )(
        envelope_consumer(
            broker,
            SERVICE,
            one_at_a_time(handle),
            types=types,
            time_budget_s=delivery_s,
            message_time_s=budget_s,
        )
    )


def register(
    broker: KafkaBroker,
    deletions: DeletionService,
    imports: ImportService,
    posters: PosterService,
    settings: Settings,
) -> None:
    policy = settings.retry_policy
    # One deletion attempt is three S3 calls (list, remove, list). Of every video event only
    # `VideoDeleted` matters here. `DELETE ?wait=N` waits on this group, but a deletion is
    # rare and its answer may take up to the long fetch wait more (a lone deletion does not
    # fill a fetch's minimum).
    _subscribe(
        broker,
        settings,
        topics.VIDEO_EVENTS,
        DELETIONS_GROUP_ID,
        DELETIONS_BATCH,
        DeadLetterWhenExhausted(deletions.on_video_event),
        frozenset({VideoDeleted.TYPE}),
        policy.budget_s(3 * settings.s3_timeout_s),
    )
    late_outputs = DeadLetterWhenExhausted(deletions.on_completion)

    async def on_runpod_fact(envelope: Envelope) -> None:
        if envelope.type == RunPodJobCompleted.TYPE:
            await late_outputs(envelope)
        else:
            await imports.on_runpod_event(envelope)

    # An import's budget covers a late output's purge (three S3 calls) too. Of the RunPod
    # facts only `RunPodJobOutputAtUrl` (a worker that kept its output) and the completions
    # (a deleted video's late file) matter here.
    import_budget = policy.budget_s(settings.import_total_timeout_s + 3 * settings.s3_timeout_s)
    _subscribe(
        broker,
        settings,
        topics.RUNPOD_EVENTS,
        IMPORTS_GROUP_ID,
        IMPORTS_BATCH,
        on_runpod_fact,
        frozenset({RunPodJobOutputAtUrl.TYPE, RunPodJobCompleted.TYPE}),
        import_budget,
    )
    # A poster reads the video's file (at most an import's size), writes one small object and
    # reads the video's state: bounded like an import. Its own group, so a slow poster never
    # holds a deletion back.
    _subscribe(
        broker,
        settings,
        topics.VIDEO_EVENTS,
        POSTERS_GROUP_ID,
        DELETIONS_BATCH,
        DeadLetterWhenExhausted(posters.on_video_event),
        frozenset({VideoCompleted.TYPE}),
        import_budget,
    )
