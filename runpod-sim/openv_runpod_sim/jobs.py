"""Job model, the in-memory job table and the RunPod job state machine."""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from openv_runpod_sim.faults import JobKnobs


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
)
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})

_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.IN_QUEUE: frozenset({JobStatus.IN_PROGRESS, JobStatus.CANCELLED}),
    JobStatus.IN_PROGRESS: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
    # /retry puts these back in the queue under the same id.
    JobStatus.FAILED: frozenset({JobStatus.IN_QUEUE}),
    JobStatus.TIMED_OUT: frozenset({JobStatus.IN_QUEUE}),
}


class InvalidTransition(Exception):
    """A state change RunPod would never make; a bug in the simulator if it happens."""


def new_job_id() -> str:
    # RunPod ids are UUIDs with a datacenter-ish suffix such as "-u1" or "-e1".
    return f"{uuid.uuid4()}-u1"


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


@dataclass
class WebhookRecord:
    """One POST to a job's webhook: HTTP status, or the transport error text."""

    at: float
    status: str
    http_status: int | None
    error: str | None = None


@dataclass
class Job:
    id: str
    endpoint_id: str
    input: dict[str, Any]
    knobs: JobKnobs
    webhook: str | None
    execution_timeout_s: float
    ttl_s: float
    retention_s: float
    base_url: str
    status: JobStatus = JobStatus.IN_QUEUE
    created_at: float = field(default_factory=time.monotonic)
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    output: Any = None
    error: str | None = None
    worker_id: str | None = None
    executions: int = 0
    retries: int = 0
    cancel_requests: int = 0
    #: /run created this job but its answer was lost (a simulated 502/504 or no answer).
    answer_lost: bool = False
    #: The policy as the client sent it (ms), before any knob override.
    policy: dict[str, int] = field(default_factory=dict)
    video: bytes | None = None
    webhook_log: list[WebhookRecord] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    # Wakes /runsync waiters when the job reaches a terminal state.
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def transition(self, new: JobStatus) -> None:
        if new not in _TRANSITIONS[self.status]:
            raise InvalidTransition(f"job {self.id}: {self.status} -> {new}")
        now = time.monotonic()
        if new is JobStatus.IN_QUEUE:
            # Retry: same id, old result removed, fresh timings.
            self.queued_at = now
            self.started_at = self.finished_at = None
            self.output = self.error = self.worker_id = None
            self.video = None
            self.done = asyncio.Event()
        elif new is JobStatus.IN_PROGRESS:
            self.started_at = now
        else:
            self.finished_at = now
            self.done.set()
        self.status = new

    @property
    def delay_ms(self) -> int:
        end = self.started_at or self.finished_at or time.monotonic()
        return _ms(end - self.queued_at)

    @property
    def execution_ms(self) -> int:
        if self.started_at is None:
            return 0
        return _ms((self.finished_at or time.monotonic()) - self.started_at)

    def expired(self, now: float) -> bool:
        """Past ttl (even while running) or past retention after finishing: RunPod 404s."""
        if now >= self.created_at + self.ttl_s:
            return True
        return self.finished_at is not None and now >= self.finished_at + self.retention_s

    def status_body(self) -> dict[str, Any]:
        """What `GET /status/{id}` answers."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": str(self.status),
            "delayTime": self.delay_ms,
            "executionTime": self.execution_ms,
        }
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        if self.worker_id is not None:
            body["workerId"] = self.worker_id
        return body

    def webhook_body(self) -> dict[str, Any]:
        """RunPod's cloud webhook payload: the status fields plus input and webhook, no workerId."""
        body = self.status_body()
        body.pop("workerId", None)
        body["input"] = self.input
        body["webhook"] = self.webhook
        return dict(sorted(body.items()))

    def admin_view(self) -> dict[str, Any]:
        return {
            **self.status_body(),
            "endpoint_id": self.endpoint_id,
            # time.monotonic() of the /run that created it (one clock for every process on
            # the machine: tests compare it with their own, e.g. with when they killed a service).
            "created_at": self.created_at,
            "input": self.input,
            "webhook": self.webhook,
            "policy": self.policy,
            "knobs": self.knobs.model_dump(exclude_defaults=True),
            "executions": self.executions,
            "retries": self.retries,
            "cancel_requests": self.cancel_requests,
            "answer_lost": self.answer_lost,
            "webhook_attempts": len(self.webhook_log),
            "webhooks_delivered": sum(1 for r in self.webhook_log if r.http_status == 200),
            "webhook_log": [
                {"at": r.at, "status": r.status, "http_status": r.http_status, "error": r.error}
                for r in self.webhook_log
            ],
        }


class JobTable:
    """All jobs by id. Expired jobs are dropped on access and by the app's sweeper."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self.run_calls = 0
        self.runs_accepted = 0
        #: /run calls whose job was created but whose answer was lost.
        self.answers_lost = 0
        self.retried = 0
        #: Every /cancel call's job id, in order, including ids the simulator never had.
        self.cancel_requests: list[str] = []
        #: Every RunPod API call as "METHOD /path" (the path as it arrived), in order: tests
        #: check what a client sent, e.g. that nothing was sent at all.
        self.api_requests: list[str] = []

    def add(self, job: Job) -> None:
        self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.expired(time.monotonic()):
            self.remove(job)
            return None
        return job

    def remove(self, job: Job) -> None:
        # ttl is a hard limit: a running job's worker is stopped too.
        if job.task is not None and not job.task.done():
            job.task.cancel()
        self._jobs.pop(job.id, None)

    def sweep(self) -> int:
        now = time.monotonic()
        expired = [job for job in self._jobs.values() if job.expired(now)]
        for job in expired:
            self.remove(job)
        return len(expired)

    def all(self) -> list[Job]:
        self.sweep()
        return list(self._jobs.values())

    def clear(self) -> None:
        for job in list(self._jobs.values()):
            self.remove(job)
        self.run_calls = self.runs_accepted = self.retried = self.answers_lost = 0
        self.cancel_requests.clear()
        self.api_requests.clear()

    def count(self, status: JobStatus, endpoint_id: str | None = None) -> int:
        return sum(
            1
            for job in self.all()
            if job.status is status and endpoint_id in (None, job.endpoint_id)
        )
