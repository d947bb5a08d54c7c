"""Taking RunPod's reports of a job (webhooks and the reconciler's polls, one code path) and
publishing the facts they establish: routed against the video's record (`route_report`), a
report of the recorded job applied, the job of a lost `/run` answer adopted when RunPod (or the
attempt's marker) shows it is the video's, an extra job cancelled, and a job RunPod forgot
settled by its upload (or timed out).

Publishing comes before recording: a fact is published (and acknowledged by Kafka) before the
record says it was, so a crash in between repeats the fact (deduplicated by its deterministic
id) instead of losing it.
"""

import logging
from dataclasses import dataclass
from uuid import UUID

from openv_bridge.domain import ambiguity, reports
from openv_bridge.domain.outcomes import (
    Cancelled,
    Failed,
    InlineVideo,
    Outcome,
    ResultUrl,
    Running,
    TimedOut,
    Uploaded,
    Waiting,
)
from openv_bridge.domain.record import Submission
from openv_bridge.domain.runpod_errors import AnswerTooLarge, JobNotFound, RunPodError
from openv_bridge.domain.submissions import (
    FactIds,
    Route,
    SubmissionState,
    progress_is_news,
    route_report,
    runpod_says_ours,
)
from openv_bridge.service_layer import outputs
from openv_bridge.service_layer.cancelling import Cancelling
from openv_bridge.service_layer.uploads import discard_uploads, upload_fact
from openv_bridge.service_layer.use_case import UseCase
from openv_contracts import Message
from openv_contracts.facts import (
    RunPodJobCancelled,
    RunPodJobFailed,
    RunPodJobOutputAtUrl,
    RunPodJobRunning,
    RunPodJobTimedOut,
)
from openv_contracts.video import ErrorCode

log = logging.getLogger(__name__)

_S = SubmissionState


class UnknownJob(Exception):
    """A report for a video we never submitted, or from a job that is not its recorded one."""


@dataclass(frozen=True)
class JobReports(UseCase):
    cancelling: Cancelling

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
                        await self.cancelling.cancel_quietly(report.job_id)
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
        named = ambiguity.input_names_attempt(
            self.settings.webhook_key, body, sub.video_id, sub.attempts
        )
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
            await self.facts.submitted(sub, job_id)

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
            await self.facts.publish(sub, failed, FactIds(sub.video_id).of("final", job_id))
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
        found = await upload_fact(self.objects, sub, job_id, self.settings.upload_max_bytes)
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
        await self.facts.publish(sub, fact, event_id)
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTED}), status="404")
        return fact

    async def apply(self, sub: Submission, report: reports.Report) -> Message | None:
        """Publish the fact a report of the recorded job establishes, then record the news."""
        job_id = report.job_id
        ids = FactIds(sub.video_id)
        outcome = reports.interpret(report, sub.object_key)
        if isinstance(outcome, Waiting):
            await self.submissions.record_news(sub.video_id, job_id, report.status, None)
            return None
        if isinstance(outcome, Running):
            fact: Message = RunPodJobRunning(
                video_id=sub.video_id, runpod_job_id=job_id, progress=outcome.progress
            )
            if progress_is_news(
                sub.last_status, sub.last_progress, report.status, outcome.progress
            ):
                await self.facts.publish(sub, fact, ids.of("running", job_id, outcome.progress))
            await self.submissions.record_news(
                sub.video_id, job_id, report.status, outcome.progress
            )
            return fact
        fact = await self._final_fact(sub, job_id, outcome)
        await self.facts.publish(sub, fact, ids.of("final", job_id))
        await self.submissions.finish(sub.video_id, frozenset({_S.SUBMITTED}), report.status)
        return fact

    async def _final_fact(self, sub: Submission, job_id: str, outcome: Outcome) -> Message:
        video_id = sub.video_id
        match outcome:
            case Uploaded():
                uploaded = await upload_fact(
                    self.objects, sub, job_id, self.settings.upload_max_bytes
                )
                if uploaded is None:
                    return RunPodJobFailed(
                        video_id=video_id,
                        runpod_job_id=job_id,
                        code=ErrorCode.OUTPUT_MISSING.value,
                        message="the worker reported success but its upload is missing or empty",
                    )
                return uploaded
            case InlineVideo(data=data):
                return await outputs.inline_video_fact(
                    self.objects, sub, job_id, data, self.settings.inline_output_max_bytes
                )
            case ResultUrl(url=url):
                # The storage service imports it and reports the outcome to jobs.
                return RunPodJobOutputAtUrl(
                    video_id=video_id, runpod_job_id=job_id, url=url, object_key=sub.object_key
                )
            case Failed(code=code, message=message):
                return RunPodJobFailed(
                    video_id=video_id, runpod_job_id=job_id, code=code, message=message
                )
            case Cancelled():
                return RunPodJobCancelled(video_id=video_id, runpod_job_id=job_id)
            case TimedOut(reason=reason, code=code):
                return RunPodJobTimedOut(
                    video_id=video_id, runpod_job_id=job_id, reason=reason, code=code
                )
        raise AssertionError(outcome)
