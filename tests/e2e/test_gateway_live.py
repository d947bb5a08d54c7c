"""Live status on the real stack: the SSE stream from request to terminal state, resuming with
Last-Event-ID, and `Prefer: wait` holding a create until the video is done."""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

Auth = Callable[[str], dict[str, str]]
SMALL = {"width": 384, "height": 384, "num_frames": 7}
TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}


@dataclass
class Stream:
    status_code: int
    events: list[dict[str, Any]] = field(default_factory=list)
    comments: int = 0
    ended: bool = False


def read_stream(
    api: httpx.Client, path: str, headers: dict[str, str], max_s: float = 60.0
) -> Stream:
    """Read an SSE response until the server ends it (or `max_s` passes)."""
    deadline = time.monotonic() + max_s
    with api.stream("GET", path, headers=headers, timeout=max_s) as response:
        result = Stream(response.status_code)
        if response.status_code != 200:
            response.read()
            result.ended = True
            return result
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                if "data" in current:
                    result.events.append({**current, "video": json.loads(current["data"])})
                current = {}
            elif line.startswith(":"):
                result.comments += 1
            else:
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
            if time.monotonic() > deadline:
                return result
        result.ended = True
    return result


def test_the_stream_follows_a_video_to_completion_and_ends(api: httpx.Client, auth: Auth) -> None:
    headers = auth(f"sse-{uuid.uuid4()}")
    created = api.post("/v1/videos", json={"prompt": "live fox", **SMALL}, headers=headers)
    vid = created.json()["id"]
    stream = read_stream(api, f"/v1/videos/{vid}/stream", headers)
    assert stream.status_code == 200
    assert stream.ended, "the stream did not end after the terminal state"
    statuses = [e["video"]["status"] for e in stream.events]
    assert statuses[-1] == "completed", statuses
    assert all(e["event"] == "status" for e in stream.events)
    ids = [int(e["id"]) for e in stream.events]
    assert ids == sorted(set(ids)), ids  # one event per change, in order
    assert all(e["video"]["id"] == vid for e in stream.events)
    # The final event is the same resource a GET returns.
    final = api.get(f"/v1/videos/{vid}", headers=headers).json()
    assert stream.events[-1]["video"]["status"] == final["status"]
    assert int(stream.events[-1]["id"]) == len(
        api.get(f"/v1/videos/{vid}/events", headers=headers).json()["data"]
    )
    # Terminal statuses are final: nothing is streamed after the first terminal one.
    assert [s for s in statuses if s in TERMINAL] == ["completed"]


def test_resume_with_last_event_id_skips_what_the_client_has(api: httpx.Client, auth: Auth) -> None:
    headers = auth(f"sse-{uuid.uuid4()}")
    vid = api.post("/v1/videos", json={"prompt": "resume", **SMALL}, headers=headers).json()["id"]
    full = read_stream(api, f"/v1/videos/{vid}/stream", headers)
    last = int(full.events[-1]["id"])
    assert last >= 2
    # A client that had everything but the last event gets exactly the last one.
    resumed = read_stream(
        api, f"/v1/videos/{vid}/stream", {**headers, "Last-Event-ID": str(last - 1)}
    )
    assert resumed.status_code == 200 and resumed.ended
    assert [int(e["id"]) for e in resumed.events] == [last]
    assert resumed.events[0]["video"]["status"] == "completed"
    # A client that has the terminal event is told not to reconnect.
    done = read_stream(api, f"/v1/videos/{vid}/stream", {**headers, "Last-Event-ID": str(last)})
    assert done.status_code == 204 and done.events == []
    # An id this API never issued is ignored: the client gets the current state.
    foreign = read_stream(api, f"/v1/videos/{vid}/stream", {**headers, "Last-Event-ID": "abc"})
    assert [int(e["id"]) for e in foreign.events] == [last]


def test_a_stream_of_a_cancelled_video_ends_with_cancelled(api: httpx.Client, auth: Auth) -> None:
    headers = auth(f"sse-{uuid.uuid4()}")
    body = {"prompt": "cancel me", **SMALL, "num_frames": 127}
    vid = api.post("/v1/videos", json=body, headers=headers).json()["id"]
    assert api.post(f"/v1/videos/{vid}/cancel", headers=headers).status_code == 202
    stream = read_stream(api, f"/v1/videos/{vid}/stream", headers, max_s=30)
    assert stream.ended
    assert stream.events[-1]["video"]["status"] == "cancelled"


def test_prefer_wait_holds_the_create_until_the_video_is_done(
    api: httpx.Client, auth: Auth
) -> None:
    headers = {**auth(f"prefer-{uuid.uuid4()}"), "Prefer": "wait=45"}
    started = time.monotonic()
    created = api.post("/v1/videos", json={"prompt": "wait for it", **SMALL}, headers=headers)
    elapsed = time.monotonic() - started
    assert created.status_code == 202, created.text
    assert created.headers["Preference-Applied"] == "wait=45"
    video = created.json()
    assert video["status"] == "completed", video
    assert video["video"]["content_type"] == "video/mp4"
    assert "Retry-After" not in created.headers
    assert created.headers["Location"] == f"/v1/videos/{video['id']}"
    assert elapsed < 45


def test_prefer_wait_zero_answers_at_once(api: httpx.Client, auth: Auth) -> None:
    headers = {**auth(f"prefer-{uuid.uuid4()}"), "Prefer": "respond-async, wait=0"}
    created = api.post("/v1/videos", json={"prompt": "no wait", **SMALL}, headers=headers)
    assert created.status_code == 202, created.text
    assert created.headers["Preference-Applied"] == "wait=0"
    assert created.json()["status"] in {"queued", "submitted", "running"}
