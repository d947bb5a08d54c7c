"""What the bridge does: submit accepted videos, cancel abandoned ones, turn reports (webhooks
and polls, one code path) into facts.

Publishing comes before recording: a fact is published (and acknowledged by Kafka) before the
record says it was, so a crash in between repeats the fact (deduplicated by its deterministic
id) instead of losing it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.adapters.runpod_client import (
    AnswerTooLarge,
    JobNotFound,
    RunPodAnswerLost,
    RunPodClient,
    RunPodError,
    RunPodMisconfigured,
    RunPodRefused,
    RunPodThrottled,
    RunSend,
)
from openv_bridge.adapters.submissions import DIED_OPEN, Claim, Submission, Submissions
from openv_bridge.config import Settings
from openv_bridge.domain import ambiguity, reports
from openv_bridge.domain.submissions import (
    FactIds,
    Route,
    SubmissionState,
    job_input,
    progress_is_news,
    retry_delay,
    route_report,
    runpod_says_ours,
)
from openv_bridge.domain.tokens import token_valid, webhook_token
from openv_bridge.domain.uploads import staging_key
from openv_bridge.service_layer import outputs
from openv_bridge.service_layer.uploads import (
    Nothing,
    Refused,
    Stored,
    discard_uploads,
    take_upload,
)
from openv_contracts import Envelope, Message
from openv_contracts.events import (
    VideoAccepted,
    VideoCancelled,
    VideoDeleted,
    VideoTimedOut,
)
from openv_contracts.facts import (
    RunPodJobCancelled,
    RunPodJobCompleted,
    RunPodJobFailed,
    RunPodJobOutputAtUrl,
    RunPodJobRunning,
    RunPodJobSubmitted,
    RunPodJobTimedOut,
)
from openv_contracts.storage_keys import video_output_key
from openv_contracts.video import ErrorCode, VideoStatus
from openv_infra import telemetry
from openv_infra.failures import is_transient

log = logging.getLogger(__name__)

PublishFact = Callable[[Envelope], Awaitable[None]]
_IN_FLIGHT = frozenset({VideoStatus.QUEUED, VideoStatus.SUBMITTED, VideoStatus.RUNNING})
#: The job id a completion found through a lost answer's upload names (RunPod's id is unknown).
LOST_ANSWER_JOB_ID = "lost-answer"
#: Room for the clocks of the bridge and the database to differ, in `_still_ours`.
_LEASE_SAFETY_S = 5.0
#: Pauses between tries to record jobs RunPod took while the database is away (~30 s in all).
_RECORD_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
_S = SubmissionState


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

    # ------------------------------------------------------------------ video events

    async def on_video_event(self, envelope: Envelope) -> None:
        message = envelope.message()
        if isinstance(message, VideoAccepted):
            await self.submit(envelope, message)
        elif (
            isinstance(message, VideoCancelled | VideoDeleted)
            and message.previous_status in _IN_FLIGHT
        ):
            await self.cancel(message.video_id, envelope.user_id or "")
        elif isinstance(message, VideoTimedOut):
            # Mostly RunPod's own verdict (the record is finished: nothing to do). But the jobs
            # service also times out a video that stayed queued too long: a submission still
            # being retried must stop, and a job it got meanwhile must not run on a paid GPU.
            await self.cancel(message.video_id, envelope.user_id or "")

    async def submit(self, envelope: Envelope, accepted: VideoAccepted) -> None:
        video_id = accepted.video_id
        started = await self.submissions.claim_many(
            [self._claim_of(envelope, accepted)], self.settings.submit_lease_s
        )
        claimed = started[0] if started else None
        if claimed is None:
            existing = await self.submissions.get(video_id)
            if existing is None:
                return
            if existing.state is _S.SUBMITTED and existing.runpod_job_id is not None:
                # Recorded, but the fact may not have been published before a crash: again
                # (same event id, so the jobs service records it once).
                await self._publish_submitted(existing, existing.runpod_job_id)
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
                firsts[accepted.video_id] = (envelope, self._claim_of(envelope, accepted))
        claimed = await self.submissions.claim_many(
            [claim for _, claim in firsts.values()], self.settings.submit_lease_s
        )
        started = [(sub, firsts[sub.video_id][0]) for sub in claimed]
        slots = asyncio.Semaphore(self.settings.submit_concurrency)

        async def run(sub: Submission, envelope: Envelope) -> str | None:
            async with slots:
                with telemetry.handling(envelope.type, envelope.trace_context):
                    return await self._run(sub)

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

    def _claim_of(self, envelope: Envelope, accepted: VideoAccepted) -> Claim:
        user_id = envelope.user_id or ""
        return Claim(
            video_id=accepted.video_id,
            user_id=user_id,
            object_key=video_output_key(user_id, accepted.video_id),
            job_input=job_input(accepted),
            accepted_event_id=envelope.event_id,
            correlation_id=envelope.correlation_id,
        )

    async def attempt(self, sub: Submission) -> None:
        """One /run attempt of a claimed submission (`sub.attempts` is this attempt)."""
        job_id = await self._run(sub)
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

    async def _run(self, sub: Submission) -> str | None:
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
        staged = staging_key(self._secret, sub.user_id, video_id, attempt)
        worker_input = {
            **sub.job_input,
            "output_put_url": self.objects.upload_url(staged, self.settings.upload_url_expiry_s),
            "output_key": sub.object_key,
            ambiguity.INPUT_KEY: ambiguity.attempt_marker(self._secret, video_id, attempt),
        }
        send = RunSend()
        try:
            async with asyncio.timeout(self.settings.submit_timeout_s):
                return await self.runpod.run(
                    worker_input,
                    self.webhook_url(video_id),
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
                message=reports.clean_text(exc.message or str(exc), reports.MAX_MESSAGE),
            )
            await self._publish(sub, fact, FactIds(video_id).of("rejected"))
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
        found = await self._upload_fact(sub, LOST_ANSWER_JOB_ID)
        if not isinstance(found, RunPodJobCompleted):
            return False  # nothing (or nothing usable) there: the next attempt renders it
        log.warning(
            "video %s: the job of a lost /run answer uploaded its file; completed without "
            "sending it again",
            sub.video_id,
        )
        await self._publish(sub, found, FactIds(sub.video_id).of("final", LOST_ANSWER_JOB_ID))
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

    async def _settle(self, sub: Submission, job_id: str, recorded: bool) -> None:
        """After RunPod took `job_id`: announce it if it was recorded, else cancel it if
        nobody needs it."""
        video_id = sub.video_id
        if recorded:
            await self._publish_submitted(sub, job_id)
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
        await self._cancel_quietly(job_id)

    async def _fail(self, sub: Submission, message: str) -> None:
        fact = RunPodJobFailed(
            video_id=sub.video_id,
            runpod_job_id=None,
            code=ErrorCode.RUNPOD_FAILED.value,
            message=reports.clean_text(message, reports.MAX_MESSAGE),
        )
        await self._publish(sub, fact, FactIds(sub.video_id).of("gave-up"))
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTING}), error=message)
        log.error("video %s: submission failed for good: %s", sub.video_id, message)

    async def _publish_submitted(self, sub: Submission, job_id: str) -> None:
        fact = RunPodJobSubmitted(video_id=sub.video_id, runpod_job_id=job_id)
        await self._publish(sub, fact, FactIds(sub.video_id).of("submitted", job_id))

    # ------------------------------------------------------------------ cancelling

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

    async def _cancel_quietly(self, job_id: str) -> None:
        """Cancel a job that is nobody's; best effort (it will end by itself at its ttl)."""
        try:
            await self.runpod.cancel(job_id)
        except JobNotFound:
            log.info("extra job %s is unknown to RunPod (already gone, or never existed)", job_id)
        except (RunPodError, RunPodRefused) as exc:
            log.warning("could not cancel extra job %s: %s", job_id, exc)

    # ------------------------------------------------------------------ reports

    async def on_report(self, video_id: UUID, body: object) -> Message | None:
        """A webhook body for `video_id` (token already checked): validate it, route it and
        publish the fact it establishes. Raises InvalidReport or UnknownJob to refuse it."""
        report = reports.parse_report(body)
        # Two looks at most: an adoption (or losing a race to the attempt's own record) changes
        # the record, and the report is then routed against the new one.
        for _ in range(2):
            sub = await self.submissions.get(video_id)
            if sub is None:
                raise UnknownJob(f"video {video_id} has no submission")
            owner = None
            if report.job_id != sub.runpod_job_id:
                owner = await self.submissions.owner_of_job(report.job_id)
            route = route_report(sub.state, sub.runpod_job_id, report.job_id, owner, video_id)
            match route:
                case Route.APPLY:
                    return await self.apply(sub, report)
                case Route.SETTLED:
                    log.info("video %s: %s after the record settled", video_id, report.status)
                    if sub.state in (_S.CANCELLING, _S.CANCELLED):
                        # Cancelled or deleted: whatever its job uploaded is nobody's file.
                        await discard_uploads(self.objects, sub)
                    return None
                case Route.FOREIGN:
                    raise UnknownJob(f"job {report.job_id!r} belongs to another video")
                case Route.ORPHAN:
                    ours = await self._runpod_says_ours(sub, report.job_id)
                    log.warning(
                        "video %s: job %s is not its recorded job %s; %s",
                        video_id,
                        report.job_id,
                        sub.runpod_job_id,
                        "cancelling it on RunPod" if ours else "RunPod does not confirm it is ours",
                    )
                    if ours:
                        await self._cancel_quietly(report.job_id)
                    raise UnknownJob(f"job {report.job_id!r} is not the job of video {video_id}")
                case Route.ADOPT:
                    await self._adopt(sub, report.job_id, body)
        raise RuntimeError(f"video {video_id}: the record kept changing; RunPod will retry")

    async def _runpod_says_ours(self, sub: Submission, job_id: str) -> bool:
        """Whether RunPod (not the unsigned webhook) shows `job_id` is this video's job."""
        try:
            answer = await self.runpod.status(job_id)
        except JobNotFound:
            return False
        return runpod_says_ours(answer, job_id, sub.object_key)

    async def _adopt(self, sub: Submission, job_id: str, body: object) -> None:
        """Record the job of an attempt whose /run answer was lost (a crash, a timeout), once
        its echoed `input` names one of this video's attempts with its nonce
        (`domain.ambiguity`), or RunPod shows the job is this video's. A no-op if the record
        changed first. Without that evidence the job is neither adopted nor cancelled: the real
        job may still be running, and the record's attempt goes on (its own answer, or a retry
        after its lease)."""
        named = ambiguity.input_names_attempt(self._secret, body, sub.video_id, sub.attempts)
        if not named and not await self._runpod_says_ours(sub, job_id):
            log.warning(
                "video %s: job %s reported, but RunPod does not show it is this video's job; "
                "not adopted",
                sub.video_id,
                job_id,
            )
            raise UnknownJob(f"RunPod does not confirm job {job_id!r} is this video's")
        if await self.submissions.adopt(sub.video_id, job_id):
            log.warning("video %s: adopted job %s whose /run answer was lost", sub.video_id, job_id)
            await self._publish_submitted(sub, job_id)

    async def poll(self, sub: Submission) -> Message | None:
        """The reconciler's look at a quiet job: the same path as a webhook from here on."""
        job_id = sub.runpod_job_id
        assert job_id is not None
        try:
            body = await self.runpod.status(job_id)
        except JobNotFound:
            return await self._job_gone(sub, job_id)
        except AnswerTooLarge as exc:
            # Asking again would give the same answer: the output is unusable.
            failed = outputs.too_large_fact(sub, job_id, exc)
            await self._publish(sub, failed, FactIds(sub.video_id).of("final", job_id))
            await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTED}))
            return failed
        try:
            report = reports.parse_report(body)
        except reports.InvalidReport as exc:
            log.warning("video %s: unusable /status answer: %s", sub.video_id, exc)
            return None
        if report.job_id != job_id:
            log.warning(
                "video %s: /status of %s answered for %s", sub.video_id, job_id, report.job_id
            )
            return None
        return await self.apply(sub, report)

    async def _job_gone(self, sub: Submission, job_id: str) -> Message | None:
        """RunPod forgot the job (ttl or retention past): look in the bucket first, since the
        worker may have uploaded while no webhook got through (a bridge outage).

        A job's 404 also comes from a wrong endpoint id (a mistyped OPENV_RUNPOD_ENDPOINT_ID
        after a deploy would time out every job in flight): RunPod is asked about the endpoint
        first, and nothing is decided unless it knows it."""
        try:
            await self.runpod.health()
        except RunPodError as exc:
            log.warning(
                "video %s: job %s not found, but RunPod's endpoint does not answer either "
                "(%s); nothing decided",
                sub.video_id,
                job_id,
                exc,
            )
            return None
        found = await self._upload_fact(sub, job_id)
        if found is not None:
            fact, event_id = found, FactIds(sub.video_id).of("final", job_id)
            log.warning(
                "video %s: job %s is gone from RunPod; its upload decides", sub.video_id, job_id
            )
        else:
            fact = RunPodJobTimedOut(
                video_id=sub.video_id, runpod_job_id=job_id, reason=reports.job_gone_reason(job_id)
            )
            event_id = FactIds(sub.video_id).of("gone", job_id)
            log.warning("video %s: job %s is gone from RunPod: timed out", sub.video_id, job_id)
        await self._publish(sub, fact, event_id)
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTED}), status="404")
        return fact

    async def _upload_fact(self, sub: Submission, job_id: str) -> Message | None:
        """The fact the worker's upload establishes; None if there is none."""
        match await take_upload(self.objects, sub, self.settings.upload_max_bytes):
            case Stored(size=size):
                return RunPodJobCompleted(
                    video_id=sub.video_id,
                    runpod_job_id=job_id,
                    object_key=sub.object_key,
                    size_bytes=size,
                )
            case Refused(problem=problem):
                return RunPodJobFailed(
                    video_id=sub.video_id,
                    runpod_job_id=job_id,
                    code=ErrorCode.INVALID_OUTPUT.value,
                    message=problem,
                )
            case Nothing():
                return None
        raise AssertionError("unreachable")

    async def apply(self, sub: Submission, report: reports.Report) -> Message | None:
        """Publish the fact a report of the recorded job establishes, then record the news."""
        job_id = report.job_id
        ids = FactIds(sub.video_id)
        outcome = reports.interpret(report, sub.object_key)
        if isinstance(outcome, reports.Waiting):
            await self.submissions.record_news(sub.video_id, job_id, report.status, None)
            return None
        if isinstance(outcome, reports.Running):
            fact: Message = RunPodJobRunning(
                video_id=sub.video_id, runpod_job_id=job_id, progress=outcome.progress
            )
            if progress_is_news(
                sub.last_status, sub.last_progress, report.status, outcome.progress
            ):
                await self._publish(sub, fact, ids.of("running", job_id, outcome.progress))
            await self.submissions.record_news(
                sub.video_id, job_id, report.status, outcome.progress
            )
            return fact
        fact = await self._final_fact(sub, job_id, outcome)
        await self._publish(sub, fact, ids.of("final", job_id))
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTED}), report.status)
        return fact

    async def _final_fact(self, sub: Submission, job_id: str, outcome: reports.Outcome) -> Message:
        video_id = sub.video_id
        match outcome:
            case reports.Uploaded():
                uploaded = await self._upload_fact(sub, job_id)
                if uploaded is None:
                    return RunPodJobFailed(
                        video_id=video_id,
                        runpod_job_id=job_id,
                        code=ErrorCode.OUTPUT_MISSING.value,
                        message="the worker reported success but its upload is missing or empty",
                    )
                return uploaded
            case reports.InlineVideo(data=data):
                return await outputs.inline_video_fact(
                    self.objects, sub, job_id, data, self.settings.inline_output_max_bytes
                )
            case reports.ResultUrl(url=url):
                # The storage service imports it and reports the outcome to jobs.
                return RunPodJobOutputAtUrl(
                    video_id=video_id, runpod_job_id=job_id, url=url, object_key=sub.object_key
                )
            case reports.Failed(code=code, message=message):
                return RunPodJobFailed(
                    video_id=video_id, runpod_job_id=job_id, code=code, message=message
                )
            case reports.Cancelled():
                return RunPodJobCancelled(video_id=video_id, runpod_job_id=job_id)
            case reports.TimedOut(reason=reason, code=code):
                return RunPodJobTimedOut(
                    video_id=video_id, runpod_job_id=job_id, reason=reason, code=code
                )
        raise AssertionError(outcome)

    async def _publish(self, sub: Submission, fact: Message, event_id: UUID) -> None:
        await self.publish_fact(
            Envelope.wrap(
                fact,
                user_id=sub.user_id,
                event_id=event_id,
                correlation_id=sub.correlation_id,
                causation_id=sub.accepted_event_id,
            )
        )
