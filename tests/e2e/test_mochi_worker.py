"""The whole local stack with OpenV's own GPU worker in place of the simulator's render: the
RunPod simulator hosts the Mochi handler (tiny random model, the worker's own environment) for
each job, so a video goes create -> running with the worker's progress -> completed -> plays,
through the same bridge, upload URL, S3 and gateway as in production."""

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token
from tests.e2e.support import poll, running_stack
from tests.worker_support import run_once_command

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


@pytest.fixture(scope="module")
def worker_stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_mochi_model: Path
) -> Iterator[LocalStack]:
    handler = {"RUNPOD_SIM_HANDLER_COMMAND": run_once_command(tiny_mochi_model)}
    with running_stack(tmp_path_factory.mktemp("stack"), "memory", {}, handler) as local:
        yield local


def test_a_video_rendered_by_the_worker_runs_with_progress_completes_and_plays(
    worker_stack: LocalStack,
) -> None:
    headers = {"Authorization": f"Bearer {make_token(f'user-{uuid.uuid4()}')}"}
    request = {"prompt": "a red cat dances", "width": 384, "height": 384, "num_frames": 7}
    with httpx.Client(base_url=worker_stack.gateway_url, timeout=30.0) as api:
        created = api.post("/v1/videos", json={**request, "steps": 10}, headers=headers)
        assert created.status_code == 202, created.text
        video_id = created.json()["id"]

        seen: list[tuple[str, int | None]] = []

        def finished(video: dict[str, Any]) -> bool:
            seen.append((video["status"], video["progress"]))
            return video["status"] in {"completed", "failed", "cancelled", "timed_out"}

        done = poll(api, video_id, headers, finished, timeout=240)
        events = api.get(f"/v1/videos/{video_id}/events", headers=headers).json()["data"]

    assert done["status"] == "completed", done
    assert done["progress"] == 100 and done["error"] is None
    # Running, with the worker's own progress (its denoising steps fill 0-95 %).
    types = [e["type"] for e in events]
    assert "VideoRunning" in types, types
    progress = [e["data"].get("progress") for e in events if e["type"] == "VideoProgressed"]
    assert any(p is not None and 0 < p <= 95 for p in progress), events
    assert any(status == "running" for status, _ in seen), seen

    # It plays: the presigned URL serves the worker's H.264 MP4, 7 frames of 384x384 at 24 fps.
    mp4 = httpx.get(done["video"]["url"]).content
    assert len(mp4) == done["video"]["size_bytes"]
    with av.open(io.BytesIO(mp4), mode="r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "h264" and stream.average_rate == 24
    assert (len(frames), frames[0].width, frames[0].height) == (7, 384, 384)
