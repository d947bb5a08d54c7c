"""The RunPod bridge's service layer and webhook receiver against a real Postgres and the RunPod
simulator over real sockets; Kafka is replaced by a list of published facts (the bridge only
needs "published, acknowledged" from it), S3 by an in-memory PUT target on the bridge's app.

Crashes are simulated by a RunPod client that raises `Crash` (a BaseException nothing in the
bridge catches) right after RunPod accepted a job: the process "dies" in the window between
RunPod's answer and the record.
"""

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from openv_bridge.adapters import migrations
from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.adapters.runpod_client import RunPodClient
from openv_bridge.adapters.submissions import Submissions
from openv_bridge.config import Settings
from openv_bridge.domain import reports
from openv_bridge.domain.record import Submission
from openv_bridge.domain.runpod_errors import RunSend
from openv_bridge.domain.submissions import SubmissionState
from openv_bridge.entrypoints import consumers, webhooks
from openv_bridge.main import runpod_client_options
from openv_bridge.service_layer.bridge import BridgeService
from openv_bridge.service_layer.reconciler import Reconciler, Sweep
from openv_bridge.service_layer.submitting import claim_of
from openv_contracts import Envelope
from openv_contracts.events import VideoAccepted, VideoCancelled, VideoTimedOut
from openv_contracts.storage_keys import video_output_key, video_prefix
from openv_contracts.video import VideoParams, VideoStatus
from openv_infra.db import make_engine
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres
from openv_runpod_sim.app import Simulator, create_app
from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.faults import ScenarioSpec
from openv_runpod_sim.jobs import Job
from tests.integration.support import eventually, serve

pytestmark = pytest.mark.integration

API_KEY = "bridge-test-key"
REFERENCE_INPUT = {
    "positive_prompt",
    "negative_prompt",
    "width",
    "height",
    "seed",
    "steps",
    "cfg",
    "num_frames",
    "output_put_url",
    "output_key",
    "openv",  # the attempt's marker (domain.ambiguity)
}


class Crash(BaseException):
    """The bridge process dies here."""


class ScriptedRunPod(RunPodClient):
    """The real client, plus what a test needs: knobs for the next jobs (the simulator reads
    them from `input.sim`) and a crash right after RunPod accepted a job."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings.runpod_base_url,
            settings.runpod_endpoint_id,
            settings.runpod_api_key.get_secret_value(),
            **runpod_client_options(settings),
        )
        self.next_knobs: list[dict[str, Any]] = []
        self.crash_after_run = 0

    async def run(
        self,
        job_input: dict[str, Any],
        webhook: str,
        execution_timeout_ms: int,
        ttl_ms: int,
        send: RunSend | None = None,
    ) -> str:
        if self.next_knobs:
            job_input = {**job_input, "sim": self.next_knobs.pop(0)}
        job_id = await super().run(job_input, webhook, execution_timeout_ms, ttl_ms, send)
        if self.crash_after_run:
            self.crash_after_run -= 1
            raise Crash(job_id)
        return job_id


class MemoryStore(ObjectStore):
    """The bucket: presigned PUT URLs point at the bridge test app's /put route."""

    def __init__(self) -> None:
        self.base = ""
        self.objects: dict[str, bytes] = {}

    def upload_url(self, key: str, expires_s: int, signed_at: datetime | None = None) -> str:
        return f"{self.base}/put/{key}"

    async def size_of(self, key: str) -> int | None:
        data = self.objects.get(key)
        return None if data is None else len(data)

    async def head(self, key: str, length: int) -> bytes:
        return self.objects.get(key, b"")[:length]

    async def keys(self, prefix: str) -> list[str]:
        return [key for key in self.objects if key.startswith(prefix)]

    async def copy(self, source: str, target: str) -> None:
        self.objects[target] = self.objects[source]

    async def remove(self, key: str) -> None:
        self.objects.pop(key, None)


@dataclass
class Facts:
    """Kafka as the bridge sees it: publish returns once the fact is durable, or raises."""

    published: list[Envelope] = field(default_factory=list)
    #: fact type -> how many publishes of it fail first
    failures: dict[str, int] = field(default_factory=dict)

    async def publish(self, envelope: Envelope) -> None:
        if self.failures.get(envelope.type, 0) > 0:
            self.failures[envelope.type] -= 1
            raise RuntimeError("Kafka is unavailable")
        self.published.append(envelope)

    def of(self, video_id: UUID, fact_type: str | None = None) -> list[Envelope]:
        return [
            e
            for e in self.published
            if e.data["video_id"] == str(video_id) and fact_type in (None, e.type)
        ]

    def types(self, video_id: UUID) -> list[str]:
        return [e.type for e in self.of(video_id)]


