"""Cancelling a video's submission (the video was cancelled, deleted or timed out while in
flight): its record first, so no attempt records a job afterwards, then its job on RunPod; and
cancelling extra jobs that are nobody's.
"""

import logging
from dataclasses import dataclass
from uuid import UUID

from openv_bridge.domain.record import Submission
from openv_bridge.domain.runpod_errors import JobNotFound, RunPodError, RunPodRefused
from openv_bridge.service_layer.use_case import UseCase
from openv_contracts.storage_keys import video_output_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cancelling(UseCase):
    async def cancel(self, video_id: UUID, user_id: str) -> None:
        sub = await self.submissions.start_cancel(video_id, self.settings.submit_lease_s)
        if sub is None:
            if await self.submissions.get(video_id) is None:
                await self.submissions.tombstone(
                    video_id, user_id, video_output_key(user_id, video_id)
                )
            return
        if sub.runpod_job_id is not None:
            await self.cancel_on_runpod(sub)

    async def cancel_on_runpod(self, sub: Submission) -> None:
        """Ask RunPod to cancel the recorded job of a `cancelling` record; the reconciler
        retries if RunPod cannot be reached."""
        assert sub.runpod_job_id is not None
        try:
            await self.runpod.cancel(sub.runpod_job_id)
        except JobNotFound:
            pass  # gone already (ttl or retention): nothing left to stop
        except RunPodRefused as exc:
            # Asking again would be refused again; the job ends by itself at its ttl at worst.
            log.error("video %s: RunPod refused to cancel job: %s", sub.video_id, exc)
        except RunPodError as exc:
            retry_in = self.settings.reconcile_quiet_s
            await self.submissions.cancel_failed(sub.video_id, str(exc), retry_in)
            log.warning(
                "video %s: cancel failed (%s); retrying in %.0f s", sub.video_id, exc, retry_in
            )
            return
        await self.submissions.cancel_done(sub.video_id)

    async def cancel_quietly(self, job_id: str) -> None:
        """Cancel a job that is nobody's; best effort (it will end by itself at its ttl)."""
        try:
            await self.runpod.cancel(job_id)
        except JobNotFound:
            log.info("extra job %s is unknown to RunPod (already gone, or never existed)", job_id)
        except (RunPodError, RunPodRefused) as exc:
            log.warning("could not cancel extra job %s: %s", job_id, exc)
