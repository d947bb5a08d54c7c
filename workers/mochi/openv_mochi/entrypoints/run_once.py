"""`python -m openv_mochi.entrypoints.run_once JOB.json RESULT.json`: one job through the SDK's
own `run_job` (what RunPod's worker loop calls), its result written as JSON. The RunPod
simulator hosts the real handler this way in the end-to-end tests; progress goes wherever
`RUNPOD_WEBHOOK_POST_OUTPUT` points, as on RunPod."""

import asyncio
import json
import logging
import sys
from pathlib import Path

from runpod.serverless.modules.rp_job import run_job

from openv_mochi.config import MochiSettings
from openv_mochi.entrypoints.runpod_worker import build_worker, make_handler


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m openv_mochi.entrypoints.run_once JOB.json RESULT.json")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    job = json.loads(Path(argv[0]).read_text())
    handler = make_handler(build_worker(MochiSettings()))
    result = asyncio.run(run_job(handler, job))
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
