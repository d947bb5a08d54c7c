"""Progress through the runpod SDK: `progress_update` POSTs `{"status": "IN_PROGRESS",
"output": value}` to RunPod from a thread of its own (fire and forget: updates may arrive out
of order; the jobs service takes only a higher progress than it has)."""

from typing import Any

import runpod

from openv_contracts.render_job import render_job_progress


class RunpodProgress:
    def __init__(self, job: dict[str, Any]) -> None:
        self._job = job

    def report(self, percent: int) -> None:
        runpod.serverless.progress_update(self._job, render_job_progress(percent))