@dataclass
class Harness:
    settings: Settings
    sim: Simulator
    runpod: ScriptedRunPod
    submissions: Submissions
    bridge: BridgeService
    reconciler: Reconciler
    facts: Facts
    store: MemoryStore
    #: The bucket the bridge uses: `store` unless the test passed a real one.
    objects: ObjectStore

    def job(self, job_id: str) -> Job:
        job = self.sim.table.get(job_id)
        assert job is not None, job_id
        return job

    def jobs(self) -> list[Job]:
        return self.sim.table.all()

    async def row(self, video_id: UUID) -> Submission:
        sub = await self.submissions.get(video_id)
        assert sub is not None
        return sub

    async def sweep_until(self, done: Callable[[Sweep], bool], wait_s: float = 30) -> Sweep:
        """Run reconciler passes (as its loop would) until one satisfies `done`."""

        async def probe() -> Sweep | None:
            sweep = await self.reconciler.run_once()
            return sweep if done(sweep) else None

        found: Sweep = await eventually(probe, "a reconciler pass", wait_s)
        return found


def bridge_app(bridge: BridgeService, store: MemoryStore) -> FastAPI:
    app = FastAPI()
    app.state.bridge = bridge
    app.include_router(webhooks.router)

    @app.put("/put/{key:path}")
    async def put(key: str, request: Request) -> Response:
        store.objects[key] = await request.body()
        return Response(status_code=200)

    return app


HarnessFactory = Callable[..., Any]


@pytest.fixture
async def harness(postgres: EmbeddedPostgres) -> AsyncIterator[Callable[..., Any]]:
    """`async with harness(**settings) as h`: a fresh database, simulator and bridge."""

    @asynccontextmanager
    async def make(
        objects: ObjectStore | None = None, sim: dict[str, Any] | None = None, **overrides: Any
    ) -> AsyncIterator[Harness]:
        name = f"bridge_{uuid4().hex[:12]}"
        postgres.create_database(name)
        sim_port, bridge_port = free_port(), free_port()
        values: dict[str, Any] = {
            "database_url": SecretStr(postgres.dsn_for(name)),
            "runpod_base_url": f"http://127.0.0.1:{sim_port}/v2",
            "runpod_api_key": SecretStr(API_KEY),
            "webhook_base_url": f"http://127.0.0.1:{bridge_port}",
            "runpod_timeout_s": 5.0,
            "runpod_backoff_s": 0.05,
            "submit_timeout_s": 5.0,
            "submit_lease_s": 10.0,
            "submit_retry_base_s": 0.0,
            "reconcile_quiet_s": 0.3,
            "reconcile_requests_per_s": 200.0,
        }
        values.update(overrides)
        settings = Settings(**values)
        await migrations.upgrade(settings)
        sim_app = create_app(
            SimSettings(
                api_key=API_KEY,
                default_duration_s=0.2,
                default_queue_s=0.05,
                webhook_retry_interval_s=0.2,
                render_scale=8,
                progress_steps=4,
                log_level="warning",
                **(sim or {}),
            )
        )
        engine = make_engine(settings)
        runpod = ScriptedRunPod(settings)
        store = MemoryStore()
        store.base = settings.webhook_base_url
        facts = Facts()
        submissions = Submissions(engine)
        bucket = store if objects is None else objects
        bridge = BridgeService(settings, runpod, submissions, bucket, facts.publish)
        reconciler = Reconciler(bridge, submissions, settings)
        try:
            async with (
                serve(sim_app, sim_port),
                serve(bridge_app(bridge, store), bridge_port),
            ):
                yield Harness(
                    settings,
                    sim_app.state.sim,
                    runpod,
                    submissions,
                    bridge,
                    reconciler,
                    facts,
                    store,
                    bucket,
                )
        finally:
            await runpod.aclose()
            await engine.dispose()

    yield make


def accepted(prompt: str = "a lighthouse at dusk", user: str = "u1") -> Envelope:
    video_id = uuid4()
    params = VideoParams(seed=7, width=384, height=384, num_frames=7)
    event = VideoAccepted(
        video_id=video_id,
        prompt=prompt,
        params=params,
        duration_seconds=params.duration_seconds,
        charged_seconds=params.duration_seconds,
        object_prefix=video_prefix(user, video_id),
    )
    return Envelope.wrap(event, user_id=user)


def cancelled(envelope: Envelope, previous: VideoStatus) -> Envelope:
    video_id = UUID(envelope.data["video_id"])
    return envelope.follow(VideoCancelled(video_id=video_id, previous_status=previous))


def vid(envelope: Envelope) -> UUID:
    return UUID(envelope.data["video_id"])


# --------------------------------------------------------------------------- normal path


