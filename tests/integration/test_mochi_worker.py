"""The GPU worker as RunPod starts it: `python -m openv_mochi` (runpod.serverless.start) in the
SDK's local test mode (`--test_input`), with the tiny random model, uploading into a real S3
through a presigned URL made the bridge's way, and its progress_update() POSTs going over
HTTP to where RUNPOD_WEBHOOK_POST_OUTPUT points (here a loopback receiver; on RunPod, RunPod)."""

import io
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import pytest

from openv_bridge.adapters.object_store import ObjectStore
from openv_localstack.servers import SeaweedS3
from tests.worker_support import worker_env, worker_python

pytestmark = [pytest.mark.integration, pytest.mark.worker]

BUCKET = "worker"


class ProgressSink:
    """Records the SDK's progress POSTs (`{"status": "IN_PROGRESS", "output": ...}`)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def progress() -> Iterator[ProgressSink]:
    sink = ProgressSink()
    thread = threading.Thread(target=sink.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


@pytest.fixture
def model(tiny_mochi_model: Path) -> Path:
    return tiny_mochi_model


@pytest.fixture(scope="module")
def store(seaweed: SeaweedS3) -> ObjectStore:
    seaweed.ensure_bucket(BUCKET)
    return ObjectStore(seaweed.client(), seaweed.client(), BUCKET)


def _local_test_mode(
    model: Path, job: dict[str, Any], progress: ProgressSink
) -> subprocess.CompletedProcess[str]:
    env = worker_env(
        model, RUNPOD_WEBHOOK_POST_OUTPUT=f"{progress.url}/job-done/$ID?gpu=$RUNPOD_POD_ID"
    )
    env.pop("RUNPOD_WEBHOOK_GET_JOB", None)  # its absence is what local test mode means
    return subprocess.run(
        [worker_python(), "-m", "openv_mochi", "--test_input", json.dumps(job)],
        env={**env, "RUNPOD_POD_ID": "pod-1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _job(store: ObjectStore, **changes: Any) -> dict[str, Any]:
    return {
        "id": "job-local-1",
        "input": {
            "positive_prompt": "a blue dog runs",
            "negative_prompt": "blurry",
            "width": 384,
            "height": 384,
            "num_frames": 7,
            "seed": 11,
            "steps": 10,
            "cfg": 4.5,
            "output_put_url": store.upload_url("staging/local-1.mp4", 600),
            "output_key": "videos/local-1.mp4",
            **changes,
        },
    }


def test_the_sdk_local_test_mode_renders_into_s3_and_reports_progress(
    model: Path, store: ObjectStore, progress: ProgressSink
) -> None:
    run = _local_test_mode(model, _job(store), progress)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    response = store.client.get_object(BUCKET, "staging/local-1.mp4")
    try:
        video = response.read()
    finally:
        response.close()
        response.release_conn()
    with av.open(io.BytesIO(video), mode="r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "h264" and stream.average_rate == 24
    assert (len(frames), frames[0].width, frames[0].height) == (7, 384, 384)
    # Fire-and-forget threads: some updates may be lost at exit or arrive out of order.
    assert progress.posts, "no progress update reached RUNPOD_WEBHOOK_POST_OUTPUT"
    for path, update in progress.posts:
        assert path.startswith("/job-done/job-local-1?gpu=pod-1")
        assert update["status"] == "IN_PROGRESS"
        assert 0 <= update["output"]["progress"] <= 95


def test_bad_input_in_local_test_mode_fails_with_a_code_and_no_traceback(
    model: Path, store: ObjectStore, progress: ProgressSink
) -> None:
    run = _local_test_mode(model, _job(store, width=100, steps=5), progress)

    assert run.returncode == 1  # the SDK's local mode: exit 1 when the job failed
    said = run.stdout + run.stderr
    assert "invalid_input: width: " in said and "steps: " in said
    assert "Traceback" not in said
    assert progress.posts == []
