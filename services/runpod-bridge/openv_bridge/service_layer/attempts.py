"""One `/run` attempt of a claimed submission, and every way it can end: RunPod took the job
(its id, for the caller to record), refused it (the video fails), throttled us or refused our
key (the video waits, the attempt not counted), failed (retried later, counted) or lost its
answer (the next attempt waits for the job that may exist, `domain.ambiguity`).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from openv_bridge.domain import ambiguity
from openv_bridge.domain.record import Submission
from openv_bridge.domain.runpod_errors import (
    RunPodAnswerLost,
    RunPodError,
    RunPodMisconfigured,
    RunPodRefused,
    RunPodThrottled,
    RunSend,
)
from openv_bridge.domain.runpod_texts import MAX_MESSAGE, clean_text
from openv_bridge.domain.submissions import FactIds, SubmissionState, retry_delay
from openv_bridge.domain.tokens import webhook_url
from openv_bridge.domain.uploads import staging_key
from openv_bridge.service_layer.uploads import upload_fact
from openv_bridge.service_layer.use_case import UseCase
from openv_contracts.facts import RunPodJobCompleted, RunPodJobFailed
from openv_contracts.video import ErrorCode

log = logging.getLogger(__name__)

#: The job id a completion found through a lost answer's upload names (RunPod's id is unknown).
LOST_ANSWER_JOB_ID = "lost-answer"
#: Room for the clocks of the bridge and the database to differ, in `_still_ours`.
_LEASE_SAFETY_S = 5.0
_S = SubmissionState


@dataclass(frozen=True)
class Attempts(UseCase):
    async def run(self, sub: Submission) -> str | None:
        """Ask RunPod to run a claimed submission: the job's id, or None when there is none
        (refused, failed for good, or to be retried: each already recorded here)."""
        video_id, attempt = sub.video_id, sub.attempts
        if sub.job_input is None:
            await self._fail(sub, "the submission was interrupted and its request is unknown")
            return None
        if attempt > self.settings.submit_max_attempts:
            await self._fail(
                sub,
                f"RunPod did not take the job in {attempt - 1} attempts: {sub.last_error}",
            )
            return None
        if self.runpod.access.misconfigured:
            # Every call is refused until an operator fixes the key or endpoint; the
            # reconciler probes RunPod and resumes submissions once it answers.
            await self._wait_for_runpod(sub, self.runpod.access.reason, self._misconfigured_wait())
            return None
        if not await self._still_ours(sub):
            log.info(
                "video %s: attempt %d waited past its lease and was taken over; not sent",
                video_id,
                attempt,
            )
            return None
        if sub.answer_lost_at is not None and await self._lost_answers_upload(sub):
            return None
        # The URL writes only this attempt's staging key (see domain.uploads); `output_key`
        # names the video's final key, which RunPod's /status shows (`runpod_says_ours`).
        staged = staging_key(self.settings.webhook_key, sub.user_id, video_id, attempt)
        worker_input = {
            **sub.job_input,
            "output_put_url": self.objects.upload_url(staged, self.settings.upload_url_expiry_s),
            "output_key": sub.object_key,
            ambiguity.INPUT_KEY: ambiguity.attempt_marker(
                self.settings.webhook_key, video_id, attempt
            ),
        }
        send = RunSend()
        try:
            async with asyncio.timeout(self.settings.submit_timeout_s):
                return await self.runpod.run(
                    worker_input,
                    webhook_url(
                        self.settings.webhook_base_url, self.settings.webhook_key, video_id
                    ),
                    execution_timeout_ms=self.settings.runpod_execution_timeout_s * 1000,
                    ttl_ms=self.settings.runpod_ttl_s * 1000,
                    send=send,
                )
        except RunPodThrottled as exc:
            # RunPod's rate limit: the video waits its turn, queued; never failed for it.
            await self._wait_for_runpod(sub, str(exc), exc.retry_in_s)
            return None
        except RunPodMisconfigured as exc:
            # Our key or endpoint, not this video: an outage (readiness says so), not a verdict.
            await self._wait_for_runpod(sub, str(exc), self._misconfigured_wait())
            return None
        except RunPodRefused as exc:
            fact = RunPodJobFailed(
                video_id=video_id,
                runpod_job_id=None,
                code=ErrorCode.RUNPOD_REJECTED.value,
                message=clean_text(exc.message or str(exc), MAX_MESSAGE),
            )
            await self.facts.publish(sub, fact, FactIds(video_id).of("rejected"))
            await self.submissions.finish(video_id, frozenset({_S.SUBMITTING}), error=str(exc))
            log.warning("video %s: RunPod refused the job: %s", video_id, exc)
            return None
        except (RunPodError, TimeoutError) as exc:
            error = str(exc) or "no answer from RunPod within the submit timeout"
            if isinstance(exc, RunPodAnswerLost) or send.maybe_sent:
                await self._answer_lost(sub, error)
                return None
            delay = retry_delay(
                attempt, self.settings.submit_retry_base_s, self.settings.submit_lease_s
            )
            await self.submissions.attempt_failed(video_id, attempt, error, delay)
            log.warning(
                "video %s: submission attempt %d failed (%s); next attempt in %.0f s",
                video_id,
                attempt,
                error,
                delay,
            )
            return None

    async def _lost_answers_upload(self, sub: Submission) -> bool:
        """Before a video whose /run answer was lost is sent again: its job may have finished
        and uploaded while no webhook got through (the bridge was down, RunPod gave up). Its
        file completes the video instead of a second GPU job. True if it did."""
        found = await upload_fact(
            self.objects, sub, LOST_ANSWER_JOB_ID, self.settings.upload_max_bytes
        )
        if not isinstance(found, RunPodJobCompleted):
            return False  # nothing (or nothing usable) there: the next attempt renders it
        log.warning(
            "video %s: the job of a lost /run answer uploaded its file; completed without "
            "sending it again",
            sub.video_id,
        )
        await self.facts.publish(sub, found, FactIds(sub.video_id).of("final", LOST_ANSWER_JOB_ID))
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTING}), "COMPLETED")
        return True

    async def _still_ours(self, sub: Submission) -> bool:
        """Whether this attempt may still send its /run. An attempt that waited (a batch's
        turn, RunPod's rate limit) until its lease ran out may have been taken over by the
        reconciler as the next attempt, which sends its own: two GPU jobs. Unless the lease
        clearly outlasts the call, it is renewed by compare-and-set first."""
        if sub.lease_until is not None:
            left = (sub.lease_until - datetime.now(UTC)).total_seconds()
            if left > self.settings.submit_timeout_s + _LEASE_SAFETY_S:
                return True
        return await self.submissions.renew(
            sub.video_id, sub.attempts, self.settings.submit_lease_s
        )

    async def _wait_for_runpod(self, sub: Submission, reason: str, retry_in_s: float) -> None:
        """Try the submission again in `retry_in_s`, this attempt not counted: RunPod did not
        look at it (rate limit, or a key/endpoint it refuses). Logged per video at debug
        only: the client logs the state once."""
        await self.submissions.attempt_not_counted(sub.video_id, sub.attempts, reason, retry_in_s)
        log.debug("video %s: waits %.1f s for RunPod: %s", sub.video_id, retry_in_s, reason)

    def _misconfigured_wait(self) -> float:
        return retry_delay(1, self.settings.submit_retry_base_s, self.settings.submit_lease_s)

    async def _answer_lost(self, sub: Submission, error: str) -> None:
        """RunPod may have the job (a timeout after sending, a gateway's 502/504): wait for it
        to report (and be adopted) before sending the video again."""
        wait = self.settings.ambiguous_run_wait_s
        await self.submissions.answer_lost(sub.video_id, sub.attempts, error, wait)
        log.warning(
            "video %s: the answer to /run attempt %d was lost (%s); the next attempt waits "
            "%.0f s for its job to report",
            sub.video_id,
            sub.attempts,
            error,
            wait,
        )

    async def _fail(self, sub: Submission, message: str) -> None:
        fact = RunPodJobFailed(
            video_id=sub.video_id,
            runpod_job_id=None,
            code=ErrorCode.RUNPOD_FAILED.value,
            message=clean_text(message, MAX_MESSAGE),
        )
        await self.facts.publish(sub, fact, FactIds(sub.video_id).of("gave-up"))
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTING}), error=message)
        log.error("video %s: submission failed for good: %s", sub.video_id, message)
