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


def test_webhook_tokens_and_presigned_signatures_never_reach_logs_or_spans(
    api: httpx.Client, auth: Callable[[str], dict[str, str]], stack: LocalStack
) -> None:
    """A submission (the /run body carries the presigned upload URL and the webhook URL), its
    webhook (the token in the URL's query), and a broken webhook body that quotes both: every
    span file and every log line of the stack is then searched for the secrets."""
    trace_id = uuid.uuid4().hex
    headers = {
        **auth(f"secret-keeper-{uuid.uuid4()}"),
        "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
    }
    created = api.post(
        "/v1/videos",
        json={"prompt": "a heron keeping a secret", "width": 384, "height": 384, "num_frames": 7},
        headers=headers,
    )
    assert created.status_code == 202, created.text
    video_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/v1/videos/{video_id}", headers=headers).json()["status"] != "completed":
        assert time.monotonic() < deadline, "the video did not complete"
        time.sleep(0.3)
    [job] = [
        j
        for j in httpx.get(f"{stack.sim_url}/admin/jobs", timeout=30).json()["jobs"]
        if j["input"]["output_key"].endswith(f"/{video_id}/video.mp4")
    ]
    webhook, put_url = httpx.URL(job["webhook"]), httpx.URL(job["input"]["output_put_url"])
    token = webhook.params["token"]
    signature = put_url.params["X-Amz-Signature"]
    # A webhook whose body is not JSON but quotes the secrets (the bridge logs what it refuses).
    broken = httpx.post(
        str(webhook),
        content=f"<oops> token={token} X-Amz-Signature={signature} {put_url}",
        headers={"traceparent": (f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01")},
    )
    assert broken.status_code == 400

    def bridge_spans() -> list[dict[str, str]]:
        return spans_of(stack.root / "traces", trace_id).get("runpod-bridge", [])

    # Wait until the broken delivery's server span is out (RunPod's own carries no trace
    # context: its span is in a trace of its own, searched below with every other line).
    deadline = time.monotonic() + 30
    while not any("webhooks" in s["name"] for s in bridge_spans()):
        assert time.monotonic() < deadline, [s["name"] for s in bridge_spans()]
        time.sleep(0.3)
    server_spans = [s for s in bridge_spans() if "webhooks" in s["name"]]
    assert any("token=REDACTED" in json.dumps(s) for s in server_spans), server_spans
    time.sleep(1.0)  # let every service flush its last lines
    for path in [*(stack.root / "traces").glob("*.jsonl"), *(stack.root / "logs").glob("*.log")]:
        text = path.read_text(errors="replace")
        assert token not in text, f"the webhook token is in {path.name}"
        assert signature not in text, f"a presigned signature is in {path.name}"
        assert "X-Amz-Signature=" not in text.replace("X-Amz-Signature=REDACTED", ""), path.name
