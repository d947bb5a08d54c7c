"""The async job runner: queue wait, progress, render, upload, result, webhook."""

import asyncio
import base64
import json
import logging
import re
import time
import traceback
from collections.abc import Coroutine
from typing import Any

import httpx
from pydantic import ValidationError

from openv_contracts.render_job import RenderJobErrorCode, RenderJobInput, render_job_failure
from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.faults import JobKnobs
from openv_runpod_sim.handler_host import HandlerHost
from openv_runpod_sim.jobs import TERMINAL, Job, JobStatus, JobTable
from openv_runpod_sim.pool import PoolConfig, WorkerPool
from openv_runpod_sim.render import RenderSpec, pad_mp4, render_mp4, scaled_size
from openv_runpod_sim.webhook import WebhookSender

log = logging.getLogger(__name__)

#: Presigned-URL query values an S3 error body may quote.
_SIGNED = re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s<\"']+")

# The reference worker's defaults when a parameter is missing from `input`.
_DEFAULTS = {"width": 848, "height": 480, "num_frames": 31, "seed": 0}


class UploadError(Exception):
    """The presigned PUT of the result was refused; the job fails like a real worker's would."""


class _Unanswered(Exception):
    """S3 gave no answer to the PUT (no connection, 5xx, 429): worth trying again."""


def progress_value(fmt: str, percent: int) -> Any:
    """What a worker's progress_update() puts in /status output, in the job's chosen shape."""
    if fmt == "dict_progress":
        return {"progress": percent}
    if fmt == "dict_percent":
        return {"percent": percent}
    return percent


def runpod_error(exc: BaseException, worker_id: str | None) -> str:
    """The JSON string runpod-python puts in `error` when a handler raises."""
    return json.dumps(
        {
            "error_type": str(type(exc)),
            "error_message": str(exc),
            "error_traceback": "".join(traceback.format_exception(exc)),
            "hostname": worker_id,
            "worker_id": worker_id,
            "runpod_version": "sim",
        }
    )


def contract_refusal(job_input: dict[str, Any]) -> dict[str, str] | None:
    """The answer OpenV's worker gives an upload job outside `RenderJobInput` (None if inside):
    the simulator speaks the same contract (tests/contract/test_render_job_contract.py)."""
    try:
        RenderJobInput.model_validate(job_input)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        return render_job_failure(RenderJobErrorCode.INVALID_INPUT, f"{where}: {first['msg']}")
    return None


def _int_param(job_input: dict[str, Any], name: str) -> int:
    value = job_input.get(name, _DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"input.{name} must be an integer, got {value!r}")
    return value


def render_spec(job_input: dict[str, Any], scale: float) -> RenderSpec:
    width, height = _int_param(job_input, "width"), _int_param(job_input, "height")
    num_frames = _int_param(job_input, "num_frames")
    if not 16 <= width <= 4096 or not 16 <= height <= 4096:
        raise ValueError(f"unsupported size {width}x{height}")
    if not 1 <= num_frames <= 1000:
        raise ValueError(f"num_frames out of range: {num_frames}")
    return RenderSpec(
        width=scaled_size(width, scale),
        height=scaled_size(height, scale),
        num_frames=num_frames,
        seed=_int_param(job_input, "seed"),
    )


