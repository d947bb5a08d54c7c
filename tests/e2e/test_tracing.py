"""One trace from click to GPU and back (and to the bin): spans of every service share the
caller's trace id."""

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from openv_localstack.stack import LocalStack

pytestmark = pytest.mark.e2e

SERVICES = ("gateway", "jobs", "runpod-bridge", "storage")


def spans_of(trace_dir: Path, trace_id: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for service in SERVICES:
        path = trace_dir / f"{service}.jsonl"
        if not path.exists():
            continue
        # A service may be writing its last line right now: read complete lines only.
        complete, _, _ = path.read_text().rpartition("\n")
        for line in complete.splitlines():
            span = json.loads(line)
            if span["trace_id"] == trace_id:
                found.setdefault(service, []).append(span)
    return found


def test_create_to_completion_and_deletion_is_one_trace_across_all_services(
    api: httpx.Client, auth: Callable[[str], dict[str, str]], stack: LocalStack
) -> None:
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    headers = {**auth(f"tracer-{uuid.uuid4()}"), "traceparent": traceparent}
    created = api.post(
        "/v1/videos",
        json={"prompt": "a traced heron", "width": 384, "height": 384, "num_frames": 7},
        headers=headers,
    )
    assert created.status_code == 202, created.text
    video_id = created.json()["id"]
    deadline = time.monotonic() + 60
    found: dict[str, list[dict[str, str]]] = {}
    while time.monotonic() < deadline:
        status = api.get(f"/v1/videos/{video_id}", headers=headers).json()["status"]
        found = spans_of(stack.root / "traces", trace_id)
        if status == "completed" and set(found) >= set(SERVICES) - {"storage"}:
            break
        time.sleep(0.3)
    assert status == "completed"
    # Storage acts on a video only when it is deleted (or its result is at a URL): delete
    # it in the same trace, and its removal of the file joins the trace too.
    deleted = api.delete(f"/v1/videos/{video_id}?wait=10", headers=headers)
    assert deleted.status_code == 200, deleted.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = spans_of(stack.root / "traces", trace_id)
        # A span is written when it ends: the handling span after the calls made within it.
        if set(found) == set(SERVICES) and any(s["kind"] == "CONSUMER" for s in found["storage"]):
            break
        time.sleep(0.3)
    assert set(found) == set(SERVICES), {s: [x["name"] for x in v] for s, v in found.items()}
    # The gateway's server span continues the caller's trace; Kafka hops are spans of their own.
    assert any(s["kind"] == "SERVER" for s in found["gateway"])
    assert any(s["kind"] == "PRODUCER" for s in found["jobs"])
    assert any(s["kind"] == "CONSUMER" for s in found["runpod-bridge"])
    assert any(s["kind"] == "CONSUMER" for s in found["storage"])