async def test_one_submission_one_job_one_completion_and_redelivery_changes_nothing(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.runpod.next_knobs = [{"duration_s": 1.0}]
        env = accepted()
        video_id = vid(env)
        await h.bridge.on_video_event(env)

        [submitted] = h.facts.of(video_id, "RunPodJobSubmitted")
        job_id = submitted.data["runpod_job_id"]
        job = h.job(job_id)
        assert set(job.input) == REFERENCE_INPUT | {"sim"}
        assert job.input["output_key"] == video_output_key("u1", video_id)
        assert job.policy == {"executionTimeout": 600_000, "ttl": 86_400_000}
        assert job.webhook == h.bridge.webhook_url(video_id)
        assert submitted.causation_id == env.event_id

        # Redelivered while in flight: no second /run, the submission fact again with its id
        # (a crash may have come between recording the job and publishing the fact).
        await h.bridge.on_video_event(env)
        again = h.facts.of(video_id, "RunPodJobSubmitted")
        assert [e.event_id for e in again] == [submitted.event_id] * 2

        await eventually(lambda: h.facts.of(video_id, "RunPodJobCompleted"), "completion")
        [completed] = h.facts.of(video_id, "RunPodJobCompleted")
        assert completed.data["size_bytes"] == len(h.store.objects[job.input["output_key"]])
        assert (await h.row(video_id)).state is SubmissionState.FINISHED

        await h.bridge.on_video_event(env)  # and after the end: nothing at all
        assert h.sim.table.run_calls == 1
        assert len(h.facts.of(video_id)) == 3
        assert await h.reconciler.run_once() == Sweep()


async def test_a_batch_of_new_videos_is_claimed_run_and_recorded_together(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.sim.scenarios.add(ScenarioSpec(prompt_contains="forbidden", reject_run="bad input"))
        old = accepted(prompt="submitted before")
        await h.bridge.on_video_event(old)
        new = [accepted(prompt=f"new {i}", user=f"u{i}") for i in range(5)]
        refused = accepted(prompt="something forbidden")
        redelivered = new[1].model_copy()  # the same event twice in one batch
        batch = [*new, redelivered, old, refused, cancelled(new[4], VideoStatus.QUEUED)]

        handled = await h.bridge.submit_new(batch)

        # The new videos (the refused one too) are handled; the earlier one's acceptance, the
        # duplicate and the cancel are left to `on_video_event`.
        assert handled == {e.event_id for e in [*new, refused]}
        assert h.sim.table.run_calls == 1 + len(new) + 1
        for env in new:
            [submitted] = h.facts.of(vid(env))
            assert submitted.type == "RunPodJobSubmitted"
            assert submitted.causation_id == env.event_id
            row = await h.row(vid(env))
            assert row.state is SubmissionState.SUBMITTED
            assert (row.runpod_job_id, row.attempts) == (submitted.data["runpod_job_id"], 1)
            assert h.job(submitted.data["runpod_job_id"]).input["output_key"] == (
                video_output_key(env.user_id or "", vid(env))
            )
        assert h.facts.types(vid(refused)) == ["RunPodJobFailed"]
        assert h.facts.types(vid(old)) == ["RunPodJobSubmitted"]

        # Given again (a redelivered batch): nothing is new, nothing runs twice.
        assert await h.bridge.submit_new(batch) == set()
        assert h.sim.table.run_calls == 1 + len(new) + 1


async def test_a_cancel_in_the_batch_of_its_acceptance_follows_the_submission(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.runpod.next_knobs = [{"duration_s": 30.0}]
        env, other = accepted(), accepted(prompt="another")
        handle = consumers._batch_handler(h.bridge, h.settings)
        await handle([env, other, cancelled(env, VideoStatus.QUEUED)])
        assert (await h.row(vid(env))).state is SubmissionState.CANCELLED
        job_id = h.facts.of(vid(env), "RunPodJobSubmitted")[0].data["runpod_job_id"]
        assert h.job(job_id).status == "CANCELLED"
        assert (await h.row(vid(other))).state is SubmissionState.SUBMITTED


async def test_a_failed_publish_answers_503_and_the_retried_webhook_records_it_once(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.facts.failures["RunPodJobCompleted"] = 1
        env = accepted()
        await h.bridge.on_video_event(env)
        job_id = h.facts.of(vid(env), "RunPodJobSubmitted")[0].data["runpod_job_id"]

        await eventually(lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "retry")
        # The fact is published before the bridge answers, and the simulator logs an attempt
        # only once answered: wait for the retry's own record.
        await eventually(lambda: len(h.job(job_id).webhook_log) >= 2, "the retry's answer")
        assert [r.http_status for r in h.job(job_id).webhook_log] == [503, 200]
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]


# --------------------------------------------------------------------------- crash window


async def test_a_crash_after_runpod_accepted_holds_the_video_until_its_job_reports(
    harness: HarnessFactory,
) -> None:
    """The bridge dies between RunPod taking the job and recording it. When the dead attempt's
    lease runs out, the video is held (its job may exist), not sent again; the job's webhook
    adopts it: one GPU job."""
    async with harness(submit_timeout_s=0.5, submit_lease_s=1.0, ambiguous_run_wait_s=30) as h:
        env = accepted()
        video_id = vid(env)
        # The job finishes at once, but its webhook comes only after the lease ran out.
        h.runpod.next_knobs = [{"webhook_delay_s": 3}]
        h.runpod.crash_after_run = 1
        with pytest.raises(Crash) as crash:
            await h.bridge.on_video_event(env)
        lost_job = str(crash.value)
        row = await h.row(video_id)
        assert (row.state, row.runpod_job_id, row.attempts) == (SubmissionState.SUBMITTING, None, 1)
        assert row.attempt_open_since is not None

        # Redelivered after the restart while the dead attempt's lease runs: nothing yet.
        await h.bridge.on_video_event(env)
        assert h.sim.table.run_calls == 1 and h.facts.published == []

        # The lease runs out: the reconciler holds the record instead of sending it again,
        # and neither a later pass nor a redelivery sends it while the hold lasts.
        await h.sweep_until(lambda s: s.held == 1)
        held = await h.row(video_id)
        assert (held.attempts, held.answer_lost_at is not None) == (1, True)
        assert held.attempt_open_since is None
        assert await h.reconciler.run_once() == Sweep()
        await h.bridge.on_video_event(env)
        assert h.sim.table.run_calls == 1

        await eventually(lambda: h.facts.of(video_id, "RunPodJobCompleted"), "adoption")
        assert h.facts.types(video_id) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert {e.data.get("runpod_job_id") for e in h.facts.of(video_id)} == {lost_job}
        assert h.sim.table.runs_accepted == 1
        assert h.sim.table.cancel_requests == []


async def test_a_crash_whose_job_reports_after_the_hold_resubmits_and_cancels_the_extra_job(
    harness: HarnessFactory,
) -> None:
    """The hold is a bound: a dead attempt's job that reports after it finds the video sent
    again, and is cancelled as the extra one (with RunPod's evidence)."""
    async with harness(submit_timeout_s=0.5, submit_lease_s=1.0, ambiguous_run_wait_s=0.5) as h:
        env = accepted()
        video_id = vid(env)
        # Still running when the hold ends (a finished job's upload would complete the video).
        h.runpod.next_knobs = [{"duration_s": 4}]
        h.runpod.crash_after_run = 1
        with pytest.raises(Crash) as crash:
            await h.bridge.on_video_event(env)
        lost_job = str(crash.value)

        await h.sweep_until(lambda s: s.held == 1)
        # The hold runs out: the next pass sends the video again.
        await h.sweep_until(lambda s: s.resubmitted == 1)
        [submitted] = h.facts.of(video_id, "RunPodJobSubmitted")
        new_job = submitted.data["runpod_job_id"]
        assert new_job != lost_job
        assert (await h.row(video_id)).runpod_job_id == new_job

        # The lost job reports: valid token, not the recorded job -> refused and cancelled.
        def answered() -> list[int | None]:
            return [r.http_status for r in h.job(lost_job).webhook_log if r.http_status]

        assert (await eventually(answered, "the lost job's webhook"))[0] == 409
        assert lost_job in h.sim.table.cancel_requests
        await eventually(lambda: h.facts.of(video_id, "RunPodJobCompleted"), "done")
        assert all(e.data.get("runpod_job_id") != lost_job for e in h.facts.of(video_id))
        assert h.facts.types(video_id) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert h.sim.table.runs_accepted == 2


async def test_a_database_outage_while_recording_a_job_is_retried_not_resubmitted(
    harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RunPod took the job, then recording it fails (Postgres restarting): the bridge tries
    again and records it; one GPU job, no hold."""
    async with harness() as h:
        failures = 2
        record = h.submissions.record_jobs

        async def flaky(jobs: list[tuple[UUID, int, str]]) -> set[UUID]:
            nonlocal failures
            if failures:
                failures -= 1
                raise ConnectionRefusedError("the database is restarting")
            recorded: set[UUID] = await record(jobs)
            return recorded

        monkeypatch.setattr(h.submissions, "record_jobs", flaky)
        env = accepted()
        await h.bridge.on_video_event(env)
        assert failures == 0
        row = await h.row(vid(env))
        [job] = h.jobs()
        assert (row.runpod_job_id, row.attempt_open_since, row.answer_lost_at) == (
            job.id,
            None,
            None,
        )
        await eventually(lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "done")
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert h.sim.table.run_calls == 1


async def test_a_job_whose_answer_was_lost_is_adopted_when_it_reports(
    harness: HarnessFactory,
) -> None:
    async with harness(submit_lease_s=30.0) as h:
        env = accepted()
        video_id = vid(env)
        h.runpod.crash_after_run = 1
        with pytest.raises(Crash) as crash:
            await h.bridge.on_video_event(env)
        lost_job = str(crash.value)

        # Its webhook comes before anyone resubmits: RunPod confirms it, the bridge adopts it.
        await eventually(lambda: h.facts.of(video_id, "RunPodJobCompleted"), "adoption")
        assert h.facts.types(video_id) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert h.facts.of(video_id)[0].data["runpod_job_id"] == lost_job
        row = await h.row(video_id)
        assert (row.state, row.runpod_job_id) == (SubmissionState.FINISHED, lost_job)
        assert await h.reconciler.run_once() == Sweep()
        assert h.sim.table.run_calls == 1


async def test_a_run_that_times_out_is_not_resent_and_its_job_is_adopted(
    harness: HarnessFactory,
) -> None:
    async with harness(runpod_timeout_s=0.3, submit_retry_base_s=5.0) as h:
        h.sim.faults.hang_run_s = 2.0  # RunPod creates the job, then answers too late
        # Long enough that its webhook cannot adopt it before the first checks below.
        h.runpod.next_knobs = [{"duration_s": 3.0}]
        env = accepted()
        await h.bridge.on_video_event(env)
        h.sim.faults.hang_run_s = 0
        assert h.sim.table.run_calls == 1  # a /run that may have worked is not sent again
        row = await h.row(vid(env))
        assert row.state is SubmissionState.SUBMITTING
        assert "ReadTimeout" in (row.last_error or "")

        await eventually(lambda: h.facts.of(vid(env), "RunPodJobCompleted"), "adoption")
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted", "RunPodJobCompleted"]
        assert await h.reconciler.run_once() == Sweep()
        assert h.sim.table.run_calls == 1


async def test_submission_attempts_are_bounded_then_the_video_fails(
    harness: HarnessFactory,
) -> None:
    async with harness(runpod_max_attempts=1, submit_max_attempts=2) as h:
        h.sim.faults.run_500 = 100
        env = accepted()
        await h.bridge.on_video_event(env)  # attempt 1
        assert h.facts.published == []
        await h.sweep_until(lambda s: s.resubmitted == 1)  # attempt 2
        assert h.sim.table.run_calls == 2
        await h.sweep_until(lambda s: s.resubmitted == 1)  # attempt 3: over the bound
        [failed] = h.facts.of(vid(env))
        assert failed.type == "RunPodJobFailed"
        assert failed.data["code"] == "runpod_failed"
        assert "2 attempts" in failed.data["message"] and "HTTP 500" in failed.data["message"]
        assert (await h.row(vid(env))).state is SubmissionState.FINISHED
        assert h.sim.table.run_calls == 2


async def test_a_permanent_refusal_fails_the_video_with_runpods_message(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.sim.scenarios.add(ScenarioSpec(prompt_contains="forbidden", reject_run="bad input"))
        env = accepted(prompt="something forbidden")
        await h.bridge.on_video_event(env)
        [failed] = h.facts.of(vid(env))
        assert failed.type == "RunPodJobFailed"
        assert (failed.data["code"], failed.data["message"]) == ("runpod_rejected", "bad input")
        await h.bridge.on_video_event(env)
        assert h.sim.table.run_calls == 1
        assert (await h.row(vid(env))).state is SubmissionState.FINISHED


# --------------------------------------------------------------------------- cancel


async def test_a_cancel_during_submission_cancels_the_job_once_run_answers(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.sim.faults.hang_run_s = 1.0
        h.runpod.next_knobs = [{"hang": True}]
        env = accepted()
        submitting = asyncio.create_task(h.bridge.on_video_event(env))
        await eventually(h.jobs, "the job at RunPod")
        await h.bridge.on_video_event(cancelled(env, VideoStatus.QUEUED))
        assert (await h.row(vid(env))).state is SubmissionState.CANCELLED
        await submitting
        [job] = h.jobs()
        assert job.status == "CANCELLED"
        assert h.facts.published == []
        # A redelivered acceptance cannot bring it back.
        await h.bridge.on_video_event(env)
        assert h.sim.table.run_calls == 1


async def test_a_job_that_finished_as_its_video_was_cancelled_leaves_no_upload(
    harness: HarnessFactory,
) -> None:
    """The job completes and uploads just as its video is cancelled (or deleted, after the
    storage service's purge); its webhook comes after the cancel: the upload is removed, and
    no file is stored for the video."""
    async with harness() as h:
        h.runpod.next_knobs = [{"webhook_delay_s": 1.5}]
        env = accepted()
        await h.bridge.on_video_event(env)
        await eventually(lambda: h.store.objects, "the worker's upload")
        await h.bridge.on_video_event(cancelled(env, VideoStatus.SUBMITTED))
        [job] = h.jobs()
        await eventually(lambda: [r for r in job.webhook_log if r.http_status], "the webhook")
        assert (await h.row(vid(env))).state is SubmissionState.CANCELLED
        assert h.store.objects == {}
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted"]


async def test_a_video_the_jobs_service_timed_out_while_queued_is_never_run(
    harness: HarnessFactory,
) -> None:
    """The jobs service gives up on a video whose submission kept failing (queued too long):
    the bridge stops retrying it, and a job its last attempt got meanwhile is cancelled."""
    async with harness(runpod_max_attempts=1, submit_max_attempts=10) as h:
        h.sim.faults.run_500 = 1
        env = accepted()
        await h.bridge.on_video_event(env)  # attempt 1 fails: retried later
        assert (await h.row(vid(env))).state is SubmissionState.SUBMITTING
        timed_out = env.follow(VideoTimedOut(video_id=vid(env), reason="queued too long"))
        await h.bridge.on_video_event(timed_out)
        assert (await h.row(vid(env))).state is SubmissionState.CANCELLED
        await h.reconciler.run_once()
        await h.bridge.on_video_event(env)  # a redelivered acceptance cannot bring it back
        assert h.sim.table.run_calls == 1
        assert h.facts.published == []

        # Timed out just after RunPod took its job: the job is cancelled, not rendered.
        running = accepted()
        h.runpod.next_knobs = [{"hang": True}]
        await h.bridge.on_video_event(running)
        [job] = h.jobs()
        await h.bridge.on_video_event(
            running.follow(VideoTimedOut(video_id=vid(running), reason="queued too long"))
        )
        assert (await h.row(vid(running))).state is SubmissionState.CANCELLED
        [job] = h.jobs()
        assert job.status == "CANCELLED"


async def test_a_cancel_runpod_does_not_confirm_is_retried_by_the_reconciler(
    harness: HarnessFactory,
) -> None:
    async with harness(runpod_max_attempts=1) as h:
        h.runpod.next_knobs = [{"hang": True}]
        env = accepted()
        await h.bridge.on_video_event(env)
        job_id = h.facts.of(vid(env))[0].data["runpod_job_id"]
        h.sim.faults.cancel_500 = 1
        await h.bridge.on_video_event(cancelled(env, VideoStatus.SUBMITTED))
        assert (await h.row(vid(env))).state is SubmissionState.CANCELLING
        assert h.job(job_id).status in {"IN_QUEUE", "IN_PROGRESS"}

        await h.sweep_until(lambda s: s.cancels_retried == 1)
        assert h.job(job_id).status == "CANCELLED"
        assert (await h.row(vid(env))).state is SubmissionState.CANCELLED
        assert h.sim.table.cancel_requests == [job_id, job_id]


# --------------------------------------------------------------------------- reconciler


async def test_quiet_jobs_are_polled_for_progress_completion_and_expiry_after_a_restart(
    harness: HarnessFactory,
) -> None:
    async with harness() as h:
        h.runpod.next_knobs = [
            {"drop_webhook": True, "duration_s": 1.5, "progress_format": "dict_progress"},
            {"hang": True, "ttl_s": 0.5},
        ]
        finishing, expiring = accepted(), accepted()
        await h.bridge.on_video_event(finishing)
        await h.bridge.on_video_event(expiring)

        # A new bridge instance on the same database: it knows what is in flight.
        restarted = BridgeService(h.settings, h.runpod, h.submissions, h.store, h.facts.publish)
        h.reconciler = Reconciler(restarted, h.submissions, h.settings)

        def ended(envelope: Envelope) -> bool:
            terminal = {"RunPodJobCompleted", "RunPodJobTimedOut"}
            return bool(set(h.facts.types(vid(envelope))) & terminal)

        await h.sweep_until(lambda _: ended(finishing) and ended(expiring))
        running = h.facts.of(vid(finishing), "RunPodJobRunning")
        assert running and max(e.data["progress"] or 0 for e in running) > 0
        assert h.facts.types(vid(finishing))[-1] == "RunPodJobCompleted"
        [timed_out] = h.facts.of(vid(expiring), "RunPodJobTimedOut")
        assert "404" in timed_out.data["reason"]
        assert await h.reconciler.run_once() == Sweep()


async def test_an_attempt_that_waited_past_its_lease_does_not_send_a_second_job(
    harness: HarnessFactory,
) -> None:
    """A batch's submission waits its turn (or RunPod's rate limit) until its lease runs out;
    the reconciler meanwhile starts the next attempt. Only one of them may call /run."""
    async with harness() as h:
        env = accepted()
        message = env.message()
        assert isinstance(message, VideoAccepted)
        [stale] = await h.submissions.claim_many([claim_of(env, message)], 0.2)
        await asyncio.sleep(0.4)  # the lease runs out before the attempt got its turn
        # The stale attempt is open: the first takeover only holds the record...
        held = await h.submissions.acquire(vid(env), h.settings.submit_lease_s, 0.2)
        assert held is not None and not held.attempt_started
        await asyncio.sleep(0.4)
        # ...and once the hold is over, the next attempt starts.
        taken = await h.submissions.acquire(vid(env), h.settings.submit_lease_s, 0.2)
        assert taken is not None and taken.attempt_started
        assert taken.attempts == stale.attempts + 1

        await h.bridge.attempt(stale)  # its turn comes at last
        assert h.sim.table.run_calls == 0
        await h.bridge.attempt(taken)
        assert h.sim.table.run_calls == 1
        assert h.facts.types(vid(env))[0] == "RunPodJobSubmitted"


async def test_a_wrong_endpoint_times_out_no_job_in_flight(harness: HarnessFactory) -> None:
    """A deploy with a mistyped endpoint id: every job's /status is 404, but so is the
    endpoint's /health. The reconciler decides nothing until RunPod knows the endpoint; then
    a job that really is gone (its ttl passed) times out."""
    async with harness() as h:
        h.runpod.next_knobs = [{"hang": True, "ttl_s": 0.5}]
        env = accepted()
        await h.bridge.on_video_event(env)
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted"]
        h.sim.endpoints = {"some-other-endpoint"}  # ours is unknown now
        await asyncio.sleep(1.5)  # past the reconciler's quiet time and the job's ttl
        await h.reconciler.run_once()
        await h.reconciler.run_once()
        assert h.facts.types(vid(env)) == ["RunPodJobSubmitted"]
        assert (await h.row(vid(env))).state is SubmissionState.SUBMITTED

        h.sim.endpoints = None
        await h.sweep_until(lambda _: "RunPodJobTimedOut" in h.facts.types(vid(env)))
        [timed_out] = h.facts.of(vid(env), "RunPodJobTimedOut")
        assert "404" in timed_out.data["reason"]


async def test_a_stalled_submission_without_its_request_is_failed_not_left(
    harness: HarnessFactory,
) -> None:
    """A `submitting` record from before 0002 (no request stored) cannot be sent again."""
    async with harness() as h:
        video_id = uuid4()
        async with h.submissions.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO runpod_submissions (video_id, user_id, object_key, state)"
                    " VALUES (:v, 'u', 'k', 'submitting')"
                ),
                {"v": video_id},
            )
        assert await h.reconciler.run_once() == Sweep(resubmitted=1)
        [failed] = h.facts.of(video_id)
        assert (failed.type, failed.data["code"]) == ("RunPodJobFailed", "runpod_failed")
        assert (await h.row(video_id)).state is SubmissionState.FINISHED
        assert h.sim.table.run_calls == 0


# --------------------------------------------------------------------------- hostile webhooks


async def post_webhook(
    h: Harness,
    video_id: UUID,
    body: object,
    token: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """POST to the bridge's real webhook route, with the video's valid token unless given
    (through `client` if given: a new client costs ~40 ms, which adds up over many posts)."""
    url = f"{h.settings.webhook_base_url}/webhooks/runpod/{video_id}"
    if token is None:
        token = h.bridge.webhook_url(video_id).split("token=", 1)[1]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        return await client.post(
            url,
            params={"token": token},
            content=content,
            headers={"Content-Type": "application/json"},
        )


async def run_on_sim(h: Harness, job_input: dict[str, Any]) -> str:
    """A job on the endpoint the bridge did not submit (or has not recorded yet)."""
    url = f"{h.settings.runpod_base_url}/{h.settings.runpod_endpoint_id}/run"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        answer = await client.post(url, json={"input": job_input})
    answer.raise_for_status()
    job_id: str = answer.json()["id"]
    return job_id


async def test_a_webhook_job_id_that_is_a_path_is_refused_before_any_runpod_call(
    harness: HarnessFactory,
) -> None:
    async with harness(submit_lease_s=30.0) as h:
        # One video whose record knows its job, one still waiting for a lost /run answer, and
        # someone's job in the queue, which a purge would remove.
        h.runpod.next_knobs = [{"hang": True}, {"hang": True}]
        known, waiting = accepted(), accepted(prompt="lost answer")
        await h.bridge.on_video_event(known)
        h.runpod.crash_after_run = 1
        with pytest.raises(Crash):
            await h.bridge.on_video_event(waiting)
        queued = await run_on_sim(h, {"positive_prompt": "x", "sim": {"queue_s": 60}})
        h.sim.table.api_requests.clear()

        for env in (known, waiting):
            for job_id in ("../purge-queue", "x/../../purge-queue", "..", "a%2F..%2Fpurge-queue"):
                answer = await post_webhook(h, vid(env), {"id": job_id, "status": "COMPLETED"})
                assert answer.status_code == 400, (job_id, answer.text)
                assert answer.json()["code"] == "invalid_body"

        assert h.sim.table.api_requests == []  # no RunPod call at all
        assert h.job(queued).status == "IN_QUEUE"
        assert h.facts.published == h.facts.of(vid(known), "RunPodJobSubmitted")
        assert (await h.row(vid(waiting))).runpod_job_id is None


async def test_a_job_id_the_bridge_did_not_get_from_run_is_adopted_only_with_runpods_evidence(
    harness: HarnessFactory,
) -> None:
    async with harness(submit_lease_s=30.0) as h:
        env = accepted()
        video_id = vid(env)
        key = video_output_key("u1", video_id)
        # Another video's job in flight, not recorded anywhere (its /run answer is on its way).
        bystander = await run_on_sim(
            h,
            {"positive_prompt": "y", "output_key": "videos/u2/x/video.mp4", "sim": {"hang": True}},
        )
        # This video's /run answer is lost: its record waits, its job runs.
        h.runpod.next_knobs = [{"duration_s": 2.0}]
        h.runpod.crash_after_run = 1
        with pytest.raises(Crash) as crash:
            await h.bridge.on_video_event(env)
        real_job = str(crash.value)

        # The valid token naming the bystander's job (it exists at RunPod), claiming our key.
        forged = {"id": bystander, "status": "COMPLETED", "output": {"key": key}}
        answer = await post_webhook(h, video_id, forged)
        assert answer.status_code == 409, answer.text
        row = await h.row(video_id)
        assert (row.state, row.runpod_job_id) == (SubmissionState.SUBMITTING, None)
        assert h.facts.published == []

        # The real job reports at its end: RunPod's answer names our key, so it is adopted.
        await eventually(lambda: h.facts.of(video_id, "RunPodJobCompleted"), "adoption")
        assert {e.data["runpod_job_id"] for e in h.facts.of(video_id)} == {real_job}

        # Now the record knows its job: the forgery is refused again and adopts nothing.
        assert (await post_webhook(h, video_id, forged)).status_code == 409
        assert (await h.row(video_id)).runpod_job_id == real_job
        # Neither job was cancelled: the bystander's runs on, ours finished on its own.
        assert h.sim.table.cancel_requests == []
        assert h.job(bystander).status in {"IN_QUEUE", "IN_PROGRESS"}
        assert h.job(real_job).status == "COMPLETED"


@pytest.mark.parametrize(
    ("knobs", "code", "detail"),
    [
        ({"result": "https://cdn.example/" + "v" * 5000}, "invalid_output", "characters long"),
        ({"result": "https://cdn.example/v\u0000.mp4"}, "invalid_output", "control characters"),
        ({"result": "ftp://cdn.example/v.mp4"}, "invalid_output", "not an http(s) URL"),
        ({"output_error": "CUDA\u0000 out of memory\u0085"}, "worker_failed", "out of memory"),
    ],
)
async def test_an_unusable_worker_result_fails_the_video_and_the_webhook_answers_200(
    harness: HarnessFactory, knobs: dict[str, Any], code: str, detail: str
) -> None:
    async with harness() as h:
        h.runpod.next_knobs = [knobs]
        env = accepted()
        await h.bridge.on_video_event(env)
        job_id = h.facts.of(vid(env), "RunPodJobSubmitted")[0].data["runpod_job_id"]

        [failed] = await eventually(lambda: h.facts.of(vid(env), "RunPodJobFailed"), "failure")
        assert (failed.data["code"], failed.data["runpod_job_id"]) == (code, job_id)
        assert detail in failed.data["message"]
        # Nothing Postgres' jsonb would refuse (a NUL, a lone surrogate) is left in the fact.
        texts = [v for v in failed.data.values() if isinstance(v, str)]
        assert all("\x00" not in text for text in texts)
        assert all(text.encode() for text in texts)
        await eventually(lambda: h.job(job_id).webhook_log, "the webhook's answer")
        assert [r.http_status for r in h.job(job_id).webhook_log] == [200]
        assert (await h.row(vid(env))).state is SubmissionState.FINISHED


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of the kinds that broke or could break the webhook."""
    kind = rng.randrange(9 if depth < 4 else 6)
    text_pool = ["", "a\u0000b", "\ud800", "\u202e\u2603", "x" * 5000, "../purge-queue", "é"]
    match kind:
        case 0:
            return rng.choice([None, True, False])
        case 1:
            return rng.choice([0, -1, 10**400, 2**63, 1e308, 1.5, -0.0])
        case 2:
            return rng.choice(text_pool)
        case 3:
            return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(1, 40)))
        case 4:
            return rng.choice([*sorted(reports.KNOWN_STATUSES), "DONE", ""])
        case 5:
            return rng.choice(["https://cdn.example/" + "v" * 5000, "https://x/\u0000", "ftp://x"])
        case 6:
            return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["id", "status", "output", "error", "result", "key", "progress", "input", "é\u0000"]
    return {rng.choice(keys): hostile_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def hostile_body(rng: random.Random, job_id: str, key: str) -> bytes:
    shape = rng.randrange(8)
    if shape == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))  # not UTF-8
    if shape == 1:
        depth = rng.choice([100, 5000, 200_000])
        return b"[" * depth + b"]" * depth
    if shape == 2:
        return (
            b'{"id": "'
            + job_id.encode()
            + b'", "status": "IN_PROGRESS", "output": '
            + (
                b"9" * 5000 + b"}"  # beyond Python's int digit limit
            )
        )
    if shape == 3:
        return json.dumps(hostile_value(rng)).encode()
    body: dict[str, Any] = {
        "id": rng.choice([job_id, job_id, hostile_value(rng)]),
        "status": rng.choice(sorted(reports.KNOWN_STATUSES)),
        "output": rng.choice([{"key": key}, {"result": hostile_value(rng)}, hostile_value(rng)]),
        "error": hostile_value(rng),
    }
    text = json.dumps(body, allow_nan=True)  # NaN and Infinity are not JSON; Python reads them
    return text.encode("utf-8", "surrogatepass")


async def test_no_token_or_body_makes_the_webhook_answer_5xx(harness: HarnessFactory) -> None:
    async with harness() as h:
        h.runpod.next_knobs = [{"hang": True}]
        env = accepted()
        video_id = vid(env)
        await h.bridge.on_video_event(env)
        job_id = (await h.row(video_id)).runpod_job_id
        assert job_id is not None
        key = video_output_key("u1", video_id)
        valid = h.bridge.webhook_url(video_id).split("token=", 1)[1]
        tokens = [valid, "é" * 64, "\u2603", "%ff%fe", "0" * 64, valid + "\u00e9", "x" * 200]

        rng = random.Random(18)
        answers: list[tuple[int, bytes, str]] = []
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(150):
                token = rng.choice([valid, valid, *tokens])
                body = hostile_body(rng, job_id, key)
                target = rng.choice([video_id, uuid4()])
                answer = await post_webhook(h, target, body, token, client)
                answers.append((answer.status_code, body[:80], token[:20]))
        five_hundreds = [a for a in answers if a[0] >= 500]
        assert five_hundreds == []
        # The run reached the deep checks, not only the door.
        assert {200, 400, 404} <= {status for status, _, _ in answers}
