"""The gateway's use cases: request a video and wait for the decision, read, list, cancel,
delete; a user's usage. Depends only on the Protocols of `ports.py`."""

import contextlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from openv_contracts.commands import CancelVideo, DeleteVideo, RequestVideo
from openv_contracts.queries import EventPage, JobsUnavailable, UsageView, VideoPage, VideoView
from openv_contracts.video import TERMINAL_STATUSES, ErrorCode, VideoStatus
from openv_contracts.webhooks import WebhookTarget
from openv_gateway.domain import idempotency
from openv_gateway.domain.pending import PendingRequests, PendingVideo
from openv_gateway.domain.principal import Principal
from openv_gateway.service_layer.live import LiveVideos
from openv_gateway.service_layer.ports import CommandSender, VideoOrder, VideoReader


class VideoNotFound(Exception):
    pass


class AlreadyTerminal(Exception):
    def __init__(self, view: VideoView) -> None:
        super().__init__(view.status)
        self.view = view


class NotDecidedYet(Exception):
    """The video was requested but the jobs service has not decided it yet."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


class InvalidCursor(Exception):
    """The list cursor is not one the API issued."""


@dataclass(frozen=True)
class Created:
    """The outcome of a create: the decided video, or the pending request when undecided."""

    video_id: UUID
    view: VideoView | None
    pending: PendingVideo
    #: Seconds of `Prefer: wait` honoured, if any.
    waited: int | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class VideosService:
    def __init__(
        self,
        jobs: VideoReader,
        commands: CommandSender,
        live: LiveVideos,
        decision_wait_s: float,
        pending: PendingRequests,
    ) -> None:
        self.jobs = jobs
        self.commands = commands
        self.live = live
        self.decision_wait_s = decision_wait_s
        self.pending = pending

    async def create(
        self,
        principal: Principal,
        request: VideoOrder,
        idempotency_key: str | None = None,
        prefer_wait_s: int | None = None,
        webhook: WebhookTarget | None = None,
    ) -> Created:
        """Publish the request and wait (bounded) for the jobs service's decision.

        With an Idempotency-Key the video id and the default seed derive from the key, so a
        retry addresses the same video and the jobs service makes one job however many
        retries arrive, concurrently or not. Raises IdempotencyConflict when the key's video
        was requested with another body (its webhook included). `webhook` (checked) travels
        with the request.
        """
        started = time.monotonic()
        user = principal.user_id
        if idempotency_key is not None:
            video_id = idempotency.video_id_for(user, idempotency_key)
            default_seed = idempotency.seed_for(user, idempotency_key)
        else:
            video_id, default_seed = uuid4(), secrets.randbelow(2**31)
        params = request.params(default_seed)
        pending = PendingVideo(video_id, user, request.prompt, params, _now())
        decision_budget = max(self.decision_wait_s, float(prefer_wait_s or 0))
        async with self.live.watch(video_id) as watch:
            view = None
            if idempotency_key is not None:
                # A retry: the video may exist already (then nothing is published again).
                view = await watch.refresh()
                if view is None:
                    remembered = self.pending.get(video_id, time.monotonic())
                    pending = remembered or pending
            if view is None:
                self.pending.add(pending, time.monotonic())
                command = RequestVideo(
                    video_id=video_id,
                    prompt=pending.prompt,
                    params=pending.params,
                    idempotency_key=idempotency_key,
                    webhook=webhook,
                )
                await self.commands.send(command, user)
                view = await watch.wait_until(lambda v: True, decision_budget)
                if view is not None and view.version > 1 and prefer_wait_s is None:
                    # The bridge was quicker than our feed: answer with the decision itself
                    # (`queued`), as the contract says, not with what followed it.
                    with contextlib.suppress(JobsUnavailable):
                        view = await self.jobs.video(video_id, version=1) or view
            if view is None:
                return Created(video_id, None, pending)
            self.pending.discard(video_id)
            if view.user_id != user or not idempotency.same_request(
                view.prompt, view.params, request.prompt, params
            ):
                raise IdempotencyConflict(video_id)
            if idempotency_key is not None and await self._webhook_of(video_id) != webhook:
                raise IdempotencyConflict(video_id)
            waited = None
            if prefer_wait_s is not None:
                left = prefer_wait_s - (time.monotonic() - started)
                if view.status is not VideoStatus.REJECTED and left > 0:
                    view = (
                        await watch.wait_until(lambda v: v.status in TERMINAL_STATUSES, left)
                        or view
                    )
                waited = prefer_wait_s
            return Created(video_id, view, pending, waited)

    async def _webhook_of(self, video_id: UUID) -> WebhookTarget | None:
        """The webhook the video was requested with, as its first event recorded it."""
        first = next(iter((await self.jobs.events(video_id)).data), None)
        recorded = None if first is None else first.data.get("webhook")
        return None if recorded is None else WebhookTarget.model_validate(recorded)

    async def find(self, principal: Principal, video_id: UUID) -> VideoView | PendingVideo:
        """The video, or the request this instance published and jobs has not decided yet."""
        view = await self.live.read(video_id)
        if view is not None:
            if not principal.may_see(view.user_id):
                raise VideoNotFound(video_id)  # another user's video looks like a missing one
            return view
        pending = self.pending.get(video_id, time.monotonic())
        if pending is None or not principal.may_see(pending.user_id):
            raise VideoNotFound(video_id)
        return pending

    def peek(self, principal: Principal, video_id: UUID) -> VideoView | None:
        """The video if this instance can answer it at once (no I/O) and the principal may
        see it; None means: ask `find` (which also answers a missing or foreign video)."""
        view = self.live.servable(video_id)
        if view is None or not principal.may_see(view.user_id):
            return None
        return view

    async def get(self, principal: Principal, video_id: UUID) -> VideoView:
        found = await self.find(principal, video_id)
        if isinstance(found, PendingVideo):
            raise NotDecidedYet(video_id)
        return found

    async def _decided(self, principal: Principal, video_id: UUID) -> VideoView:
        """The video; if it is still pending here, wait (bounded) for its decision first."""
        found = await self.find(principal, video_id)
        if isinstance(found, VideoView):
            return found
        async with self.live.watch(video_id) as watch:
            view = await watch.wait_until(lambda v: True, self.decision_wait_s)
        if view is None:
            raise NotDecidedYet(video_id)
        return view

    async def cancel(self, principal: Principal, video_id: UUID) -> VideoView:
        view = await self._decided(principal, video_id)
        if view.status in TERMINAL_STATUSES:
            raise AlreadyTerminal(view)
        async with self.live.watch(video_id, known=view) as watch:
            await self.commands.send(CancelVideo(video_id=video_id), view.user_id)
            decided = await watch.wait_until(
                lambda v: v.status in TERMINAL_STATUSES, self.decision_wait_s
            )
        return decided or view

    async def delete(self, principal: Principal, video_id: UUID, wait_s: float) -> VideoView:
        """Mark deleted (idempotent); with `wait_s`, hold until the files are confirmed gone."""
        deadline = time.monotonic() + wait_s
        view = await self._decided(principal, video_id)
        if view.status is VideoStatus.DELETED and (view.file_deleted or wait_s <= 0):
            return view
        async with self.live.watch(video_id, known=view) as watch:
            if view.status is not VideoStatus.DELETED:
                await self.commands.send(DeleteVideo(video_id=video_id), view.user_id)
                view = (
                    await watch.wait_until(
                        lambda v: v.status is VideoStatus.DELETED,
                        max(self.decision_wait_s, wait_s),
                    )
                    or view
                )
            left = deadline - time.monotonic()
            if left > 0 and not view.file_deleted:
                view = await watch.wait_until(lambda v: v.file_deleted, left) or view
        return view

    async def list_videos(
        self, principal: Principal, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage:
        """A page of the principal's videos (an admin's: everyone's), newest first."""
        user = None if principal.is_admin else principal.user_id
        page = await self.jobs.videos_page(user, limit, cursor, status)
        if page is None:
            raise InvalidCursor(cursor)
        return page

    async def events(self, principal: Principal, video_id: UUID) -> EventPage:
        """The video's history, oldest first (none yet while it is pending here)."""
        found = await self.find(principal, video_id)
        if isinstance(found, PendingVideo):
            return EventPage(data=[])
        return await self.jobs.events(video_id)

    async def usage(self, principal: Principal) -> UsageView:
        return await self.jobs.usage(principal.user_id)

    async def quota_resets_at(self, view: VideoView) -> datetime | None:
        """When a `quota_exceeded` refusal's quota starts afresh, as the jobs service said:
        on the refusal itself, or (refusals recorded before it said so) the user's period end.
        None for any other video."""
        if view.error is None or view.error.code != ErrorCode.QUOTA_EXCEEDED.value:
            return None
        if view.error.retry_at is not None:
            return view.error.retry_at
        return (await self.jobs.usage(view.user_id)).period_end

    async def ready(self) -> bool:
        return await self.jobs.healthy()
