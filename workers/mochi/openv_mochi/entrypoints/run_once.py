"""`python -m openv_mochi.entrypoints.run_once JOBS.json RESULTS.json`: jobs (one object, or a
list) through the SDK's own `run_job` (what RunPod's worker loop calls) with the model loaded
once, the results written as JSON (an object, or a list in the same order). The RunPod
simulator hosts the real handler this way in the end-to-end tests, and the render-job contract
test runs its cases so; progress goes wherever `RUNPOD_WEBHOOK_POST_OUTPUT` points, as on
RunPod."""

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from runpod.serverless.modules.rp_job import run_job

from openv_mochi.config import MochiSettings
from openv_mochi.entrypoints.runpod_worker import build_worker, make_handler


async def _run_all(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    handler = make_handler(build_worker(MochiSettings()))
    return [await run_job(handler, job) for job in jobs]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m openv_mochi.entrypoints.run_once JOBS.json RESULTS.json")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    given = json.loads(Path(argv[0]).read_text())
    results = asyncio.run(_run_all(given if isinstance(given, list) else [given]))
    Path(argv[1]).write_text(json.dumps(results if isinstance(given, list) else results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
