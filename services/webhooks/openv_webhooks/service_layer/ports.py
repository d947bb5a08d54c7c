"""What the use cases need from the outside world: stores, the receiver's HTTP, the jobs
service's views, links and metrics. Implemented in `adapters/` (Postgres, httpx, Prometheus)
and by in-memory fakes in the unit tests."""

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from openv_contracts.public_video import Links
from openv_contracts.queries import VideoView
from openv_contracts.webhooks import WebhookDeliveryPage, WebhookEvent
from openv_webhooks.domain.deliveries import AttemptResult, Outcome


@dataclass(frozen=True)
class Watch:
    """A video whose creator named a webhook, and its public view as last folded."""

    video_id: UUID
    user_id: str
    url: str
    events: frozenset[WebhookEvent]
    view: VideoView


@dataclass(frozen=True)
class NewDelivery:
    """A delivery recorded with the view update of the video event it tells of."""

    id: UUID  # the video event's event_id
    video_id: UUID
    user_id: str
    version: int
    event: WebhookEvent
    url: str
    origin: str
    occurred_at: datetime
    view: VideoView
    created_at: datetime
    give_up_at: datetime


@dataclass(frozen=True)
class Due:
    """A claimed delivery, leased to this instance for one attempt."""

    id: UUID
    video_id: UUID
    user_id: str
    version: int
    event: WebhookEvent
    url: str
    origin: str
    occurred_at: datetime
    view: VideoView
    give_up_at: datetime
    failed_attempts: int


#: Chooses, inside the claiming transaction, which due candidates to take (oldest first).
Pick = Callable[[list[Due]], list[Due]]


class WatchStore(Protocol):
    async def watches(self, video_ids: Collection[UUID]) -> Mapping[UUID, Watch]: ...

    async def record(
        self, watch: Watch, held_version: int | None, delivery: NewDelivery | None
    ) -> bool:
        """In one transaction: store `watch` (new when `held_version` is None, else only if
        the stored version still is `held_version`) and `delivery` (once per id). False when
        the stored watch moved on meanwhile (nothing written)."""
        ...


class DeliveryQueue(Protocol):
    async def claim(
        self, now: datetime, lease_until: datetime, limit: int, skip: Collection[str], pick: Pick
    ) -> list[Due]:
        """Due pending deliveries, each its video's oldest pending one, not leased, whose
        origin is not in `skip`; `pick` chooses among them; those are leased."""
        ...

    async def finish(self, due: Due, result: AttemptResult, outcome: Outcome) -> None:
        """Record the attempt and the delivery's new state; release the lease."""
        ...

    async def backlog(self, now: datetime) -> tuple[int, float]:
        """Pending deliveries, and the age in seconds of the oldest (0 when none)."""
        ...

    async def deliveries(self, video_id: UUID) -> WebhookDeliveryPage: ...

    async def replay(
        self, video_id: UUID | None, failed_since: datetime | None, now: datetime, window_s: float
    ) -> int:
        """Failed deliveries (of the video, or that failed since) back to pending, due now,
        giving up `window_s` from now. How many."""
        ...


@dataclass(frozen=True)
class StoredSecret:
    secret: str
    created_at: datetime
    previous: str | None = None
    previous_expires_at: datetime | None = None


class SecretStore(Protocol):
    async def get(self, user_id: str) -> StoredSecret | None: ...

    async def create(self, user_id: str, secret: StoredSecret) -> StoredSecret:
        """`secret` unless the user has one already (then that one)."""
        ...

    async def replace(self, user_id: str, secret: StoredSecret) -> None: ...


class Sender(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str | None]:
        """The receiver's status code (None: no answer) and the error (None: it answered)."""
        ...


class Views(Protocol):
    """The jobs service's views (`openv_infra.jobs_api.JobsApi`)."""

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None: ...


#: The presigned links a completed video's resource carries (`Playback.links`).
Presign = Callable[[VideoView], Links]


class DeliveryMetrics(Protocol):
    def attempted(self, result: str, latency_s: float) -> None: ...

    def finished(self, outcome: str) -> None: ...

    def backlog(self, pending: int, oldest_age_s: float) -> None: ...
