"""Recording deliveries from the video events: the consumer's use case.

A video whose decision carries a webhook is watched: its public view is folded event by event
(`openv_contracts.video_views.next_view`; after a gap, read from the jobs service), and each
event that is a webhook event in the target's filter records a delivery in the same
transaction as the view. Videos without a webhook cost one lookup per batch. Redelivered and
older events are skipped (a delivery's id is its event's id: recorded once)."""

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from openv_contracts import Envelope
from openv_contracts.events import VideoAccepted, VideoRejected, stream_video_id
from openv_contracts.queries import JobsUnavailable, VideoView, decided_view
from openv_contracts.video_views import next_view
from openv_webhooks.domain.events import webhook_event
from openv_webhooks.domain.receivers import origin
from openv_webhooks.service_layer.ports import NewDelivery, Views, Watch, WatchStore

#: Tries to fold one event when another instance moves the same video meanwhile.
_CONFLICT_TRIES = 5


class Recorder:
    def __init__(
        self,
        store: WatchStore,
        views: Views,
        give_up_s: float,
        clock: Callable[[], datetime],
        recorded: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.views = views
        self.give_up = timedelta(seconds=give_up_s)
        self.clock = clock
        #: Called after a batch recorded deliveries (wakes the dispatcher).
        self.recorded = recorded

    async def on_events(self, envelopes: list[Envelope]) -> None:
        """Handle a batch in order (a video's events are in order on its partition)."""
        ids = {_video_id(e) for e in envelopes}
        watches = dict(await self.store.watches({i for i in ids if i is not None}))
        any_recorded = False
        for envelope in envelopes:
            video_id = _video_id(envelope)
            if video_id is None or envelope.stream_version is None:
                continue
            for _ in range(_CONFLICT_TRIES):
                outcome = await self._fold(envelope, video_id, watches.get(video_id))
                if outcome is None:  # the stored watch moved on: read it again
                    fresh = await self.store.watches({video_id})
                    watches.pop(video_id, None)
                    watches.update(fresh)
                    continue
                watch, delivered = outcome
                if watch is not None:
                    watches[video_id] = watch
                any_recorded |= delivered
                break
        if any_recorded:
            self.recorded()

    async def _fold(
        self, envelope: Envelope, video_id: UUID, watch: Watch | None
    ) -> tuple[Watch | None, bool] | None:
        """(the watch now, whether a delivery was recorded); None on a version conflict."""
        version = envelope.stream_version or 0
        if watch is None:
            first = _first_watch(envelope)
            if first is None:
                return None, False  # no webhook (or not its decision): nothing to do
            delivery = self._delivery(envelope, first, None)
            if not await self.store.record(first, None, delivery):
                return None
            return first, delivery is not None
        held = watch.view.version
        if version <= held:
            return watch, False  # redelivered or older: already folded
        after = next_view(watch.view, envelope)
        if after is None:
            after = await self.views.video(video_id, version)
            if after is None:
                raise JobsUnavailable(f"the jobs service has no video {video_id} at v{version}")
        moved = Watch(watch.video_id, watch.user_id, watch.url, watch.events, after)
        delivery = self._delivery(envelope, moved, watch.view)
        if not await self.store.record(moved, held, delivery):
            return None
        return moved, delivery is not None

    def _delivery(
        self, envelope: Envelope, watch: Watch, before: VideoView | None
    ) -> NewDelivery | None:
        event = webhook_event(envelope.type, before, watch.view)
        if event is None or event not in watch.events:
            return None
        now = self.clock()
        return NewDelivery(
            id=envelope.event_id,
            video_id=watch.video_id,
            user_id=watch.user_id,
            version=watch.view.version,
            event=event,
            url=watch.url,
            origin=origin(watch.url),
            occurred_at=envelope.occurred_at,
            view=watch.view,
            created_at=now,
            give_up_at=now + self.give_up,
        )


def _video_id(envelope: Envelope) -> UUID | None:
    return stream_video_id(envelope.stream_id)


def _first_watch(envelope: Envelope) -> Watch | None:
    """The watch a decision with a webhook starts; None for anything else."""
    if envelope.stream_version != 1 or envelope.type not in (
        VideoAccepted.TYPE,
        VideoRejected.TYPE,
    ):
        return None
    message = envelope.message()
    assert isinstance(message, VideoAccepted | VideoRejected)
    view = decided_view(envelope)
    if message.webhook is None or view is None:
        return None
    return Watch(view.id, view.user_id, message.webhook.url, message.webhook.events, view)
