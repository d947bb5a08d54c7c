"""What the bridge does, as one object for the entrypoints: submit accepted videos
(`submitting`, one `/run` in `attempts`), cancel abandoned ones (`cancelling`), and turn
RunPod's reports, webhooks and polls alike, into facts (`job_reports`). This module only wires
those together and tells which of them a video event is for.
"""

from uuid import UUID

from openv_bridge.config import Settings
from openv_bridge.domain.record import Submission
from openv_bridge.domain.tokens import token_valid, webhook_url
from openv_bridge.service_layer.attempts import Attempts
from openv_bridge.service_layer.cancelling import Cancelling
from openv_bridge.service_layer.fact_publisher import FactPublisher
from openv_bridge.service_layer.job_reports import JobReports
from openv_bridge.service_layer.ports import Objects, PublishFact, RunPod, SubmissionRecords
from openv_bridge.service_layer.submitting import Submitting
from openv_contracts import Envelope, Message
from openv_contracts.events import VideoAccepted, VideoCancelled, VideoDeleted, VideoTimedOut
from openv_contracts.video import VideoStatus

_IN_FLIGHT = frozenset({VideoStatus.QUEUED, VideoStatus.SUBMITTED, VideoStatus.RUNNING})


class BridgeService:
    def __init__(
        self,
        settings: Settings,
        runpod: RunPod,
        submissions: SubmissionRecords,
        objects: Objects,
        publish_fact: PublishFact,
    ) -> None:
        self.settings = settings
        self.runpod = runpod
        self.submissions = submissions
        self.objects = objects
        ports = (settings, runpod, submissions, objects, FactPublisher(publish_fact))
        self.cancelling = Cancelling(*ports)
        self.submitting = Submitting(*ports, Attempts(*ports), self.cancelling)
        self.reports = JobReports(*ports, self.cancelling)

    def token_ok(self, video_id: UUID, token: str) -> bool:
        return token_valid(self.settings.webhook_key, video_id, token)

    def webhook_url(self, video_id: UUID) -> str:
        return webhook_url(self.settings.webhook_base_url, self.settings.webhook_key, video_id)

    async def on_video_event(self, envelope: Envelope) -> None:
        message = envelope.message()
        if isinstance(message, VideoAccepted):
            await self.submitting.submit(envelope, message)
        elif (
            isinstance(message, VideoCancelled | VideoDeleted)
            and message.previous_status in _IN_FLIGHT
        ):
            await self.cancelling.cancel(message.video_id, envelope.user_id or "")
        elif isinstance(message, VideoTimedOut):
            # Mostly RunPod's own verdict (the record is finished: nothing to do). But the jobs
            # service also times out a video that stayed queued too long: a submission still
            # being retried must stop, and a job it got meanwhile must not run on a paid GPU.
            await self.cancelling.cancel(message.video_id, envelope.user_id or "")

    async def submit_new(self, envelopes: list[Envelope]) -> set[UUID]:
        """See `Submitting.submit_new`: the ids of the events handled."""
        return await self.submitting.submit_new(envelopes)

    async def attempt(self, sub: Submission) -> None:
        """One /run attempt of a claimed submission (`sub.attempts` is this attempt)."""
        await self.submitting.attempt(sub)

    async def cancel_on_runpod(self, sub: Submission) -> None:
        await self.cancelling.cancel_on_runpod(sub)

    async def on_report(self, video_id: UUID, body: object) -> Message | None:
        """See `JobReports.on_report`."""
        return await self.reports.on_report(video_id, body)

    async def poll(self, sub: Submission) -> Message | None:
        """The reconciler's look at a quiet job: the same path as a webhook from here on."""
        return await self.reports.poll(sub)