class Runner:
    """Runs each job as an asyncio task on a worker of the pool (see pool.py)."""

    def __init__(self, settings: SimSettings, table: JobTable) -> None:
        self._settings = settings
        self._table = table
        self.pool = WorkerPool(
            PoolConfig(
                max_workers=max(1, settings.max_workers),
                cold_start_s=settings.cold_start_s,
                idle_timeout_s=settings.idle_timeout_s,
            )
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._client: httpx.AsyncClient | None = None
        self._webhooks: WebhookSender | None = None
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
        self._handler = (
            HandlerHost(settings.handler_command, f"http://{host}:{settings.port}")
            if settings.handler_command
            else None
        )

    async def start(self) -> None:
        self._client = httpx.AsyncClient()
        self._webhooks = WebhookSender(self._settings, self._client)

    async def close(self) -> None:
        self.reset()
        if self._client is not None:
            await self._client.aclose()

    @property
    def running(self) -> int:
        return self._table.count(JobStatus.IN_PROGRESS)

    @property
    def idle(self) -> int:
        return self.pool.idle

    def submit(self, job: Job) -> None:
        job.task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        if job.knobs.cancel_after_s is not None:
            self._spawn(self._cancel_later(job, job.knobs.cancel_after_s))

    async def _cancel_later(self, job: Job, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if self._table.get(job.id) is job:  # not expired or forgotten meanwhile
            self.cancel(job)

    def cancel(self, job: Job) -> None:
        if job.status in TERMINAL:
            return
        job.output = None  # drop the last progress value: it is not a result
        job.transition(JobStatus.CANCELLED)
        if job.task is not None:
            job.task.cancel()
        if job.knobs.webhook_on_cancel:
            self._send_webhook(job)

    def retry(self, job: Job) -> None:
        job.transition(JobStatus.IN_QUEUE)
        job.retries += 1
        self._table.retried += 1
        self.submit(job)

    def reset(self) -> None:
        """Stop every job and pending webhook, forget all jobs."""
        for task in list(self._background):
            task.cancel()
        self._background.clear()
        self._table.clear()
        self.pool.reset()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        # Keep a reference: the loop only holds weak ones to tasks.
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _send_webhook(self, job: Job) -> None:
        if job.webhook is not None and self._webhooks is not None:
            # Snapshot now: a later /retry must not change what this delivery says.
            self._spawn(self._webhooks.send_final(job, job.webhook_body()))

    async def _run(self, job: Job) -> None:
        knobs = job.knobs
        queue_s = self._settings.default_queue_s if knobs.queue_s is None else knobs.queue_s
        await asyncio.sleep(queue_s)
        async with self.pool.lease(knobs.cold_start_s) as worker_id:
            job.transition(JobStatus.IN_PROGRESS)
            job.executions += 1
            job.worker_id = worker_id
            deadline = asyncio.timeout(job.execution_timeout_s)
            try:
                async with deadline:
                    result = await self._execute(job, knobs)
            except TimeoutError as exc:
                if not deadline.expired():
                    self._finish_failed(job, exc)
                    return
                job.output = None
                limit_ms = round(job.execution_timeout_s * 1000)
                job.error = f"job exceeded executionTimeout of {limit_ms} ms"
                if knobs.timeout_as_failed:
                    job.transition(JobStatus.FAILED)
                    self._send_webhook(job)  # RunPod's webhook fires for FAILED
                    return
                job.transition(JobStatus.TIMED_OUT)
                if knobs.webhook_on_timeout:
                    self._send_webhook(job)
                return
            except Exception as exc:
                self._finish_failed(job, exc)
                return
        self._finish(job, result)

    def _finish_failed(self, job: Job, exc: BaseException) -> None:
        log.info("job %s raised: %s", job.id, exc)
        job.output = None
        job.error = runpod_error(exc, job.worker_id)
        job.transition(JobStatus.FAILED)
        self._send_webhook(job)

    def _finish(self, job: Job, result: Any) -> None:
        # runpod-python: an "error" key in the handler's output makes the job FAILED.
        if isinstance(result, dict) and "error" in result:
            job.error = str(result.pop("error"))
            job.output = result or None
            job.transition(JobStatus.FAILED)
        else:
            job.output = result
            job.transition(JobStatus.COMPLETED)
        self._send_webhook(job)

    async def _execute(self, job: Job, knobs: JobKnobs) -> Any:
        """The handler: what the model worker would do inside RunPod."""
        if self._handler is not None:
            return await self._handler.run(job)
        duration = (
            self._settings.default_duration_s if knobs.duration_s is None else knobs.duration_s
        )
        steps = max(1, self._settings.progress_steps)
        for step in range(steps):
            if not knobs.no_progress:
                job.output = progress_value(knobs.progress_format, step * 100 // steps)
            if knobs.hang:
                await asyncio.Event().wait()  # only executionTimeout, cancel or ttl end this
            await asyncio.sleep(duration / steps)
        if knobs.fail is not None and (
            knobs.fail_times is None or job.executions <= knobs.fail_times
        ):
            raise RuntimeError(knobs.fail)
        style = knobs.output_style
        if style == "openv_error":  # the OpenV worker's own shape, with `output_error` if set
            return {"status": "ERROR", "error": knobs.output_error or "simulated worker error"}
        if knobs.output_error is not None:
            return {"error": knobs.output_error}
        if knobs.failed_result is not None:
            return {"result": f"FAILED: {knobs.failed_result}"}
        if knobs.result is not None:
            return {"result": knobs.result, "status": "DONE"}
        if style in ("none", "empty_dict", "empty_list"):
            # A worker that hands nothing back: COMPLETED with output None, {} or [].
            return {"none": None, "empty_dict": {}, "empty_list": []}[style]

        put_url = job.input.get("output_put_url")
        uploads = put_url is not None and not knobs.result_url and style == "upload"
        if uploads and (refusal := contract_refusal(job.input)) is not None:
            return refusal  # as OpenV's worker answers input outside the contract
        spec = render_spec(job.input, self._settings.render_scale)
        video = pad_mp4(await asyncio.to_thread(render_mp4, spec), knobs.output_min_bytes)
        filename = f"ComfyUI_{job.id[:8]}_.mp4"
        if style == "comfy_base64":
            data = base64.b64encode(video).decode()
            return {"videos": [{"filename": filename, "type": "base64", "data": data}]}
        if uploads:
            assert isinstance(put_url, str)  # the contract checked it
            if not knobs.upload_fail:  # upload_fail: a lying worker that reports success anyway
                try:
                    await self._upload(put_url, video)
                except UploadError as exc:
                    return render_job_failure(RenderJobErrorCode.UPLOAD_FAILED, str(exc))
            return {
                "key": job.input.get("output_key"),
                "size_bytes": len(video),
                "content_type": "video/mp4",
                "status": "DONE",
            }
        job.video = video
        base = (self._settings.public_url or job.base_url).rstrip("/")
        url = f"{base}/files/{job.id}.mp4"
        if style == "comfy_s3_url":
            return {"videos": [{"filename": filename, "type": "s3_url", "data": url}]}
        return {"result": url, "status": "SUCCESS" if style == "openv_success" else "DONE"}

    async def _upload(self, url: str, video: bytes) -> None:
        """PUT the result; what S3 did not answer (an outage) is tried again with backoff for
        `upload_retry_s`, as the worker contract asks: a render must outlive a short outage."""
        deadline = time.monotonic() + self._settings.upload_retry_s
        delay = 0.25
        while True:
            try:
                await self._put(url, video)
                return
            except _Unanswered as exc:
                if time.monotonic() + delay > deadline:
                    raise UploadError(str(exc)) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _put(self, url: str, video: bytes) -> None:
        assert self._client is not None, "Runner.start() not called"
        try:
            response = await self._client.put(
                url, content=video, headers={"Content-Type": "video/mp4"}, timeout=60.0
            )
        except httpx.HTTPError as exc:
            message = f"upload to output_put_url failed: {type(exc).__name__}: {exc}"
            raise _Unanswered(message) from exc
        if not response.is_success:
            # The URL itself is left out: it carries a presigned signature (and S3's error
            # body may quote the request's query: its credential is cut out too).
            body = _SIGNED.sub(r"\1=REDACTED", response.text[:300])
            message = f"upload to output_put_url failed: HTTP {response.status_code}: {body}"
            if response.status_code >= 500 or response.status_code == 429:
                raise _Unanswered(message)
            raise UploadError(message)
