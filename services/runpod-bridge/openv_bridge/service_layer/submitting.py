"""Submitting accepted videos: a consumer batch's new videos claimed and recorded together, a
redelivered one taken over once its attempt's lease ran out, and the job RunPod took recorded
(retrying a database outage), announced, or cancelled if nobody needs it any more. The `/run`
call itself is `attempts`'.
"""

import asyncio
import logging
from dataclasses import dataclass
from uuid import UUID

from openv_bridge.domain.record import DIED_OPEN, Claim, Submission
from openv_bridge.domain.submissions import SubmissionState, job_input
from openv_bridge.service_layer.attempts import Attempts
from openv_bridge.service_layer.cancelling import Cancelling
from openv_bridge.service_layer.use_case import UseCase
from openv_contracts import Envelope
from openv_contracts.events import VideoAccepted
from openv_contracts.storage_keys import video_output_key
from openv_infra import telemetry
from openv_infra.failures import is_transient

log = logging.getLogger(__name__)

#: Pauses between tries to record jobs RunPod took while the database is away (~30 s in all).
_RECORD_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
_S = SubmissionState


@dataclass(frozen=True)
class Submitting(UseCase):
    attempts: Attempts
    cancelling: Cancelling

    async def submit(self, envelope: Envelope, accepted: VideoAccepted) -> None:
        video_id = accepted.video_id
        started = await self.submissions.claim_many(
            [claim_of(envelope, accepted)], self.settings.submit_lease_s
        )
        claimed = started[0] if started else None
        if claimed is None:
            existing = await self.submissions.get(video_id)
            if existing is None:
                return
            if existing.state is _S.SUBMITTED and existing.runpod_job_id is not None:
                # Recorded, but the fact may not have been published before a crash: again
                # (same event id, so the jobs service records it once).
                await self.facts.submitted(existing, existing.runpod_job_id)
                return
            if existing.state is not _S.SUBMITTING:
                log.info("video %s: %s; redelivery ignored", video_id, existing.state)
                return
            # An attempt that died (or still runs elsewhere): take over once its lease is out.
            claimed = await self.submissions.acquire(
                video_id, self.settings.submit_lease_s, self.settings.ambiguous_run_wait_s
            )
            if claimed is None:
                log.info(
                    "video %s: a submission attempt holds the lease; the reconciler retries "
                    "it if the attempt stalls",
                    video_id,
                )
                return
            if not claimed.attempt_started:
                log.warning("video %s: held: %s", video_id, DIED_OPEN)
                return
        await self.attempt(claimed)

    async def submit_new(self, envelopes: list[Envelope]) -> set[UUID]:
        """Submit the videos of a batch's `VideoAccepted` events that have no record yet: one
        transaction claims them all and one records their jobs (two per video otherwise),
        their /run calls side by side, `submit_concurrency` at once. Returns the ids of the
        events handled; the others (redeliveries, cancels) are for `on_video_event`."""
        firsts: dict[UUID, tuple[Envelope, Claim]] = {}
        for envelope in envelopes:
            accepted = envelope.message() if envelope.type == VideoAccepted.TYPE else None
            if isinstance(accepted, VideoAccepted) and accepted.video_id not in firsts:
                firsts[accepted.video_id] = (envelope, claim_of(envelope, accepted))
        claimed = await self.submissions.claim_many(
            [claim for _, claim in firsts.values()], self.settings.submit_lease_s
        )
        started = [(sub, firsts[sub.video_id][0]) for sub in claimed]
        slots = asyncio.Semaphore(self.settings.submit_concurrency)

        async def run(sub: Submission, envelope: Envelope) -> str | None:
            async with slots:
                with telemetry.handling(envelope.type, envelope.trace_context):
                    return await self.attempts.run(sub)

        job_ids = await asyncio.gather(*(run(*pair) for pair in started), return_exceptions=True)
        ran = [
            (sub, envelope, job_id)
            for (sub, envelope), job_id in zip(started, job_ids, strict=True)
            if isinstance(job_id, str)
        ]
        recorded = await self._record_jobs(
            [(sub.video_id, sub.attempts, job_id) for sub, _, job_id in ran]
        )

        async def settle(sub: Submission, envelope: Envelope, job_id: str) -> None:
            with telemetry.handling(envelope.type, envelope.trace_context):
                await self._settle(sub, job_id, sub.video_id in recorded)

        settled = await asyncio.gather(*(settle(*one) for one in ran), return_exceptions=True)
        for result in (*job_ids, *settled):
            if isinstance(result, BaseException):
                raise result
        return {envelope.event_id for _, envelope in started}

    async def attempt(self, sub: Submission) -> None:
        """One /run attempt of a claimed submission (`sub.attempts` is this attempt)."""
        job_id = await self.attempts.run(sub)
        if job_id is not None:
            recorded = await self._record_jobs([(sub.video_id, sub.attempts, job_id)])
            await self._settle(sub, job_id, sub.video_id in recorded)

    async def _record_jobs(self, jobs: list[tuple[UUID, int, str]]) -> set[UUID]:
        """Record the jobs RunPod took, retrying a database outage (a restart takes seconds):
        an unrecorded job is paid for, and its video is only held, not sent again, until the
        job reports (`Submissions.acquire_stalled`). Gives up (raises) after ~30 s."""
        for delay in (*_RECORD_RETRY_DELAYS_S, None):
            try:
                return await self.submissions.record_jobs(jobs)
            except Exception as exc:
                if delay is None or not is_transient(exc):
                    raise
                log.warning(
                    "recording %d RunPod job(s) failed (%s); retrying in %.1f s",
                    len(jobs),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _settle(self, sub: Submission, job_id: str, recorded: bool) -> None:
        """After RunPod took `job_id`: announce it if it was recorded, else cancel it if
        nobody needs it."""
        video_id = sub.video_id
        if recorded:
            await self.facts.submitted(sub, job_id)
            return
        current = await self.submissions.get(video_id)
        if current is not None and current.runpod_job_id == job_id:
            return  # its own webhook was faster and adopted it
        # Another attempt was recorded, or the video was cancelled meanwhile: this job is extra.
        log.warning(
            "video %s: job %s is not needed (record now %s/%s); cancelling it on RunPod",
            video_id,
            job_id,
            current.state if current else None,
            current.runpod_job_id if current else None,
        )
        await self.cancelling.cancel_quietly(job_id)


def claim_of(envelope: Envelope, accepted: VideoAccepted) -> Claim:
    """What the first attempt of an accepted video records."""
    user_id = envelope.user_id or ""
    return Claim(
        video_id=accepted.video_id,
        user_id=user_id,
        object_key=video_output_key(user_id, accepted.video_id),
        job_input=job_input(accepted),
        accepted_event_id=envelope.event_id,
        correlation_id=envelope.correlation_id,
    )
