"""What the bridge does: submit accepted videos, cancel abandoned ones, turn reports into facts."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid5

from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.adapters.runpod_client import RunPodClient, RunPodRefused
from openv_bridge.adapters.submissions import Submission, Submissions
from openv_bridge.config import Settings
from openv_bridge.domain import reports
from openv_bridge.domain.tokens import token_valid, webhook_token
from openv_shared.contracts import Envelope, Message
from openv_shared.contracts.events import VideoAccepted, VideoCancelled, VideoDeleted
from openv_shared.contracts.facts import (
    RunPodJobCancelled,
    RunPodJobCompleted,
    RunPodJobFailed,
    RunPodJobOutputAtUrl,
    RunPodJobRunning,
    RunPodJobSubmitted,
    RunPodJobTimedOut,
)
from openv_shared.contracts.video import ErrorCode, VideoStatus
from openv_shared.storage_keys import video_output_key

log = logging.getLogger(__name__)

PublishFact = Callable[[Envelope], Awaitable[None]]
_FINAL_FACTS = (
    RunPodJobCompleted,
    RunPodJobOutputAtUrl,
    RunPodJobFailed,
    RunPodJobCancelled,
    RunPodJobTimedOut,
)
_IN_FLIGHT = frozenset({VideoStatus.QUEUED, VideoStatus.SUBMITTED, VideoStatus.RUNNING})


class UnknownJob(Exception):
    """A report for a video we never submitted, or from a job that is not its recorded one."""


class BridgeService:
    def __init__(
        self,
        settings: Settings,
        runpod: RunPodClient,
        submissions: Submissions,
        objects: ObjectStore,
        publish_fact: PublishFact,
    ) -> None:
        self.settings = settings
        self.runpod = runpod
        self.submissions = submissions
        self.objects = objects
        self.publish_fact = publish_fact
        self._secret = settings.webhook_secret.get_secret_value().encode()

    def token_ok(self, video_id: UUID, token: str) -> bool:
        return token_valid(self._secret, video_id, token)

    def webhook_url(self, video_id: UUID) -> str:
        base = self.settings.webhook_base_url.rstrip("/")
        return f"{base}/webhooks/runpod/{video_id}?token={webhook_token(self._secret, video_id)}"

    async def on_video_event(self, envelope: Envelope) -> None:
        message = envelope.message()
        if isinstance(message, VideoAccepted):
            await self.submit(envelope, message)
        elif (
            isinstance(message, VideoCancelled | VideoDeleted)
            and message.previous_status in _IN_FLIGHT
        ):
            await self.cancel(message.video_id)

    async def submit(self, envelope: Envelope, accepted: VideoAccepted) -> None:
        user_id = envelope.user_id or ""
        key = video_output_key(user_id, accepted.video_id)
        if not await self.submissions.claim(accepted.video_id, user_id, key):
            existing = await self.submissions.get(accepted.video_id)
            if existing is None or existing.state != "submitting":
                log.info("video %s already submitted; redelivery ignored", accepted.video_id)
                return
            # A previous attempt died between claiming and recording the job: try again.
        params = accepted.params
        job_input: dict[str, Any] = {
            "positive_prompt": accepted.prompt,
            "negative_prompt": params.negative_prompt,
            "width": params.width,
            "height": params.height,
            "seed": params.seed,
            "steps": params.steps,
            "cfg": params.cfg,
            "num_frames": params.num_frames,
            "output_put_url": self.objects.upload_url(key, self.settings.upload_url_expiry_s),
            "output_key": key,
        }
        try:
            job_id = await self.runpod.run(
                job_input,
                self.webhook_url(accepted.video_id),
                execution_timeout_ms=self.settings.runpod_execution_timeout_s * 1000,
                ttl_ms=self.settings.runpod_ttl_s * 1000,
            )
        except RunPodRefused as exc:
            await self.submissions.set_state(accepted.video_id, "finished")
            fact: Message = RunPodJobFailed(
                video_id=accepted.video_id,
                runpod_job_id=None,
                code=ErrorCode.RUNPOD_REJECTED.value,
                message=exc.message[:1000] or str(exc),
            )
            await self.publish_fact(
                envelope.follow(fact, event_id=uuid5(envelope.event_id, "refused"))
            )
            return
        await self.submissions.set_state(accepted.video_id, "submitted", job_id)
        fact = RunPodJobSubmitted(video_id=accepted.video_id, runpod_job_id=job_id)
        # A deterministic id: a redelivered acceptance yields the same fact, deduplicated by jobs.
        await self.publish_fact(
            envelope.follow(fact, event_id=uuid5(envelope.event_id, "submitted"))
        )

    async def cancel(self, video_id: UUID) -> None:
        submission = await self.submissions.get(video_id)
        if submission is None or submission.runpod_job_id is None:
            return
        if submission.state in {"finished", "cancelled"}:
            return
        await self.runpod.cancel(submission.runpod_job_id)
        await self.submissions.set_state(video_id, "cancelled")

    async def on_report(self, video_id: UUID, body: object) -> Message | None:
        """Validate a RunPod report for `video_id` and publish the fact it establishes."""
        report = reports.parse_report(body)
        submission = await self.submissions.get(video_id)
        if submission is None or submission.runpod_job_id != report.job_id:
            raise UnknownJob(f"job {report.job_id!r} is not the recorded job of video {video_id}")
        fact = await self._fact(submission, report)
        if fact is None:
            return None
        if submission.state == "submitted" and isinstance(fact, _FINAL_FACTS):
            await self.submissions.set_state(video_id, "finished")
        await self.publish_fact(Envelope.wrap(fact, user_id=submission.user_id))
        return fact

    async def _fact(self, submission: Submission, report: reports.Report) -> Message | None:
        video_id, job_id = submission.video_id, report.job_id
        outcome = reports.interpret(report, submission.object_key)
        match outcome:
            case reports.Waiting():
                return None
            case reports.Running(progress=progress):
                return RunPodJobRunning(video_id=video_id, runpod_job_id=job_id, progress=progress)
            case reports.Uploaded(object_key=key):
                size = await self.objects.size_of(key)
                if not size:
                    return RunPodJobFailed(
                        video_id=video_id,
                        runpod_job_id=job_id,
                        code=ErrorCode.OUTPUT_MISSING.value,
                        message="the worker reported success but its upload is missing or empty",
                    )
                return RunPodJobCompleted(
                    video_id=video_id, runpod_job_id=job_id, object_key=key, size_bytes=size
                )
            case reports.ResultUrl(url=url):
                # The storage service imports it and reports the outcome to jobs.
                return RunPodJobOutputAtUrl(
                    video_id=video_id,
                    runpod_job_id=job_id,
                    url=url,
                    object_key=submission.object_key,
                )
            case reports.Failed(code=code, message=message):
                return RunPodJobFailed(
                    video_id=video_id, runpod_job_id=job_id, code=code, message=message
                )
            case reports.Cancelled():
                return RunPodJobCancelled(video_id=video_id, runpod_job_id=job_id)
            case reports.TimedOut(reason=reason):
                return RunPodJobTimedOut(video_id=video_id, runpod_job_id=job_id, reason=reason)
        raise AssertionError(outcome)
