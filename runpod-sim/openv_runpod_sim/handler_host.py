"""Hosts a real worker's handler in place of the simulated render (`RUNPOD_SIM_HANDLER_COMMAND`):
each job runs in a subprocess of the worker's own environment (OpenV's Mochi worker:
`python -m openv_mochi.entrypoints.run_once`, which calls the runpod SDK's `run_job`), whose
progress_update() POSTs reach this simulator at `/_worker/output/{job_id}` as they would reach
RunPod. So the end-to-end tests run the handler the GPU image runs."""

import asyncio
import json
import logging
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from openv_runpod_sim.jobs import Job, JobStatus

log = logging.getLogger(__name__)


class HandlerFailed(Exception):
    """The handler's process ended without a result (it crashed or was killed)."""


class HandlerHost:
    def __init__(self, command: str, base_url: str) -> None:
        self._command = shlex.split(command)
        # runpod-python appends `&isStream=false`, so the URL already has a query.
        self._output_url = f"{base_url.rstrip('/')}/_worker/output/$ID?host=sim"

    async def run(self, job: Job) -> Any:
        """What the handler returned for `job` (an `error` key included), as `_execute` does."""
        with tempfile.TemporaryDirectory(prefix="sim-handler-") as folder:
            job_file, result_file = Path(folder) / "job.json", Path(folder) / "result.json"
            job_file.write_text(json.dumps({"id": job.id, "input": job.input}))
            env = {**os.environ, "RUNPOD_WEBHOOK_POST_OUTPUT": self._output_url}
            process = await asyncio.create_subprocess_exec(
                *self._command, str(job_file), str(result_file), env=env
            )
            try:
                code = await process.wait()
            except asyncio.CancelledError:  # cancel, timeout or reset: the worker stops too
                process.kill()
                await process.wait()
                raise
            if code != 0 or not result_file.exists():
                raise HandlerFailed(f"the worker's handler exited with code {code}")
            result: dict[str, Any] = json.loads(result_file.read_text())
        if "error" in result:  # run_job took it out of the handler's output: put it back
            output = result.get("output")
            return {**(output if isinstance(output, dict) else {}), "error": result["error"]}
        return result.get("output")


def take_progress(job: Job | None, body: bytes) -> bool:
    """A progress_update() POST: `{"status": "IN_PROGRESS", "output": value}`, shown in /status
    while the job runs (a late one, after the job ended, is dropped like RunPod does)."""
    if job is None or job.status is not JobStatus.IN_PROGRESS:
        return False
    try:
        update = json.loads(body)
    except ValueError:
        return False
    if not isinstance(update, dict) or update.get("status") != "IN_PROGRESS":
        return False
    job.output = update.get("output")
    return True
