"""One render-job contract, two speakers: the same cases against the RunPod simulator (over its
HTTP API) and against OpenV's Mochi worker handler (the tiny model, through the runpod SDK's
`run_job`), both uploading to a real S3 through presigned URLs made the bridge's way.

What both must do (shared/openv_contracts/render_job.py): a job inside the bounds is COMPLETED
with `RenderJobUploaded` and its MP4 at the upload target; a job outside them FAILS with
`invalid_input: ...` before any upload; a refused upload FAILS with `upload_failed: ...`."""

import asyncio
import io
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from openv_bridge.adapters.object_store import ObjectStore
from openv_contracts.render_job import RenderJobUploaded
from openv_localstack.ports import free_port
from openv_localstack.servers import SeaweedS3
from openv_runpod_sim.app import create_app
from openv_runpod_sim.config import SimSettings
from tests.integration.conftest import seaweed
from tests.integration.support import serve
from tests.worker_support import worker_env, worker_python

__all__ = ["seaweed"]
pytestmark = [pytest.mark.integration, pytest.mark.worker]

BUCKET = "contract"
SPEAKERS = ("simulator", "worker")


@dataclass(frozen=True)
class Case:
    name: str
    changes: dict[str, Any]
    expect: str  # "uploaded", or the error code of a FAILED job
    refused_upload: bool = False


CASES = (
    Case(
        "smallest valid job, with the bridge's bookkeeping key", {"openv_attempt": "m"}, "uploaded"
    ),
    Case("width not a multiple of 16", {"width": 100}, "invalid_input"),
    Case("num_frames off the 6k+1 grid", {"num_frames": 8}, "invalid_input"),
    Case("steps over the bound", {"steps": 66}, "invalid_input"),
    Case("guidance under the bound", {"cfg": 0.5}, "invalid_input"),
    Case("empty prompt", {"positive_prompt": ""}, "invalid_input"),
    Case("upload refused by S3", {}, "upload_failed", refused_upload=True),
)


def _job_input(store: ObjectStore, case: Case, speaker: str, index: int) -> dict[str, Any]:
    key = f"videos/{speaker}/{index}.mp4"
    url = store.upload_url(f"staging/{speaker}/{index}.mp4", 600)
    if case.refused_upload:  # a signature S3 does not accept: 403 SignatureDoesNotMatch
        url = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    return {
        "positive_prompt": "a red cat dances",
        "negative_prompt": "",
        "width": 384,
        "height": 384,
        "num_frames": 7,
        "seed": 3,
        "steps": 10,
        "cfg": 4.5,
        "output_put_url": url,
        "output_key": key,
        **case.changes,
    }


def _outcome(failed: bool, output: Any, error: Any) -> tuple[str, Any]:
    """(what happened, the output): "uploaded", or the code of `<code>: <message>`."""
    if not failed:
        return "uploaded", output
    assert isinstance(error, str) and ": " in error, error
    assert "Traceback" not in error
    return error.split(": ", 1)[0], output


async def _final_status(
    client: httpx.AsyncClient, job_id: str, auth: dict[str, str]
) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            body: dict[str, Any] = (await client.get(f"/status/{job_id}", headers=auth)).json()
            if body["status"] in ("COMPLETED", "FAILED"):
                return body
            await asyncio.sleep(0.05)


async def _through_the_simulator(jobs: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    settings = SimSettings(api_key="k", default_duration_s=0.1, default_queue_s=0.0)
    port = free_port()
    async with (
        serve(create_app(settings), port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v2/ep") as client,
    ):
        auth = {"Authorization": "Bearer k"}
        ids = [
            (await client.post("/run", json={"input": job}, headers=auth)).json()["id"]
            for job in jobs
        ]
        outcomes = []
        for job_id in ids:
            body = await _final_status(client, job_id, auth)
            outcomes.append(
                _outcome(body["status"] == "FAILED", body.get("output"), body.get("error"))
            )
        return outcomes


def _through_the_worker(
    jobs: list[dict[str, Any]], folder: Path, model: Path
) -> list[tuple[str, Any]]:
    given, taken = folder / "jobs.json", folder / "results.json"
    given.write_text(json.dumps([{"id": f"c{i}", "input": job} for i, job in enumerate(jobs)]))
    subprocess.run(
        [worker_python(), "-m", "openv_mochi.entrypoints.run_once", str(given), str(taken)],
        env=worker_env(model),
        check=True,
        timeout=600,
    )
    results = json.loads(taken.read_text())
    return [_outcome("error" in r, r.get("output"), r.get("error")) for r in results]


@pytest.fixture(scope="module")
def store(seaweed: SeaweedS3) -> Iterator[ObjectStore]:
    seaweed.ensure_bucket(BUCKET)
    yield ObjectStore(seaweed.client(), seaweed.client(), BUCKET)


@pytest.fixture(scope="module", params=SPEAKERS)
async def answers(
    request: pytest.FixtureRequest, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, list[dict[str, Any]], list[tuple[str, Any]]]]:
    """Every case's job and outcome, for one speaker (all jobs in one go: one model load)."""
    speaker: str = request.param
    jobs = [_job_input(store, case, speaker, i) for i, case in enumerate(CASES)]
    if speaker == "simulator":
        outcomes = await _through_the_simulator(jobs)
    else:
        folder = tmp_path_factory.mktemp("worker-contract")
        model = request.getfixturevalue("tiny_mochi_model")
        outcomes = await asyncio.to_thread(_through_the_worker, jobs, folder, model)
    yield speaker, jobs, outcomes


def _staged(store: ObjectStore, job: dict[str, Any]) -> bytes | None:
    path = httpx.URL(job["output_put_url"]).path
    key = path.split(f"/{BUCKET}/", 1)[1]
    try:
        response = store.client.get_object(BUCKET, key)
    except Exception:
        return None
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_speaker_answers_the_case_as_the_contract_says(
    answers: tuple[str, list[dict[str, Any]], list[tuple[str, Any]]],
    store: ObjectStore,
    case: Case,
) -> None:
    speaker, jobs, outcomes = answers
    index = CASES.index(case)
    job, (happened, output) = jobs[index], outcomes[index]
    assert happened == case.expect, (speaker, output)
    video = _staged(store, job)
    if case.expect != "uploaded":
        assert output == {"status": "ERROR"}
        assert video is None
        return
    uploaded = RenderJobUploaded.model_validate(output)
    assert uploaded.key == job["output_key"]
    assert video is not None and uploaded.size_bytes == len(video)
    with av.open(io.BytesIO(video), mode="r") as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.codec_context.name == "h264" and stream.average_rate == 24
    if speaker == "worker":  # the simulator renders a scaled-down stand-in of its own
        assert (frames, stream.width, stream.height) == (7, 384, 384)
